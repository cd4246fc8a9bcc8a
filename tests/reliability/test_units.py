"""The reliability building blocks in-process (fakeredis, no servers): claims, requeue, reaper, limits,
temp-folder sweep, log redaction and backoff. The process-level tests beside this file show each
of them working for real; these pin down the edge cases cheaply."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import fakeredis
import pytest
from rq import Queue
from rq.job import Job

from api.errors import ApiError
from api.limits import check_rate
from worker.process.reaper import Reaper
from worker.process.scratch import Scratch, sweep
from worker.shared import redact
from worker.shared.queue import QueueLimitError, RequestQueue, RequeueOutcome
from worker.shared.requests import Claim, Status
from worker.shared.retrying import with_backoff
from worker.shared.settings import Settings

ARGS = {"video_url": "data:,x"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(rq_queue="unit-rel", storage_backend="local", local_storage_dir=str(tmp_path), max_job_attempts=2,
                    max_queued_per_key=3, rate_limit_requests=5, rate_limit_window_s=10)


@pytest.fixture
def queue(settings: Settings) -> RequestQueue:
    return RequestQueue(fakeredis.FakeRedis(), settings)


def start(queue: RequestQueue, worker: str = "w1") -> tuple[str, Claim]:
    request_id = queue.submit(ARGS, owner="o", base_url="http://api").id
    Queue(queue.settings.rq_queue, connection=queue.redis).remove(request_id)  # as a worker popping it
    queue.store.mark_started(request_id, worker)
    claim = queue.store.claim_of(request_id)
    assert claim is not None
    return request_id, claim


def test_a_run_that_lost_its_request_cannot_finish_it(queue: RequestQueue):
    request_id, claim = start(queue)
    assert queue.requeue(request_id, claim, count_loss=True) is RequeueOutcome.REQUEUED
    assert not queue.store.finish(request_id, result={"video": {}}, claim=claim)
    queue.store.mark_started(request_id, "w2")
    second = queue.store.claim_of(request_id)
    assert second == Claim("w2", 2)
    assert queue.store.finish(request_id, result={"video": {}}, claim=second)
    assert queue.store.inflight() == {} and queue.store.count_active("o") == 0


def test_requeue_puts_the_request_first_in_line_with_a_fresh_job(queue: RequestQueue):
    other = queue.submit(ARGS, owner="o", base_url="http://api").id
    request_id, claim = start(queue)
    assert queue.requeue(request_id, claim, count_loss=True) is RequeueOutcome.REQUEUED
    record = queue.store.get(request_id)
    assert record.status is Status.IN_QUEUE and record.lost == 1 and record.worker is None
    assert queue.position(request_id) == 0 and queue.position(other) == 1
    assert Job.fetch(request_id, connection=queue.redis).get_status() == "queued"
    assert queue.requeue(request_id, claim, count_loss=True) is RequeueOutcome.GONE  # once only


def test_the_last_allowed_loss_finishes_worker_lost_and_a_cancel_wins(queue: RequestQueue):
    request_id, claim = start(queue)
    queue.requeue(request_id, claim, count_loss=True)
    queue.store.mark_started(request_id, "w2")
    assert queue.requeue(request_id, Claim("w2", 2), count_loss=True) is RequeueOutcome.FAILED
    failure = queue.store.get(request_id).failure
    assert failure.error_type == "worker_lost" and "2 times" in failure.message
    cancelled, claim = start(queue)
    queue.store.request_cancel(cancelled)
    assert queue.requeue(cancelled, claim, count_loss=True) is RequeueOutcome.CANCELLED
    handed, claim = start(queue)
    assert queue.requeue(handed, claim, count_loss=False) is RequeueOutcome.REQUEUED
    assert queue.store.get(handed).lost == 0


def test_the_reaper_takes_back_only_what_nobody_is_running(queue: RequestQueue, settings: Settings):
    store, redis = queue.store, queue.redis
    dead, _ = start(queue, "dead-worker")
    busy, _ = start(queue, "busy-worker")
    moved_on, _ = start(queue, "moved-on-worker")
    redis.set(store.alive_key("busy-worker"), busy)
    redis.set(store.alive_key("moved-on-worker"), "-")
    redis.hset(store.inflight_key, "expired-request", "dead-worker")  # its record expired meanwhile
    reaped = {r.request_id: r.outcome for r in Reaper(redis, settings, "reaper").reap()}
    assert reaped == {dead: RequeueOutcome.REQUEUED, moved_on: RequeueOutcome.REQUEUED}
    assert store.inflight() == {busy: "busy-worker"}


def test_queue_limit_per_owner(queue: RequestQueue):
    ids = [queue.submit(ARGS, owner="o", base_url="").id for _ in range(3)]
    with pytest.raises(QueueLimitError):
        queue.submit(ARGS, owner="o", base_url="")
    queue.submit(ARGS, owner="someone-else", base_url="")
    queue.cancel(ids[0], "o")
    queue.submit(ARGS, owner="o", base_url="")


def test_rate_limit_is_a_fixed_window_per_owner(settings: Settings):
    redis = fakeredis.FakeRedis()
    t = 1000.0
    for _ in range(5):
        check_rate(redis, settings, "o", now=t)
    with pytest.raises(ApiError) as e:
        check_rate(redis, settings, "o", now=t + 1)
    assert e.value.status_code == 429 and e.value.headers["Retry-After"] == "9"
    check_rate(redis, settings, "other", now=t + 1)
    check_rate(redis, settings, "o", now=t + 10)  # the next window


def test_sweep_removes_only_dead_workers_folders(tmp_path: Path):
    holder = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path.cwd())!r})
        from pathlib import Path
        from worker.process.scratch import Scratch
        s = Scratch.open(Path({str(tmp_path)!r}), "alive")
        print(s.path, flush=True)
        time.sleep(60)
    """)
    alive = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        alive_dir = Path(alive.stdout.readline().strip())
        dead = Scratch.open(tmp_path, "dead")
        (dead.path / "job-1").mkdir()
        (dead.path / "job-1" / "input").write_bytes(b"x")
        dead_path = dead.path
        os.close(dead._lock_fd)  # as if its process died: the kernel drops the lock
        (tmp_path / "unrelated").mkdir()
        assert sweep(tmp_path) == [dead_path]
        assert alive_dir.exists() and not dead_path.exists() and (tmp_path / "unrelated").exists()
    finally:
        alive.kill()
        alive.wait()


