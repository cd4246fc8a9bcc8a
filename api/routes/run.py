"""Synchronous run: `POST /run/fal-ai/rife/video` queues the request and answers with its result.

`fal_client.run` posts to `https://{FAL_RUN_HOST}/fal-ai/rife/video`, the same path as a queue
submit, so the run host is this API under the `/run` prefix (`FAL_RUN_HOST=host:port/run`). The
job goes through the same queue and workers; this handler only waits, asynchronously, so waiting
clients hold no threads.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import anyio
from litestar import Request, Response, post

from api.auth import Caller
from api.errors import ApiError
from api.models import ENDPOINT_ID, VideoOutput
from api.services import Services
from api.submission import submit
from api.views import REQUEST_ID_HEADER, result_response
from worker.shared.requests import Status

RUN_PATH = f"/run/{ENDPOINT_ID}"
POLL_S = 0.1


@post(
    RUN_PATH,
    status_code=200,
    operation_id="run",
    summary="Interpolate a video and wait for the result",
    description="Same body as the queue submit; answers with the result (or its error) when the job finishes.",
    tags=["run"],
)
async def run_sync(request: Request, services: Services, caller: Caller) -> Response[VideoOutput]:
    body = await request.body()
    base_url = services.base_url(request)
    record, _ = await anyio.to_thread.run_sync(partial(submit, services, body, caller, base_url, None))
    deadline = time.monotonic() + services.settings.sync_timeout_s
    while True:
        status = await anyio.to_thread.run_sync(services.redis.hget, services.store.key(record.id), "status")
        if status is None or status == Status.COMPLETED.value.encode():
            break
        if time.monotonic() > deadline:
            await anyio.to_thread.run_sync(services.queue.cancel, record.id, caller.owner)
            raise ApiError(504, "The request did not finish in time and was cancelled.", "generation_timeout", headers={REQUEST_ID_HEADER: record.id})
        await asyncio.sleep(POLL_S)
    final: Any = await anyio.to_thread.run_sync(services.queue.get, record.id, caller.owner)
    if final is None:
        raise ApiError(500, "The request expired before its result could be read.", "internal_error")
    return result_response(final)
