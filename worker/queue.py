"""Submitting and cancelling requests: the request record and its RQ job, kept in step.

The RQ job id *is* the request id, so the queue position of a request is the index of its id in
the RQ queue list (`LPOS`), exact and cheap, and cancelling a queued request is removing that id.
Job functions are referenced by dotted name, so importing this module (as the API does) never
imports the pipeline or torch.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Any

from redis import Redis
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from worker.failures import CANCELLED
from worker.requests import RequestRecord, RequestStore, Status
from worker.settings import Settings
from worker.webhooks import enqueue_delivery

RUN_REQUEST = "worker.jobs.run_request"
ON_JOB_FAILURE = "worker.jobs.on_job_failure"

class CancelOutcome(StrEnum):
    REQUESTED = "CANCELLATION_REQUESTED"
    ALREADY_COMPLETED = "ALREADY_COMPLETED"
    NOT_FOUND = "NOT_FOUND"


def request_store(redis: Redis, settings: Settings) -> RequestStore:
    # Records of requests that never finish (worker lost mid-job, queue TTL hit) still expire.
    pending_ttl_s = settings.queue_ttl_s + settings.job_timeout_s + 3600
    return RequestStore(redis, settings.rq_queue, pending_ttl_s=pending_ttl_s, result_ttl_s=settings.result_ttl_s)


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
        """Write the request record and enqueue its job in one MULTI/EXEC."""
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
        with self.redis.pipeline() as pipe:
            pipe.multi()  # RQ requires the caller's pipeline to be in MULTI before commands go in
            self.store.create(record, pipe)
            self.queue.enqueue_call(
                RUN_REQUEST,
                args=(request_id,),
                job_id=request_id,
                timeout=self.settings.job_timeout_s,
                ttl=self.settings.queue_ttl_s,
                result_ttl=0,  # the request record holds the result; RQ need not
                failure_ttl=self.settings.result_ttl_s,
                on_failure=Callback(ON_JOB_FAILURE),
                description=f"rife-video request {request_id}",
                pipeline=pipe,
            )
            pipe.execute()
        return record

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
        if self.queue.remove(request_id):
            self.store.log(request_id).info("Cancelled before it started.")
            if self.store.finish(request_id, failure=CANCELLED):
                notify_webhook(self.redis, self.settings, request_id)
            try:
                Job.fetch(request_id, connection=self.redis).delete(remove_from_queue=False)
            except NoSuchJobError:
                pass
        return CancelOutcome.REQUESTED


def notify_webhook(redis: Redis, settings: Settings, request_id: str) -> None:
    """Enqueue the webhook delivery of a just-finished request, if it asked for one."""
    record = request_store(redis, settings).get(request_id)
    if record is not None and record.webhook_url:
        enqueue_delivery(redis, settings, record)
