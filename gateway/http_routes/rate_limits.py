"""Rate limits per HTTP route and per API token: token buckets in this instance's memory.

Each key (a route's trigger, a token) has a bucket of `burst` tokens refilled at `per_s` tokens a
second; a request takes one, or is refused with the seconds until one is back (``429`` with
``Retry-After``). A check is a dictionary lookup and a little arithmetic on the event loop: no
lock, no database, no I/O. Limits are per instance: N instances admit up to N times the rate.

The buckets of the least recently seen keys are dropped beyond `max_keys`; a dropped bucket comes
back full, as one idle long enough would be anyway.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

from gateway.observability.metrics import GatewayMetrics
from gateway.settings import Settings

MAX_KEYS = 100_000
"""Buckets kept per limiter (a few hundred bytes each)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A sustained rate and the burst allowed above it."""

    per_s: float
    burst: int


class _Bucket:
    __slots__ = ("burst", "per_s", "stamp", "tokens")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.per_s = limit.per_s
        self.burst = float(limit.burst)
        self.tokens = self.burst
        self.stamp = now


_UNLIMITED = _Bucket(RateLimit(1.0, 1), 0.0)
"""The bucket of a key without limit (never changed: its requests are admitted before)."""


class RateLimiter:
    """Token buckets keyed by anything hashable, each with the limit `limit_of(key)` gave it."""

    def __init__(
        self,
        limit_of: Callable[[Hashable], RateLimit | None],
        *,
        on_refused: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._limit_of = limit_of
        self._on_refused = on_refused
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[Hashable, _Bucket] = {}

    def retry_after(self, key: Hashable) -> int:
        """0 when the request of `key` is admitted (taking a token), else whole seconds to wait."""
        buckets = self._buckets
        now = self._clock()
        bucket = buckets.pop(key, None)  # popped and put back: the dict is in order of use
        if bucket is None:
            limit = self._limit_of(key)
            bucket = _UNLIMITED if limit is None else _Bucket(limit, now)
            if len(buckets) >= self._max_keys:
                del buckets[next(iter(buckets))]
        buckets[key] = bucket
        if bucket is _UNLIMITED:
            return 0
        tokens = min(bucket.burst, bucket.tokens + (now - bucket.stamp) * bucket.per_s)
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return 0
        bucket.tokens = tokens
        self._on_refused()
        return max(1, math.ceil((1.0 - tokens) / bucket.per_s))


def admit_api_token(request: Request, token: str) -> str:
    """`token`, once the API's per-token limit (if the app has one) admits this request.

    Raises HTTP 429 with ``Retry-After`` when the token is over its limit.
    """
    limiter: RateLimiter | None = getattr(request.app.state, "token_rate_limiter", None)
    if limiter is not None and (wait := limiter.retry_after(token)):
        raise HTTPException(429, "this token is over its rate limit", {"Retry-After": f"{wait}"})
    return token


def route_rate_limiter(settings: Settings, metrics: GatewayMetrics) -> RateLimiter | None:
    """The limiter of HTTP routes, keyed by the route trigger's path (None: no route limit).

    `http_route_rate_limits` overrides the rate of single routes.
    """
    overrides: Mapping[str, float] = settings.http_route_rate_limits
    default = settings.http_route_rate_limit_per_s
    if default is None and not overrides:
        return None
    burst = settings.http_route_rate_limit_burst

    def limit_of(key: Hashable) -> RateLimit | None:
        per_s = overrides.get(str(key), default)
        return None if per_s is None else RateLimit(per_s, burst)

    refused = metrics.requests_rate_limited.labels("route")
    return RateLimiter(limit_of, on_refused=refused.inc)


def token_rate_limiter(settings: Settings, metrics: GatewayMetrics) -> RateLimiter | None:
    """The limiter of the management API, keyed by the caller's token (None: no limit)."""
    per_s = settings.api_token_rate_limit_per_s
    if per_s is None:
        return None
    limit = RateLimit(per_s, settings.api_token_rate_limit_burst)
    refused = metrics.requests_rate_limited.labels("token")
    return RateLimiter(lambda _: limit, on_refused=refused.inc)
