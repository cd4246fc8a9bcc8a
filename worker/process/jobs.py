"""The RQ job: fetch the input, interpolate it, upload the result, record how it went.

Every outcome, including failures and cancellation, ends the request COMPLETED through
`RequestStore.finish`, which succeeds once and enqueues the webhook in the same transaction. The
job function itself swallows job errors (they are the client's result, not a crash), so RQ's
failure callback only sees what escaped (a Redis outage longer than the job's patience, a time
limit hit while recording the outcome); it finishes the request only if this worker's run holds
it, and leaves everything else to the reaper, which watches every unfinished request.

Reliability, job side:
- The job runs inside the worker's heartbeat (`Heartbeat.running`), and finishes its request
  only under its `Claim` (worker + attempt): if the reaper presumed this worker dead and requeued
  the request, this run notices at its next cancel check (`Superseded`) or has its finish refused.
- A stopping worker's job hands its request back (`HandBack`, or RQ's cold-shutdown SystemExit):
  the request is flagged and requeued on the worker's way out, not failed.
- Files live in a per-job folder of the worker's own temporary folder, removed whatever happens.
- Log lines and cancel checks survive a Redis outage (a lost line is better than a lost job);
  marking the request started and the final write wait for Redis for up to a minute; storage
  transfers are retried with backoff for up to STORAGE_RETRY_BUDGET_S, then fail `storage_error`;
  an output larger than MAX_OUTPUT_BYTES fails `output_too_large`.
- `fault_point` marks each step of the hand-off, for tests that crash Redis or the worker there.

A request whose input is longer than SPLIT_MIN_S is fanned out instead of run here
(`worker.process.fanout`): this job ends once its segment jobs and merge job are queued, and
`worker.process.parts` runs those on any worker.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from redis.exceptions import RedisError
from rq import get_current_job

from rife_core.errors import CancelledError, LimitExceededError
from worker.process.fanout import FanOut, fan_out
from worker.process.faults import fault_point
from worker.process.runtime import Runtime, get_runtime
from worker.shared import metrics as job_metrics
from worker.shared import process_log
from worker.shared.failures import CANCELLED, classify, public_message
from worker.shared.fetch import fetch_to_file
from worker.shared.queue import request_store
from worker.shared.request_log import LevelShorthands, RequestLog, fal_level
from worker.shared.requests import Claim, Failure, RequestRecord, StartOutcome
from worker.shared.retrying import until_redis_answers, with_backoff
from worker.shared.storage import StorageError, result_key
from worker.shared.video_input import VideoInput

log = logging.getLogger(__name__)

T = TypeVar("T")

STORAGE_MAX_DELAY_S = 5.0  # longest wait between storage tries: a restarted store is used within seconds


class HandBack(Exception):
    """The worker is stopping and its grace has run out: give the request back to the queue."""


class Superseded(Exception):
    """This run no longer holds its request: it was requeued (this worker was presumed dead) or finished."""


class JobLog(LevelShorthands):
    """The request's log as a job writes it: a line that cannot be written (Redis down) is dropped, not fatal."""

    def __init__(self, request_log: RequestLog) -> None:
        self._log = request_log

    def append(self, message: str, level: str | int = "INFO") -> None:
        try:
            self._log.append(message, level)
        except RedisError as e:
            log.warning("request log line dropped (%s): %s", type(e).__name__, message)


class ProgressLog:
    """Turns pipeline progress callbacks into at most one log line per `interval_s` (plus the last)."""

    def __init__(self, request_log: JobLog, interval_s: float = 1.0) -> None:
        self._log = request_log
        self._interval_s = interval_s
        self._last = 0.0

    def __call__(self, progress: Any) -> None:
        now = time.monotonic()
        if progress.frames_done < progress.frames_total and now - self._last < self._interval_s:
            return
        self._last = now
        self.emit(progress)

    def emit(self, progress: Any) -> None:
        """One progress line (a fanned-out request's segments sum theirs: `parts.SegmentProgress`)."""
        self._log.info(f"Interpolated {progress.frames_done}/{progress.frames_total} frames ({progress.fps:.1f} frames/s)")


