"""fal-style webhooks: when a request that named `?fal_webhook=` finishes, POST its outcome there.

This module is the side the API and the request store use (the body, the delivery job's id, queueing
it); the job itself, which POSTs from a worker, is `worker.process.webhook_delivery.deliver`.

Each delivery is its own RQ job on `<RQ_QUEUE>-webhooks` with RQ's `Retry` (delays from
WEBHOOK_RETRY_DELAYS_S), so a slow or failing receiver never holds up interpolation jobs and
retries survive a worker restart. The worker runs RQ's scheduler to re-enqueue delayed retries.
The receiver URL is client-supplied, so it goes through the same address guard as `video_url`.

The job's only argument is the request id; the URL and body are read from the request record at
each attempt. The body holds the result's presigned URL (a secret) and RQ logs a failed job's
arguments, so they are kept out of the job.

Once (see RELIABILITY.md for the exact guarantee):
- the delivery job is enqueued in the same transaction that finishes the request
  (`RequestStore.finish`), so a finished request cannot lose its webhook to a crash in between;
- before each POST the attempt marks the request record `webhook_sent` (one atomic step that also
  checks nobody marked it before): whatever RQ does afterwards (a retry after Redis lost the job's
  success, an abandoned job re-run), a marked webhook is never POSTed again. The mark is undone
  only when the POST failed (refused, reset, non-2xx answer, timed out), so RQ's next retry may
  send it;
- every POST carries `X-Webhook-Id: <request id>`, the same on every attempt, so a receiver can drop
  a repeat (possible only after an attempt that timed out although the receiver got it).
- a delivery job lost by RQ (popped, then Redis crashed before RQ recorded it) is found by the
  reaper through the pending index (`P:webhooks`, request ids whose webhook is not claimed yet)
  and queued again; the mark makes that safe even if the first job was only slow.
- Successful delivery jobs keep no result in Redis (`result_ttl=0`).
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry

from worker.shared.requests import RequestRecord
from worker.shared.settings import Settings

log = logging.getLogger(__name__)

DELIVER = "worker.process.webhook_delivery.deliver"  # the job function, run by workers only
WEBHOOK_ID_HEADER = "X-Webhook-Id"


class WebhookDeliveryError(RuntimeError):
    """The receiver did not accept the webhook; RQ retries the delivery."""


def webhook_body(record: RequestRecord) -> dict[str, Any]:
    """`{"request_id", "gateway_request_id", "status": "OK" | "ERROR", "payload", "error"}`."""
    from worker.shared.failures import failure_body

    body: dict[str, Any] = {"request_id": record.id, "gateway_request_id": record.gateway_request_id or record.id}
    if record.failure is None:
        return body | {"status": "OK", "payload": record.result, "error": None}
    return body | {
        "status": "ERROR",
        "payload": failure_body(record.failure),
        "error": f"Invalid status code: {record.failure.http_status}. {record.failure.message}",
    }


def delivery_job_id(request_id: str) -> str:
    """The RQ job id of a request's webhook delivery: one per request, so the reaper can find it."""
    return f"webhook-{request_id}"


def enqueue_delivery(
    redis: Redis, settings: Settings, request_id: str, pipeline: Pipeline | None = None, *, at_front: bool = False
) -> None:
    """Queue the delivery job (on `pipeline`, inside the caller's MULTI, when given)."""
    delays = list(settings.webhook_retry_delays_s)
    Queue(settings.webhook_queue, connection=redis).enqueue_call(
        DELIVER,
        args=(request_id,),
        job_id=delivery_job_id(request_id),
        at_front=at_front,
        timeout=int(settings.webhook_timeout_s) + 30,
        retry=Retry(max=len(delays), interval=delays) if delays else None,
        result_ttl=0,  # nothing to keep: the request record says whether it was sent
        failure_ttl=settings.result_ttl_s,
        description=f"webhook of request {request_id}",
        pipeline=pipeline,
    )
