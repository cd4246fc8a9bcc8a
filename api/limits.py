"""Per-key request rate limit: RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW_S, shared by every API replica.

A fixed window counted in Redis (`INCR` + `EXPIRE NX` in one round trip), keyed by the caller's
owner fingerprint (never the key itself) and the window's number. A fixed window may let through up
to twice the limit around a window boundary; that is the price of one cheap round trip per request
on a route that clients poll ten times a second. Over the limit: 429 `rate_limited` with
`Retry-After` = the seconds left in the window.

The other per-key limit, MAX_QUEUED_PER_KEY unfinished requests, is enforced where requests are
created (`worker.shared.queue.RequestQueue.submit`).
"""

from __future__ import annotations

import math
import time

from redis import Redis

from api.errors import ApiError
from worker.shared.settings import Settings


def rate_key(settings: Settings, owner: str, window: int) -> str:
    return f"{settings.rq_queue}:rate:{owner}:{window}"


def check_rate(redis: Redis, settings: Settings, owner: str, now: float | None = None) -> None:
    """Count one request of `owner`; raise 429 when the window's allowance is used up."""
    limit = settings.rate_limit_requests
    if not limit:
        return
    now = time.time() if now is None else now
    size = settings.rate_limit_window_s
    window = int(now // size)
    key = rate_key(settings, owner, window)
    with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, size + 1, nx=True)
        count = pipe.execute()[0]
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * size - now))
        raise ApiError(
            429,
            f"Too many requests for this API key: at most {limit} per {size} s. Retry in {retry_after} s.",
            "rate_limited",
            headers={"Retry-After": str(retry_after)},
        )
