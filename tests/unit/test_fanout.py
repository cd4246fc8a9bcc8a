"""Fan-out's bookkeeping on fakeredis with RQ's SimpleWorker in-process: one request split into segment
jobs and a merge (RQ's depends_on), with the stand-in `SplitEngine` whose output is one line per
output frame, so the merged file is compared byte for byte with the unsplit run's."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from rq import Queue, SimpleWorker

from worker.process.fanout import can_fan_out
from worker.process.reaper import Reaper
from worker.shared.failures import CANCELLED, classify
from worker.shared.queue import RequestQueue
from worker.shared.requests import PartRef, Status, part_of
from worker.shared.settings import Settings
from worker.shared.splits import SplitStore, sum_progress
from worker.shared.storage import temp_key, temp_prefix
from worker.shared.video_input import VideoInput

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service"))
from standin_engines import GateProgress, SplitEngine  # noqa: E402

BASE = "http://api.test"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(storage_backend="local", local_storage_dir=str(tmp_path / "storage"), rq_queue="unit",
                    fetch_allow=("127.0.0.0/8",), webhook_retry_delays_s=(), split_min_s=1.0, split_segment_s=1.0)


@pytest.fixture
def engine() -> SplitEngine:
    return SplitEngine(None)


@pytest.fixture
def queue(runtime) -> RequestQueue:
    return RequestQueue(runtime.redis, runtime.settings)


def video(**spec: object) -> str:
    """A stand-in "video" (see SplitEngine) as a data: URI; 25 frames at 10 fps (2.5 s) by default."""
    body = json.dumps({"frames": 25, "fps": 10.0, **spec}).encode()
    return "data:application/json;base64," + base64.b64encode(body).decode()


def submit(queue: RequestQueue, url: str, **kw: object) -> str:
    return queue.submit({"video_url": url, "num_frames": 2}, owner="", base_url=BASE, **kw).id  # type: ignore[arg-type]


def unsplit_output(tmp_path: Path, url: str, num_frames: int = 2) -> bytes:
    """What one run of the whole input writes."""
    src, out = tmp_path / "whole-in", tmp_path / "whole-out"
    src.write_bytes(base64.b64decode(url.split(",", 1)[1]))
    request = VideoInput.from_stored({"video_url": url, "num_frames": num_frames})
    SplitEngine(None).run(src, out, request, progress=lambda p: None, log=lambda *a: None, should_cancel=lambda: False)
    return out.read_bytes()


def work(runtime, jobs: int | None = None) -> None:
    queues = [Queue(q, connection=runtime.redis) for q in (runtime.settings.webhook_queue, runtime.settings.rq_queue)]
    SimpleWorker(queues, connection=runtime.redis).work(burst=True, max_jobs=jobs)


def leftovers(runtime, request_id: str) -> list[str]:
    """Anything a fanned-out request may leave: part records, RQ jobs of its parts, index entries,
    progress, temporary objects."""
    r = runtime.redis
    found = [k.decode() for k in r.scan_iter(f"*{request_id}__*")]
    found += [k.decode() for k in r.scan_iter(f"*{request_id}:progress")]
    for index in ("unit:inflight", "unit:orphans", "unit:splits"):
        found += [f"{index}:{k.decode()}" for k in r.hkeys(index) if k.decode().startswith(request_id)]
    found += [f"unit:queued:{m.decode()}" for m in r.zrange("unit:queued", 0, -1) if m.decode().startswith(request_id)]
    found += [f"rq queue: {m.decode()}" for m in r.lrange("rq:queue:unit", 0, -1)]
    tmp = runtime.storage.root / temp_prefix(runtime.storage, request_id)
    found += [str(p) for p in tmp.rglob("*")] if tmp.exists() else []
    return found


def test_part_ids_name_their_request_segment_and_count():
    part = PartRef("4f1c-aa", 1, 3)
    assert part.id == "4f1c-aa__seg2of3" and part.tag == "[segment 2/3]"
    assert part_of(part.id) == part and part_of("4f1c-aa__merge") == PartRef("4f1c-aa", None, 0)
    assert part_of("4f1c-aa") is None and part_of("x__segXof3") is None


def test_progress_sums_segments_and_estimates_those_not_started():
    rows = {b"0": b"30|50|5.0", b"2": b"10|30|4.0"}
    p = sum_progress(rows, 3)
    assert (p.frames_done, p.frames_total, p.fps, p.reported) == (40, 120, 9.0, 2)
    done = sum_progress({b"0": b"50|50|5.0", b"1": b"50|50|5.0", b"2": b"2|20|3.0"}, 3)
    assert (done.frames_done, done.frames_total, done.fps) == (102, 120, 3.0)  # finished segments add no speed


def test_only_engines_with_segment_methods_fan_out(engine):
    class Plain:
        def run(self) -> None: ...

    assert can_fan_out(engine, 1.0) and not can_fan_out(engine, 0.0) and not can_fan_out(Plain(), 300.0)


def test_a_long_request_runs_as_segments_and_one_merged_result(queue, runtime, engine, tmp_path, receiver):
    url = video()
    request_id = submit(queue, url, webhook_url=f"{receiver.url}/hook")
    work(runtime)
    work(runtime)  # the webhook job, queued by the merge's finish
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED and record.failure is None, record
    assert sorted(engine.calls) == [(0, 10), (10, 20), (20, 25)]  # each segment once; never the whole input
    key = record.result["video"]["url"].split("/files/")[1].split("?")[0]
    merged = (runtime.storage.root / key).read_bytes()
    assert merged == unsplit_output(tmp_path, url)
    assert record.result["media"]["output_frames"] == 24 * 3 + 1 == merged.count(b"\n")
    assert record.metrics["inference_time"] == pytest.approx(0.25)
    messages = [e["message"] for e in queue.store.logs(request_id)]
    assert any(m.startswith("Split into 3 segments") for m in messages), messages
    assert {m.split("]")[0] + "]" for m in messages if m.startswith("[segment")} == {"[segment 1/3]", "[segment 2/3]", "[segment 3/3]"}
    progress = [m for m in messages if m.startswith("Interpolated ")]
    assert progress and progress[-1].startswith("Interpolated 73/73 frames"), progress
    assert messages.count("Done.") == 1
    assert len(receiver.posts) == 1 and receiver.posts[0]["status"] == "OK"
    assert receiver.posts[0]["payload"]["video"]["url"] == record.result["video"]["url"]
    assert leftovers(runtime, request_id) == []
    assert queue.store.inflight() == {} and queue.store.queued() == {}


def test_a_short_request_runs_whole(queue, runtime, engine):
    request_id = submit(queue, video(frames=8))  # 0.8 s <= SPLIT_MIN_S
    work(runtime)
    record = queue.store.get(request_id)
    assert record.failure is None and engine.calls == [(0, 8)] and record.split == 0
    assert not any(e["message"].startswith("Split into") for e in queue.store.logs(request_id))


def test_a_failing_segment_fails_the_request_with_its_error_and_stops_the_rest(queue, runtime, engine, tmp_path):
    url = video(fail_frame=15)
    request_id = submit(queue, url)
    work(runtime)
    record = queue.store.get(request_id)
    with pytest.raises(Exception) as unsplit:
        unsplit_output(tmp_path, url)
    assert record.status is Status.COMPLETED and record.failure == classify(unsplit.value)
    assert record.failure.error_type == "invalid_video" and record.failure.message == "damaged frame 15"
    assert (20, 25) not in engine.calls  # the third segment never ran: its job was dropped
    assert not any(m["message"].startswith("[segment 3/3]") for m in queue.store.logs(request_id))
    assert leftovers(runtime, request_id) == []


def test_cancel_finishes_at_once_and_the_reaper_removes_what_is_left(queue, runtime, engine):
    request_id = submit(queue, video())
    work(runtime, jobs=2)  # the coordinator and the first segment
    assert queue.store.get(request_id).status is Status.IN_PROGRESS
    tmp = runtime.storage.root / temp_prefix(runtime.storage, request_id)
    assert sorted(p.name for p in tmp.iterdir()) == ["input", "seg1.mp4"]  # the input's copy, segment 1's output
    assert queue.cancel(request_id, "").value == "CANCELLATION_REQUESTED"
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED and record.failure == CANCELLED
    work(runtime)
    assert sorted(engine.calls) == [(0, 10)]  # nothing ran after the cancel
    Reaper(runtime.redis, runtime.settings, "reaper", runtime.storage).settle_splits()
    assert leftovers(runtime, request_id) == []


def test_a_segment_whose_worker_died_is_rerun_alone(queue, runtime, engine, tmp_path):
    url = video()
    request_id = submit(queue, url)
    work(runtime, jobs=1)  # the coordinator: three segment jobs queued
    seg = PartRef(request_id, 0, 3)
    # A worker pops segment 1, starts it, and dies (no heartbeat): its RQ job is gone from the queue.
    runtime.redis.lrem("rq:queue:unit", 0, seg.id)
    assert queue.store.mark_started(seg.id, "dead-worker", "run1").value == "started"
    reaped = Reaper(runtime.redis, runtime.settings, "reaper", runtime.storage).reap()
    assert [(r.request_id, r.outcome.value) for r in reaped] == [(seg.id, "requeued")]
    assert queue.store.get(seg.id).lost == 1 and queue.store.get(PartRef(request_id, 1, 3).id).attempt == 0
    work(runtime)
    record = queue.store.get(request_id)
    assert record.failure is None
    assert sorted(engine.calls) == [(0, 10), (10, 20), (20, 25)]  # each segment ran once here; only segment 1 twice in all
    key = record.result["video"]["url"].split("/files/")[1].split("?")[0]
    assert (runtime.storage.root / key).read_bytes() == unsplit_output(tmp_path, url)
    logs = [e["message"] for e in queue.store.logs(request_id)]
    assert any(m.startswith("[segment 1/3] The worker running this request stopped unexpectedly") for m in logs), logs
    assert any(m.startswith("[segment 1/3] Processing on unit-worker (run 2)") for m in logs), logs
    assert leftovers(runtime, request_id) == []


def test_a_segment_lost_on_every_run_fails_the_request_worker_lost(queue, runtime, engine):
    request_id = submit(queue, video())
    work(runtime, jobs=1)
    seg = PartRef(request_id, 1, 3)
    reaper = Reaper(runtime.redis, runtime.settings, "reaper", runtime.storage)
    for attempt in range(runtime.settings.max_job_attempts):
        runtime.redis.lrem("rq:queue:unit", 0, seg.id)
        assert queue.store.mark_started(seg.id, f"dead-{attempt}", f"run{attempt}").value == "started"
        reaper.reap()
    record = queue.store.get(request_id)
    assert record.status is Status.COMPLETED and record.failure.error_type == "worker_lost", record
    work(runtime)
    assert engine.calls == []  # the other segments were dropped with the request
    assert leftovers(runtime, request_id) == []


def test_the_merge_waits_in_no_index_until_the_last_segment_finishes(queue, runtime, engine):
    request_id = submit(queue, video())
    work(runtime, jobs=1)
    merge = PartRef(request_id, None, 3).id
    splits = SplitStore(queue.store)
    assert merge not in queue.store.queued() and splits.segments_done(request_id) == (0, 3)
    assert set(queue.store.queued()) == {PartRef(request_id, i, 3).id for i in range(3)}
    assert request_id not in queue.store.inflight() and splits.split_requests() == {request_id: 3}
    work(runtime, jobs=3)
    assert merge in queue.store.queued() and splits.segments_done(request_id) == (3, 3)
    assert Queue("unit", connection=runtime.redis).job_ids == [merge]  # RQ enqueued it (depends_on)
    progress = splits.report_progress(PartRef(request_id, 0, 3), 30, 30, 1.0)
    assert progress.frames_total == 73 and progress.frames_done == 73
    assert isinstance(GateProgress(1, 2, 1.0, 0.1), GateProgress)


def test_a_coordinator_lost_on_every_run_leaves_no_input_copy(queue, runtime, engine, tmp_path):
    """A coordinator that stored the input's copy and died before fanning out, on every run: the request
    ends worker_lost and the reaper deletes the copy."""
    request_id = submit(queue, video())
    reaper = Reaper(runtime.redis, runtime.settings, "reaper", runtime.storage)
    copy = tmp_path / "copy"
    copy.write_bytes(b"input")
    for attempt in range(runtime.settings.max_job_attempts):
        runtime.redis.lrem("rq:queue:unit", 0, request_id)
        assert queue.store.mark_started(request_id, f"dead-{attempt}", f"run{attempt}").value == "started"
        runtime.storage.put_file(copy, temp_key(runtime.storage, request_id, "input"), content_type="x", file_name="input", base_url=BASE)
        reaper.reap()
    assert queue.store.get(request_id).failure.error_type == "worker_lost"
    assert leftovers(runtime, request_id) == []
