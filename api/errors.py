"""Error responses in the shapes fal's clients understand.

- 422: `{"detail": [{"loc", "msg", "type"}, ...]}`, for our own validation and Litestar's.
- any other HTTP error: `{"detail": "...", "error_type"?: "..."}`; the Python client shows `detail`.
- Redis (or storage) unreachable: 503 with `Retry-After`, never a 500 with a traceback.
- A key at its limit of unfinished requests: 429 `too_many_requests_queued` with `Retry-After`.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.validation import RequestValidationError
from worker.shared.queue import QueueLimitError
from worker.shared.storage import StorageError

log = logging.getLogger("api")

RETRY_AFTER_S = 5
QUEUE_LIMIT_RETRY_AFTER_S = 10


class ApiError(HTTPException):
    """An HTTP error with a fal `error_type` (sent in the body and as `X-Fal-Error-Type`)."""

    def __init__(self, status_code: int, detail: str, error_type: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.error_type = error_type


def _json(body: Any, status_code: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content=body, status_code=status_code, headers=headers, media_type=MediaType.JSON)


def request_validation_handler(_: Request, exc: RequestValidationError) -> Response[Any]:
    return _json({"detail": exc.errors}, 422)


def litestar_validation_handler(_: Request, exc: ValidationException) -> Response[Any]:
    """Litestar's own validation (path and query parameters) in the same 422 shape."""
    items = []
    for extra in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(extra, dict):
            items.append({"loc": [extra.get("source") or "body", extra.get("key") or ""], "msg": extra.get("message", ""), "type": "value_error"})
    if not items:
        items.append({"loc": ["body"], "msg": exc.detail, "type": "value_error"})
    return _json({"detail": items}, 422)


def http_error_handler(_: Request, exc: HTTPException) -> Response[Any]:
    body: dict[str, Any] = {"detail": exc.detail}
    headers = dict(exc.headers or {})
    error_type = getattr(exc, "error_type", None)
    if error_type:
        body["error_type"] = error_type
        headers["X-Fal-Error-Type"] = error_type
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Key")
    return _json(body, exc.status_code, headers)


def unavailable_handler(_: Request, exc: Exception) -> Response[Any]:
    log.warning("backend unavailable: %s: %s", type(exc).__name__, exc)
    what = "storage" if isinstance(exc, StorageError) else "queue"
    return _json(
        {"detail": f"The {what} backend is temporarily unavailable; retry shortly.", "error_type": "service_unavailable"},
        503,
        {"Retry-After": str(RETRY_AFTER_S), "X-Fal-Error-Type": "service_unavailable"},
    )


def queue_limit_handler(_: Request, exc: QueueLimitError) -> Response[Any]:
    return _json(
        {"detail": str(exc), "error_type": "too_many_requests_queued"},
        429,
        {"Retry-After": str(QUEUE_LIMIT_RETRY_AFTER_S), "X-Fal-Error-Type": "too_many_requests_queued"},
    )


def internal_error_handler(_: Request, exc: Exception) -> Response[Any]:
    log.exception("unhandled error", exc_info=exc)
    return _json({"detail": "Internal server error.", "error_type": "internal_error"}, 500, {"X-Fal-Error-Type": "internal_error"})


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    RequestValidationError: request_validation_handler,
    ValidationException: litestar_validation_handler,
    HTTPException: http_error_handler,
    RedisConnectionError: unavailable_handler,
    RedisTimeoutError: unavailable_handler,
    BusyLoadingError: unavailable_handler,
    ReadOnlyError: unavailable_handler,  # a replica during a failover
    StorageError: unavailable_handler,
    QueueLimitError: queue_limit_handler,
    Exception: internal_error_handler,
}
