"""Per-tenant rate limits: a token bucket in the tenants table (moto's DynamoDB), enforced by the
API itself, one tenant's burst refused while another's requests go through."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from typing import Any, cast

import pytest

from chalicelib.errors import RateLimited
from chalicelib.rate_limits import Limit, LimitStore, RateLimiter
from chalicelib.tenant_table import TenantTable
from infra.keys import main as keys_main
from tests.functional.conftest import KEY_A, KEY_B, Api, Stack
from tests.photos import cat_jpeg


class Clock:
    """Wall time that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def limiter(stack: Stack, clock: Clock, *, rps: float = 1, burst: int = 3) -> RateLimiter:
    return RateLimiter(
        tenants=stack.services.adapters.tenants,
        default=Limit(rps, burst),
        clock=clock,
        monotonic=clock,
    )


def test_a_burst_goes_through_then_one_request_per_interval(stack: Stack) -> None:
    clock = Clock()
    bucket = limiter(stack, clock, rps=2, burst=3)

    # GIVEN a full bucket: three at once are admitted, each saying what is left
    left = [bucket.admit("a")["RateLimit"] for _ in range(3)]
    assert left == ['"tenant";r=2;t=1', '"tenant";r=1;t=1', '"tenant";r=0;t=2']

    # WHEN a fourth comes at the same instant THEN it is refused, told when to come back
    with pytest.raises(RateLimited) as refused:
        bucket.admit("a")
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == "1"
    assert refused.value.headers["RateLimit-Policy"] == '"tenant";q=3;w=2'

    # AND half a second later (2 a second) one more is admitted, and only one
    clock.now += 0.5
    bucket.admit("a")
    with pytest.raises(RateLimited):
        bucket.admit("a")

    # AND another tenant's bucket is its own
    assert bucket.admit("b")["RateLimit"] == '"tenant";r=2;t=1'


def test_the_bucket_holds_across_containers(stack: Stack) -> None:
    # Two containers, each with its own memory, share the one record in DynamoDB.
    clock = Clock()
    first, second = limiter(stack, clock), limiter(stack, clock)

    first.admit("a")
    second.admit("a")
    first.admit("a")

    with pytest.raises(RateLimited):
        second.admit("a")
    with pytest.raises(RateLimited):
        first.admit("a")


def test_an_idle_bucket_fills_up_again_and_no_further(stack: Stack) -> None:
    clock = Clock()
    bucket = limiter(stack, clock, rps=1, burst=2)
    bucket.admit("a")
    bucket.admit("a")

    clock.now += 3600  # an hour idle: a full bucket of 2, not 3600

    bucket.admit("a")
    bucket.admit("a")
    with pytest.raises(RateLimited):
        bucket.admit("a")


def test_a_tenant_of_its_own_limit_is_held_to_it(stack: Stack) -> None:
    clock = Clock()
    LimitStore(stack.services.adapters.tenants).set("a", Limit(rps=1, burst=1))
    bucket = limiter(stack, clock, rps=100, burst=100)

    bucket.admit("a")
    with pytest.raises(RateLimited):
        bucket.admit("a")
    for _ in range(5):
        bucket.admit("b")  # the default for everyone else


def test_over_the_limit_is_a_429_for_one_tenant_while_another_gets_200(
    api: Api, stack: Stack
) -> None:
    clock = Clock()
    stack.install(limiter=limiter(stack, clock, rps=1, burst=2))

    # GIVEN tenant a spends its burst
    first = api.get("/jobs", key=KEY_A)
    assert first.status == 200
    assert first.headers["RateLimit"] == '"tenant";r=1;t=1'
    assert first.headers["RateLimit-Policy"] == '"tenant";q=2;w=2'
    assert api.submit(cat_jpeg(), key=KEY_A)

    # WHEN it sends one more
    refused = api.get("/jobs", key=KEY_A)

    # THEN it is refused with the draft's headers and Retry-After, as JSON
    assert refused.status == 429
    assert refused.json["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit"].startswith('"tenant";r=0;')
    # AND tenant b is not affected
    assert api.get("/jobs", key=KEY_B).status == 200
    # AND the public routes are never limited
    for path in ("/health", "/", "/openapi.json", "/docs"):
        assert api.get(path, key=KEY_A).status == 200, path
    # AND a second later a is admitted again
    clock.now += 1
    assert api.get("/jobs", key=KEY_A).status == 200


