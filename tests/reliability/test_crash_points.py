"""Redis SIGKILLed, or the worker SIGKILLed, at each step of the hand-off between RQ and our request
records, on purpose (not by chance): no request is stranded, none completes twice, each webhook is
POSTed once.

A worker started with `RIFE_FAULT_POINT=<step>` stops at that step of its first job (see
`worker/process/faults.py`) and tells the test, which SIGKILLs redis-server (append-only, fsync always),
lets the worker go on while Redis is down, and starts Redis again on the same port and data 1 s
later. With `RIFE_FAULT_ACTION=kill` the worker kills itself at the step instead, and a second
worker must pick the request up. Liveness settings are the chaos ones (heartbeat 0.3 s, lost
after 1.5 s, reaper every 0.5 s).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from relkit import HookReceiver, client, data_uri, messages, start_worker, submit, wait_done
from servicekit import wait_for

pytestmark = pytest.mark.timeout(150)

JOB = data_uri(b"sleep:0.2")
REDIS_DOWN_S = 1.0
REPEAT_WATCH_S = 2.0  # how long after the first webhook a repeat is waited for

HANDOFF = ("before_prepare", "before_run", "before_mark_started", "after_mark_started", "before_finish", "after_finish")
WEBHOOK = ("webhook_after_claim", "webhook_after_post")


def _run_through_fault(crashable, tmp_path: Path, point: str, *, kill_worker: bool) -> dict:
    stack = crashable.stack
    env = {"RIFE_FAULT_POINT": point, "RIFE_FAULT_DIR": str(tmp_path)}
    if kill_worker:
        env["RIFE_FAULT_ACTION"] = "kill"
    faulty, _ = start_worker(stack, **env)
    if kill_worker:
        start_worker(stack)  # the one that must pick the request up
    receiver = HookReceiver()
    try:
        with client(stack) as c:
            request_id = submit(c, {"video_url": JOB}, params={"fal_webhook": receiver.url})
            started = time.monotonic()
            if kill_worker:
                wait_for(lambda: faulty.proc.poll() is not None, f"the worker to kill itself at {point}", 30)
            else:
                wait_for(lambda: (tmp_path / f"{point}.reached").exists(), f"the worker to reach {point}", 30, faulty)
                crashable.kill_redis()
                (tmp_path / f"{point}.go").touch()  # the worker goes on while Redis is down
                time.sleep(REDIS_DOWN_S)
                crashable.start_redis()
            final = wait_done(c, request_id, 60)
            done_s = time.monotonic() - started
            wait_for(lambda: len(receiver.posts) >= 1, f"{request_id}'s webhook", 30)
            time.sleep(REPEAT_WATCH_S)
        record = stack.record(request_id)
    finally:
        receiver.close()
    return {"id": request_id, "final": final, "record": record, "posts": list(receiver.posts),
            "webhook_ids": list(receiver.webhook_ids), "done_s": done_s}


def _check(outcome: dict) -> None:
    final, request_id = outcome["final"], outcome["id"]
    assert final["status"] == "COMPLETED" and "error" not in final, final
    assert messages(final).count("Done.") >= 1
    assert len(outcome["posts"]) == 1, outcome["posts"]  # webhook once
    assert outcome["posts"][0]["request_id"] == request_id and outcome["posts"][0]["status"] == "OK"
    assert outcome["webhook_ids"] == [request_id]
    assert outcome["record"]["status"] == "COMPLETED"


@pytest.mark.parametrize("point", HANDOFF + WEBHOOK)
def test_redis_killed_at_each_step_strands_nothing(crashable, tmp_path, point, observe):
    outcome = _run_through_fault(crashable, tmp_path, point, kill_worker=False)
    _check(outcome)
    observe(fault=f"Redis SIGKILLed at {point}, down {REDIS_DOWN_S} s", completed_after_s=round(outcome["done_s"], 2),
            runs=int(outcome["record"].get("attempt", 0)), webhooks=len(outcome["posts"]))


@pytest.mark.parametrize("point", ("before_prepare", "before_mark_started", "after_mark_started", "after_finish"))
def test_worker_killed_at_a_step_strands_nothing(crashable, tmp_path, point, observe):
    outcome = _run_through_fault(crashable, tmp_path, point, kill_worker=True)
    _check(outcome)
    observe(fault=f"worker SIGKILLed at {point}", completed_after_s=round(outcome["done_s"], 2),
            runs=int(outcome["record"].get("attempt", 0)), webhooks=len(outcome["posts"]))
