"""Retrying the few operations worth retrying inside a job: storage transfers and Redis writes.

A job that has spent minutes interpolating should not fail because the object store blinked, or
because Redis restarted while it wrote the result: those are retried with exponential backoff.
What is retried and for how long is the caller's choice; this module only waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_DELAY_S = 30.0
REDIS_PATIENCE_S = 60.0  # how long a finished job waits for Redis to record its outcome


def with_backoff(
    call: Callable[[], T],
    *,
    attempts: int | None,
    first_delay_s: float,
    retry_on: tuple[type[BaseException], ...],
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    budget_s: float | None = None,
    max_delay_s: float = MAX_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`call()`, retried while it raises `retry_on`: waits first_delay_s, then twice as long each time
    (at most `max_delay_s`).

    Stops after `attempts` tries (None: no limit on the count) or once the next wait would end more
    than `budget_s` after the first try began (None: no time limit); at least one of the two must be
    set. Outages are measured in time, not tries, so the budget is what bounds a storage restart.
    `on_retry(attempt, error, delay)` is told before each wait. The last error is raised.
    """
    if attempts is None and budget_s is None:
        raise ValueError("with_backoff needs attempts or budget_s")
    started = clock()
    delay = first_delay_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except retry_on as e:
            if attempts is not None and attempt >= attempts:
                raise
            if budget_s is not None and clock() + delay - started > budget_s:
                raise
            if on_retry is not None:
                on_retry(attempt, e, delay)
            sleep(delay)
            delay = min(delay * 2, max_delay_s)


def until_redis_answers(call: Callable[[], T], *, patience_s: float = REDIS_PATIENCE_S, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, retried on Redis errors for up to `patience_s` (then the last error is raised)."""
    deadline = time.monotonic() + patience_s
    delay = 0.2
    while True:
        try:
            return call()
        except RedisError as e:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Redis unavailable (%s); retrying in %.1f s", type(e).__name__, delay)
            sleep(delay)
            delay = min(delay * 2, 5.0)
