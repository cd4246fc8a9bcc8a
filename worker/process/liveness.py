"""A worker's heartbeat: how the others know it is alive, and what it is running.

RQ's own worker key cannot tell: a non-forking `SimpleWorker` refreshes it only between jobs, with
a TTL of the job timeout plus a minute, so a worker killed mid-job looks alive for up to an hour.
So each worker process keeps its own key, `P:alive:{worker}`, holding the id of the request it is
running (or `-`), rewritten every WORKER_HEARTBEAT_S by a background thread and expiring after
WORKER_LOST_AFTER_S. The key goes when the process dies (SIGKILL, OOM, power), whatever killed it.

`running()` writes the key synchronously before the job marks its request started, and the thread
writes under the same lock, so the key never names an older request than the one the worker
holds: a request in the in-flight index whose worker's key is missing or names something else is
not being worked on by anyone (see `worker.process.reaper`).

Beside it the worker keeps `P:models:{worker}`, the models it can run (`worker.shared.model_offers`),
written in the same round trip with the same expiry, so the cluster's offer follows its live workers.

The same thread runs periodic housekeeping (the reaper) through `on_tick`, but only after it has
been connected to Redis for WORKER_LOST_AFTER_S: after a Redis outage every heartbeat may have
expired, and live workers need one interval to write theirs again before anyone judges them dead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError

from worker.shared.model_offers import ModelOffer, encode_offers, offer_key
from worker.shared.requests import IDLE, RequestStore
from worker.shared.settings import Settings

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, redis: Redis, store: RequestStore, settings: Settings, name: str) -> None:
        self._redis = redis
        self._key = store.alive_key(name)
        self._offer_key = offer_key(store.namespace, name)
        self._offer: str | None = None
        self._ttl_ms = int(settings.worker_lost_after_s * 1000)
        self._interval_s = settings.worker_heartbeat_s
        self._settle_s = settings.worker_lost_after_s
        self._lock = threading.Lock()
        self._current: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected_since: float | None = None
        self._ticks: list[Callable[[], object]] = []

    @property
    def started(self) -> bool:
        return self._thread is not None

    @contextmanager
    def running(self, request_id: str) -> Iterator[None]:
        """The worker runs `request_id` inside this block; the key names it before the block starts."""
        with self._lock:
            self._current = request_id
            self._write(request_id)
        try:
            yield
        finally:
            with self._lock:
                self._current = None
                self._write(IDLE)

    def offer(self, offers: list[ModelOffer]) -> None:
        """Publish `offers` with every beat from now on (and right away)."""
        with self._lock:
            self._offer = encode_offers(offers)
            self._write(self._current or IDLE)

    def beat(self) -> None:
        with self._lock:
            self._write(self._current or IDLE)

    def _write(self, value: str) -> None:
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._key, value, px=self._ttl_ms)
                if self._offer is not None:
                    pipe.set(self._offer_key, self._offer, px=self._ttl_ms)
                pipe.execute()
        except RedisError as e:
            self._connected_since = None
            log.warning("heartbeat not written (%s: %s); retrying", type(e).__name__, e)
        else:
            if self._connected_since is None:
                self._connected_since = time.monotonic()

    @property
    def settled(self) -> bool:
        """Connected to Redis long enough that every live worker has refreshed its heartbeat since."""
        since = self._connected_since
        return since is not None and time.monotonic() - since >= self._settle_s

    def start(self, on_tick: Callable[[], object] | None = None) -> None:
        """Beat every WORKER_HEARTBEAT_S in a daemon thread; `on_tick` runs after each beat once settled."""
        if on_tick is not None:
            self._ticks.append(on_tick)
        if self._thread is not None:
            return
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="rife-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()
            if not self.settled:
                continue
            for tick in self._ticks:
                try:
                    tick()
                except Exception:
                    log.exception("housekeeping failed; trying again next tick")

    def stop(self) -> None:
        """Stop beating and remove the key: the worker is leaving on purpose."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._interval_s + 5)
        try:
            self._redis.delete(self._key, self._offer_key)
        except RedisError:
            pass  # it expires by itself
