"""What a worker process holds for all its jobs: settings, Redis, storage, and the warm engine.

RQ calls job functions by name with only the request id, so they find these here. The process
entry (`python -m worker`) installs a runtime once at start-up; if none is installed (a plain
`rq worker`, or a test), the first job builds one from the environment. The runtime also holds the
worker's heartbeat, its temporary folder, and whether it has been asked to stop (`drain`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from worker.process.engine import Engine, load_engine
from worker.process.liveness import Heartbeat
from worker.process.scratch import Scratch
from worker.shared import redact
from worker.shared.connection import connect_redis
from worker.shared.fetch import AddressPolicy
from worker.shared.requests import RequestStore
from worker.shared.settings import Settings
from worker.shared.storage import Storage, build_storage


def default_worker_name() -> str:
    """Host and PID, plus a random suffix: a restarted container often has the same host name and
    PID, and RQ refuses a name whose previous holder's key has not expired yet."""
    return f"rife-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    storage: Storage
    name: str = field(default_factory=default_worker_name)
    engine_override: Engine | None = None
    scratch: Scratch | None = None  # the worker's own temporary folder (set by `worker.process.serve`)
    _engine: Engine | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _heartbeat: Heartbeat | None = field(default=None, init=False, repr=False)
    _drain_at: float | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: object) -> Runtime:
        redact.install(settings)  # before the first S3 or Redis call can log anything
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
        from worker.shared.queue import request_store

        return request_store(self.redis, self.settings)

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy.from_allowlist(self.settings.fetch_allow, self.settings.fetch_deny,
                                            self.settings.own_storage_prefixes())

    @property
    def heartbeat(self) -> Heartbeat:
        with self._lock:
            if self._heartbeat is None:
                self._heartbeat = Heartbeat(self.redis, self.store, self.settings, self.name)
            return self._heartbeat

    @contextlib.contextmanager
    def job_dir(self, request_id: str) -> Iterator[Path]:
        """A fresh folder for one job's files, removed when the job ends whatever happened."""
        if self.scratch is not None:
            with self.scratch.job_dir(request_id) as path:
                yield path
        else:
            with tempfile.TemporaryDirectory(prefix=f"rife-{request_id[:8]}-") as tmp:
                yield Path(tmp)

    def drain(self, grace_s: float) -> None:
        """The worker was asked to stop: the running job may go on for `grace_s` (0: until it ends)."""
        if grace_s > 0 and self._drain_at is None:
            self._drain_at = time.monotonic() + grace_s

    @property
    def must_hand_back(self) -> bool:
        """The stop grace has run out: the running job should give its request back now."""
        return self._drain_at is not None and time.monotonic() >= self._drain_at


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def get_runtime() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime.from_settings(Settings.from_env())
    return _current
