"""Readiness: does each dependency answer now? ``GET /ready`` says which one does not.

Each check is the cheapest call that proves the service can work: S3 ``HeadBucket``, DynamoDB
``DescribeTable`` (a control-plane call, not a read unit), SQS ``GetQueueAttributes``. The answer
is kept ``TTL_S`` seconds per container, so a load balancer or a monitor polling every second
costs three calls every five seconds, and a failing dependency is reported within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.contract import Readiness
from chalicelib.errors import TransientError

TTL_S = 5.0
Check = Callable[[], object]


class ReadinessProbe:
    """Runs the checks, at most once per ``TTL_S``."""

    def __init__(
        self, checks: dict[str, Check], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._checks = checks
        self._clock = clock
        self._lock = threading.Lock()
        self._answer: tuple[float, Readiness] | None = None

    def readiness(self) -> Readiness:
        """Every dependency's state, from the last ``TTL_S`` seconds."""
        with self._lock:
            now = self._clock()
            if self._answer is None or now - self._answer[0] >= TTL_S:
                self._answer = (now, self._run())
            return self._answer[1]

    def _run(self) -> Readiness:
        results = {name: _outcome(check) for name, check in self._checks.items()}
        healthy = all(result == "ok" for result in results.values())
        return Readiness(status="ready" if healthy else "unavailable", checks=results)


def _outcome(check: Check) -> str:
    try:
        check()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return f"down: {error.get('Code', 'error')} {error.get('Message', '')}".strip()
    except (BotoCoreError, OSError, TransientError) as exc:
        return f"down: {type(exc).__name__}: {exc}"[:300]
    return "ok"
