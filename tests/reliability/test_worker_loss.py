"""Workers dying (SIGKILL), stopping (SIGTERM, twice), and jobs that never end: no request is lost or stuck.

Real worker processes on the chaos stack (heartbeat 0.3 s, lost after 1.5 s, reaper every 0.5 s,
MAX_JOB_ATTEMPTS 2); each test starts the workers it needs and the fixture stops them.
"""

from __future__ import annotations

import signal
import time

import pytest
from relkit import (
    KEYS,
    HookReceiver,
    client,
    data_uri,
    kill_worker,
    messages,
    start_worker,
    submit,
    wait_done,
    wait_record,
)
from rq import Worker
from servicekit import Stack, wait_for

from api.auth import key_fingerprint
from worker.shared.queue import RequestQueue
from worker.shared.settings import Settings

pytestmark = pytest.mark.timeout(120)

GATE = data_uri(b"gate")
LOST_AFTER_S, REAPER_S = 1.5, 0.5


def running_on(worker_name: str):
    return lambda r: r.get("status") == "IN_PROGRESS" and r.get("worker") == worker_name


def test_sigkill_mid_job_requeues_the_request_to_a_live_worker(chaos: Stack, observe):
    a, a_name = start_worker(chaos)
    with client(chaos) as c:
        request_id = submit(c, {"video_url": GATE})
        wait_record(chaos, request_id, running_on(a_name), "running on A")
        b, b_name = start_worker(chaos)
        died = kill_worker(chaos, a)
        wait_record(chaos, request_id, lambda r: r.get("status") == "IN_QUEUE" or r.get("worker") == b_name, "requeued", 20)
        requeued_s = time.monotonic() - died
        wait_record(chaos, request_id, running_on(b_name), "running on B", 20)
        picked_up_s = time.monotonic() - died
        chaos.release()
        final = wait_done(c, request_id)
    assert final["status"] == "COMPLETED" and "error" not in final, final
    rec = chaos.record(request_id)
    assert (rec["attempt"], rec["lost"]) == ("2", "1")
    lines = messages(final)
    assert lines.count("gate: released") == 1 and lines.count("Done.") == 1
    assert any("stopped unexpectedly; it is queued again" in line for line in lines)
    assert picked_up_s < LOST_AFTER_S + REAPER_S + 3.0
    assert a_name not in {w.name for w in Worker.all(connection=chaos.redis)}  # the dead worker is deregistered
    observe(fault="worker SIGKILL mid-job", requeued_after_s=round(requeued_s, 2), running_again_after_s=round(picked_up_s, 2), jobs_lost=0)


def test_a_request_whose_workers_keep_dying_ends_worker_lost(chaos: Stack, observe):
    a, a_name = start_worker(chaos)
    with client(chaos) as c:
        request_id = submit(c, {"video_url": GATE})
        wait_record(chaos, request_id, running_on(a_name), "running on A")
        b, b_name = start_worker(chaos)
        kill_worker(chaos, a)
        wait_record(chaos, request_id, running_on(b_name), "running on B", 20)
        start_worker(chaos)  # stays alive: its reaper gives up on the request
        died = kill_worker(chaos, b)
        final = wait_done(c, request_id, 20)
        ended_s = time.monotonic() - died
        result = c.get(f"/fal-ai/rife/requests/{request_id}")
    assert final["error_type"] == "worker_lost" and "2 times" in final["error"]
    assert result.status_code == 503 and result.headers["x-fal-error-type"] == "worker_lost"
    assert chaos.record(request_id)["attempt"] == "2"
    assert ended_s < LOST_AFTER_S + REAPER_S + 3.0
    observe(fault="worker SIGKILL on every run (MAX_JOB_ATTEMPTS=2)", completed_worker_lost_after_s=round(ended_s, 2))