def test_an_error_answer_after_admission_says_where_the_limit_stands(api: Api) -> None:
    missing = api.get("/jobs/0123456789abcdef0123456789abcdef")

    assert missing.status == 404
    assert missing.headers["RateLimit-Policy"] == '"tenant";q=100;w=2'  # the defaults


def test_the_keys_command_sets_shows_and_drops_a_tenants_limit(stack: Stack) -> None:
    tenants = stack.services.adapters.tenants

    def run(*argv: str) -> Any:
        out = io.StringIO()
        with redirect_stdout(out):
            assert keys_main(list(argv), tenants) == 0
        return json.loads(out.getvalue())

    assert run("limit", "ivan", "--rps", "2.5", "--burst", "10") == {
        "tenant": "ivan",
        "rps": 2.5,
        "burst": 10,
    }
    assert LimitStore(tenants).get("ivan") == Limit(2.5, 10)
    assert run("limit", "ivan")["rps"] == 2.5
    assert run("limit", "ivan", "--default")["limit"].startswith("default")
    assert LimitStore(tenants).get("ivan") is None
    assert keys_main(["limit", "ivan", "--rps", "0", "--burst", "1"], tenants) == 1
    assert keys_main(["limit", "ivan", "--rps", "3"], tenants) == 1


class CountingTenants:
    """The tenants table, counting the bucket's conditional writes."""

    def __init__(self, tenants: Any) -> None:
        self._tenants = tenants
        self.writes = 0

    def update_if(self, *args: Any, **kwargs: Any) -> Any:
        self.writes += 1
        return self._tenants.update_if(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tenants, name)


def counted(stack: Stack, clock: Clock, *, rps: float) -> tuple[RateLimiter, CountingTenants]:
    """A limiter of bursts of 100 (the default's shape) whose writes are counted."""
    tenants = CountingTenants(stack.services.adapters.tenants)
    bucket = RateLimiter(
        tenants=cast("TenantTable", tenants),
        default=Limit(rps, 100),
        clock=clock,
        monotonic=clock,
    )
    return bucket, tenants


def test_a_busy_tenant_takes_its_tokens_a_few_at_a_time_and_never_passes_its_burst(
    stack: Stack,
) -> None:
    # GIVEN the default limit's shape (burst 100) and a clock that does not move
    clock = Clock()
    bucket, tenants = counted(stack, clock, rps=50)

    # WHEN a tenant sends requests as fast as it can
    admitted = 0
    refused = 0
    for _ in range(200):
        try:
            bucket.admit("a")
            admitted += 1
        except RateLimited:
            refused += 1

    # THEN exactly its burst went through, with far fewer writes than requests
    # (claims of 1, 2, 4, 8, then 10 at a time; singles once tokens are scarce)
    assert (admitted, refused) == (100, 100)
    assert tenants.writes < 130  # 100 refused requests cost a write each, as before


def test_a_tenant_asking_now_and_then_is_counted_one_write_a_request(stack: Stack) -> None:
    clock = Clock()
    bucket, tenants = counted(stack, clock, rps=50)

    # GIVEN requests further apart than a lease lasts
    for _ in range(5):
        bucket.admit("a")
        clock.now += 2

    # THEN each took one token with its own write: nothing taken ahead was lost
    assert tenants.writes == 5
    assert bucket.admit("a")["RateLimit"] == '"tenant";r=99;t=1'


def test_tokens_taken_ahead_are_shown_as_remaining_and_lost_when_the_lease_ends(
    stack: Stack,
) -> None:
    clock = Clock()
    bucket, tenants = counted(stack, clock, rps=1)
    bucket.admit("a")  # claims 1
    headers = bucket.admit("a")  # spent in time: claims 2, holds 1 more
    assert headers["RateLimit"].startswith('"tenant";r=98;')
    assert tenants.writes == 2

    # WHEN the lease runs out unspent THEN the next request claims again, one token
    clock.now += 1.5
    bucket.admit("a")
    assert tenants.writes == 3


def test_concurrent_requests_in_one_container_share_its_claims(stack: Stack) -> None:
    # GIVEN one container serving four requests of a tenant at a time (the local runtime does)
    clock = Clock()
    bucket, tenants = counted(stack, clock, rps=50)

    # WHEN they come, 40 in all
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: bucket.admit("a"), range(40)))

    # THEN all are admitted with a handful of writes: the claims are not raced
    assert len(answers) == 40
    assert tenants.writes <= 8  # claims of 1, 2, 4, 8, 10, 10, 10 (and no refused race)
