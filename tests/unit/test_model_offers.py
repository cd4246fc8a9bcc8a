"""The service-wide model registry: workers publish what they can run, the API lists and accepts that."""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient

from api.app import create_app
from worker.process.liveness import Heartbeat
from worker.shared.model_offers import ModelOffer, cluster_offers, installed_offers
from worker.shared.queue import request_store

BODY = {"video_url": "https://example.com/clip.mp4"}


def offer(name: str, row: str = "4.0") -> ModelOffer:
    return ModelOffer(name=name, version=row, row=row, sha256="ab" * 32, license="MIT",
                      qualities=("fast", "best"))


def publish(redis, settings, worker: str, offers: list[ModelOffer]) -> Heartbeat:
    beat = Heartbeat(redis, request_store(redis, settings), settings, worker)
    beat.offer(offers)
    return beat


@pytest.fixture
def client(settings, redis, runtime):
    with TestClient(create_app(settings, redis=redis)) as c:
        yield c


def test_installed_offers_describe_the_local_weights():
    (builtin,) = [o for o in installed_offers() if o.name == "rife-4.0"]  # `make setup` fetched it
    assert (builtin.row, builtin.qualities, builtin.workers) == ("4.0", ("fast", "best"), ())
    assert builtin.sha256.startswith("b234ad8d")


def test_offers_of_live_workers_are_merged_with_their_workers(redis, settings):
    publish(redis, settings, "w1", [offer("rife-4.0"), offer("anime-4.22", "4.22")])
    publish(redis, settings, "w2", [offer("rife-4.0")])
    offers = {o.name: o for o in cluster_offers(redis, settings.rq_queue)}
    assert offers["rife-4.0"].workers == ("w1", "w2") and offers["anime-4.22"].workers == ("w1",)
    assert offers["anime-4.22"].qualities == ("fast", "best")


def test_an_offer_expires_with_its_heartbeat_and_goes_when_the_worker_leaves(redis, settings):
    beat = publish(redis, settings, "w1", [offer("rife-4.0")])
    key = f"{settings.rq_queue}:models:w1"
    ttl_ms = redis.pttl(key)
    assert 0 < ttl_ms <= settings.worker_lost_after_s * 1000
    assert abs(redis.pttl(f"{settings.rq_queue}:alive:w1") - ttl_ms) < 1000  # same expiry as the liveness key
    beat.stop()
    assert cluster_offers(redis, settings.rq_queue) == []


def test_models_route_lists_what_live_workers_offer(client, redis, settings):
    publish(redis, settings, "gpu-1", [offer("rife-4.0"), offer("only-on-workers", "4.22")])
    body = client.get("/models").json()
    models = {m["name"]: m for m in body["models"]}
    assert set(models) == {"rife-4.0", "only-on-workers"}
    assert models["only-on-workers"]["workers"] == ["gpu-1"] and models["only-on-workers"]["installed"] is True
    assert models["rife-4.0"]["qualities"] == ["fast", "best"]


def test_a_model_only_workers_have_is_accepted_and_one_none_has_is_refused(client, redis, settings):
    publish(redis, settings, "gpu-1", [offer("only-on-workers", "4.22")])
    assert client.post("/fal-ai/rife/video", json={**BODY, "model": "only-on-workers"}).status_code == 200
    r = client.post("/fal-ai/rife/video", json={**BODY, "model": "rife-4.0"})  # on this host's disk, but no worker runs it
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "model"] and err["type"] == "model_unknown" and "only-on-workers" in err["msg"]


def test_with_no_live_worker_the_api_falls_back_to_its_own_registry(client):
    body = client.get("/models").json()
    (builtin,) = [m for m in body["models"] if m["name"] == "rife-4.0"]
    assert builtin["workers"] == []
    assert client.post("/fal-ai/rife/video", json={**BODY, "model": "rife-4.0"}).status_code == 200
    assert client.post("/fal-ai/rife/video", json={**BODY, "model": "nope"}).status_code == 422


def test_offers_are_republished_on_every_beat(redis, settings):
    beat = publish(redis, settings, "w1", [offer("rife-4.0")])
    redis.delete(f"{settings.rq_queue}:models:w1")  # e.g. Redis restarted empty
    time.sleep(0.01)
    beat.beat()
    assert [o.name for o in cluster_offers(redis, settings.rq_queue)] == ["rife-4.0"]
