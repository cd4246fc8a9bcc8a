"""The RQ jobs of a fanned-out request: one per segment, then the merge (see `worker.shared.splits`).

A part runs like a request (`worker.process.jobs`): inside the worker's heartbeat, marked started
as a new attempt, holding a `Claim`, handing back on a stop, leaving a Redis failure to the reaper.
What differs:
- its input is the stored copy the coordinator made (never the URL again), and its output a
  temporary object in storage (`tmp/{request}/seg{i}.*`) until the merge;
- its log lines go into the request's log tagged "[segment i/K]"; its progress is summed over the
  segments into the request's "Interpolated d/t frames" lines;
- it stops when its own claim goes *or* the request is finished (cancelled, or failed by another
  part): it drops its run silently, as the request already has its outcome;
- a failing segment fails the whole request with its error (the first one wins) and the rest stop;
- the merge (enqueued by RQ once every segment job succeeded) joins the segments' files, stores
  the result, finishes the request (one webhook) and deletes the temporary objects.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from rife_core.errors import CancelledError
from worker.process.fanout import clean_up
from worker.process.jobs import (
    CancelCheck,
    HandBack,
    JobLog,
    ProgressLog,
    Superseded,
    best_effort,
    hand_back,
    job_timeout_s,
    storage_call,
    store_result,
)
from worker.process.runtime import Runtime, get_runtime
from worker.shared import metrics as job_metrics
from worker.shared import process_log
from worker.shared.failures import CANCELLED, classify
from worker.shared.queue import RequestQueue, request_store
from worker.shared.request_log import fal_level
from worker.shared.requests import Claim, Failure, PartRef, RequestRecord, StartOutcome, Status, part_of
from worker.shared.retrying import until_redis_answers
from worker.shared.splits import SegmentFinish, SplitStore
from worker.shared.storage import StorageError, temp_key
from worker.shared.video_input import VideoInput

log = logging.getLogger(__name__)


class PartCancelCheck(CancelCheck):
    """A part's `should_cancel`: its own claim, and its request's cancel flag and status (a request
    finished by a cancel or by another part's failure takes the claim of every part away)."""

    def __init__(self, runtime: Runtime, part: PartRef, claim: Claim) -> None:
        super().__init__(runtime, part.id, claim)
        self._splits = SplitStore(runtime.store)
        self._request_id = part.request_id

    def read_state(self) -> tuple[bool, Claim | None]:
        cancelled, current = super().read_state()
        status, request_cancelled = self._splits.parent_state(self._request_id)
        if status != Status.IN_PROGRESS.value.encode():
            current = None
        return cancelled or request_cancelled, current


class SegmentProgress(ProgressLog):
    """A segment's progress callbacks as the request's progress lines (summed over its segments), at
    most one per `interval_s` (plus the last)."""

    def __init__(self, splits: SplitStore, part: PartRef, request_log: JobLog, interval_s: float = 1.0) -> None:
        super().__init__(request_log, interval_s)
        self._splits = splits
        self._part = part

    def emit(self, progress: Any) -> None:
        done, total = progress.frames_done, progress.frames_total
        try:
            whole = self._splits.report_progress(self._part, done, total, float(progress.fps))
        except RedisError as e:
            log.warning("progress not recorded (%s)", type(e).__name__)
            return
        self._log.info(
            f"Interpolated {whole.frames_done}/{whole.frames_total} frames ({whole.fps:.1f} frames/s) "
            f"{self._part.tag[:-1]}: {done}/{total}]"
        )


@process_log.request_scoped()
def run_part(part_id: str) -> None:
    """RQ job function: one segment, or the merge, of a fanned-out request."""
    runtime = get_runtime()
    heartbeat = runtime.heartbeat
    if not heartbeat.started:
        heartbeat.start()
    part = part_of(part_id)
    if part is None:
        log.error("job %s names no part of a request; skipped", part_id)
        return
    with heartbeat.running(part_id):
        _run(runtime, part)


def _run(runtime: Runtime, part: PartRef) -> None:
    store = runtime.store
    splits = SplitStore(store)
    if part.index is None:
        done, count = splits.segments_done(part.request_id)
        if not count or done < count:  # popped early (only after a crash): the last segment's finish queues it again
            log.warning("merge of %s popped with %d of %d segments done; skipped", part.request_id, done, count)
            return
    run = uuid.uuid4().hex[:12]
    try:
        outcome = until_redis_answers(lambda: store.mark_started(part.id, runtime.name, run))
        record = until_redis_answers(lambda: store.get(part.id)) if outcome is StartOutcome.STARTED else None
        parent = until_redis_answers(lambda: store.get(part.request_id))
    except RedisError as e:
        log.error("%s: Redis unavailable at the start (%s); leaving it to the reaper", part.id, type(e).__name__)
        return
    if outcome is StartOutcome.CANCELLED:
        _fail(runtime, part, CANCELLED, None)
        return
    if record is None:
        return  # gone (its request finished) or already started by someone else
    claim = Claim(runtime.name, record.attempt)
    if parent is None or parent.status is not Status.IN_PROGRESS or not parent.split:
        log.warning("%s: its request is gone or finished; dropping the part", part.id)
        splits.drop_part(part.id)
        return
    part_log = JobLog(store.log(part.id))
    part_log.info(f"Processing on {runtime.name}" + (f" (run {record.attempt})" if record.attempt > 1 else ""))
    try:
        if parent.cancel_requested:
            raise CancelledError("the request was cancelled")
        with runtime.job_dir(part.id) as tmp:
            if part.index is None:
                _merge(runtime, part, parent, claim, tmp, part_log)
            else:
                _segment(runtime, part, parent, claim, tmp, part_log)
    except Superseded:
        log.warning("%s: no longer held by this run (request finished or run taken back); dropping it", part.id)
    except (HandBack, KeyboardInterrupt, SystemExit) as exc:
        hand_back(runtime, part.id, claim, part_log)
        if not isinstance(exc, Exception):
            raise
    except RedisError as exc:
        log.error("%s: Redis failed under the run (%s); leaving it to the reaper to requeue", part.id, type(exc).__name__)
    except BaseException as exc:
        failure = classify(exc, job_timeout_s=job_timeout_s(runtime))
        if failure.http_status >= 500:
            log.exception("%s failed", part.id)
        part_log.error(failure.message)
        _fail(runtime, part, failure, claim)
        if not isinstance(exc, Exception):
            raise


def _segment(runtime: Runtime, part: PartRef, parent: RequestRecord, claim: Claim, tmp: Path, part_log: JobLog) -> None:
    assert part.index is not None and parent.split_input
    store, settings, storage = runtime.store, runtime.settings, runtime.storage
    raw = store.redis.hget(store.key(part.id), "segment")
    segment = json.loads(raw) if raw else {}
    request = VideoInput.from_stored(parent.input)
    source = tmp / "input"
    input_key = parent.split_input
    storage_call(runtime, part_log, "reading the input", lambda: storage.get_file(input_key, source))
    extension = request.output_format().extension
    output = tmp / f"segment{extension}"
    started = time.monotonic()
    video = runtime.engine.run_segment(  # type: ignore[attr-defined]
        source,
        output,
        request,
        segment,
        progress=SegmentProgress(SplitStore(store), part, JobLog(store.log(part.request_id))),
        log=lambda level, message: part_log.append(message, fal_level(level)),
        should_cancel=PartCancelCheck(runtime, part, claim),
    )
    best_effort(lambda: job_metrics.frames_done(runtime.redis, settings.rq_queue, video))
    part_log.info(f"Wrote {video.output_frames} frames (inference {video.inference_s:.2f} s, total {time.monotonic() - started:.2f} s)")
    key = temp_key(storage, part.request_id, f"seg{part.index + 1}{extension}")
    storage_call(runtime, part_log, "storing the segment", lambda: storage.put_file(
        output, key, content_type="application/octet-stream", file_name=key.rpartition("/")[2],
        base_url=parent.base_url or settings.public_base_url or "http://localhost"))
    splits = SplitStore(store)
    outcome = until_redis_answers(lambda: splits.finish_segment(
        part, claim, video.to_json(), key, queue_deadline=time.time() + settings.queue_ttl_s))
    if outcome is SegmentFinish.GONE:
        _delete_quietly(runtime, key)  # the request ended meanwhile: its clean-up may have run already
        raise Superseded(f"{part.id} was finished or taken back meanwhile")
    if outcome is SegmentFinish.LAST:
        part_log.info("Last segment done; joining them")


def _merge(runtime: Runtime, part: PartRef, parent: RequestRecord, claim: Claim, tmp: Path, part_log: JobLog) -> None:
    assert parent.split_input
    store, settings, storage = runtime.store, runtime.settings, runtime.storage
    splits = SplitStore(store)
    outputs = splits.segment_outputs(parent.id, parent.split)
    if outputs is None:
        raise RuntimeError(f"merge of {parent.id} started before every segment was stored")
    request = VideoInput.from_stored(parent.input)
    source = tmp / "input"
    input_key = parent.split_input
    storage_call(runtime, part_log, "reading the input", lambda: storage.get_file(input_key, source))
    parts: list[tuple[Path, dict[str, Any]]] = []
    for i, (key, result) in enumerate(outputs):
        path = tmp / f"seg{i + 1}{request.output_format().extension}"
        storage_call(runtime, part_log, f"reading segment {i + 1}", lambda key=key, path=path: storage.get_file(key, path))  # type: ignore[misc]
        parts.append((path, result))
    output = tmp / f"output{request.output_format().extension}"
    started = time.monotonic()
    video = runtime.engine.merge_segments(  # type: ignore[attr-defined]
        source, parts, output, request, log=lambda level, message: part_log.append(message, fal_level(level)))
    inference_s = sum(float(result.get("inference_s") or 0.0) for _path, result in parts)
    request_log = JobLog(store.log(parent.id))
    request_log.info(
        f"Wrote {video.output_frames} frames at {float(video.output_fps):.3f} fps from {parent.split} segments "
        f"(inference {inference_s:.2f} s in all, join {time.monotonic() - started:.2f} s)"
    )
    PartCancelCheck(runtime, part, claim)()  # raises Superseded if the request was finished meanwhile
    result = store_result(runtime, parent, output, video, parent.split_stem or "video", part_log)
    request_log.info("Done.")
    finished = until_redis_answers(lambda: splits.finish_request(
        parent.id, part=part, claim=claim, result=result, metrics={"inference_time": round(inference_s, 4)}))
    if not finished:
        raise Superseded(f"{part.id} no longer decides its request")
    best_effort(lambda: job_metrics.job_finished(runtime.redis, settings.rq_queue, parent.id, None))
    _clean_up(runtime, parent.id, parent.split)


def _fail(runtime: Runtime, part: PartRef, failure: Failure, claim: Claim | None) -> None:
    """Fail the whole request with a part's error (the first one wins), then clean up after it."""
    splits = SplitStore(runtime.store)
    try:
        count = until_redis_answers(lambda: splits.segments_done(part.request_id))[1]
        finished = until_redis_answers(lambda: splits.finish_request(part.request_id, part=part, claim=claim, failure=failure))
    except RedisError as e:
        log.error("%s: outcome not recorded (%s); the reaper requeues the part", part.id, type(e).__name__)
        return
    if not finished:
        return
    best_effort(lambda: job_metrics.job_finished(runtime.redis, runtime.settings.rq_queue, part.request_id, failure))
    _clean_up(runtime, part.request_id, count)


def _clean_up(runtime: Runtime, request_id: str, count: int) -> None:
    try:
        clean_up(RequestQueue(runtime.redis, runtime.settings), runtime.storage, request_id, count)
    except RedisError as e:
        log.warning("request %s: clean-up left to the reaper (%s)", request_id, type(e).__name__)


def _delete_quietly(runtime: Runtime, key: str) -> None:
    try:
        runtime.storage.delete_prefix(key)
    except StorageError as e:
        log.warning("temporary object %s not deleted (%s); the storage sweep removes it", key, e)


@process_log.request_scoped(lambda job, *_args, **_kwargs: job.id)
def on_part_failure(job: Any, connection: Any, exc_type: type, exc_value: BaseException, traceback: Any) -> None:
    """RQ failure callback of a part (what escaped `run_part`, e.g. a time limit hit while recording):
    fail the request only from this worker's own run of the part; anything else is the reaper's."""
    if isinstance(exc_value, (HandBack, KeyboardInterrupt, SystemExit, RedisError)):
        return
    runtime = get_runtime()
    part = part_of(job.id)
    claim = request_store(connection, runtime.settings).claim_of(job.id)
    if part is None or claim is None or claim.worker != runtime.name:
        log.warning("%s: RQ job failed outside a run of this worker (%s); left to the reaper", job.id, exc_type.__name__)
        return
    failure = classify(exc_value, job_timeout_s=runtime.settings.job_timeout_s)
    runtime.store.log(job.id).error(failure.message)
    _fail(runtime, part, failure, claim)
