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


@get("/models", tags=["service"], summary="Models the live workers can run")
async def models(services: Services) -> ModelList:
    """The union of what live workers offer, with the workers of each (see worker.shared.model_offers)."""
    from rife_core.weights import list_models  # the registry only: never torch

    offers = await anyio.to_thread.run_sync(services.offered_models)
    local = {m.name: m.installed for m in list_models()}
    return ModelList(
        default=services.settings.rife_model,
        models=[
            ModelInfo(name=o.name, version=o.version, license=o.license, row=o.row,
                      installed=bool(o.workers) or local.get(o.name, False),
                      qualities=list(o.qualities), workers=list(o.workers))
            for o in offers
        ],
    )
