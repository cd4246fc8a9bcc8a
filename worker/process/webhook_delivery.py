"""The webhook delivery job, run by workers: one POST attempt of a finished request's outcome.

The request store queues it when a request that named `?fal_webhook=` finishes (`worker.shared.webhooks`,
which also holds the exactly-once rules); this module is the worker side, which claims the delivery
in the request record, POSTs through the address guard and releases the claim when the POST failed.
"""

from __future__ import annotations

import logging
import uuid

from rq import get_current_job

from worker.process.faults import fault_point
from worker.process.runtime import get_runtime
from worker.shared.fetch import FetchError, guarded_post
from worker.shared.queue import request_store
from worker.shared.retrying import until_redis_answers
from worker.shared.webhooks import WEBHOOK_ID_HEADER, WebhookDeliveryError, webhook_body

log = logging.getLogger(__name__)


def deliver(request_id: str) -> int:
    """RQ job: one POST attempt of the request's outcome. Raises on failure so that RQ schedules the next retry."""
    runtime = get_runtime()
    store = request_store(runtime.redis, runtime.settings)
    record = store.get(request_id)
    if record is None or not record.webhook_url:
        log.warning("webhook for %s not sent: the request record is gone", request_id)
        return 0
    url, body = record.webhook_url, webhook_body(record)
    delivery = uuid.uuid4().hex[:12]  # tells this attempt's mark from another's
    if not store.claim_webhook(request_id, delivery):
        log.info("webhook for %s not sent again: it was sent already", request_id)
        return 0
    fault_point("webhook_after_claim")

    def failed(message: str) -> WebhookDeliveryError:
        # Release the claim, so RQ's next retry sends it (or, after the last one, gives it up).
        job = get_current_job()
        retried = bool(job is not None and job.retries_left)
        until_redis_answers(lambda: store.release_webhook(request_id, delivery, retried=retried))
        return WebhookDeliveryError(f"webhook for {body.get('request_id')} not delivered: {message}")

    headers = {WEBHOOK_ID_HEADER: str(body.get("request_id"))}
    try:
        response = guarded_post(
            url, json_body=body, policy=runtime.address_policy, timeout_s=runtime.settings.webhook_timeout_s, headers=headers
        )
    except FetchError as e:
        raise failed(str(e)) from e
    except Exception as e:  # refused, reset, or timed out (the one case where the receiver may have it: same X-Webhook-Id)
        raise failed(f"{type(e).__name__}: {e}") from e
    if not 200 <= response.status_code < 300:
        raise failed(f"HTTP {response.status_code}")
    log.info("webhook for %s delivered (HTTP %s)", body.get("request_id"), response.status_code)
    fault_point("webhook_after_post")
    return response.status_code
