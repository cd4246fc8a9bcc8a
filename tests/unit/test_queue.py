"""The request lifecycle on fakeredis with RQ's SimpleWorker in-process and a stand-in engine."""

from __future__ import annotations

import base64
import time

import pytest
from rq import Queue

from rife_core.errors import CancelledError, InvalidVideoError
from worker.process.jobs import on_job_failure
from worker.shared.queue import CancelOutcome, RequestQueue
from worker.shared.requests import Failure, StartOutcome, Status

ARGS = {"video_url": "data:,abc", "num_frames": 2, "use_scene_detection": False, "use_calculated_fps": True, "fps": 8, "loop": False}
BASE = "http://api.test"


@pytest.fixture
def queue(runtime) -> RequestQueue:
    return RequestQueue(runtime.redis, runtime.settings)


def submit(queue: RequestQueue, owner: str = "", **kw) -> str:
    return queue.submit(dict(ARGS, **kw.pop("args", {})), owner=owner, base_url=BASE, **kw).id


def test_queue_positions_are_the_rq_queue_order(queue):
    ids = [submit(queue) for _ in range(3)]
    assert [queue.position(i) for i in ids] == [0, 1, 2]
    snap = queue.store.snapshot(ids[2], queue.queue_key, logs_from=None)
    assert snap.status is Status.IN_QUEUE and snap.queue_position == 2 and snap.logs is None


def test_a_job_runs_to_a_stored_result_with_logs_and_metrics(queue, drain, engine, runtime):
    request_id = submit(queue, args={"video_url": "http://127.0.0.1:1/x.mp4"}, input_key=None)
    # Serve the input through local storage instead of HTTP (as the API does for data: URIs).
    src = runtime.storage.root / "in.bin"
    src.write_bytes(b"VIDEO")
    runtime.storage.put_file(src, "inputs/r1/input", content_type="video/mp4", file_name="input", base_url=BASE)
    runtime.redis.hset(queue.store.key(request_id), "input_key", "inputs/r1/input")
    drain()
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED and record.failure is None
    video = record.result["video"]
    assert video["content_type"] == "video/mp4" and video["file_size"] == 5 and video["file_name"] == "video_rife.mp4"
    assert video["url"].startswith(f"{BASE}/files/") and "signature=" in video["url"]
    assert record.metrics == {"inference_time": 0.25}
    assert engine.calls[0]["input"] == b"VIDEO" and engine.calls[0]["options"].num_frames == 2
    messages = [e["message"] for e in queue.store.logs(request_id)]
    assert "stand-in engine starting" in messages and "Interpolated 3/3 frames (10.0 frames/s)" in messages
    assert {e["source"] for e in queue.store.logs(request_id)} == {"USER"}
    # finished records expire after RESULT_TTL_S
    assert 0 < runtime.redis.ttl(queue.store.key(request_id)) <= runtime.settings.result_ttl_s


def test_a_data_uri_is_fetched_without_storage(queue, drain, engine):
    payload = base64.b64encode(b"inline").decode()
    request_id = submit(queue, args={"video_url": f"data:video/mp4;base64,{payload}"})
    drain()
    assert queue.store.get(request_id).result is not None and engine.calls[0]["input"] == b"inline"


def test_input_errors_become_422_failures(queue, drain, engine):
    def bad(**_):
        raise InvalidVideoError("not a video")

    engine.behaviour = bad
    request_id = submit(queue)
    drain()
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED
    assert record.failure == Failure("not a video", "invalid_video", 422, "video_url")
    assert queue.store.logs(request_id)[-1]["level"] == "ERROR"


def test_unexpected_errors_are_internal_and_hide_details(queue, drain, engine):
    def crash(**_):
        raise RuntimeError("secret path /srv/x")

    engine.behaviour = crash
    request_id = submit(queue)
    drain()
    failure = queue.store.get(request_id).failure
    assert failure.http_status == 500 and failure.error_type == "internal_error" and "secret" not in failure.message


def test_blocked_video_url_fails_with_file_download_error(queue, drain, runtime):
    request_id = submit(queue, args={"video_url": "http://10.0.0.1/x.mp4"})
    drain()
    failure = queue.store.get(request_id).failure
    assert failure.error_type == "file_download_error" and failure.http_status == 422


def test_cancel_before_start_finishes_it_and_removes_the_job(queue, drain, engine):
    first, second = submit(queue), submit(queue)
    assert queue.cancel(first, "") is CancelOutcome.REQUESTED
    record = queue.store.get(first)
    assert record.status is Status.COMPLETED and record.failure.error_type == "cancelled"
    assert queue.position(second) == 0
    drain()
    assert len(engine.calls) == 1  # only the second one ran
    assert queue.cancel(first, "") is CancelOutcome.ALREADY_COMPLETED
    assert queue.cancel("nope", "") is CancelOutcome.NOT_FOUND


