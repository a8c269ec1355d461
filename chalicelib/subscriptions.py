"""Webhook subscriptions (``/webhooks``) and the account (``/account``)."""

from __future__ import annotations

from chalicelib.contract import (
    Account,
    NewWebhook,
    Webhook,
    WebhookList,
    WebhookRequest,
    WebhookUpdate,
)
from chalicelib.errors import Conflict, NotFound
from chalicelib.job_store import utc_now
from chalicelib.settings import Settings
from chalicelib.signatures import new_secret
from chalicelib.webhook_store import Subscription, WebhookStore, new_webhook_id
from chalicelib.webhook_targets import Resolver, system_resolver, vet_url


class Subscriptions:
    """Subscribe URLs to job events; show the tenant's signing secret."""

    def __init__(
        self, *, settings: Settings, store: WebhookStore, resolve: Resolver = system_resolver
    ) -> None:
        self._settings = settings
        self._store = store
        self._resolve = resolve

    def subscribe(self, *, owner: str, request: WebhookRequest) -> NewWebhook:
        """The new subscription with its signing secret (shown this once)."""
        vet_url(request.url, policy=self._settings.webhook_policy, resolve=self._resolve)
        existing = self._store.subscriptions(owner)
        if any(s.url == request.url for s in existing):
            raise _duplicate()
        # The cap is checked on a read: two creations at the same instant could both pass it,
        # one subscription over the cap per race. A URL's uniqueness is a conditional write.
        cap = self._settings.max_webhooks_per_tenant
        if len(existing) >= cap:
            raise Conflict(
                f"a tenant may have at most {cap} subscriptions; delete one first",
                code="too_many_webhooks",
            )
        subscription = Subscription(
            id=new_webhook_id(),
            url=request.url,
            events=sorted(set(request.events)),
            secret=new_secret(),
            created_at=utc_now(),
        )
        if self._store.claim_url(owner, request.url, subscription.id) is not None:
            raise _duplicate()
        self._store.add(owner, subscription)
        return NewWebhook.model_validate(
            subscription.model_dump(include=set(NewWebhook.model_fields))
        )

    def list(self, *, owner: str) -> WebhookList:
        """The caller's subscriptions, without their secrets."""
        subscriptions = self._store.subscriptions(owner)
        return WebhookList(webhooks=[_listed(s) for s in subscriptions])

    def unsubscribe(self, *, owner: str, webhook_id: str) -> None:
        """Remove one of the caller's subscriptions; 404 for anything else."""
        if not self._store.remove(owner, webhook_id):
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook_not_found")

    def rotate_secret(self, *, owner: str, webhook_id: str) -> NewWebhook:
        """A new signing secret for one of the caller's subscriptions. For a day deliveries are
        signed with both the new and the previous secret, so receivers can switch at leisure."""
        rotated = self._store.rotate(owner, webhook_id, secret=new_secret(), now=utc_now())
        if rotated is None:
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook_not_found")
        return _shown(rotated)

    def update(self, *, owner: str, webhook_id: str, request: WebhookUpdate) -> Webhook:
        """Enable (past failures forgotten) or disable one of the caller's subscriptions."""
        if request.enabled:
            updated = self._store.enable(owner, webhook_id)
        else:
            updated = self._store.disable(
                owner, webhook_id, reason="disabled_by_owner", now=utc_now()
            )
        if updated is None:
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook_not_found")
        return _listed(updated)

    def account(self, *, owner: str) -> Account:
        """The caller's tenant and the secret its per-job webhooks are signed with."""
        return Account(tenant=owner, webhook_signing_secret=self._store.signing_secret(owner))


def _shown(subscription: Subscription) -> NewWebhook:
    """A subscription as its creator sees it, with its current secret (the previous one is
    never shown again)."""
    return NewWebhook.model_validate(subscription.model_dump(include=set(NewWebhook.model_fields)))


def _duplicate() -> Conflict:
    return Conflict(
        "this URL is subscribed already; to change its events, delete it and subscribe again",
        code="duplicate_webhook",
    )


def _listed(subscription: Subscription) -> Webhook:
    """A subscription as listings show it: everything but its secrets."""
    return Webhook.model_validate(subscription.model_dump(include=set(Webhook.model_fields)))
