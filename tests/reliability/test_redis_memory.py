"""Redis memory per finished request: what stays for RESULT_TTL_S once a request (with a webhook) is done.

Measured on a real redis-server with `MEMORY USAGE` over every key of the database, before and
after N requests ran through the API and a worker (stand-in engine) and their webhooks were
delivered. The target is at most 3 KB per finished request.
"""

from __future__ import annotations

from collections import Counter

import pytest
from redis import Redis
from relkit import HookReceiver, client, data_uri, start_worker, submit, wait_done
from servicekit import wait_for

pytestmark = pytest.mark.timeout(150)

REQUESTS = 30
LIMIT_BYTES = 3 * 1024


def key_bytes(redis: Redis) -> dict[bytes, int]:
    """Every key and its `MEMORY USAGE` (all samples of nested values)."""
    return {key: int(redis.memory_usage(key, samples=0) or 0) for key in redis.scan_iter(count=1000)}


def kind(key: bytes, ids: set[str]) -> str:
    text = key.decode()
    for request_id in ids:
        text = text.replace(request_id, "{id}")
    return text.split(":", 1)[1] if text.startswith("svc-") else text


def test_a_finished_request_keeps_at_most_3_kb_in_redis(crashable, observe):
    stack = crashable.stack
    start_worker(stack)
    redis = stack.redis
    receiver = HookReceiver()
    try:
        with client(stack) as c:
            wait_done(c, submit(c, {"video_url": data_uri(b"sleep:0.01")}), 30)  # warm: queues, registries, metrics keys
            before = key_bytes(redis)
            ids = [submit(c, {"video_url": data_uri(b"sleep:0.01")}, params={"fal_webhook": receiver.url}) for _ in range(REQUESTS)]
            for request_id in ids:
                assert "error" not in wait_done(c, request_id, 60)
            wait_for(lambda: len(receiver.posts) >= REQUESTS, "every webhook", 60)
            jobs = [f"rq:job:{i}" for i in ids] + [f"rq:job:webhook-{i}" for i in ids]
            wait_for(lambda: redis.exists(*jobs) == 0, "RQ's jobs of these requests to go (no stored results)", 30)
    finally:
        receiver.close()
    after = key_bytes(redis)
    grown = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    per_kind = Counter[str]()
    for key, size in grown.items():
        per_kind[kind(key, set(ids))] += size
    per_request = sum(grown.values()) / REQUESTS
    breakdown = {name: round(size / REQUESTS) for name, size in per_kind.most_common()}
    print("bytes per finished request:", round(per_request), breakdown)
    assert per_request <= LIMIT_BYTES, breakdown
    observe(fault="none: memory kept per finished request (webhook delivered)", requests=REQUESTS,
            redis_bytes_per_request=round(per_request), breakdown=breakdown)
