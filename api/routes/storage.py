"""File storage routes: `POST /storage/upload` (a client's input) and `GET /files/...` (local backend).

Uploads let a client send a local file without hosting it: the body is streamed to a temp file
(capped at MAX_INPUT_BYTES) and stored, and the returned URL is what the client passes as
`video_url`. With the local backend, stored files are served here against their HMAC signature.
"""

from __future__ import annotations

import mimetypes
import re
import tempfile
import uuid
from functools import partial
from pathlib import Path

import anyio
from litestar import Request, get, post
from litestar.params import Parameter
from litestar.response import File

from api.auth import Caller
from api.errors import ApiError
from api.models import UploadedFile
from api.services import Services
from worker.shared.storage import LocalStorage, upload_key

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str | None, content_type: str) -> str:
    stem = _UNSAFE.sub("_", Path(name or "").name).strip("._")[:100]
    if not stem:
        stem = "upload" + (mimetypes.guess_extension(content_type) or "")
    return stem


@post(
    "/storage/upload",
    status_code=200,
    operation_id="upload",
    summary="Upload a file to use as video_url",
    description="Send the file as the raw body with its Content-Type; name it with `X-Fal-File-Name` or `?file_name=`.",
    tags=["storage"],
)
async def upload(
    request: Request,
    services: Services,
    caller: Caller,
    file_name: str | None = Parameter(query="file_name", required=False),
) -> UploadedFile:
    max_bytes = services.settings.max_input_bytes
    content_type = (request.headers.get("content-type") or "application/octet-stream").split(";")[0].strip()
    name = safe_file_name(file_name or request.headers.get("x-fal-file-name"), content_type)
    with tempfile.TemporaryDirectory(prefix="rife-upload-") as tmp:
        path = Path(tmp) / "body"
        size = 0
        with path.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(413, f"The upload is larger than the limit of {max_bytes} bytes.", "file_too_large")
                out.write(chunk)
        if size == 0:
            raise ApiError(400, "The upload is empty.", "empty_upload")
        key = upload_key(services.storage, uuid.uuid4().hex, name)
        store = partial(services.storage.put_file, path, key, content_type=content_type, file_name=name, base_url=services.base_url(request))
        stored = await anyio.to_thread.run_sync(store)
    return UploadedFile(url=stored.url, content_type=content_type, file_name=name, file_size=stored.file_size)


@get("/files/{key:path}", include_in_schema=False)
async def serve_file(key: str, services: Services, expires: int, signature: str) -> File:
    storage = services.storage
    if not isinstance(storage, LocalStorage):
        raise ApiError(404, "Not found.")
    path = await anyio.to_thread.run_sync(storage.verify, key.lstrip("/"), expires, signature)
    if path is None:
        raise ApiError(403, "This file URL is invalid or has expired.", "invalid_signature")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return File(path, filename=path.name, media_type=media_type, content_disposition_type="inline")
