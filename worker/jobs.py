"""The RQ job: fetch the input, interpolate it, upload the result, record how it went.

Every outcome, including failures and cancellation, ends the request COMPLETED through
`RequestStore.finish`, which succeeds once; only that call enqueues the webhook. The job function
itself swallows job errors (they are the client's result, not a crash), so RQ's failure callback
only sees what escaped: a worker that died mid-job (AbandonedJobError) or a Redis outage.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from worker import logjson
from worker import metrics as job_metrics
from worker.engine import JobOptions
from worker.failures import CANCELLED, classify
from worker.fetch import fetch_to_file
from worker.logs import RequestLog, fal_level
from worker.queue import notify_webhook, request_store
from worker.requests import Failure, RequestRecord, StartOutcome
from worker.runtime import Runtime, get_runtime
from worker.storage import result_key

log = logging.getLogger(__name__)


class ProgressLog:
    """Turns pipeline progress callbacks into at most one log line per `interval_s` (plus the last)."""

    def __init__(self, request_log: RequestLog, interval_s: float = 1.0) -> None:
        self._log = request_log
        self._interval_s = interval_s
        self._last = 0.0

    def __call__(self, progress: Any) -> None:
        now = time.monotonic()
        done, total = progress.frames_done, progress.frames_total
        if done < total and now - self._last < self._interval_s:
            return
        self._last = now
        self._log.info(f"Interpolated {done}/{total} frames ({progress.fps:.1f} frames/s)")


class CancelCheck:
    """Reads the cancel flag at most every `interval_s`: the pipeline asks between every batch."""

    def __init__(self, runtime: Runtime, request_id: str, interval_s: float = 0.2) -> None:
        self._store = runtime.store
        self._id = request_id
        self._interval_s = interval_s
        self._checked_at = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._checked_at >= self._interval_s:
            self._checked_at = now
            self._cancelled = self._store.cancel_requested(self._id)
        return self._cancelled


@logjson.request_scoped()
def run_request(request_id: str) -> None:
    """RQ job function: process one request end to end."""
    runtime = get_runtime()
    store = runtime.store
    outcome = store.mark_started(request_id, runtime.name)
    if outcome is StartOutcome.CANCELLED:
        _finish(runtime, request_id, failure=CANCELLED)
        return
    if outcome is StartOutcome.GONE:
        log.info("request %s is gone or finished; skipping", request_id)
        return
    record = store.get(request_id)
    if record is None:
        return
    job_metrics.job_started(runtime.redis, runtime.settings.rq_queue, record)
    request_log = store.log(request_id)
    request_log.info(f"Processing on {runtime.name}")
    try:
        with tempfile.TemporaryDirectory(prefix=f"rife-{request_id[:8]}-") as tmp:
            result, metrics = _process(runtime, record, Path(tmp), request_log)
    except BaseException as exc:
        failure = classify(exc, job_timeout_s=runtime.settings.job_timeout_s)
        if failure.http_status >= 500:
            log.exception("request %s failed", request_id)
        request_log.error(failure.message)
        _finish(runtime, request_id, failure=failure)
        if not isinstance(exc, Exception):
            raise  # worker shutdown: let RQ see it after the request is recorded as failed
        return
    request_log.info("Done.")
    _finish(runtime, request_id, result=result, metrics=metrics)


def _process(runtime: Runtime, record: RequestRecord, tmp: Path, request_log: RequestLog) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = runtime.settings
    source = tmp / "input"
    url = str(record.input.get("video_url", ""))
    if record.input_key:
        runtime.storage.get_file(record.input_key, source)
        stem = "video"
    else:
        request_log.info("Downloading input video")
        fetched = fetch_to_file(
            url, source, policy=runtime.address_policy, max_bytes=settings.max_input_bytes, timeout_s=settings.fetch_timeout_s
        )
        request_log.info(f"Downloaded {fetched.size} bytes")
        stem = fetched.name
    options = JobOptions.from_arguments(record.input)
    output = tmp / "output.mp4"
    started = time.monotonic()
    video = runtime.engine.run(
        source,
        output,
        options,
        progress=ProgressLog(request_log),
        log=lambda level, message: request_log.append(message, fal_level(level)),
        should_cancel=CancelCheck(runtime, record.id),
    )
    job_metrics.frames_done(runtime.redis, settings.rq_queue, video)
    request_log.info(
        f"Wrote {video.output_frames} frames at {float(video.output_fps):.3f} fps "
        f"(inference {video.inference_s:.2f} s, total {time.monotonic() - started:.2f} s)"
    )
    file_name = f"{stem}_rife.mp4"
    stored = runtime.storage.put_file(
        output,
        result_key(runtime.storage, record.id, file_name),
        content_type="video/mp4",
        file_name=file_name,
        base_url=record.base_url or settings.public_base_url,
    )
    return {"video": stored.as_fal_file()}, {"inference_time": round(float(video.inference_s), 4)}


def _finish(
    runtime: Runtime,
    request_id: str,
    *,
    result: dict[str, Any] | None = None,
    failure: Failure | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    if runtime.store.finish(request_id, result=result, failure=failure, metrics=metrics):
        job_metrics.job_finished(runtime.redis, runtime.settings.rq_queue, request_id, failure)
        notify_webhook(runtime.redis, runtime.settings, request_id)


@logjson.request_scoped(lambda job, *_args, **_kwargs: job.id)
def on_job_failure(job: Any, connection: Any, exc_type: type, exc_value: BaseException, traceback: Any) -> None:
    """RQ failure callback: record what escaped `run_request` (e.g. the worker died mid-job)."""
    runtime = get_runtime()
    failure = classify(exc_value, job_timeout_s=runtime.settings.job_timeout_s)
    store = request_store(connection, runtime.settings)
    store.log(job.id).error(failure.message)
    if store.finish(job.id, failure=failure):
        job_metrics.job_finished(connection, runtime.settings.rq_queue, job.id, failure)
        notify_webhook(connection, runtime.settings, job.id)