def test_rolling_restart_hands_the_running_job_to_the_next_worker(chaos: Stack, observe):
    hook = HookReceiver()
    try:
        a, a_name = start_worker(chaos, WORKER_STOP_GRACE_S="1")
        with client(chaos) as c:
            request_id = submit(c, {"video_url": GATE}, params={"fal_webhook": hook.url})
            wait_record(chaos, request_id, running_on(a_name), "running on A")
            b, b_name = start_worker(chaos)
            sent = time.monotonic()
            a.proc.send_signal(signal.SIGTERM)
            assert a.proc.wait(20) == 0
            stopped_s = time.monotonic() - sent
            wait_record(chaos, request_id, running_on(b_name), "running on B", 20)
            handed_s = time.monotonic() - sent
            chaos.release()
            final = wait_done(c, request_id)
            wait_for(lambda: bool(hook.posts), "the webhook", 20)
            time.sleep(0.5)
    finally:
        hook.close()
    assert "error" not in final, final
    rec = chaos.record(request_id)
    assert (rec["attempt"], rec.get("lost", "0")) == ("2", "0")  # a hand-back is not a lost run
    lines = messages(final)
    assert any("shutting down" in line for line in lines)
    assert lines.count("gate: released") == 1 and lines.count("Done.") == 1
    assert len(hook.posts) == 1 and hook.posts[0]["status"] == "OK"
    assert 1.0 <= stopped_s < 10
    observe(fault="SIGTERM mid-job, WORKER_STOP_GRACE_S=1 (rolling restart)", worker_exited_after_s=round(stopped_s, 2),
            running_on_next_worker_after_s=round(handed_s, 2), completions=1, webhooks=len(hook.posts), jobs_lost=0)


def test_sigterm_lets_the_running_job_finish_by_default(chaos: Stack, observe):
    a, a_name = start_worker(chaos)  # WORKER_STOP_GRACE_S=0: finish the job, then exit
    with client(chaos) as c:
        request_id = submit(c, {"video_url": GATE})
        wait_record(chaos, request_id, running_on(a_name), "running on A")
        a.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert a.proc.poll() is None, "the worker must wait for its job"
        chaos.release()
        final = wait_done(c, request_id)
        assert a.proc.wait(20) == 0
    assert "error" not in final and chaos.record(request_id)["attempt"] == "1"
    observe(fault="SIGTERM mid-job, default grace", outcome="job finished on the same worker, then it exited 0", jobs_lost=0)


def test_a_second_sigterm_hands_the_job_back_at_once(chaos: Stack, observe):
    a, a_name = start_worker(chaos)
    with client(chaos) as c:
        request_id = submit(c, {"video_url": GATE})
        wait_record(chaos, request_id, running_on(a_name), "running on A")
        b, b_name = start_worker(chaos)
        a.proc.send_signal(signal.SIGTERM)
        time.sleep(1.2)  # RQ ignores a second signal within 1 s of the first
        sent = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(20) == 0
        wait_record(chaos, request_id, running_on(b_name), "running on B", 20)
        handed_s = time.monotonic() - sent
        chaos.release()
        final = wait_done(c, request_id)
    assert "error" not in final, final
    assert chaos.record(request_id).get("lost", "0") == "0"
    observe(fault="two SIGTERMs mid-job (cold shutdown)", running_on_next_worker_after_s=round(handed_s, 2), jobs_lost=0)


def test_job_timeout_stops_a_job_that_never_returns(chaos: Stack, observe):
    start_worker(chaos)
    # JOB_TIMEOUT_S is applied when a request is enqueued; enqueue as an API with a 2 s limit would.
    settings = Settings.from_env(chaos.env, job_timeout_s=2)
    queue = RequestQueue(chaos.redis, settings)
    owner = key_fingerprint(KEYS[0])
    hung = queue.submit({"video_url": data_uri(b"hang")}, owner=owner, base_url=chaos.url)
    with client(chaos) as c:
        final = wait_done(c, hung.id, 30)
        rec = chaos.record(hung.id)
        ran_s = float(rec["completed_at"]) - float(rec["started_at"])
        result = c.get(f"/fal-ai/rife/requests/{hung.id}")
        chaos.redis.set(f"{chaos.queue_name}:gate:open", 1)
        after = submit(c, {"video_url": GATE})  # the worker is free again
        assert "error" not in wait_done(c, after)
    assert final["error_type"] == "generation_timeout" and "2 s" in final["error"]
    assert result.status_code == 504
    assert 1.8 <= ran_s < 5.0  # started_at is written a moment after RQ arms the alarm
    observe(fault="job that never returns, JOB_TIMEOUT_S=2", stopped_after_s=round(ran_s, 2), error_type="generation_timeout")
