"""Crash consistency in-process (fakeredis): where an unfinished request is recorded at each step,
how the reaper finds a queued request that RQ lost, queue time running out, webhooks marked sent
before they are sent, and the storage retry budget. tests/reliability/test_crash_points.py makes
the same crashes happen for real (Redis SIGKILLed, workers killed) at each step."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job

from worker.process import webhook_delivery
from worker.process.reaper import Reaper
from worker.shared import webhooks
from worker.shared.queue import RequestQueue, RequeueOutcome
from worker.shared.requests import Claim, StartOutcome, Status
from worker.shared.retrying import with_backoff

ARGS = {"video_url": "data:video/mp4;base64,AAAA"}


@pytest.fixture
def queue(runtime) -> RequestQueue:
    return RequestQueue(runtime.redis, runtime.settings)


@pytest.fixture
def reaper(runtime) -> Reaper:
    return Reaper(runtime.redis, runtime.settings, "reaper-worker")


def where(queue: RequestQueue, request_id: str) -> set[str]:
    """The places the service watches that hold this request."""
    r = queue.redis
    places = set()
    if r.zscore(queue.store.queued_key, request_id) is not None:
        places.add("queued")
    if r.hexists(queue.store.inflight_key, request_id):
        places.add("inflight")
    return places


def pop(queue: RequestQueue, request_id: str) -> None:
    """What RQ's BLPOP does to a job: off the queue list, nothing else."""
    assert queue.redis.lrem(queue.queue_key, 1, request_id) == 1


def test_an_unfinished_request_is_in_exactly_one_watched_place_at_each_step(queue):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    assert where(queue, request_id) == {"queued"}
    pop(queue, request_id)
    assert where(queue, request_id) == {"queued"}  # popped by RQ: still watched on the queued side
    assert queue.store.mark_started(request_id, "w1", "run-1") is StartOutcome.STARTED
    assert where(queue, request_id) == {"inflight"}
    assert queue.requeue(request_id, Claim("w1", 1), count_loss=True) is RequeueOutcome.REQUEUED
    assert where(queue, request_id) == {"queued"}
    pop(queue, request_id)
    assert queue.store.mark_started(request_id, "w2", "run-2") is StartOutcome.STARTED
    assert queue.store.finish(request_id, result={"video": {}}, claim=Claim("w2", 2))
    assert where(queue, request_id) == set()


def test_mark_started_retried_after_a_lost_reply_answers_started_once(queue):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    assert queue.store.mark_started(request_id, "w1", "run-1") is StartOutcome.STARTED
    # Redis committed, then died before replying: the worker's retry must not take it for someone else's start.
    assert queue.store.mark_started(request_id, "w1", "run-1") is StartOutcome.STARTED
    assert queue.store.get(request_id).attempt == 1
    assert queue.store.mark_started(request_id, "w2", "run-2") is StartOutcome.GONE


def test_a_request_rq_popped_but_nobody_started_is_put_back_after_the_grace(queue, reaper, runtime):
    first = queue.submit(ARGS, owner="o", base_url="http://api").id
    waiting = queue.submit(ARGS, owner="o", base_url="http://api").id
    pop(queue, first)  # then Redis crashed / the worker died before mark_started
    lost_after = runtime.settings.worker_lost_after_s
    created = queue.store.get(first).created_at
    assert reaper.reconcile(now=created + 1) == []  # first sight: an orphan candidate, not acted on yet
    assert queue.store.get(first).status is Status.IN_QUEUE and queue.position(first) is None
    assert reaper.reconcile(now=created + lost_after) == []  # still within the grace
    reaped = reaper.reconcile(now=created + lost_after + 20)
    assert [(r.request_id, r.outcome) for r in reaped] == [(first, RequeueOutcome.REQUEUED)]
    assert queue.position(first) == 0 and queue.position(waiting) == 1  # back at the front
    assert Job.exists(first, connection=runtime.redis)
    assert runtime.redis.hlen(queue.store.orphans_key) == 0
    assert "queued again" in queue.store.logs(first)[-1]["message"]


def test_a_popped_request_named_by_a_live_heartbeat_is_left_to_its_worker(queue, reaper, runtime):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    pop(queue, request_id)
    runtime.redis.set(queue.store.alive_key("w1"), request_id)  # the worker is about to mark it started
    created = queue.store.get(request_id).created_at
    for later in (1, 100, 1000):
        assert reaper.reconcile(now=created + later) == []
    assert queue.position(request_id) is None and queue.store.get(request_id).status is Status.IN_QUEUE


def test_a_request_whose_queue_time_runs_out_ends_completed_queue_timeout(queue, reaper, runtime):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    created = queue.store.get(request_id).created_at
    assert reaper.reconcile(now=created + 10) == []  # still queued, in time
    reaped = reaper.reconcile(now=created + runtime.settings.queue_ttl_s + 1)
    assert [r.outcome for r in reaped] == [RequeueOutcome.EXPIRED]
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED
    assert record.failure.error_type == "queue_timeout" and record.failure.http_status == 503
    assert str(runtime.settings.queue_ttl_s) in record.failure.message
    assert queue.position(request_id) is None and not Job.exists(request_id, connection=runtime.redis)
    assert where(queue, request_id) == set()


def test_a_lost_request_whose_client_cancelled_it_ends_cancelled(queue):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    pop(queue, request_id)
    queue.store.request_cancel(request_id)
    assert queue.recover(request_id) is RequeueOutcome.CANCELLED
    assert queue.store.get(request_id).failure.error_type == "cancelled"


def test_a_recovered_request_runs_and_completes(queue, reaper, drain):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    pop(queue, request_id)
    assert queue.recover(request_id) is RequeueOutcome.REQUEUED
    drain()
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED and record.failure is None and record.attempt == 1


