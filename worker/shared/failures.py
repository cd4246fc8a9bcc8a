"""How a job can fail, as clients see it: a message, a stable `error_type`, and an HTTP status.

Errors about the input (an undecodable video, one too long, a URL we cannot download) are the
client's to fix, so their result is a 422 in the same `detail` list shape as a validation error,
blaming `video_url`; everything else is `{"detail", "error_type"}` with its own status. The
`error_type` of a `rife_core` error is passed through verbatim; its message too, in the user's
words: local file paths (FFmpeg quotes the worker's temporary path) become "the video", and errno
numbers and FFmpeg function names are cut out. An FFmpeg error that escaped the pipeline is about
the media, so it is the client's 422 `invalid_video` too, never a 500.
"""

from __future__ import annotations

import re
from typing import Any

from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from rife_core.errors import CancelledError, RifeError
from rife_core.weights import WeightsError
from worker.shared.fetch import FetchError
from worker.shared.requests import Failure
from worker.shared.storage import StorageError

CANCELLED = Failure("The request was cancelled.", CancelledError.error_type, 400)
WORKER_LOST = Failure("The worker running this request stopped unexpectedly; please retry.", "worker_lost", 503)
WORKER_SHUTDOWN = Failure("The worker was shut down while running this request; please retry.", "worker_shutdown", 503)
INTERNAL = Failure("Internal error while processing the video.", RifeError.error_type, 500)
STORAGE = Failure("Storage is unavailable: the video could not be stored or read; please retry.", "storage_error", 503)


def worker_lost(runs: int) -> Failure:
    """The request's runs died with their worker `runs` times (MAX_JOB_ATTEMPTS): give up on it."""
    plural = "s" if runs != 1 else ""
    return Failure(
        f"The worker running this request stopped unexpectedly ({runs} time{plural}); giving up. Please retry.",
        WORKER_LOST.error_type,
        WORKER_LOST.http_status,
    )


def queue_timeout(queue_ttl_s: int) -> Failure:
    """The request waited QUEUE_TTL_S without a worker taking it: it is dropped, and its client told so."""
    return Failure(
        f"The request waited in the queue longer than the limit of {queue_ttl_s} s without starting; please retry.",
        "queue_timeout",
        503,
    )


_LOCAL_PATH = re.compile(r"""(?<![\w:/.])['"]?/(?:[\w.@%+=-]+/)+[\w.@%+=-]+['"]?""")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
# FFmpeg's function names and return codes: "'avcodec_send_packet()' returned 22"
_FFMPEG_CALL = re.compile(r"""[:,]?\s*['"]?\b(?:av|avcodec|avformat|avio|avfilter|sws|swr)_\w+\(\)['"]?(?:\s+returned\s+-?\d+)?""")
MEDIA_ERROR = Failure("The video could not be processed: its data is invalid or unsupported.", "invalid_video", 422)


def public_message(message: str) -> str:
    """A job error's message as clients may see it: `/tmp/w-host-1/job-x/input` becomes `the video`,
    `[Errno 22] ...` loses its number, `'avcodec_send_packet()' returned 22` goes."""
    message = _LOCAL_PATH.sub("the video", message)
    message = _ERRNO.sub("", message)
    message = _FFMPEG_CALL.sub("", message)
    return re.sub(r"\s*:\s*$", "", message).strip()


def _is_media_library_error(exc: BaseException) -> bool:
    """An exception of PyAV's (FFmpeg's): checked by module so that the API, which imports this
    module, needs no PyAV."""
    return any(cls.__module__.split(".")[0] == "av" for cls in type(exc).__mro__)


def classify(exc: BaseException, *, job_timeout_s: int | None = None) -> Failure:
    """The client-facing failure for an exception raised while running a job."""
    if isinstance(exc, CancelledError):
        return CANCELLED
    if isinstance(exc, JobTimeoutException):
        limit = f" of {job_timeout_s} s" if job_timeout_s else ""
        return Failure(f"Processing exceeded the time limit{limit}.", "generation_timeout", 504)
    if isinstance(exc, AbandonedJobError):
        return WORKER_LOST
    if isinstance(exc, StorageError):
        return STORAGE
    if isinstance(exc, FetchError):
        return Failure(public_message(str(exc)), exc.error_type, 422, field="video_url")
    if isinstance(exc, RifeError):
        if type(exc) is RifeError or exc.error_type == RifeError.error_type:
            return Failure(public_message(str(exc)) or INTERNAL.message, exc.error_type, 500)
        return Failure(public_message(str(exc)), exc.error_type, 422, field="video_url")
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return WORKER_SHUTDOWN
    if _is_media_library_error(exc):
        return MEDIA_ERROR
    if isinstance(exc, WeightsError):
        # The API knew the name but this worker cannot load it (not installed here, or corrupted).
        return Failure(public_message(str(exc)), "model_unavailable", 503)
    return INTERNAL


def failure_body(failure: Failure) -> dict[str, Any]:
    """The JSON body of a failed request's result (also the payload of its ERROR webhook)."""
    if failure.http_status == 422:
        return {
            "detail": [
                {
                    "loc": ["body", failure.field or "video_url"],
                    "msg": failure.message,
                    "type": failure.error_type,
                }
            ],
            "error_type": failure.error_type,
        }
    return {"detail": failure.message, "error_type": failure.error_type}
