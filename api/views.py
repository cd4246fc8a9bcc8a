"""Rendering requests as fal responses: status bodies, results, and the URLs clients follow."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response

from api.errors import ApiError
from api.models import ENDPOINT_ID, QueueStatus
from worker.shared.failures import failure_body
from worker.shared.requests import RequestRecord, Snapshot, Status

# Clients build request URLs from owner/alias only (`fal-ai/rife`); the long form is accepted too.
APP_PATH = ENDPOINT_ID.rsplit("/", 1)[0]
REQUEST_ID_HEADER = "x-fal-request-id"


def request_base(base_url: str, request_id: str) -> str:
    return f"{base_url}/{APP_PATH}/requests/{request_id}"


def status_body(snapshot: Snapshot, base_url: str, *, logs: list[dict[str, Any]] | None) -> QueueStatus:
    base = request_base(base_url, snapshot.id)
    body = QueueStatus(
        status=snapshot.status.value,  # type: ignore[arg-type]
        request_id=snapshot.id,
        response_url=base,
        status_url=f"{base}/status",
        cancel_url=f"{base}/cancel",
        logs=logs,  # type: ignore[arg-type]
        metrics=snapshot.metrics if snapshot.status is Status.COMPLETED else {},
    )
    if snapshot.status is Status.IN_QUEUE:
        # None: a worker popped it this instant and has not marked it started yet.
        body.queue_position = snapshot.queue_position or 0
    if snapshot.failure is not None:
        body.error = snapshot.failure.message
        body.error_type = snapshot.failure.error_type
    return body


def status_response(snapshot: Snapshot, base_url: str, *, logs: list[dict[str, Any]] | None) -> Response[QueueStatus]:
    code = 200 if snapshot.status is Status.COMPLETED else 202
    return Response(status_body(snapshot, base_url, logs=logs), status_code=code, headers={REQUEST_ID_HEADER: snapshot.id})


def submitted_body(record: RequestRecord, base_url: str, queue_position: int) -> QueueStatus:
    snapshot = Snapshot(record.id, Status.IN_QUEUE, record.owner, queue_position, None, None, {})
    body = status_body(snapshot, base_url, logs=None)
    if record.gateway_request_id:
        body.gateway_request_id = record.gateway_request_id
    return body


def result_response(record: RequestRecord) -> Response[Any]:
    """The model output of a finished request, or its error with its own status code."""
    headers = {REQUEST_ID_HEADER: record.id}
    if record.status is not Status.COMPLETED:
        raise ApiError(400, "Request is still in progress.", "request_in_progress", headers=headers)
    if record.failure is not None:
        headers["X-Fal-Error-Type"] = record.failure.error_type
        return Response(failure_body(record.failure), status_code=record.failure.http_status, headers=headers, media_type=MediaType.JSON)
    return Response(record.result, status_code=200, headers=headers, media_type=MediaType.JSON)


def not_found(request_id: str) -> ApiError:
    return ApiError(404, f"Request {request_id} not found.", "request_not_found")


def wants_logs(value: str | None) -> bool:
    """`logs` arrives as 1/0 (JS client) or true/false (Python client)."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")
