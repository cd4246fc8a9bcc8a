"""Turning a submit body into a queued request (shared by the queue and the sync run routes).

An inline `data:` video is decoded here and put in storage, and the job gets its storage key:
Redis then holds a few hundred bytes per request instead of a base64 video, and the worker reads
the input from storage instead of over HTTP.
"""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path

from api.auth import Caller
from api.services import Services
from api.validation import RequestValidationError, validate_video_input
from worker.shared.fetch import FetchError, decode_data_uri
from worker.shared.requests import RequestRecord
from worker.shared.storage import input_key


def check_webhook_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        raise RequestValidationError(
            [{"loc": ["query", "fal_webhook"], "msg": "Input should be an http(s) URL", "type": "url_scheme", "input": url}]
        )
    return url


def store_data_uri(services: Services, request_id: str, uri: str, base_url: str) -> tuple[str, str]:
    """Decode an inline video into storage; returns (storage key, a short stand-in for the URI)."""
    try:
        data, media_type = decode_data_uri(uri, services.settings.max_input_bytes)
    except FetchError as e:
        raise RequestValidationError([{"loc": ["body", "video_url"], "msg": str(e), "type": e.error_type}]) from e
    key = input_key(services.storage, request_id)
    with tempfile.TemporaryDirectory(prefix="rife-upload-") as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        services.storage.put_file(path, key, content_type=media_type, file_name="input", base_url=base_url)
    return key, f"data:{media_type};base64,<{len(data)} bytes>"


def submit(services: Services, body: bytes, caller: Caller, base_url: str, webhook_url: str | None) -> tuple[RequestRecord, int]:
    """Validate, store an inline input, write the record and enqueue; returns (record, queue position)."""
    video_input = validate_video_input(body, known_models=lambda: [m.name for m in services.offered_models()])
    if webhook_url:
        check_webhook_url(webhook_url)
    arguments = video_input.to_arguments()
    services.queue.check_queue_limit(caller.owner)  # before an inline video is stored for nothing
    request_id = services.queue.new_id()
    key = None
    if video_input.video_url.startswith("data:"):
        key, arguments["video_url"] = store_data_uri(services, request_id, video_input.video_url, base_url)
    record = services.queue.submit(
        arguments, owner=caller.owner, base_url=base_url, webhook_url=webhook_url or None, input_key=key, request_id=request_id
    )
    return record, services.queue.position(record.id) or 0
