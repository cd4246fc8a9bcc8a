"""fal-style webhooks: when a request that named `?fal_webhook=` finishes, POST its outcome there.

Each delivery is its own RQ job on `<RQ_QUEUE>-webhooks` with RQ's `Retry` (delays from
WEBHOOK_RETRY_DELAYS_S), so a slow or failing receiver never holds up interpolation jobs and
retries survive a worker restart. The worker runs RQ's scheduler to re-enqueue delayed retries.
The receiver URL is client-supplied, so it goes through the same address guard as `video_url`.

The job's only argument is the request id; the URL and body are read from the request record at
each attempt. The body holds the result's presigned URL (a secret) and RQ logs a failed job's
arguments, so they are kept out of the job.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from rq import Queue, Retry

from worker.requests import RequestRecord
from worker.settings import Settings

log = logging.getLogger(__name__)

DELIVER = "worker.webhooks.deliver"


class WebhookDeliveryError(RuntimeError):
    """The receiver did not accept the webhook; RQ retries the delivery."""


def webhook_body(record: RequestRecord) -> dict[str, Any]:
    """`{"request_id", "gateway_request_id", "status": "OK" | "ERROR", "payload", "error"}`."""
    from worker.failures import failure_body

    body: dict[str, Any] = {"request_id": record.id, "gateway_request_id": record.gateway_request_id or record.id}
    if record.failure is None:
        return body | {"status": "OK", "payload": record.result, "error": None}
    return body | {
        "status": "ERROR",
        "payload": failure_body(record.failure),
        "error": f"Invalid status code: {record.failure.http_status}. {record.failure.message}",
    }


def enqueue_delivery(redis: Redis, settings: Settings, record: RequestRecord) -> None:
    if not record.webhook_url:
        return
    delays = list(settings.webhook_retry_delays_s)
    Queue(settings.webhook_queue, connection=redis).enqueue_call(
        DELIVER,
        args=(record.id,),
        timeout=int(settings.webhook_timeout_s) + 30,
        retry=Retry(max=len(delays), interval=delays) if delays else None,
        result_ttl=settings.result_ttl_s,
        failure_ttl=settings.result_ttl_s,
        description=f"webhook of request {record.id}",
    )


def deliver(request_id: str, *legacy: Any) -> int:
    """RQ job: one POST attempt of the request's outcome. Raises on failure so that RQ schedules the next retry.

    Jobs enqueued by earlier versions carry `(url, body)` instead of the request id; they still work.
    """
    from worker.fetch import FetchError, guarded_post
    from worker.requests import request_store
    from worker.runtime import get_runtime

    runtime = get_runtime()
    if legacy:
        url, body = request_id, legacy[0]
    else:
        record = request_store(runtime.redis, runtime.settings).get(request_id)
        if record is None or not record.webhook_url:
            log.warning("webhook for %s not sent: the request record is gone", request_id)
            return 0
        url, body = record.webhook_url, webhook_body(record)
    try:
        response = guarded_post(url, json_body=body, policy=runtime.address_policy, timeout_s=runtime.settings.webhook_timeout_s)
    except FetchError as e:
        raise WebhookDeliveryError(f"webhook for {body.get('request_id')} not delivered: {e}") from e
    except Exception as e:  # httpx transport errors, timeouts
        raise WebhookDeliveryError(f"webhook for {body.get('request_id')} not delivered: {type(e).__name__}: {e}") from e
    if not 200 <= response.status_code < 300:
        raise WebhookDeliveryError(f"webhook for {body.get('request_id')} got HTTP {response.status_code}")
    log.info("webhook for %s delivered (HTTP %s)", body.get("request_id"), response.status_code)
    return response.status_code
