"""Service routes: health, the OpenAPI document at `/openapi.json`, and the models on offer."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, Response, get
from redis.exceptions import RedisError
from rq import Worker

from api.models import Health, ModelInfo, ModelList
from api.openapi import openapi_document
from api.services import Services


def _queue_health(services: Services) -> tuple[int, int]:
    services.redis.ping()
    return Worker.count(connection=services.redis, queue=services.queue.queue), services.queue.queue.count


@get("/health", tags=["service"], summary="Liveness and queue health")
async def health(services: Services) -> Response[Health]:
    """200 when Redis answers; 503 otherwise. Also counts workers and queued requests."""
    try:
        workers, queued = await anyio.to_thread.run_sync(_queue_health, services)
    except RedisError:
        return Response(Health(status="unavailable", redis=False, workers=0, queued=0), status_code=503, headers={"Retry-After": "5"})
    return Response(Health(status="ok", redis=True, workers=workers, queued=queued))


@get("/openapi.json", include_in_schema=False)
async def openapi_json(request: Request) -> dict[str, Any]:
    return openapi_document(request.app)


@get("/models", tags=["service"], summary="Models this service knows")
async def models(services: Services) -> ModelList:
    from rife_core.weights import list_models  # the registry only: never torch

    return ModelList(
        default=services.settings.rife_model,
        models=[ModelInfo(name=m.name, version=m.version, license=m.license or "", row=m.row, installed=m.installed) for m in list_models()],
    )
