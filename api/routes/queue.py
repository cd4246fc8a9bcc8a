"""The fal queue routes: submit, status, status stream, result, cancel.

Request routes answer both the short form the clients build (`/fal-ai/rife/requests/{id}`) and
the long form (`/fal-ai/rife/video/requests/{id}`). Every request route reads only the caller's
own requests: another key's request id is a 404, exactly like an unknown one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, get, post, put
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from redis.exceptions import RedisError

from api.auth import Caller
from api.errors import ApiError
from api.models import ENDPOINT_ID, CancelStatus, QueueStatus, VideoOutput
from api.services import Services
from api.submission import submit
from api.views import (
    APP_PATH,
    REQUEST_ID_HEADER,
    not_found,
    result_response,
    status_body,
    status_response,
    submitted_body,
    wants_logs,
)
from worker.shared.queue import CancelOutcome
from worker.shared.requests import Snapshot, Status

SUBMIT_PATH = f"/{ENDPOINT_ID}"
REQUEST_PATHS = [f"/{APP_PATH}/requests/{{request_id:str}}", f"/{ENDPOINT_ID}/requests/{{request_id:str}}"]
STREAM_POLL_S = 0.2

LogsParam = Parameter(query="logs", required=False, description="Include logs: `1`/`true` (or `0`/`false`).")


def _paths(suffix: str) -> list[str]:
    return [p + suffix for p in REQUEST_PATHS]


def _operation_id(name: str) -> Callable[..., str]:
    """Unique operation ids for the two path forms of one handler (`status`, `status_long_form`)."""

    def create(_handler: Any, _method: Any, components: list[Any]) -> str:
        return f"{name}_long_form" if "video" in components else name

    return create


@post(
    SUBMIT_PATH,
    status_code=200,
    operation_id="submit",
    summary="Queue a video for interpolation",
    description="Validates the body (422 naming each bad field) and queues it. `?fal_webhook=URL` gets the result POSTed when done.",
    tags=["queue"],
)
async def submit_request(
    request: Request,
    services: Services,
    caller: Caller,
    fal_webhook: str | None = Parameter(query="fal_webhook", required=False, description="URL to POST the outcome to."),
) -> Response[QueueStatus]:
    body = await request.body()
    base_url = services.base_url(request)
    record, position = await anyio.to_thread.run_sync(partial(submit, services, body, caller, base_url, fal_webhook))
    return Response(submitted_body(record, base_url, position), headers={REQUEST_ID_HEADER: record.id})


def _own_snapshot(services: Services, caller: Caller, request_id: str, logs_from: int | None) -> Snapshot:
    snapshot = services.store.snapshot(request_id, services.queue.queue_key, logs_from=logs_from)
    if snapshot is None or snapshot.owner != caller.owner:
        raise not_found(request_id)
    return snapshot


@get(_paths("/status"), operation_id=_operation_id("status"), summary="Status of a request", tags=["queue"])
async def request_status(
    request: Request, request_id: str, services: Services, caller: Caller, logs: str | None = LogsParam
) -> Response[QueueStatus]:
    """202 while IN_QUEUE or IN_PROGRESS, 200 once COMPLETED. One Redis round trip."""
    with_logs = wants_logs(logs)
    snapshot = await anyio.to_thread.run_sync(_own_snapshot, services, caller, request_id, 0 if with_logs else None)
    return status_response(snapshot, services.base_url(request), logs=snapshot.logs)


@get(
    _paths("/status/stream"),
    operation_id=_operation_id("status_stream"),
    summary="Server-sent status events until the request completes",
    description="One `data:` event per change; each carries only the log lines new since the previous event. "
    "Comments `: keep-alive` are sent while nothing changes; the stream ends after COMPLETED.",
    tags=["queue"],
)
async def request_status_stream(
    request: Request, request_id: str, services: Services, caller: Caller, logs: str | None = LogsParam
) -> ServerSentEvent:
    with_logs = wants_logs(logs)
    read = partial(_own_snapshot, services, caller, request_id)
    first = await anyio.to_thread.run_sync(read, 0 if with_logs else None)
    base_url = services.base_url(request)
    return ServerSentEvent(
        _status_events(read, first, base_url, with_logs, services.settings.sse_keepalive_s),
        headers={REQUEST_ID_HEADER: request_id},
    )


async def _status_events(read: Any, first: Snapshot, base_url: str, with_logs: bool, keepalive_s: float) -> AsyncIterator[ServerSentEventMessage]:
    snapshot = first
    logs_seen = 0
    last_state: tuple[Status, int | None] | None = None
    last_sent = time.monotonic()
    while True:
        new_logs = snapshot.logs if with_logs else None
        state = (snapshot.status, snapshot.queue_position)
        if state != last_state or new_logs:
            body = status_body(snapshot, base_url, logs=new_logs)
            yield ServerSentEventMessage(data=msgspec.json.encode(body).decode())
            last_state, last_sent = state, time.monotonic()
            logs_seen += len(new_logs or [])
            if snapshot.status is Status.COMPLETED:
                return
        elif time.monotonic() - last_sent >= keepalive_s:
            yield ServerSentEventMessage(data=None, comment="keep-alive")
            last_sent = time.monotonic()
        await asyncio.sleep(STREAM_POLL_S)
        try:
            snapshot = await anyio.to_thread.run_sync(read, logs_seen if with_logs else None)
        except (RedisError, ApiError):  # Redis went away, or the record expired meanwhile
            return  # the client reconnects or falls back to polling


@get(
    REQUEST_PATHS,
    operation_id=_operation_id("result"),
    summary="Result of a completed request",
    description="The model output; a failed request returns its error with its own status code and `X-Fal-Error-Type`.",
    tags=["queue"],
)
async def request_result(request_id: str, services: Services, caller: Caller) -> Response[VideoOutput]:
    record = await anyio.to_thread.run_sync(services.queue.get, request_id, caller.owner)
    if record is None:
        raise not_found(request_id)
    return result_response(record)


@put(_paths("/cancel"), operation_id=_operation_id("cancel"), summary="Cancel a request", tags=["queue"])
async def cancel_request(request_id: str, services: Services, caller: Caller) -> Response[CancelStatus]:
    """202 CANCELLATION_REQUESTED; 400 ALREADY_COMPLETED; 404 unknown."""
    outcome = await anyio.to_thread.run_sync(services.queue.cancel, request_id, caller.owner)
    if outcome is CancelOutcome.NOT_FOUND:
        raise not_found(request_id)
    code = 202 if outcome is CancelOutcome.REQUESTED else 400
    return Response(CancelStatus(status=outcome.value), status_code=code, headers={REQUEST_ID_HEADER: request_id})  # type: ignore[arg-type]


ROUTES = [submit_request, request_status, request_status_stream, request_result, cancel_request]
