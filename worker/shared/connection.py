"""The Redis client every process of the service uses, API and workers alike."""

from __future__ import annotations

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.shared.settings import Settings


def connect_redis(settings: Settings) -> Redis:
    # Short timeouts and few retries: a dead Redis must surface within a second or two as an error
    # (503 in the API; RQ's worker loop reconnects), not hang a status poll.
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
    )
