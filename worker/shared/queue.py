"""Submitting and cancelling requests: the request record and its RQ job, kept in step.

The RQ job id *is* the request id, so the queue position of a request is the index of its id in
the RQ queue list (`LPOS`), exact and cheap, and cancelling a queued request is removing that id.
Job functions are referenced by dotted name, so importing this module (as the API does) never
imports the pipeline or torch.

A request whose worker died is put back (`requeue`) as a fresh RQ job under the same id, at the
front of the queue (it has waited its turn already), after its dead run's traces are removed from
RQ's started-job registry, so RQ's own abandoned-job handling never fails it later.

A queued request that RQ no longer holds (Redis crashed, or its worker died, between RQ's dequeue
and the worker marking it started) is put back the same way (`recover`), and one whose queue
wait (QUEUE_TTL_S) ran out ends COMPLETED `queue_timeout` (`expire`): the reaper finds both through
the queued index (see `worker.process.reaper`).
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from worker.shared import metrics as job_metrics
from worker.shared.failures import CANCELLED, queue_timeout, worker_lost
from worker.shared.requests import Claim, Failure, RequestRecord, RequestStore, Status, part_of
from worker.shared.settings import Settings
from worker.shared.splits import SplitStore, parts_of
from worker.shared.webhooks import enqueue_delivery

RUN_REQUEST = "worker.process.jobs.run_request"
ON_JOB_FAILURE = "worker.process.jobs.on_job_failure"
RUN_PART = "worker.process.parts.run_part"  # a segment or the merge of a fanned-out request
ON_PART_FAILURE = "worker.process.parts.on_part_failure"

class QueueLimitError(Exception):
    """The owner already has MAX_QUEUED_PER_KEY unfinished requests."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"This API key already has {limit} unfinished requests (the limit); wait for some to finish.")
        self.limit = limit


class RequeueOutcome(StrEnum):
    REQUEUED = "requeued"  # back in the queue for another run
    FAILED = "failed"  # too many runs died with their worker: finished `worker_lost`
    CANCELLED = "cancelled"  # the client had asked to cancel it: finished `cancelled`
    GONE = "gone"  # the run no longer holds it (finished, requeued by someone else, expired)
    EXPIRED = "expired"  # its queue wait (QUEUE_TTL_S) ran out: finished `queue_timeout`


class CancelOutcome(StrEnum):
    REQUESTED = "CANCELLATION_REQUESTED"
    ALREADY_COMPLETED = "ALREADY_COMPLETED"
    NOT_FOUND = "NOT_FOUND"


def request_store(redis: Redis, settings: Settings) -> RequestStore:
    # Records of requests that never finish (worker lost mid-job, queue TTL hit) still expire.
    pending_ttl_s = settings.queue_ttl_s + settings.job_timeout_s + 3600

    def enqueue_webhook(request_id: str, pipe: Pipeline) -> None:
        enqueue_delivery(redis, settings, request_id, pipe)

    return RequestStore(
        redis,
        settings.rq_queue,
        pending_ttl_s=pending_ttl_s,
        result_ttl_s=settings.result_ttl_s,
        on_finish_with_webhook=enqueue_webhook,
    )


