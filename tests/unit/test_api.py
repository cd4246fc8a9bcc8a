"""The API in-process (Litestar's TestClient) over fakeredis, with jobs drained by an in-process worker."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
from litestar.testing import TestClient

from api.app import create_app

BODY = {"video_url": "https://example.com/clip.mp4"}
DATA_BODY = {"video_url": "data:video/mp4;base64," + base64.b64encode(b"tiny video").decode()}
BASE = "http://testserver.local"


@pytest.fixture
def client(settings, redis, runtime):
    with TestClient(create_app(settings, redis=redis)) as c:
        yield c


def submit(client, body=None, **kw):
    r = client.post("/fal-ai/rife/video", json=body or DATA_BODY, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def test_submit_answers_like_fal(client):
    r = client.post("/fal-ai/rife/video", json=DATA_BODY)
    body = r.json()
    rid = body["request_id"]
    assert r.headers["x-fal-request-id"] == rid
    assert body == {
        "status": "IN_QUEUE",
        "request_id": rid,
        "response_url": f"{BASE}/fal-ai/rife/requests/{rid}",
        "status_url": f"{BASE}/fal-ai/rife/requests/{rid}/status",
        "cancel_url": f"{BASE}/fal-ai/rife/requests/{rid}/cancel",
        "logs": None,
        "metrics": {},
        "queue_position": 0,
    }


def test_status_codes_and_bodies_through_the_lifecycle(client, drain):
    first, second = submit(client), submit(client)
    r = client.get(f"/fal-ai/rife/requests/{second['request_id']}/status")
    assert r.status_code == 202 and r.json()["queue_position"] == 1 and r.json()["logs"] is None
    assert r.headers["x-fal-request-id"] == second["request_id"]
    assert client.get(first["response_url"]).status_code == 400  # still queued
    drain()
    for logs in ("0", "false"):
        done = client.get(f"/fal-ai/rife/requests/{first['request_id']}/status", params={"logs": logs})
        assert done.status_code == 200 and done.json()["status"] == "COMPLETED" and done.json()["logs"] is None
        assert "queue_position" not in done.json() and done.json()["metrics"] == {"inference_time": 0.25}
    for logs in ("1", "true"):
        with_logs = client.get(f"/fal-ai/rife/video/requests/{first['request_id']}/status", params={"logs": logs}).json()
        assert {"message", "level", "source", "timestamp"} <= set(with_logs["logs"][0])
    result = client.get(f"/fal-ai/rife/requests/{first['request_id']}")
    assert result.status_code == 200 and result.headers["x-fal-request-id"] == first["request_id"]
    video = result.json()["video"]
    assert set(video) == {"url", "content_type", "file_name", "file_size"} and video["content_type"] == "video/mp4"
    # the local backend's signed URL serves the file; a tampered one does not
    assert client.get(video["url"].removeprefix(BASE)).content == b"tiny video"
    assert client.get(video["url"].removeprefix(BASE).replace("signature=", "signature=0")).status_code == 403


def test_data_uri_input_is_kept_out_of_redis(client, redis, runtime):
    rid = submit(client)["request_id"]
    record = runtime.store.get(rid)
    assert record.input["video_url"] == "data:video/mp4;base64,<10 bytes>" and record.input_key


def test_failed_result_carries_status_error_type_and_header(client, drain, engine):
    from rife_core.errors import TooFewFramesError

    def fail(**_):
        raise TooFewFramesError("needs two frames")

    engine.behaviour = fail
    rid = submit(client)["request_id"]
    drain()
    status = client.get(f"/fal-ai/rife/requests/{rid}/status").json()
    assert status["status"] == "COMPLETED" and status["error"] == "needs two frames" and status["error_type"] == "too_few_frames"
    r = client.get(f"/fal-ai/rife/requests/{rid}")
    assert r.status_code == 422 and r.headers["x-fal-error-type"] == "too_few_frames"
    assert r.json()["detail"][0] == {"loc": ["body", "video_url"], "msg": "needs two frames", "type": "too_few_frames"}


def test_cancel_codes(client, drain):
    rid = submit(client)["request_id"]
    r = client.put(f"/fal-ai/rife/requests/{rid}/cancel")
    assert r.status_code == 202 and r.json() == {"status": "CANCELLATION_REQUESTED"}
    r = client.put(f"/fal-ai/rife/video/requests/{rid}/cancel")
    assert r.status_code == 400 and r.json() == {"status": "ALREADY_COMPLETED"}
    r = client.get(f"/fal-ai/rife/requests/{rid}")
    assert r.status_code == 400 and r.json()["error_type"] == "cancelled"


@pytest.mark.parametrize("method,suffix", [("get", "/status"), ("get", ""), ("put", "/cancel"), ("get", "/status/stream")])
def test_unknown_request_is_404(client, method, suffix):
    r = getattr(client, method)(f"/fal-ai/rife/requests/00000000-0000-0000-0000-000000000000{suffix}")
    assert r.status_code == 404 and "not found" in r.json()["detail"]


@pytest.mark.parametrize(
    "body,loc",
    [
        ({}, ["body", "video_url"]),
        ({**BODY, "num_frames": 0}, ["body", "num_frames"]),
        ({**BODY, "num_frames": 5}, ["body", "num_frames"]),
        ({**BODY, "fps": 61}, ["body", "fps"]),
        ({**BODY, "loop": "sometimes"}, ["body", "loop"]),
        ({**BODY, "seed": 3}, ["body", "seed"]),
    ],
)
def test_validation_errors_are_422_with_fal_shape(client, body, loc):
    r = client.post("/fal-ai/rife/video", json=body)
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == [loc]
    assert {"msg", "type"} <= set(r.json()["detail"][0])


def test_bad_webhook_url_is_422(client):
    r = client.post("/fal-ai/rife/video", json=BODY, params={"fal_webhook": "ftp://x"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "fal_webhook"]


def test_webhook_submit_has_gateway_request_id(client):
    body = submit(client, params={"fal_webhook": "https://example.com/hook"})
    assert body["gateway_request_id"] == body["request_id"]


def test_auth_and_per_key_isolation(settings, redis, runtime):
    keyed = replace(settings, api_keys=("alice-key", "bob-key"))
    with TestClient(create_app(keyed, redis=redis)) as c:
        r = c.post("/fal-ai/rife/video", json=DATA_BODY)
        assert r.status_code == 401 and r.json()["detail"] and r.headers["www-authenticate"] == "Key"
        assert c.post("/fal-ai/rife/video", json=DATA_BODY, headers={"Authorization": "Key wrong"}).status_code == 401
        alice = {"Authorization": "Key alice-key"}
        rid = c.post("/fal-ai/rife/video", json=DATA_BODY, headers=alice).json()["request_id"]
        assert c.get(f"/fal-ai/rife/requests/{rid}/status", headers=alice).status_code == 202
        bob = {"Authorization": "Key bob-key"}
        for method, suffix in (("get", "/status"), ("get", ""), ("put", "/cancel")):
            assert getattr(c, method)(f"/fal-ai/rife/requests/{rid}{suffix}", headers=bob).status_code == 404
        assert c.get("/health").status_code in (200, 503)  # no key needed
        assert runtime.store.get(rid).owner not in ("", "alice-key")  # a fingerprint, never the key


def test_redis_down_is_503_with_retry_after(settings, runtime):
    dead = replace(settings, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with TestClient(create_app(dead)) as c:
        for r in (
            c.post("/fal-ai/rife/video", json=BODY),
            c.get("/fal-ai/rife/requests/x/status"),
            c.put("/fal-ai/rife/requests/x/cancel"),
            c.get("/health"),
        ):
            assert r.status_code == 503 and r.headers["retry-after"]


def test_upload_then_fetch(client):
    r = client.post("/storage/upload", content=b"\x00video bytes", headers={"content-type": "video/mp4", "x-fal-file-name": "../my clip.mp4"})
    assert r.status_code == 200
    body = r.json()
    assert body["file_name"] == "my_clip.mp4" and body["file_size"] == 12
    assert client.get(body["url"].removeprefix(BASE)).content == b"\x00video bytes"
    assert client.post("/storage/upload", content=b"").status_code == 400


def test_sse_stream_sends_changes_and_closes_after_completed(client, drain):
    rid = submit(client)["request_id"]
    events: list[dict] = []

    def read() -> None:
        with client.stream("GET", f"/fal-ai/rife/requests/{rid}/status/stream", params={"logs": "1"}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-fal-request-id"] == rid
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    reader = threading.Thread(target=read)
    reader.start()
    threading.Event().wait(0.5)  # the stream has sent IN_QUEUE (TestClient delivers it all at the end)
    drain()
    reader.join(10)
    assert not reader.is_alive()
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED"
    all_logs = [entry["message"] for e in events for entry in (e["logs"] or [])]
    assert len(all_logs) == len(set(all_logs)) and all_logs  # each line once, across events


def test_sync_run_waits_for_the_result(client, drain):
    out: dict = {}
    caller = threading.Thread(target=lambda: out.setdefault("r", client.post("/run/fal-ai/rife/video", json=DATA_BODY)))
    caller.start()
    deadline = 50
    while deadline and not client.app.state.services.queue.queue.count:
        threading.Event().wait(0.1)
        deadline -= 1
    drain()
    caller.join(10)
    r = out["r"]
    assert r.status_code == 200 and r.json()["video"]["file_size"] == 10 and r.headers["x-fal-request-id"]
    assert client.post("/run/fal-ai/rife/video", json={"num_frames": 3}).status_code == 422


def test_openapi_documents_the_request_with_ranges_and_defaults(client):
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/fal-ai/rife/video"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    props = doc["components"]["schemas"][ref]["properties"]
    assert props["num_frames"] == {**props["num_frames"], "minimum": 1, "maximum": 4, "default": 1}
    assert props["fps"]["maximum"] == 60 and props["use_calculated_fps"]["default"] is True
    assert all(p.get("description") for p in props.values())
    assert doc["components"]["schemas"][ref]["additionalProperties"] is False
    assert "422" in op["responses"] and "/run/fal-ai/rife/video" in doc["paths"]
    assert "/fal-ai/rife/requests/{request_id}/status" in doc["paths"]


def test_importing_the_api_never_imports_torch():
    code = "import sys, api, api.app, api.cli, api.__main__; from api.app import create_app; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_delegates_local_commands_to_rife_core(monkeypatch):
    import types

    from api import cli

    seen: list[list[str]] = []
    fake = types.ModuleType("rife_core.cli")
    fake.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rife_core.cli", fake)
    assert cli.main(["interpolate", "in.mp4", "out.mp4", "--num-frames", "2"]) == 0
    assert cli.main(["models", "list"]) == 0
    assert seen == [["interpolate", "in.mp4", "out.mp4", "--num-frames", "2"], ["models", "list"]]