class CancelCheck:
    """The pipeline's `should_cancel`, asked between every batch; also where a job learns it must stop.

    Reads the request's cancel flag and current run at most every `interval_s`. Raises HandBack
    once the worker's stop grace has run out, and Superseded when the request no longer belongs to
    this run. A Redis error keeps the last answer: an outage must not kill a running job.
    """

    def __init__(self, runtime: Runtime, request_id: str, claim: Claim | None = None, interval_s: float = 0.2) -> None:
        self._runtime = runtime
        self._store = runtime.store
        self._id = request_id
        self._claim = claim
        self._interval_s = interval_s
        self._checked_at = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        if self._runtime.must_hand_back:
            raise HandBack("the worker is stopping")
        now = time.monotonic()
        if not self._cancelled and now - self._checked_at >= self._interval_s:
            self._checked_at = now
            try:
                self._cancelled, current = self.read_state()
            except RedisError:
                return self._cancelled
            if self._claim is not None and current != self._claim:
                raise Superseded(f"request {self._id} was taken back from this run")
        return self._cancelled

    def read_state(self) -> tuple[bool, Claim | None]:
        """(cancel requested, the run that holds the request now)."""
        return self._store.run_state(self._id)


@process_log.request_scoped()
def run_request(request_id: str) -> None:
    """RQ job function: process one request end to end."""
    runtime = get_runtime()
    heartbeat = runtime.heartbeat
    if not heartbeat.started:  # run by a plain `rq worker`, not `python -m worker`: beat anyway
        heartbeat.start()
    fault_point("before_run")
    with heartbeat.running(request_id):
        _run(runtime, request_id)


def _run(runtime: Runtime, request_id: str) -> None:
    store = runtime.store
    fault_point("before_mark_started")
    run = uuid.uuid4().hex[:12]  # names this start, so a retry after a lost reply knows it was ours
    try:
        outcome = until_redis_answers(lambda: store.mark_started(request_id, runtime.name, run))
    except RedisError as e:
        # Still queued in our records: the reaper finds it without a queue entry and puts it back.
        log.error("request %s: could not mark it started (%s); leaving it to the reaper", request_id, type(e).__name__)
        return
    fault_point("after_mark_started")
    if outcome is StartOutcome.CANCELLED:
        _finish(runtime, request_id, failure=CANCELLED)
        return
    if outcome is StartOutcome.GONE:
        log.info("request %s is gone or finished; skipping", request_id)
        return
    try:
        record = until_redis_answers(lambda: store.get(request_id))
    except RedisError as e:
        log.error("request %s: could not read it (%s); leaving it to the reaper", request_id, type(e).__name__)
        return
    if record is None:
        return
    claim = Claim(runtime.name, record.attempt)
    best_effort(lambda: job_metrics.job_started(runtime.redis, runtime.settings.rq_queue, record))
    request_log = JobLog(store.log(request_id))
    request_log.info(f"Processing on {runtime.name}" + (f" (run {record.attempt})" if record.attempt > 1 else ""))
    try:
        with runtime.job_dir(request_id) as tmp:
            processed = _process(runtime, record, tmp, request_log, claim)
        if processed is None:
            return  # fanned out: its parts run as jobs of their own (worker.process.parts)
        result, metrics = processed
    except Superseded:
        log.warning("request %s was taken back from this run (presumed dead); dropping the run", request_id)
        return
    except (HandBack, KeyboardInterrupt, SystemExit) as exc:
        hand_back(runtime, request_id, claim, request_log)
        if not isinstance(exc, Exception):
            raise  # cold shutdown: RQ goes on stopping; the request is requeued on the way out
        return
    except RedisError as exc:
        # Not the request's fault: the run is dropped and the reaper requeues it (our heartbeat stops naming it).
        log.error("request %s: Redis failed under the run (%s); leaving it to the reaper to requeue", request_id, type(exc).__name__)
        return
    except BaseException as exc:
        failure = classify(exc, job_timeout_s=job_timeout_s(runtime))
        if failure.http_status >= 500:
            log.exception("request %s failed", request_id)
        request_log.error(failure.message)
        _finish(runtime, request_id, failure=failure, claim=claim)
        if not isinstance(exc, Exception):
            raise
        return
    request_log.info("Done.")
    fault_point("before_finish")
    _finish(runtime, request_id, result=result, metrics=metrics, claim=claim)
    fault_point("after_finish")


def best_effort(call: Callable[[], object]) -> None:
    """Bookkeeping (metrics) that a Redis outage may skip: a job must not fail over a counter."""
    try:
        call()
    except RedisError as e:
        log.warning("metrics not recorded (Redis unavailable: %s)", type(e).__name__)


