"""Process logging: one JSON object per line, carrying the id of the request a line is about.

The API and the workers run as many processes on many machines; the only way to follow one request
across them is a `request_id` field on every line that concerns it, in a shape a log shipper (Loki,
Elasticsearch, CloudWatch) indexes without parsing rules. The id lives in a `ContextVar`, so code
that logs never passes it around: the worker binds it for the duration of a job
(`request_scoped`), the API for the duration of an HTTP request (`bind_from_http_request`), and
every record emitted meanwhile, including those of RQ, uvicorn and libraries, gets it.

`LOG_FORMAT=text` keeps plain lines (the id in brackets) for people reading a terminal.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("rife_request_id", default=None)

F = TypeVar("F", bound=Callable[..., Any])

# LogRecord attributes that are not `extra=` fields (plus what the filter below adds).
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id", "request_tag", "taskName", "color_message"}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id, in the thread (and context) that logs it.

    A handler filter, not a formatter lookup, so the id is taken where the record is made even if a
    handler formats it later; an explicit `extra={"request_id": ...}` wins.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.request_id = request_id
        record.request_tag = f" [{request_id}]" if request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "request_id"?, "exc"?, ...extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_") and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(log_format: str = "json", level: str | int = "INFO", stream: Any = None) -> logging.Handler:
    """Replace the root logger's handlers with one stdout handler in `log_format` (`json`|`text`).

    stdout because container runtimes collect it; one handler on the root, so RQ (which adds its
    own handler only when none is effective) and uvicorn (run with `log_config=None`) propagate
    into it instead of printing their own formats.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    return handler


def bind_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Make `request_id` the id of every line logged from this context on (until reset)."""
    return request_id_var.set(request_id or None)


def request_scoped(get_id: Callable[..., str | None] | None = None) -> Callable[[F], F]:
    """Decorator: run the function with the request id bound, and unbind it afterwards.

    `get_id(*args, **kwargs)` finds the id; by default it is the first positional argument (RQ job
    functions take the request id first). The id is reset on the way out, so a worker's idle lines
    between jobs carry no stale id.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                request_id = get_id(*args, **kwargs) if get_id else (args[0] if args else None)
            except Exception:
                request_id = None
            token = bind_request_id(str(request_id) if request_id else None)
            try:
                return fn(*args, **kwargs)
            finally:
                request_id_var.reset(token)

        return wrapper  # type: ignore[return-value]

    return decorate


async def bind_from_http_request(request: Any) -> None:
    """Litestar `before_request` hook: bind the `{request_id}` path parameter, if the route has one.

    Runs in the task that serves the HTTP request, so the handler's lines and uvicorn's access line
    (emitted when the response starts, in the same task) carry the id. Async on purpose: Litestar
    runs sync hooks in a worker thread, whose context copy would drop the binding. Returns None so
    the handler runs. Duck-typed (`request.path_params`), so this module never imports the web
    framework.
    """
    request_id = getattr(request, "path_params", {}).get("request_id")
    if request_id:
        bind_request_id(str(request_id))


async def bind_from_http_response(response: Any, header: str = "x-fal-request-id") -> Any:
    """Litestar `after_request` hook: bind the id a response names (the submit route creates one)."""
    headers = getattr(response, "headers", None) or {}
    request_id = headers.get(header)
    if request_id and request_id_var.get() is None:
        bind_request_id(str(request_id))
    return response