def test_finishing_enqueues_the_webhook_in_the_same_step_without_stored_results(queue, runtime):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api", webhook_url="http://127.0.0.1:9/hook").id
    hooks = Queue(runtime.settings.webhook_queue, connection=runtime.redis)
    assert hooks.count == 0
    assert queue.store.finish(request_id, result={"video": {}})
    assert hooks.count == 1
    job = hooks.jobs[0]
    assert job.args == (request_id,) and job.result_ttl == 0
    assert not queue.store.finish(request_id, result={"video": {}})  # a second finish enqueues nothing
    assert hooks.count == 1


def test_a_webhook_is_claimed_once_and_released_only_by_its_claimer(queue):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api", webhook_url="http://127.0.0.1:9/hook").id
    assert queue.store.claim_webhook(request_id, "a") is True
    assert queue.store.claim_webhook(request_id, "b") is False
    queue.store.release_webhook(request_id, "b", retried=True)  # not b's mark: stays
    assert queue.store.claim_webhook(request_id, "c") is False
    queue.store.release_webhook(request_id, "a", retried=True)
    assert queue.store.claim_webhook(request_id, "c") is True
    assert queue.store.claim_webhook("no-such-request", "d") is None


def test_a_webhook_is_posted_once_with_a_stable_id_even_if_rq_runs_its_job_again(queue, runtime, drain, receiver):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api", webhook_url=f"{receiver.url}/hook").id
    drain()
    assert len(receiver.posts) == 1
    assert receiver.post_headers[0]["X-Webhook-Id"] == request_id
    # Redis lost the delivery job's success (crash after the POST): RQ runs the job again.
    assert webhook_delivery.deliver(request_id) == 0
    assert len(receiver.posts) == 1


def test_a_failed_post_releases_the_mark_so_the_retry_sends(queue, runtime, receiver):
    request_id = queue.submit(ARGS, owner="o", base_url="http://api", webhook_url=f"{receiver.url}/hook").id
    queue.store.finish(request_id, result={"video": {}})
    receiver.status = 500
    with pytest.raises(webhooks.WebhookDeliveryError):
        webhook_delivery.deliver(request_id)
    receiver.status = 200
    assert webhook_delivery.deliver(request_id) == 200
    assert len(receiver.posts) == 2 and {h["X-Webhook-Id"] for h in receiver.post_headers} == {request_id}
    assert webhook_delivery.deliver(request_id) == 0 and len(receiver.posts) == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_storage_retries_are_bounded_by_time_not_tries():
    clock = FakeClock()
    calls = []

    def down() -> None:
        calls.append(clock.now)
        clock.now += 0.5  # each try takes half a second to fail
        raise OSError("connection refused")

    with pytest.raises(OSError):
        with_backoff(down, attempts=None, budget_s=60, first_delay_s=1, max_delay_s=5, retry_on=(OSError,),
                     sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.waits[:4] == [1, 2, 4, 5] and set(clock.waits[3:]) == {5}
    assert 55 <= clock.now <= 61  # gave up once the next wait would pass the 60 s budget
    assert len(calls) == len(clock.waits) + 1


def test_storage_back_after_20_s_is_waited_for():
    clock = FakeClock()

    def restarts() -> str:
        if clock.now < 20:
            raise OSError("connection refused")
        return "stored"

    assert with_backoff(restarts, attempts=None, budget_s=60, first_delay_s=1, max_delay_s=5, retry_on=(OSError,),
                        sleep=clock.sleep, clock=lambda: clock.now) == "stored"
    assert 20 <= clock.now <= 25


def test_log_entries_are_stored_compactly_and_read_back_in_fals_shape(runtime):
    import json

    from worker.shared.request_log import RequestLog, decode_entries, make_entry

    key = "unit:request:r1:logs"
    runtime.redis.rpush(key, json.dumps(make_entry("written by an earlier version", "WARN")))
    RequestLog(runtime.redis, key, 60).append("Wrote 2 frames | at 20.000 fps", "WARNING")
    raw = runtime.redis.lrange(key, 0, -1)
    assert len(raw[1]) < len(raw[0])
    old, new = decode_entries(raw)
    assert old["message"] == "written by an earlier version" and old["level"] == "WARN"
    assert new["message"] == "Wrote 2 frames | at 20.000 fps" and new["level"] == "WARN" and new["source"] == "USER"
    from datetime import UTC, datetime

    assert abs((datetime.now(UTC) - datetime.fromisoformat(new["timestamp"])).total_seconds()) < 60


def test_a_webhook_job_lost_by_rq_is_queued_again_and_posted_once(queue, reaper, runtime, drain, receiver):
    import time

    request_id = queue.submit(ARGS, owner="o", base_url="http://api", webhook_url=f"{receiver.url}/hook").id
    assert queue.store.finish(request_id, result={"video": {}})
    hooks = Queue(runtime.settings.webhook_queue, connection=runtime.redis)
    assert runtime.redis.lrem(hooks.key, 1, webhooks.delivery_job_id(request_id)) == 1  # popped, then Redis died
    assert reaper.reconcile_webhooks(now=time.time()) == []  # within the grace: maybe a worker is on it
    later = time.time() + runtime.settings.worker_lost_after_s + 1
    assert reaper.reconcile_webhooks(now=later) == [request_id]
    assert hooks.count == 1
    drain()
    assert len(receiver.posts) == 1 and receiver.post_headers[0]["X-Webhook-Id"] == request_id
    assert runtime.redis.zcard(queue.store.webhooks_key) == 0  # claimed: nothing pending any more
    assert reaper.reconcile_webhooks(now=later + 100) == []
