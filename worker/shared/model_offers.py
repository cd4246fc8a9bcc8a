"""Which models the cluster can run: each live worker publishes its own, the API reads the union.

The API host usually has no weights (the API image carries none), so what it finds on its own disk
says nothing about what the workers can run. Each worker therefore publishes the models installed
where *it* runs, as a key beside its heartbeat (`P:models:{worker}`), rewritten on every beat with
the same expiry: a worker that dies takes its offer with it within WORKER_LOST_AFTER_S. `GET /models`
and the request's `model` check read the union of the live offers, naming the workers of each.

With no live worker (the API started first, or workers scaled to zero while the queue is empty) the
API falls back to the registry on its own disk, so a request naming a model it knows is queued for
the workers that will come; a worker that then cannot load it ends the request `model_unavailable`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis

from rife_core.weights import Weights, list_models


@dataclass(frozen=True)
class ModelOffer:
    """A model as the service shows it: the registry's facts plus the quality modes and who runs it."""

    name: str
    version: str
    row: str
    sha256: str
    license: str
    qualities: tuple[str, ...]
    workers: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, weights: Weights) -> ModelOffer:
        return cls(weights.name, weights.version, weights.row, weights.sha256, weights.license, weights.qualities)


def installed_offers() -> list[ModelOffer]:
    """The models whose weights are present on this host (verified by sha256 when loaded)."""
    return [ModelOffer.of(m) for m in list_models() if m.installed]


def offer_key(namespace: str, worker: str) -> str:
    return f"{namespace}:models:{worker}"


def encode_offers(offers: list[ModelOffer]) -> str:
    return json.dumps([{k: v for k, v in asdict(o).items() if k != "workers"} for o in offers])


def cluster_offers(redis: Redis, namespace: str) -> list[ModelOffer]:
    """The union of the live workers' offers, one per model name, with the workers that offer it."""
    prefix = offer_key(namespace, "")
    keys = sorted(k.decode() if isinstance(k, bytes) else k for k in redis.scan_iter(match=f"{prefix}*", count=500))
    values = redis.mget(keys) if keys else []
    merged: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for key, raw in zip(keys, values, strict=True):
        if raw is None:  # expired between SCAN and MGET
            continue
        worker = key[len(prefix):]
        for item in json.loads(raw):
            entry = merged.setdefault(item["name"], (item, []))
            entry[1].append(worker)
    return [
        ModelOffer(**{**item, "qualities": tuple(item["qualities"]), "workers": tuple(workers)})
        for item, workers in (merged[name] for name in sorted(merged))
    ]
