"""Redis and the object store going away and coming back, on the fragile stack's own servers.

Redis runs with an append-only file (fsync always), as in production, and is stopped and started
again on the same port; SeaweedFS is killed and started again on the same ports and data.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from typing import Any

import boto3
import httpx
import pytest
from relkit import SUBMIT, client, data_uri, messages, submit, wait_done, wait_record
from servicekit import wait_for

pytestmark = pytest.mark.timeout(150)

NO_REDIS_NEEDED = {"/models", "/openapi.json"}


def _hammer(c: httpx.Client, known_id: str, seconds: float) -> tuple[int, Counter[int], list[str]]:
    """Every kind of request, round and round for `seconds`: (requests, status counts, problems)."""
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", SUBMIT, {"json": {"video_url": "https://example.com/clip.mp4"}}),
        ("POST", SUBMIT, {"json": {"video_url": data_uri(b"gate")}}),
        ("GET", f"/fal-ai/rife/requests/{known_id}/status", {"params": {"logs": "1"}}),
        ("GET", f"/fal-ai/rife/requests/{known_id}/status/stream", {}),
        ("GET", f"/fal-ai/rife/requests/{known_id}", {}),
        ("PUT", f"/fal-ai/rife/requests/{known_id}/cancel", {}),
        ("POST", "/storage/upload", {"content": b"bytes", "headers": {"content-type": "video/mp4"}}),
        ("POST", "/run/fal-ai/rife/video", {"json": {"video_url": "https://example.com/clip.mp4"}}),
        ("GET", "/health", {}),
        ("GET", "/models", {}),
        ("GET", "/openapi.json", {}),
    ]
    tried, codes, problems = 0, Counter[int](), []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for method, path, kw in routes:
            r = c.request(method, path, **kw)
            tried += 1
            codes[r.status_code] += 1
            expected = 200 if path in NO_REDIS_NEEDED else 503
            if r.status_code != expected or (expected == 503 and int(r.headers.get("retry-after", "0")) <= 0):
                problems.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
            if expected == 503 and "Traceback" in r.text:
                problems.append(f"{method} {path}: traceback in body")
    return tried, codes, problems


def test_redis_outage_is_503_and_everything_recovers_by_itself(fragile, observe):
    stack = fragile.stack
    worker_pid = stack.workers[0].proc.pid
    with client(stack) as c:
        running = submit(c, {"video_url": data_uri(b"sleep:6")})  # spans the outage; touches Redis only through the worker
        wait_record(stack, running, lambda r: r.get("status") == "IN_PROGRESS", "running")
        queued = submit(c, {"video_url": data_uri(b"sleep:0.2")})
        fragile.stop_redis()
        tried, codes, problems = _hammer(c, running, 3.0)
        fragile.start_redis()
        restarted = time.monotonic()
        wait_for(lambda: c.post(SUBMIT, json={"video_url": data_uri(b"sleep:0.1")}).status_code == 200, "the API to accept requests again", 30)
        api_back_s = time.monotonic() - restarted
        after = submit(c, {"video_url": data_uri(b"sleep:0.1")})
        finals = {name: wait_done(c, rid, 60) for name, rid in (("running", running), ("queued", queued), ("after", after))}
        workers_back_s = time.monotonic() - restarted
    assert problems == [], problems[:5]
    assert codes[500] == 0 and set(codes) <= {200, 503}
    for name, final in finals.items():
        assert "error" not in final, (name, final)
    assert stack.workers[0].proc.poll() is None and stack.workers[0].proc.pid == worker_pid  # reconnected, not restarted
    observe(fault="Redis stopped ~3 s (mid-job, one queued), restarted on the same port", requests_tried=tried,
            status_counts=dict(codes), server_errors_other_than_503=0, api_recovered_after_s=round(api_back_s, 2),
            all_jobs_done_after_s=round(workers_back_s, 2), jobs_lost=0)


def test_storage_outage_fails_the_job_storage_error_and_publishes_nothing(fragile, observe):
    stack = fragile.stack
    with client(stack) as c:
        request_id = submit(c, {"video_url": data_uri(b"sleep:2")})  # the input goes to S3 at submit
        wait_record(stack, request_id, lambda r: r.get("status") == "IN_PROGRESS", "running")
        wait_for(lambda: "chaos: working for 2.0 s" in messages(c.get(f"/fal-ai/rife/requests/{request_id}/status?logs=1").json()),
                 "the input to be read", 10)
        assert fragile.s3_server is not None
        os.killpg(fragile.s3_server.proc.pid, signal.SIGKILL)  # a crash, not a clean stop
        fragile.s3_server.proc.wait(10)
        killed = time.monotonic()
        upload = c.post("/storage/upload", content=b"bytes", headers={"content-type": "video/mp4"})
        inline = c.post(SUBMIT, json={"video_url": data_uri(b"gate")})
        final = wait_done(c, request_id, 60)
        failed_after_s = time.monotonic() - killed
        result = c.get(f"/fal-ai/rife/requests/{request_id}")
        fragile.start_s3()
        prefix = f"{stack.env['S3_PREFIX']}results/{request_id}/"
        s3 = boto3.client("s3", endpoint_url=stack.env["S3_ENDPOINT_URL"], aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        listed = s3.list_objects_v2(Bucket=stack.env["S3_BUCKET"], Prefix=prefix)
        recovered = wait_done(c, submit(c, {"video_url": data_uri(b"sleep:0.1")}), 60)
    for r in (upload, inline):
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0 and r.json()["error_type"] == "service_unavailable"
    assert final["error_type"] == "storage_error" and "video" not in final
    assert result.status_code == 503 and "video" not in result.json() and result.headers["x-fal-error-type"] == "storage_error"
    tries = [m for m in messages(final) if m.startswith("Storing the result failed")]
    assert len(tries) == 2  # STORAGE_ATTEMPTS=3: two retries announced, then the failure
    assert listed.get("KeyCount", 0) == 0, listed.get("Contents")
    assert "error" not in recovered
    observe(fault="SeaweedFS killed mid-job (before the upload), restarted", upload_tries=3, error_type="storage_error",
            failed_after_s=round(failed_after_s, 2), api_upload_and_inline_submit="503 + Retry-After",
            objects_under_result_key=listed.get("KeyCount", 0), next_job_after_restart="ok")


def test_a_20_s_storage_restart_is_waited_out_by_running_jobs(fragile, observe):
    """SeaweedFS SIGKILLed while a job works and back 20 s later: within STORAGE_RETRY_BUDGET_S the job
    waits for it, says so in its logs, and completes with its result stored."""
    from relkit import start_worker, stop_workers

    stack = fragile.stack
    stop_workers(stack)  # the stack's worker gives up after 3 tries (STORAGE_ATTEMPTS=3); this one by time
    start_worker(stack, STORAGE_ATTEMPTS="0", STORAGE_RETRY_BUDGET_S="60", STORAGE_BACKOFF_S="1")
    try:
        with client(stack) as c:
            request_id = submit(c, {"video_url": data_uri(b"sleep:1")})
            wait_for(lambda: "chaos: working for 1.0 s" in messages(c.get(f"/fal-ai/rife/requests/{request_id}/status?logs=1").json()),
                     "the input to be read", 20)
            assert fragile.s3_server is not None
            os.killpg(fragile.s3_server.proc.pid, signal.SIGKILL)
            fragile.s3_server.proc.wait(10)
            killed = time.monotonic()
            time.sleep(20)
            fragile.start_s3()
            back_s = time.monotonic() - killed
            final = wait_done(c, request_id, 60)
            done_s = time.monotonic() - killed
            result = c.get(f"/fal-ai/rife/requests/{request_id}")
            stored = httpx.get(result.json()["video"]["url"], timeout=10)
    finally:
        stop_workers(stack)
        stack.start_worker()
    assert "error" not in final, final
    waits = [m for m in messages(final) if "storage is unavailable; waiting for it" in m]
    assert len(waits) >= 3, messages(final)
    assert stored.status_code == 200 and stored.content == b"slept"
    observe(fault="SeaweedFS SIGKILLed mid-job, back after 20 s (STORAGE_RETRY_BUDGET_S=60)", storage_down_s=round(back_s, 1),
            completed_after_s=round(done_s, 1), storage_tries_logged=len(waits) + 1, error_type=None)
