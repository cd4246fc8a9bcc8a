"""The Litestar app factory: `api.app:create_app`.

Everything the handlers share (settings, Redis, the queue, storage) is built here once and
injected by name, so a test can hand in its own `Settings`.
"""

from __future__ import annotations

import logging

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from redis import Redis

from api.auth import provide_caller, warn_if_open
from api.errors import EXCEPTION_HANDLERS
from api.routes import meta, metrics, playground, queue, run, storage
from api.services import Services, provide_services, provide_settings
from worker.shared import process_log
from worker.shared.settings import Settings

log = logging.getLogger("api")


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> Litestar:
    """The API app; `redis` replaces the client built from REDIS_URL (unit tests pass a fakeredis)."""
    settings = settings or Settings.from_env()
    services = Services.create(settings, redis=redis)

    def on_startup() -> None:
        warn_if_open(settings)
        if settings.storage_backend == "local":
            services.storage.ensure_ready()

    def on_shutdown() -> None:
        services.redis.close()

    # A submit body may inline the video as base64 (4/3 of its size) plus the other fields.
    max_body = settings.max_input_bytes * 4 // 3 + 1024 * 1024
    return Litestar(
        route_handlers=[*queue.ROUTES, run.run_sync, storage.upload, storage.serve_file, meta.health, meta.openapi_json, meta.models, metrics.metrics, *playground.ROUTES],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "caller": Provide(provide_caller),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=process_log.bind_from_http_request,  # request_id on log lines of request routes
        after_request=process_log.bind_from_http_response,
        logging_config=None,  # logging is the process's (process_log.configure); api.errors logs unhandled errors
        state=State({"services": services}),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        request_max_body_size=max_body,
        openapi_config=OpenAPIConfig(
            title="rife-video",
            version="0.1.0",
            description="Self-hosted RIFE video frame interpolation, compatible with fal's `fal-ai/rife/video` queue API.",
            path="/schema",
        ),
    )
