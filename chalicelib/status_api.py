"""The status function: ``GET /jobs/{job_id}`` and its long poll, on a Lambda of its own.

A waiting request spends its time asleep between reads, so it runs in the smallest function
there is: this module imports no numpy, Pillow or ONNX Runtime (a test imports it in a fresh
interpreter and checks), and the template gives it less memory than the API function. API
Gateway routes that one method here (``infra/template.json``); the local runtime does the same
(``infra/local.py``). The API function serves the route too, with the same view, for the
Chalice test client and for anyone calling it directly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalice.app import Chalice

from chalicelib.adapters import Adapters
from chalicelib.api_keys import Authenticator, KeyStore
from chalicelib.aws import AwsClients
from chalicelib.contract import JobDetail, WaitQuery
from chalicelib.job_actions import JobActions
from chalicelib.rate_limits import RateLimiter, rate_limiter
from chalicelib.routing import Call, Router
from chalicelib.settings import Settings
from chalicelib.telemetry import configure_logging

STATUS_ROUTE = ("/jobs/{job_id}", "GET")


@dataclass(frozen=True)
class StatusServices:
    """What the status function needs: the key check, the rate limit and the jobs."""

    auth: Authenticator
    limiter: RateLimiter
    jobs: JobActions


def build_status_services(settings: Settings, adapters: Adapters | None = None) -> StatusServices:
    """The status function's services around the shared adapters."""
    a = adapters or Adapters.build(settings, AwsClients(settings))
    return StatusServices(
        auth=Authenticator(keys=KeyStore(a.tenants), configured=settings.api_keys),
        limiter=rate_limiter(settings, a.tenants),
        jobs=JobActions(
            settings=settings,
            repo=a.repo,
            images=a.images,
            queue=a.jobs_queue,
            deliveries=a.deliveries,
        ),
    )


_services: StatusServices | None = None
_lock = threading.Lock()


def get_status_services() -> StatusServices:
    """The container's services, built from the environment on first use."""
    global _services
    with _lock:
        if _services is None:
            _services = build_status_services(Settings.from_env())
        return _services


def set_status_services(services: StatusServices | None) -> None:
    """Install services (tests, the local runtime), or None to rebuild on next use."""
    global _services
    with _lock:
        _services = services


def job_status(call: Call, job_id: str, jobs: JobActions) -> JobDetail:
    """``GET /jobs/{job_id}[?wait=N]`` for the caller's tenant."""
    wait = call.query(WaitQuery).wait
    return jobs.detail(owner=call.tenant, job_id=job_id, wait=wait)


configure_logging()
app = Chalice(app_name="imgcls-status")
router = Router(
    app,
    authenticate=lambda headers: get_status_services().auth.authenticate(headers),
    admit=lambda tenant: get_status_services().limiter.admit(tenant),
)


@router.route("getJob")
def get_job(call: Call, job_id: str) -> JobDetail:
    """One of the caller's jobs; with ``?wait=N``, once it is finished."""
    return job_status(call, job_id, get_status_services().jobs)
