"""The long-lived objects the API's handlers share, built once per app and injected by Litestar."""

from __future__ import annotations

from litestar import Request
from redis import Redis
from redis.exceptions import RedisError

from worker.shared import redact
from worker.shared.connection import connect_redis
from worker.shared.model_offers import ModelOffer, cluster_offers
from worker.shared.queue import RequestQueue
from worker.shared.requests import RequestStore
from worker.shared.settings import Settings
from worker.shared.storage import LocalStorage, S3Storage, build_storage


class Services:
    # A plain class, not a dataclass: Litestar's signature model would try to validate its fields.
    def __init__(self, settings: Settings, redis: Redis, queue: RequestQueue, storage: S3Storage | LocalStorage) -> None:
        self.settings = settings
        self.redis = redis
        self.queue = queue
        self.storage = storage

    @classmethod
    def create(cls, settings: Settings, redis: Redis | None = None) -> Services:
        redact.install(settings)  # this process holds the keys: scrub them (and signed URLs) from every log line
        redis = redis if redis is not None else connect_redis(settings)
        return cls(settings=settings, redis=redis, queue=RequestQueue(redis, settings), storage=build_storage(settings))

    @property
    def store(self) -> RequestStore:
        return self.queue.store

    def offered_models(self) -> list[ModelOffer]:
        """What the live workers can run; with none alive (or Redis away), the registry on this host
        (see worker.shared.model_offers)."""
        try:
            offers = cluster_offers(self.redis, self.store.namespace)
        except RedisError:
            offers = []
        if offers:
            return offers
        from rife_core.weights import list_models  # the registry only: never imports torch

        return [ModelOffer.of(m) for m in list_models()]

    def base_url(self, request: Request) -> str:
        """Where clients reach this API: PUBLIC_BASE_URL, else the URL this request came in on."""
        return (self.settings.public_base_url or str(request.base_url)).rstrip("/")


def provide_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def provide_settings(request: Request) -> Settings:
    return request.app.state.services.settings  # type: ignore[no-any-return]