def test_redaction_of_known_secrets_and_signed_urls(caplog: pytest.LogCaptureFixture):
    redact.install(Settings(api_keys=("sk-unit-secret-key",), aws_secret_access_key="aws-unit-secret"))
    log = logging.getLogger("unit.redact")
    with caplog.at_level(logging.INFO, logger="unit.redact"):
        log.info("key %s, %s", "sk-unit-secret-key", "https://s3/b/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&x=1")
        log.info("job failed", extra={"arguments": ("https://h/f?signature=deadbeef",)})
        try:
            raise RuntimeError("aws-unit-secret leaked")
        except RuntimeError:
            log.exception("boom")
    text = caplog.text + "".join(str(getattr(r, "arguments", "")) for r in caplog.records)
    assert "sk-unit-secret-key" not in text and "aws-unit-secret" not in text
    assert "abc123" not in text and "AKIA" not in text and "deadbeef" not in text and "&x=1" in text


def test_backoff_doubles_and_gives_up():
    waits: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise OSError("down")
        return "ok"

    assert with_backoff(flaky, attempts=4, first_delay_s=0.5, retry_on=(OSError,), sleep=waits.append) == "ok"
    assert waits == [0.5, 1.0]
    with pytest.raises(OSError):
        with_backoff(lambda: (_ for _ in ()).throw(OSError("still down")), attempts=3, first_delay_s=1, retry_on=(OSError,), sleep=waits.append)
    assert waits == [0.5, 1.0, 1, 2]


def test_a_presumed_dead_run_notices_at_its_next_check_and_a_stopping_one_hands_back(queue: RequestQueue):
    from types import SimpleNamespace

    from worker.process.jobs import CancelCheck, HandBack, Superseded

    request_id, claim = start(queue)
    runtime = SimpleNamespace(store=queue.store, must_hand_back=False)
    check = CancelCheck(runtime, request_id, claim, interval_s=0)  # type: ignore[arg-type]
    assert check() is False
    queue.requeue(request_id, claim, count_loss=True)  # the reaper thought this worker dead
    with pytest.raises(Superseded):
        check()
    runtime.must_hand_back = True
    with pytest.raises(HandBack):
        check()


def test_client_messages_lose_local_paths_but_keep_urls():
    from worker.shared.failures import public_message

    ffmpeg = "the video cannot be read: [Errno 1094995529] Invalid data found when processing input: '/tmp/w-host-1-ab/job-1/input'"
    assert public_message(ffmpeg) == "the video cannot be read: Invalid data found when processing input: the video"
    assert public_message("Invalid argument: 'avcodec_send_packet()' returned 22") == "Invalid argument"
    assert public_message("GET https://h.example/a/b.mp4 gave 10/20 frames") == "GET https://h.example/a/b.mp4 gave 10/20 frames"
