"""Finding requests that nobody is working on any more, and giving them back to the queue.

A request is in the in-flight index (`P:inflight`) from the moment a worker marks it started until
it is finished or requeued. It is abandoned when its worker's heartbeat (`P:alive:{worker}`, see
`worker.process.liveness`) is gone, or names another request (the worker moved on without finishing it,
e.g. Redis failed under its final write). Each abandoned request is requeued, at the front, for
another run; once MAX_JOB_ATTEMPTS runs have died with their worker it ends COMPLETED with error
`worker_lost` instead, so no request stays IN_PROGRESS forever.

Every worker runs `reap` from its heartbeat thread every REAPER_INTERVAL_S; a Redis lock lets one
worker at a time do it. A request's worker is judged dead at most WORKER_LOST_AFTER_S after its
last heartbeat, so a dead worker's request is back in the queue within
WORKER_LOST_AFTER_S + REAPER_INTERVAL_S. A worker that stops on purpose releases its own requests
on the way out (`release`), without waiting for anyone.

The same pass watches the queued side (`reconcile`). Every IN_QUEUE request is in the queued index
(`P:queued`, written in the same transactions as its status), so one that RQ no longer holds is
found even though nothing else remembers it: RQ pops a job (BLPOP) before the worker marks its
request started, and a Redis crash or a dead worker in between leaves the record IN_QUEUE with no
queue entry. A queued request that is neither in RQ's queue list nor named by a live worker's
heartbeat is an orphan; one still orphaned WORKER_LOST_AFTER_S after it was first seen (a live
worker gets from the pop to its heartbeat in milliseconds) is put back at the front of the queue
(`RequestQueue.recover`). A queued request whose queue time (QUEUE_TTL_S) ran out ends COMPLETED
`queue_timeout` (RQ drops such a job silently). So an orphan is back in the queue within
WORKER_LOST_AFTER_S (settle, after a Redis restart) + WORKER_LOST_AFTER_S + REAPER_INTERVAL_S.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from worker.process.fanout import clean_up
from worker.shared import metrics as job_metrics
from worker.shared.failures import WORKER_LOST
from worker.shared.queue import RequestQueue, RequeueOutcome
from worker.shared.requests import Failure, part_of
from worker.shared.settings import Settings
from worker.shared.splits import SplitStore
from worker.shared.storage import Storage, StorageError, temp_prefix
from worker.shared.webhooks import delivery_job_id, enqueue_delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    request_id: str
    worker: str
    outcome: RequeueOutcome
    lost_worker: bool  # the worker's heartbeat was gone (not merely pointing elsewhere)


class Reaper:
    def __init__(self, redis: Redis, settings: Settings, name: str, storage: Storage | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.name = name
        self.storage = storage  # to delete fanned-out requests' temporary objects; without it they wait for a reaper that has it
        self.queue = RequestQueue(redis, settings)
        self.store = self.queue.store
        self.lock_key = f"{settings.rq_queue}:reaper-lock"
        self.interval_s = settings.reaper_interval_s
        self._next_at = 0.0

    def tick(self) -> list[Reaped]:
        """Reap if it is time and no other worker holds the lock for this interval."""
        now = time.monotonic()
        if now < self._next_at:
            return []
        self._next_at = now + self.interval_s
        lock_ms = max(1, int(self.interval_s * 1000 * 0.9))
        if not self.redis.set(self.lock_key, self.name, nx=True, px=lock_ms):
            return []
        return self.reap()

    def reap(self) -> list[Reaped]:
        """Requeue (or finish) every in-flight request whose worker does not hold it any more, and
        every queued one that RQ lost or whose queue time ran out."""
        reaped = self._reap_inflight() + self.reconcile()
        self.reconcile_webhooks()
        self.settle_splits()
        return reaped

    def settle_splits(self) -> list[str]:
        """Clean up after fanned-out requests that ended without it (a crash between the end and the
        clean-up, a cancel through the API, a part failed by the reaper), and fail one whose parts all
        vanished (their records expired). Returns the request ids cleaned up."""
        splits = SplitStore(self.store)
        cleaned = []
        for request_id, count in splits.split_requests().items():
            status = self.redis.hget(self.store.key(request_id), "status")
            if status is None or status == b"COMPLETED":
                if clean_up(self.queue, self.storage, request_id, count):
                    cleaned.append(request_id)
            elif not splits.any_part_exists(request_id, count):
                lost = Failure("The jobs of this request's segments were lost; giving up. Please retry.",
                               WORKER_LOST.error_type, WORKER_LOST.http_status)
                if splits.finish_request(request_id, failure=lost):
                    job_metrics.job_finished(self.redis, self.settings.rq_queue, request_id, lost)
                    log.error("request %s: every part of it vanished; finished as worker_lost", request_id)
        return cleaned

    def _reap_inflight(self) -> list[Reaped]:
        entries = self.store.inflight()
        if not entries:
            return []
        workers = sorted(set(entries.values()))
        with self.redis.pipeline(transaction=False) as pipe:
            for worker in workers:
                pipe.get(self.store.alive_key(worker))
            beats = dict(zip(workers, pipe.execute(), strict=True))
        reaped = []
        for request_id, worker in entries.items():
            beat = beats[worker]
            if beat is not None and beat.decode() == request_id:
                continue  # its worker is alive and on it
            outcome = self._take_back(request_id, worker)
            if outcome is not None:
                reaped.append(Reaped(request_id, worker, outcome, lost_worker=beat is None))
        for worker in {r.worker for r in reaped if r.lost_worker}:
            self._forget_worker(worker)
        return reaped

    def reconcile(self, now: float | None = None) -> list[Reaped]:
        """Put back queued requests that RQ no longer holds; expire those whose queue time is over."""
        queued = self.store.queued()
        if not queued:
            return []
        now = time.time() if now is None else now
        ids = list(queued)
        with self.redis.pipeline(transaction=False) as pipe:
            for request_id in ids:
                pipe.hget(self.store.key(request_id), "status")
            statuses = pipe.execute()
            # Read after the index: a request submitted meanwhile is in both; one popped meanwhile is judged below.
            pipe.lrange(self.queue.queue_key, 0, -1)
            pipe.hgetall(self.store.orphans_key)
            in_rq_raw, orphans_raw = pipe.execute()
        in_rq = {v.decode() for v in in_rq_raw}
        orphans = {k.decode(): float(v) for k, v in orphans_raw.items()}
        suspects: list[str] = []
        for request_id, status in zip(ids, statuses, strict=True):
            if status is None or status == b"COMPLETED":  # expired or finished: nothing left to watch
                self.redis.zrem(self.store.queued_key, request_id)
            elif status == b"IN_QUEUE" and (request_id not in in_rq or queued[request_id] <= now):
                suspects.append(request_id)
        held = self._requests_named_by_heartbeats() if suspects else set()
        reaped: list[Reaped] = []
        still_orphaned: set[str] = set()
        for request_id in suspects:
            if request_id in held:
                continue  # a live worker popped it and is marking it started
            if request_id in in_rq:  # queue time over while still queued: RQ will drop its job
                outcome = self.queue.expire(request_id)
            else:
                first_seen = orphans.get(request_id)
                if first_seen is None or now - first_seen < self.settings.worker_lost_after_s:
                    still_orphaned.add(request_id)
                    if first_seen is None:
                        self.redis.hsetnx(self.store.orphans_key, request_id, repr(now))
                    continue
                outcome = self.queue.recover(request_id)
            self._log_recovered(request_id, outcome)
            reaped.append(Reaped(request_id, "", outcome, lost_worker=False))
        gone = [request_id for request_id in orphans if request_id not in still_orphaned]
        if gone:
            self.redis.hdel(self.store.orphans_key, *gone)
        return reaped

    def reconcile_webhooks(self, now: float | None = None) -> list[str]:
        """Queue again the delivery of webhooks whose RQ job is lost (popped, then Redis crashed):
        pending (not claimed by any attempt) for WORKER_LOST_AFTER_S and neither waiting in the
        webhook queue, nor scheduled for a retry, nor running. Returns the request ids requeued."""
        now = time.time() if now is None else now
        due: list[bytes] = self.redis.zrangebyscore(self.store.webhooks_key, "-inf", now - self.settings.worker_lost_after_s)  # type: ignore[assignment]
        if not due:
            return []
        hooks = Queue(self.settings.webhook_queue, connection=self.redis)
        waiting = {v.decode() for v in self.redis.lrange(hooks.key, 0, -1)}  # type: ignore[union-attr]
        requeued = []
        for raw in due:
            request_id = raw.decode()
            job_id = delivery_job_id(request_id)
            state = self.redis.hget(Job.key_for(job_id), "status")
            if state == b"failed":  # RQ gave up after its retries
                self.redis.zrem(self.store.webhooks_key, request_id)
                continue
            if job_id in waiting or state in (b"scheduled", b"started", b"deferred"):
                continue
            if self.store.get(request_id) is None:
                self.redis.zrem(self.store.webhooks_key, request_id)
                continue
            with self.redis.pipeline() as pipe:
                pipe.multi()  # RQ requires the caller's pipeline to be in MULTI before commands go in
                pipe.zadd(self.store.webhooks_key, {request_id: now})
                enqueue_delivery(self.redis, self.settings, request_id, pipe, at_front=True)
                pipe.execute()
            log.warning("request %s: its webhook job was lost (Redis restart?); queued again", request_id)
            requeued.append(request_id)
        return requeued

    def _requests_named_by_heartbeats(self) -> set[str]:
        """The requests that live workers' heartbeats say they are running (or about to mark started)."""
        keys = list(self.redis.scan_iter(match=self.store.alive_key("*"), count=1000))
        if not keys:
            return set()
        return {v.decode() if isinstance(v, bytes) else str(v) for v in self.redis.mget(keys) if v is not None}

    def _log_recovered(self, request_id: str, outcome: RequeueOutcome) -> None:
        request_log = self.store.log(request_id)
        if outcome is RequeueOutcome.REQUEUED:
            request_log.warn("This request left the queue without starting (a worker or Redis stopped); it is queued again.")
            log.warning("request %s: left RQ's queue without being started; requeued", request_id)
        elif outcome is RequeueOutcome.EXPIRED:
            request_log.error(f"Waited longer than {self.settings.queue_ttl_s} s in the queue without starting; dropped.")
            log.warning("request %s: queue time (%s s) over; finished as queue_timeout", request_id, self.settings.queue_ttl_s)
        elif outcome is RequeueOutcome.CANCELLED:
            log.info("request %s: left RQ's queue while cancelling; finished as cancelled", request_id)

    def release(self, worker: str) -> list[Reaped]:
        """Requeue what `worker` (this process, stopping) still holds: handed back runs do not count as lost."""
        reaped = []
        for request_id, holder in self.store.inflight().items():
            if holder == worker:
                outcome = self._take_back(request_id, worker)
                if outcome is not None:
                    reaped.append(Reaped(request_id, worker, outcome, lost_worker=False))
        return reaped

    def _take_back(self, request_id: str, worker: str) -> RequeueOutcome | None:
        claim = self.store.claim_of(request_id)
        record = self.store.get(request_id) if claim is not None and claim.worker == worker else None
        if claim is None or record is None:
            # Finished or requeued since the index was read (then the entry is gone already), or the
            # record expired while IN_PROGRESS: drop the entry if it still names this worker.
            self.store.drop_stale_inflight(request_id, worker)
            return None
        count_loss = not record.handed_back
        outcome = self.queue.requeue(request_id, claim, count_loss=count_loss)
        if outcome in (RequeueOutcome.FAILED, RequeueOutcome.CANCELLED) and part_of(request_id) is None:
            self._drop_temp_objects(request_id)  # a coordinator may have stored the input's copy before it died
        request_log = self.store.log(request_id)
        attempts = self.settings.max_job_attempts
        if outcome is RequeueOutcome.REQUEUED:
            why = "stopped unexpectedly" if count_loss else "is shutting down"
            runs = record.lost + (1 if count_loss else 0)
            request_log.warn(f"The worker running this request {why}; it is queued again ({runs} of {attempts} runs lost so far).")
            log.warning("request %s: worker %s %s; requeued (%s of %s runs lost)", request_id, worker, why, runs, attempts)
        elif outcome is RequeueOutcome.FAILED:
            request_log.error(f"The worker running this request stopped unexpectedly; {attempts} runs were lost, giving up.")
            log.error("request %s: worker %s lost; %s runs lost, finished as worker_lost", request_id, worker, attempts)
        elif outcome is RequeueOutcome.CANCELLED:
            log.info("request %s: worker %s lost while cancelling; finished as cancelled", request_id, worker)
        return outcome

    def _drop_temp_objects(self, request_id: str) -> None:
        if self.storage is None:
            return
        try:
            self.storage.delete_prefix(temp_prefix(self.storage, request_id))
        except StorageError as e:
            log.warning("request %s: temporary objects not deleted (%s); the storage sweep removes them", request_id, e)

    def _forget_worker(self, worker: str) -> None:
        """Take a dead worker out of RQ's registry, where its key would otherwise say `busy` for an hour."""
        key = Worker.redis_worker_namespace_prefix + worker
        try:
            found = Worker.find_by_key(key, connection=self.redis)
            if found is not None and self.redis.get(self.store.alive_key(worker)) is None:
                found.register_death()
        except Exception:  # best effort: RQ's key expires by itself
            log.debug("could not deregister worker %s", worker, exc_info=True)
