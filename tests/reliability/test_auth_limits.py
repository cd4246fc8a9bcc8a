"""No way in without a key, no way into another key's requests, and no key can flood the service.

On the guard stack: RATE_LIMIT_REQUESTS=100 per RATE_LIMIT_WINDOW_S=3, MAX_QUEUED_PER_KEY=3, and
the stand-in engine holds each job until released, so requests stay unfinished while we look.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter

import httpx
import pytest
from relkit import ALL_KEYS, DECOY_KEY, SUBMIT, client, data_uri, submit, wait_done
from servicekit import Stack

from api import auth
from worker.shared.settings import Settings

pytestmark = pytest.mark.timeout(120)

ALICE, BOB, CAROL, DAVE = ALL_KEYS
GATE = data_uri(b"gate")


def _request_routes(request_id: str) -> list[tuple[str, str]]:
    routes = []
    for base in (f"/fal-ai/rife/requests/{request_id}", f"/fal-ai/rife/video/requests/{request_id}"):
        routes += [("GET", f"{base}/status"), ("GET", f"{base}/status/stream"), ("GET", base), ("PUT", f"{base}/cancel")]
    return routes


def test_every_keyed_route_needs_a_valid_key(guard: Stack):
    keyed = [("POST", SUBMIT), ("POST", "/run/fal-ai/rife/video"), ("POST", "/storage/upload"), *_request_routes("x")]
    for key in (None, DECOY_KEY, ALICE[:-1], ALICE + "x", ALICE.upper()):
        with client(guard, key=key) as c:
            for method, path in keyed:
                r = c.request(method, path, json={"video_url": GATE})
                assert r.status_code == 401, (key, method, path, r.status_code)
                assert r.headers["www-authenticate"] == "Key" and (key is None or key not in r.text)


def test_another_keys_request_is_invisible_on_every_route(guard: Stack, observe):
    with client(guard, key=ALICE) as alice, client(guard, key=BOB) as bob:
        request_id = submit(alice, {"video_url": GATE})
        seen = Counter()
        for method, path in _request_routes(request_id):
            r = bob.request(method, path)
            seen[r.status_code] += 1
            assert r.status_code == 404 and r.json()["error_type"] == "request_not_found", (method, path, r.text)
        assert alice.get(f"/fal-ai/rife/requests/{request_id}/status").status_code == 202  # bob's cancel did nothing
        # A file URL is a capability: signed for one object, useless for any other.
        up = alice.post("/storage/upload", content=b"alice's video", headers={"content-type": "video/mp4", "x-fal-file-name": "a.mp4"})
        assert up.status_code == 200
        url = up.json()["url"]
        assert httpx.get(url).content == b"alice's video"
        other_object = url.replace("/a.mp4?", "/b.mp4?")
        assert httpx.get(other_object).status_code == 403
        assert httpx.get(url.split("?")[0]).status_code == 403
        assert alice.put(f"/fal-ai/rife/requests/{request_id}/cancel").status_code == 202
        assert wait_done(alice, request_id)["error_type"] == "cancelled"
    observe(attack="another key's request id on status/stream/result/cancel (both path forms)", requests_tried=sum(seen.values()),
            answered=dict(seen), file_url_with_another_key_path="403", unsigned_file_url="403")


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch):
    """Every configured key is compared, as equal-length digests, with hmac.compare_digest."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    settings = Settings(api_keys=("k" * 40, "short", "another-key-of-some-length"))
    for offered in ("short", "k" * 40, "x", "y" * 500):
        calls.clear()
        try:
            auth.authenticate(f"Key {offered}", settings)
        except Exception:
            pass
        assert calls == [(32, 32)] * 3, offered


def test_a_key_over_its_request_rate_gets_429_with_retry_after(guard: Stack, observe):
    codes: Counter[int] = Counter()
    retry_after = None
    with client(guard, key=CAROL) as carol, client(guard, key=ALICE) as alice:
        started = time.monotonic()
        for _ in range(250):  # a fixed window: at most 2 x 100 can pass around a window boundary
            r = carol.get("/fal-ai/rife/requests/unknown/status")
            codes[r.status_code] += 1
            if r.status_code == 429:
                retry_after = int(r.headers["retry-after"])
                assert r.json()["error_type"] == "rate_limited"
                break
        assert retry_after is not None and 1 <= retry_after <= 3, codes
        assert alice.get("/fal-ai/rife/requests/unknown/status").status_code == 404  # other keys are not limited
        time.sleep(retry_after)
        assert carol.get("/fal-ai/rife/requests/unknown/status").status_code == 404  # allowed again
        elapsed = time.monotonic() - started
    observe(attack="request flood from one key (limit 100 per 3 s)", requests_tried=sum(codes.values()), answered=dict(codes),
            retry_after_s=retry_after, recovered_after_s=round(elapsed, 2), server_errors=0)


def test_a_key_at_its_queue_limit_gets_429_until_a_request_finishes(guard: Stack, observe):
    with client(guard, key=DAVE) as dave, client(guard, key=ALICE) as alice:
        ids = [submit(dave, {"video_url": GATE}) for _ in range(3)]
        try:
            over = dave.post(SUBMIT, json={"video_url": GATE})
            assert over.status_code == 429 and over.json()["error_type"] == "too_many_requests_queued"
            assert int(over.headers["retry-after"]) > 0
            other = submit(alice, {"video_url": GATE})  # other keys are not limited by dave's
            assert alice.put(f"/fal-ai/rife/requests/{other}/cancel").status_code == 202
            assert dave.put(f"/fal-ai/rife/requests/{ids[0]}/cancel").status_code == 202
            wait_done(dave, ids[0])
            ids[0] = submit(dave, {"video_url": GATE})  # a slot is free again
        finally:
            for request_id in ids:
                dave.put(f"/fal-ai/rife/requests/{request_id}/cancel")
            for request_id in ids:
                wait_done(dave, request_id)
    observe(attack="one key queueing more than MAX_QUEUED_PER_KEY=3", answered="429 too_many_requests_queued + Retry-After",
            other_keys="unaffected")
