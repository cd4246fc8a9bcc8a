"""Deleting stored results and uploads once nobody can reach them any more.

A request's record leaves Redis after RESULT_TTL_S and its URL stops working after PRESIGN_EXPIRY_S;
past both, the object is only disk space. Every worker ticks the janitor from its heartbeat thread, and
a Redis lock lets one of them sweep per STORAGE_SWEEP_INTERVAL_S, so a fleet does the work once.
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError

from worker.shared.settings import Settings
from worker.shared.storage import Storage, StorageError

log = logging.getLogger(__name__)


class StorageJanitor:
    def __init__(self, redis: Redis, settings: Settings, storage: Storage, name: str) -> None:
        self.redis = redis
        self.storage = storage
        self.name = name
        self.interval_s = settings.storage_sweep_interval_s
        self.max_age_s = max(settings.result_ttl_s, settings.presign_expiry_s)
        self.lock_key = f"{settings.rq_queue}:storage-sweep-lock"
        self._next_at = 0.0

    def tick(self) -> int:
        """Sweep if it is time and no other worker swept in this interval; never raises."""
        now = time.monotonic()
        if self.interval_s <= 0 or now < self._next_at:
            return 0
        self._next_at = now + self.interval_s
        try:
            if not self.redis.set(self.lock_key, self.name, nx=True, px=max(1, int(self.interval_s * 900))):
                return 0
            deleted = self.storage.sweep(self.max_age_s)
        except (RedisError, StorageError) as e:
            log.warning("storage sweep skipped: %s", e)
            return 0
        if deleted:
            log.info("storage sweep: deleted %d object(s) older than %d s", deleted, self.max_age_s)
        return deleted
