"""How a job can fail, as clients see it: a message, a stable `error_type`, and an HTTP status.

Errors about the input (an undecodable video, one too long, a URL we cannot download) are the
client's to fix, so their result is a 422 in the same `detail` list shape as a validation error,
blaming `video_url`; everything else is `{"detail", "error_type"}` with its own status. The
`error_type` of a `rife_core` error is passed through verbatim; its message too, except that local
file paths (FFmpeg quotes the worker's temporary path) are cut to their last component.
"""

from __future__ import annotations

import re
from typing import Any

from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from rife_core.errors import CancelledError, RifeError
from rife_core.weights import WeightsError
from worker.fetch import FetchError
from worker.requests import Failure
from worker.storage import StorageError

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


_LOCAL_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.@%+=-]+/)+([\w.@%+=-]+)")


def public_message(message: str) -> str:
    """A job error's message as clients may see it: `/tmp/w-host-1/job-x/input` becomes `input`."""
    return _LOCAL_PATH.sub(lambda m: m.group(1), message)


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