def job_timeout_s(runtime: Runtime) -> int:
    """The time limit RQ enforces on this job: the API's JOB_TIMEOUT_S when it was enqueued."""
    job = get_current_job()
    return int(job.timeout) if job is not None and job.timeout else runtime.settings.job_timeout_s


def hand_back(runtime: Runtime, request_id: str, claim: Claim, request_log: JobLog) -> None:
    request_log.warn("The worker is shutting down; the request goes back to the queue for another worker.")
    try:
        runtime.store.mark_handed_back(request_id, claim)
    except RedisError:
        log.warning("request %s: hand-back not recorded; it will be requeued as lost", request_id)


def storage_call(runtime: Runtime, request_log: JobLog, what: str, call: Callable[[], T]) -> T:
    """A storage transfer, retried with backoff while storage is down, for up to STORAGE_RETRY_BUDGET_S
    in all (a storage restart takes tens of seconds), and at most STORAGE_ATTEMPTS tries if that is
    set; then StorageError. The request's log says that storage is being waited for."""
    settings = runtime.settings
    attempts = settings.storage_attempts or None
    budget_s = settings.storage_retry_budget_s
    started = time.monotonic()

    def on_retry(attempt: int, error: BaseException, delay: float) -> None:
        waited = time.monotonic() - started
        log.warning("%s failed (try %d): %s; storage unavailable, waited %.1f s of %.0f s, retrying in %.1f s",
                    what, attempt, error, waited, budget_s, delay)
        request_log.warn(
            f"{what.capitalize()} failed (try {attempt}): storage is unavailable; waiting for it "
            f"({waited:.0f} s of up to {budget_s:.0f} s so far), next try in {delay:.1f} s."
        )

    return with_backoff(
        call,
        attempts=attempts,
        budget_s=budget_s,
        first_delay_s=settings.storage_backoff_s,
        max_delay_s=STORAGE_MAX_DELAY_S,
        retry_on=(StorageError,),
        on_retry=on_retry,
    )


