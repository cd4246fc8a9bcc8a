"""What a worker process holds for all its jobs: settings, Redis, storage, and the warm engine.

RQ calls job functions by name with only the request id, so they find these here. The process
entry (`python -m worker`) installs a runtime once at start-up; if none is installed (a plain
`rq worker`, or a test), the first job builds one from the environment.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.engine import Engine, load_engine
from worker.fetch import AddressPolicy
from worker.requests import RequestStore
from worker.settings import Settings
from worker.storage import Storage, build_storage


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


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    storage: Storage
    name: str = field(default_factory=lambda: f"rife-{socket.gethostname()}-{os.getpid()}")
    engine_override: Engine | None = None
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: object) -> Runtime:
        return cls(settings=settings, redis=connect_redis(settings), storage=build_storage(settings), **kwargs)  # type: ignore[arg-type]

    @property
    def engine(self) -> Engine:
        """The engine, built (model loaded) on first use and reused for every later job."""
        if self.engine_override is not None:
            return self.engine_override
        with self._lock:
            if self._engine is None:
                self._engine = load_engine(self.settings)
            return self._engine

    @property
    def store(self) -> RequestStore:
        from worker.queue import request_store

        return request_store(self.redis, self.settings)

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy.from_allowlist(self.settings.fetch_allow)


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def get_runtime() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime.from_settings(Settings.from_env())
    return _current