def test_cancel_while_running_stops_between_batches(queue, drain, engine, runtime):
    request_id = submit(queue)

    def cancel_midway(should_cancel):
        queue.cancel(request_id, "")  # the job is IN_PROGRESS: only the flag is set
        assert queue.store.get(request_id).status is Status.IN_PROGRESS
        deadline = time.monotonic() + 2
        while not should_cancel():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        raise CancelledError("cancelled")

    engine.behaviour = cancel_midway
    drain()
    record = queue.store.get(request_id)
    assert record.failure.error_type == "cancelled" and record.failure.http_status == 400


def test_a_worker_that_sees_the_cancel_flag_first_does_not_start(queue, runtime):
    request_id = submit(queue)
    queue.store.request_cancel(request_id)
    assert queue.store.mark_started(request_id, "w") is StartOutcome.CANCELLED
    assert queue.store.mark_started("unknown", "w") is StartOutcome.GONE


def test_finish_happens_once(queue):
    request_id = submit(queue)
    assert queue.store.finish(request_id, result={"video": {}})
    assert not queue.store.finish(request_id, failure=Failure("late", "internal_error"))
    assert queue.store.get(request_id).failure is None


def test_requests_are_invisible_to_other_owners(queue):
    request_id = submit(queue, owner="alice")
    assert queue.get(request_id, "alice") is not None
    assert queue.get(request_id, "bob") is None
    assert queue.cancel(request_id, "bob") is CancelOutcome.NOT_FOUND


def test_rqs_failure_callback_leaves_a_request_it_does_not_run_to_the_reaper(queue, runtime):
    """RQ's abandoned-job handling must not fail a request that never ran (e.g. Redis crashed right
    after RQ popped it): the reaper puts that one back in the queue instead."""
    from rq.exceptions import AbandonedJobError
    from rq.job import Job

    request_id = submit(queue)
    job = Job.fetch(request_id, connection=runtime.redis)
    on_job_failure(job, runtime.redis, AbandonedJobError, AbandonedJobError(), None)
    record = queue.store.get(request_id)
    assert record.status is Status.IN_QUEUE and record.failure is None


def test_rqs_failure_callback_finishes_this_workers_own_run(queue, runtime):
    from rq.job import Job
    from rq.timeouts import JobTimeoutException

    request_id = submit(queue)
    assert queue.store.mark_started(request_id, runtime.name) is StartOutcome.STARTED
    job = Job.fetch(request_id, connection=runtime.redis)
    on_job_failure(job, runtime.redis, JobTimeoutException, JobTimeoutException("late"), None)
    failure = queue.store.get(request_id).failure
    assert failure.error_type == "generation_timeout" and failure.http_status == 504


def test_webhook_is_delivered_once_with_the_fal_body(queue, drain, receiver):
    request_id = submit(queue, webhook_url=f"{receiver.url}/hook")
    drain()  # runs the job, which enqueues the delivery; the burst worker then runs it too
    if not receiver.posts:
        drain()
    assert len(receiver.posts) == 1
    body = receiver.posts[0]
    assert body["request_id"] == request_id and body["gateway_request_id"] == request_id
    assert body["status"] == "OK" and body["error"] is None and body["payload"]["video"]["content_type"] == "video/mp4"


def test_failed_webhook_is_retried_by_rq(runtime, receiver, drain):
    from dataclasses import replace

    queue = RequestQueue(runtime.redis, replace(runtime.settings, webhook_retry_delays_s=(0, 0)))
    receiver.status = 500
    request_id = submit(queue, webhook_url=f"{receiver.url}/hook")
    queue.cancel(request_id, "")  # finishes it at once, ERROR webhook
    hooks = Queue(runtime.settings.webhook_queue, connection=runtime.redis)
    assert hooks.count == 1
    drain()
    assert len(receiver.posts) == 3  # the first attempt and two retries
    assert receiver.posts[0]["status"] == "ERROR" and receiver.posts[0]["payload"]["error_type"] == "cancelled"


def test_a_request_cancelled_in_the_queue_is_counted_once_in_the_metrics(queue):
    from worker.shared.metrics import read_snapshot

    def cancelled_count() -> float:
        snap = read_snapshot(queue.redis, queue.settings.rq_queue)
        return sum(v for (status, _), v in snap.jobs.items() if status == "cancelled")

    before = cancelled_count()
    request_id = submit(queue)
    assert queue.cancel(request_id, "") is CancelOutcome.REQUESTED
    assert queue.cancel(request_id, "") is CancelOutcome.ALREADY_COMPLETED
    assert cancelled_count() - before == 1
