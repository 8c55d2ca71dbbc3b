"""Token buckets per key: burst, refill, Retry-After, per-key limits, bounded memory."""

from __future__ import annotations

from collections.abc import Hashable

from gateway.http_routes.rate_limits import RateLimit, RateLimiter, route_rate_limiter
from gateway.listeners.lease import TriggerRef
from gateway.observability.metrics import GatewayMetrics
from gateway.settings import Settings


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(per_s: float, burst: int, clock: Clock, max_keys: int = 1000) -> RateLimiter:
    return RateLimiter(lambda _: RateLimit(per_s, burst), clock=clock, max_keys=max_keys)


def test_a_burst_is_admitted_then_the_next_request_waits_for_a_token() -> None:
    clock = Clock()
    limits = limiter(2.0, 3, clock)

    assert [limits.retry_after("k") for _ in range(3)] == [0, 0, 0]
    assert limits.retry_after("k") == 1  # half a second, rounded up to whole seconds

    clock.now += 0.5
    assert limits.retry_after("k") == 0
    assert limits.retry_after("k") == 1


def test_retry_after_says_how_long_a_slow_rate_takes_to_refill() -> None:
    clock = Clock()
    limits = limiter(0.1, 1, clock)

    assert limits.retry_after("k") == 0
    assert limits.retry_after("k") == 10
    clock.now += 4
    assert limits.retry_after("k") == 6


def test_an_idle_bucket_refills_up_to_its_burst_only() -> None:
    clock = Clock()
    limits = limiter(1.0, 2, clock)
    limits.retry_after("k")
    limits.retry_after("k")

    clock.now += 3600
    assert [limits.retry_after("k") for _ in range(3)] == [0, 0, 1]


def test_keys_have_their_own_buckets() -> None:
    clock = Clock()
    limits = limiter(1.0, 1, clock)

    assert (limits.retry_after("a"), limits.retry_after("b")) == (0, 0)
    assert (limits.retry_after("a"), limits.retry_after("b")) == (1, 1)


def test_a_key_without_limit_is_always_admitted() -> None:
    def limit_of(key: Hashable) -> RateLimit | None:
        return RateLimit(1.0, 1) if key == "limited" else None

    limits = RateLimiter(limit_of, clock=Clock())

    assert [limits.retry_after("free") for _ in range(100)] == [0] * 100
    assert [limits.retry_after("limited") for _ in range(2)] == [0, 1]


def test_refusals_are_counted() -> None:
    refused: list[None] = []
    limits = RateLimiter(
        lambda _: RateLimit(1.0, 1), on_refused=lambda: refused.append(None), clock=Clock()
    )

    for _ in range(4):
        limits.retry_after("k")

    assert len(refused) == 3


def test_the_least_recently_seen_bucket_is_dropped_beyond_the_key_limit() -> None:
    clock = Clock()
    limits = limiter(1.0, 1, clock, max_keys=2)
    limits.retry_after("old")
    limits.retry_after("recent")
    limits.retry_after("old")  # seen again: now the most recent (and empty)

    limits.retry_after("new")  # drops "recent", the least recently seen

    assert limits.retry_after("old") == 1
    assert limits.retry_after("recent") == 0  # came back as a full bucket


def test_route_overrides_apply_to_their_route_only() -> None:
    settings = Settings.load(
        environ={"GATEWAY_HTTP_ROUTE_RATE_LIMITS": '{"ws/u/a/slow": 0.5}'},
        http_route_rate_limit_burst=1,
    )
    metrics = GatewayMetrics("test")
    limits = route_rate_limiter(settings, metrics)
    assert limits is not None
    slow, other = TriggerRef("http", "ws", "u/a/slow"), TriggerRef("http", "ws", "u/a/other")

    assert [limits.retry_after(slow) for _ in range(2)] == [0, 2]
    assert [limits.retry_after(other) for _ in range(5)] == [0] * 5
    assert b'gateway_requests_rate_limited_total{scope="route"} 1.0' in metrics.exposition()


def test_no_route_limiter_without_a_limit() -> None:
    assert route_rate_limiter(Settings.load(environ={}), GatewayMetrics("test")) is None
