"""Per-tenant records in one DynamoDB table: batches, webhook subscriptions and secrets, API keys,
and the delivery state of each job's webhooks.

Keys (``pk``, ``sk``):

| record | pk | sk |
| --- | --- | --- |
| batch | ``TENANT#<tenant>`` | ``BATCH#<batch_id>`` |
| webhook subscription | ``TENANT#<tenant>`` | ``WEBHOOK#<id>`` |
| the tenant's signing secret | ``TENANT#<tenant>`` | ``SECRET`` |
| an API key, by hash | ``KEY#<sha256>`` | ``KEY`` |
| an API key, listed for its tenant | ``TENANT#<tenant>`` | ``APIKEY#<key_id>`` |
| a webhook delivery of a job | ``JOB#<job_id>`` | ``DELIVERY#<target>`` |

A record that belongs to a tenant is only ever read under that tenant's ``pk``: another tenant's
id simply is not there.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.dynamo import conditional, deserialize, serialize, translate

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _item(pk: str, sk: str, values: dict[str, Any]) -> dict[str, Any]:
    plain = {k: v for k, v in values.items() if v is not None}
    item = {k: serialize(v) for k, v in plain.items()}
    item["pk"], item["sk"] = {"S": pk}, {"S": sk}
    return item


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: deserialize(v) for k, v in item.items() if k not in ("pk", "sk")}


def tenant_pk(tenant: str) -> str:
    """The partition of everything a tenant owns."""
    return f"TENANT#{tenant}"


class TenantStore:
    """Conditional, tenant-scoped reads and writes on the tenants table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def put(self, pk: str, sk: str, values: dict[str, Any], *, only_new: bool = False) -> bool:
        """Write a record; with ``only_new``, False (nothing written) if it already exists."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": _item(pk, sk, values)}
        if only_new:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        return conditional(self._db.put_item, **kwargs) is not None

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One record, or None."""
        try:
            resp = self._db.get_item(
                TableName=self._table,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                ConsistentRead=True,
            )
        except ClientError as exc:
            raise translate(exc) from exc
        item = resp.get("Item")
        return _plain(item) if item else None

    def query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        """Every record of ``pk`` whose sort key starts with ``prefix``."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            try:
                resp = self._db.query(**kwargs)
            except ClientError as exc:
                raise translate(exc) from exc
            out.extend(_plain(item) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def delete(self, pk: str, sk: str) -> bool:
        """Remove a record; False if there was none."""
        deleted = conditional(
            self._db.delete_item,
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            ConditionExpression="attribute_exists(pk)",
        )
        return deleted is not None

    def put_if(
        self,
        pk: str,
        sk: str,
        values: dict[str, Any],
        *,
        condition: str,
        names: dict[str, str],
        condition_values: dict[str, Any],
    ) -> bool:
        """Write a record only when ``condition`` holds (or it does not exist yet)."""
        written = conditional(
            self._db.put_item,
            TableName=self._table,
            Item=_item(pk, sk, values),
            ConditionExpression=f"attribute_not_exists(pk) OR ({condition})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={k: serialize(v) for k, v in condition_values.items()},
        )
        return written is not None

    # --- the tenant's signing secret ------------------------------------------------------

    def signing_secret(self, tenant: str) -> str:
        """The tenant's webhook signing secret, made on first use (the first writer wins)."""
        pk = tenant_pk(tenant)
        found = self.get(pk, "SECRET")
        if found is None:
            self.put(pk, "SECRET", {"secret": new_secret()}, only_new=True)
            found = self.get(pk, "SECRET")
        assert found is not None
        return str(found["secret"])


def new_secret() -> str:
    """A webhook signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)