def _process(
    runtime: Runtime, record: RequestRecord, tmp: Path, request_log: JobLog, claim: Claim
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Run the request; None when it was fanned out to segment jobs instead (`worker.process.fanout`)."""
    settings = runtime.settings
    source = tmp / "input"
    request = VideoInput.from_stored(record.input)
    if record.input_key:
        input_key = record.input_key
        storage_call(runtime, request_log, "reading the input", lambda: runtime.storage.get_file(input_key, source))
        stem = "video"
    else:
        request_log.info("Downloading input video")
        fetched = fetch_to_file(
            request.video_url, source, policy=runtime.address_policy, max_bytes=settings.max_input_bytes, timeout_s=settings.fetch_timeout_s
        )
        request_log.info(f"Downloaded {fetched.size} bytes")
        stem = fetched.name
    split = fan_out(runtime, record, request, source, stem, claim, request_log,
                    lambda what, call: storage_call(runtime, request_log, what, call))
    if split is FanOut.SPLIT:
        return None
    if split is FanOut.CANCELLED:
        raise CancelledError("cancelled before its segments were queued")
    if split is FanOut.LOST:
        raise Superseded(f"request {record.id} was taken back from this run")
    output = tmp / f"output{request.output_format().extension}"
    started = time.monotonic()
    video = runtime.engine.run(
        source,
        output,
        request,
        progress=ProgressLog(request_log),
        log=lambda level, message: request_log.append(message, fal_level(level)),
        should_cancel=CancelCheck(runtime, record.id, claim),
    )
    best_effort(lambda: job_metrics.frames_done(runtime.redis, settings.rq_queue, video))
    request_log.info(
        f"Wrote {video.output_frames} frames at {float(video.output_fps):.3f} fps "
        f"(inference {video.inference_s:.2f} s, total {time.monotonic() - started:.2f} s)"
    )
    return store_result(runtime, record, output, video, stem, request_log), {"inference_time": round(float(video.inference_s), 4)}


def store_result(runtime: Runtime, record: RequestRecord, output: Path, video: Any, stem: str, request_log: JobLog) -> dict[str, Any]:
    """Upload a finished output (after the MAX_OUTPUT_BYTES check) and build the request's result."""
    settings = runtime.settings
    size = output.stat().st_size
    if settings.max_output_bytes and size > settings.max_output_bytes:
        raise LimitExceededError(f"the output is {size} bytes; the limit is {settings.max_output_bytes}", limit="output_too_large")
    # The container the engine wrote (the request's `output`); engines that do not say wrote fal's MP4.
    file_name = f"{stem}_rife{getattr(video, 'file_extension', '.mp4')}"
    stored = storage_call(
        runtime,
        request_log,
        "storing the result",
        lambda: runtime.storage.put_file(
            output,
            result_key(runtime.storage, record.id, file_name),
            content_type=getattr(video, "content_type", "video/mp4"),
            file_name=file_name,
            base_url=record.base_url or settings.public_base_url,
        ),
    )
    result: dict[str, Any] = {"video": stored.as_fal_file(), **media_summary(video)}
    warnings = [public_message(w) for w in getattr(video, "warnings", None) or []]
    if warnings:  # e.g. a truncated input: the client sees it in the result, fal's clients ignore the key
        result["warnings"] = warnings
    return result


def media_summary(video: Any) -> dict[str, Any]:
    """`{"media": {...}}`: frame counts, rates and durations (input's `duration_s`) before and after.

    An extra key of the result (fal's clients ignore keys they do not know). Engines report what
    they know: the input side is left out when an engine (a test stand-in) does not report it.
    """
    out_frames, out_fps = int(video.output_frames), float(video.output_fps)
    media: dict[str, Any] = {"output_frames": out_frames, "output_fps": round(out_fps, 6)}
    if out_fps:
        media["output_duration_s"] = round(out_frames / out_fps, 6)
    in_frames, in_fps = getattr(video, "input_frames", None), getattr(video, "input_fps", None)
    if in_frames is not None and in_fps:
        media.update(input_frames=int(in_frames), input_fps=round(float(in_fps), 6))
        media["duration_s"] = round(int(in_frames) / float(in_fps), 6)
    return {"media": media}


def _finish(
    runtime: Runtime,
    request_id: str,
    *,
    result: dict[str, Any] | None = None,
    failure: Failure | None = None,
    metrics: dict[str, Any] | None = None,
    claim: Claim | None = None,
) -> None:
    """Record the outcome, waiting out a short Redis outage; if Redis stays away, the reaper requeues the request."""
    try:
        finished = until_redis_answers(
            lambda: runtime.store.finish(request_id, result=result, failure=failure, metrics=metrics, claim=claim)
        )
    except RedisError as e:
        log.error("request %s: outcome not recorded (%s); it will be requeued", request_id, type(e).__name__)
        return
    if not finished:
        if claim is not None:
            log.warning("request %s: this run no longer holds it (requeued or finished elsewhere); outcome dropped", request_id)
        return
    best_effort(lambda: job_metrics.job_finished(runtime.redis, runtime.settings.rq_queue, request_id, failure))


@process_log.request_scoped(lambda job, *_args, **_kwargs: job.id)
def on_job_failure(job: Any, connection: Any, exc_type: type, exc_value: BaseException, traceback: Any) -> None:
    """RQ failure callback: record what escaped this worker's run of `run_request` (e.g. a time limit
    hit while recording the outcome).

    Only a run of this worker that still holds its request is finished here. Anything else (RQ found
    another worker's job abandoned, the request was never marked started because Redis was down) is
    the reaper's: it requeues a request whose worker is gone and puts back a queued one that RQ lost,
    instead of failing a request that never ran. A stopping worker's interrupted job is not a failure
    either: its request was handed back and is requeued on the worker's way out.
    """
    if isinstance(exc_value, (HandBack, KeyboardInterrupt, SystemExit, RedisError)):
        return  # a Redis error is not the request's fault: the reaper requeues the run
    runtime = get_runtime()
    store = request_store(connection, runtime.settings)
    claim = store.claim_of(job.id)
    if claim is None or claim.worker != runtime.name:
        log.warning("request %s: RQ job failed outside a run of this worker (%s); left to the reaper", job.id, exc_type.__name__)
        return
    failure = classify(exc_value, job_timeout_s=runtime.settings.job_timeout_s)
    if store.finish(job.id, failure=failure, claim=claim):
        store.log(job.id).error(failure.message)
        job_metrics.job_finished(connection, runtime.settings.rq_queue, job.id, failure)