class RequestQueue:
    """The queue as the API sees it: submit, cancel, look up."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.queue = Queue(settings.rq_queue, connection=redis)
        self.store = request_store(redis, settings)

    @property
    def queue_key(self) -> str:
        return self.queue.key

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def submit(
        self,
        arguments: dict[str, Any],
        *,
        owner: str,
        base_url: str,
        webhook_url: str | None = None,
        input_key: str | None = None,
        request_id: str | None = None,
    ) -> RequestRecord:
        """Write the request record and enqueue its job in one MULTI/EXEC.

        Raises QueueLimitError when the owner is at MAX_QUEUED_PER_KEY; the count and the write are
        one WATCH transaction, so concurrent submits cannot overshoot the limit.
        """
        request_id = request_id or self.new_id()
        record = RequestRecord(
            id=request_id,
            status=Status.IN_QUEUE,
            owner=owner,
            input=arguments,
            base_url=base_url,
            webhook_url=webhook_url,
            gateway_request_id=request_id if webhook_url else None,
            input_key=input_key,
            created_at=time.time(),
        )
        limit = self.settings.max_queued_per_key
        active_key = self.store.active_key(owner)
        if limit:
            self.check_queue_limit(owner)  # also drops expired entries, outside the transaction below
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    if limit:
                        pipe.watch(active_key)
                        if pipe.zcard(active_key) >= limit:
                            pipe.unwatch()
                            raise QueueLimitError(limit)
                    pipe.multi()  # RQ requires the caller's pipeline to be in MULTI before commands go in
                    self.store.create(record, pipe)
                    self.store.mark_queued(pipe, request_id, record.created_at + self.settings.queue_ttl_s)
                    self._enqueue(pipe, request_id)
                    pipe.execute()
                    return record
                except WatchError:
                    continue

    def check_queue_limit(self, owner: str) -> None:
        """Raise QueueLimitError if the owner may not queue another request now (a cheap pre-check)."""
        limit = self.settings.max_queued_per_key
        if limit and self.store.count_active(owner) >= limit:
            raise QueueLimitError(limit)

    def _enqueue(
        self, pipe: Pipeline | None, request_id: str, *, at_front: bool = False, ttl_s: int | None = None,
        depends_on: list[str] | None = None,
    ) -> None:
        """Enqueue the job of a request, or of a part of a fanned-out one (its id says which)."""
        part = part_of(request_id) is not None
        self.queue.enqueue_call(
            RUN_PART if part else RUN_REQUEST,
            args=(request_id,),
            job_id=request_id,
            timeout=self.settings.job_timeout_s,
            ttl=ttl_s or self.settings.queue_ttl_s,
            result_ttl=0,  # the request record holds the result; RQ need not
            failure_ttl=self.settings.result_ttl_s,
            on_failure=Callback(ON_PART_FAILURE if part else ON_JOB_FAILURE),
            description=f"rife-video {'part' if part else 'request'} {request_id}",
            at_front=at_front,
            depends_on=depends_on,  # type: ignore[arg-type]
            pipeline=pipe,
        )

    def fan_out(self, request_id: str, claim: Claim, segments: list[dict[str, Any]], *, input_key: str, stem: str) -> bool:
        """Turn the request that `claim` runs into segment jobs plus a merge job (see `worker.shared.splits`).

        False (nothing written) when the run no longer holds the request or its client asked to cancel it.
        The segments' records, index entries and RQ jobs are one transaction; the merge job is enqueued
        right after with RQ's `depends_on` (RQ watches the dependencies in a transaction of its own). If
        that second step is lost to a crash, the last segment's finish still puts the merge in the
        queued index and the reaper's reconcile enqueues it.
        """
        key = self.store.key(request_id)
        splits = SplitStore(self.store)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if RequestStore._claim_in(pipe, key) != claim or pipe.hget(key, "cancel") == b"1":
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    parts = splits.queue_fan_out(pipe, request_id, segments, input_key=input_key, stem=stem,
                                                 queue_deadline=time.time() + self.settings.queue_ttl_s)
                    for part in parts:
                        self._enqueue(pipe, part.id)
                    pipe.execute()
                    break
                except WatchError:
                    continue
        merge = parts_of(request_id, len(segments))[-1]
        self._enqueue(None, merge.id, depends_on=[p.id for p in parts])
        return True

    def drop_part_jobs(self, request_id: str, count: int) -> None:
        """Remove the RQ jobs of a finished fanned-out request's parts that will never run (queued, or the
        merge still waiting on its dependencies) and their dependency sets; a running one is left to end."""
        for part in parts_of(request_id, count):
            try:
                job = Job.fetch(part.id, connection=self.redis)
            except NoSuchJobError:
                self.redis.delete(f"{Job.redis_job_namespace_prefix}{part.id}:dependents",
                                  f"{Job.redis_job_namespace_prefix}{part.id}:dependencies")
                continue
            if job.get_status(refresh=False) == JobStatus.STARTED:
                continue
            job.delete(remove_from_queue=True)

    def requeue(self, request_id: str, claim: Claim, *, count_loss: bool) -> RequeueOutcome:
        """Take a request back from a run that will not finish it (dead or stopping worker).

        `count_loss`: the run died with its worker (it counts towards MAX_JOB_ATTEMPTS); a run that
        a stopping worker handed back does not. A request whose client asked to cancel it, or whose
        runs died MAX_JOB_ATTEMPTS times, is finished instead of requeued.
        """
        key = self.store.key(request_id)
        registry = StartedJobRegistry(queue=self.queue)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if RequestStore._claim_in(pipe, key) != claim:
                        pipe.unwatch()
                        return RequeueOutcome.GONE
                    lost_raw, cancel = pipe.hmget(key, "lost", "cancel")
                    lost = int(lost_raw or 0) + (1 if count_loss else 0)
                    if cancel == b"1" or lost >= self.settings.max_job_attempts:
                        pipe.unwatch()
                        break
                    stale = self._started_entries(registry, request_id)
                    pipe.multi()
                    pipe.hset(key, mapping={"status": Status.IN_QUEUE.value, "lost": str(lost)})
                    pipe.hdel(key, "worker", "started_at", "handback")
                    pipe.hdel(self.store.inflight_key, request_id)
                    self.store.mark_queued(pipe, request_id, time.time() + self.settings.queue_ttl_s)
                    self._clear_rq_traces(pipe, registry, request_id, stale)
                    self._enqueue(pipe, request_id, at_front=True)
                    pipe.execute()
                    return RequeueOutcome.REQUEUED
                except WatchError:
                    continue
        failure = CANCELLED if cancel == b"1" else worker_lost(lost)
        if not self.finish(request_id, failure, claim=claim):
            return RequeueOutcome.GONE
        self._forget_rq_job(registry, request_id)
        return RequeueOutcome.CANCELLED if failure is CANCELLED else RequeueOutcome.FAILED

    def _clear_rq_traces(self, pipe: Pipeline, registry: StartedJobRegistry, request_id: str, stale: list[bytes]) -> None:
        """Queue (inside a MULTI) the removal of every trace of the request's previous RQ job."""
        if stale:
            pipe.zrem(registry.key, *stale)
        # A cold-stopped run's job sits in RQ's failed registry, whose cleanup would delete the new job.
        pipe.zrem(FailedJobRegistry(queue=self.queue).key, request_id)
        pipe.lrem(self.queue.key, 0, request_id)
        pipe.delete(Job.key_for(request_id))

    def recover(self, request_id: str) -> RequeueOutcome:
        """Put back a queued request that RQ no longer holds and no worker started (see `worker.process.reaper`).

        RQ popped its job, then Redis crashed or the worker died before marking it started: the
        record says IN_QUEUE but nothing would ever run it. It goes back to the front of the queue
        with the queue time it had left; a request whose client asked to cancel it ends `cancelled`,
        one whose queue time is over ends `queue_timeout`. The run never started, so it does not
        count towards MAX_JOB_ATTEMPTS.
        """
        key = self.store.key(request_id)
        registry = StartedJobRegistry(queue=self.queue)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    status, cancel = pipe.hmget(key, "status", "cancel")
                    if status != Status.IN_QUEUE.value.encode():
                        pipe.unwatch()
                        return RequeueOutcome.GONE
                    deadline = pipe.zscore(self.store.queued_key, request_id)
                    left_s = (deadline if deadline is not None else time.time() + self.settings.queue_ttl_s) - time.time()
                    if cancel == b"1" or left_s < 1:
                        pipe.unwatch()
                        break
                    stale = self._started_entries(registry, request_id)
                    pipe.multi()
                    self.store.mark_queued(pipe, request_id, time.time() + left_s)
                    self._clear_rq_traces(pipe, registry, request_id, stale)
                    self._enqueue(pipe, request_id, at_front=True, ttl_s=int(left_s))
                    pipe.execute()
                    return RequeueOutcome.REQUEUED
                except WatchError:
                    continue
        if cancel == b"1":
            return RequeueOutcome.CANCELLED if self._finish_queued(request_id, CANCELLED) else RequeueOutcome.GONE
        return self.expire(request_id)

    def expire(self, request_id: str) -> RequeueOutcome:
        """Finish a queued request whose queue time (QUEUE_TTL_S) ran out: COMPLETED `queue_timeout`.

        RQ drops a job whose TTL passed without a word; this gives its client an answer.
        """
        if self._finish_queued(request_id, queue_timeout(self.settings.queue_ttl_s)):
            return RequeueOutcome.EXPIRED
        return RequeueOutcome.GONE

    def _finish_queued(self, request_id: str, failure: Failure) -> bool:
        if not self.finish(request_id, failure):
            return False
        self.queue.remove(request_id)
        self._forget_rq_job(StartedJobRegistry(queue=self.queue), request_id)
        return True

    def finish(self, request_id: str, failure: Failure, *, claim: Claim | None = None) -> bool:
        """Finish a request as failed from outside its job (reaper, cancel); its webhook is queued in the same step.

        A part of a fanned-out request (a segment whose runs all died, one cancelled in the queue...)
        fails the whole request with that error, as an unsplit run would have.
        """
        part = part_of(request_id)
        if part is not None:
            if not SplitStore(self.store).finish_request(part.request_id, part=part, claim=claim, failure=failure):
                return False
            job_metrics.job_finished(self.redis, self.settings.rq_queue, part.request_id, failure)
            return True
        if not self.store.finish(request_id, failure=failure, claim=claim):
            return False
        # Counted here, like jobs count their own ends, so a request cancelled in the queue or given up
        # by the reaper shows in rife_jobs_total too.
        job_metrics.job_finished(self.redis, self.settings.rq_queue, request_id, failure)
        return True

    def _started_entries(self, registry: StartedJobRegistry, request_id: str) -> list[bytes]:
        """RQ's started-registry entries (`{job_id}:{execution_id}`) of this request's job."""
        prefix = f"{request_id}:".encode()
        members: list[bytes] = self.redis.zrange(registry.key, 0, -1)  # type: ignore[assignment]
        return [m for m in members if m.startswith(prefix)]

    def _forget_rq_job(self, registry: StartedJobRegistry, request_id: str) -> None:
        stale = self._started_entries(registry, request_id)
        with self.redis.pipeline() as pipe:
            if stale:
                pipe.zrem(registry.key, *stale)
            pipe.delete(Job.key_for(request_id))
            pipe.execute()

    def position(self, request_id: str) -> int | None:
        return self.queue.get_job_position(request_id)

    def get(self, request_id: str, owner: str) -> RequestRecord | None:
        """The record, or None when it does not exist or belongs to another key."""
        record = self.store.get(request_id)
        if record is None or record.owner != owner:
            return None
        return record

    def cancel(self, request_id: str, owner: str) -> CancelOutcome:
        """Flag the request cancelled; if it has not started yet, take it off the queue and finish it.

        The flag is set before the job is removed, so a worker that pops the job in between sees
        the flag when it marks the job started (see `RequestStore.mark_started`). A running job
        sees the flag between batches and ends itself.
        """
        record = self.get(request_id, owner)
        if record is None:
            return CancelOutcome.NOT_FOUND
        if record.status is Status.COMPLETED:
            return CancelOutcome.ALREADY_COMPLETED
        self.store.request_cancel(request_id)
        if record.split:
            # Fanned out: finish it now; running segments see their claim gone at their next check and stop.
            if SplitStore(self.store).finish_request(request_id, failure=CANCELLED):
                self.store.log(request_id).info("Cancelled.")
                job_metrics.job_finished(self.redis, self.settings.rq_queue, request_id, CANCELLED)
                self.drop_part_jobs(request_id, record.split)
            return CancelOutcome.REQUESTED
        if self.queue.remove(request_id):
            self.store.log(request_id).info("Cancelled before it started.")
            self.finish(request_id, CANCELLED)
            try:
                Job.fetch(request_id, connection=self.redis).delete(remove_from_queue=False)
            except NoSuchJobError:
                pass
        return CancelOutcome.REQUESTED

