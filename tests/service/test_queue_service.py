"""Queue behaviour over real processes (API over TLS, RQ workers, redis-server, SeaweedFS), with
the gate engine so each job's timing is under the test's control."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import fal_client
import httpx
import pytest
from servicekit import KEYS, Stack, stop_group, wait_for

pytestmark = pytest.mark.timeout(120)

VIDEO = "data:video/mp4;base64," + base64.b64encode(b"gate engine input").decode()


def submit(client: httpx.Client, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    r = client.post("/fal-ai/rife/video", json=body or {"video_url": VIDEO}, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def status(client: httpx.Client, request_id: str, logs: bool = False) -> dict[str, Any]:
    r = client.get(f"/fal-ai/rife/requests/{request_id}/status", params={"logs": "1" if logs else "0"})
    assert r.status_code in (200, 202), r.text
    assert (r.status_code == 200) == (r.json()["status"] == "COMPLETED")
    return r.json()


def wait_status(client: httpx.Client, request_id: str, wanted: str, timeout_s: float = 30) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.update(status(client, request_id))
        return seen["status"] == wanted

    wait_for(check, f"{request_id} to be {wanted}", timeout_s)
    return seen


def test_queue_positions_count_down_behind_a_running_job(gate: Stack):
    with gate.client() as c:
        running = submit(c)["request_id"]
        wait_status(c, running, "IN_PROGRESS")
        second, third = submit(c), submit(c)
        assert second["queue_position"] == 0 and third["queue_position"] == 1
        assert status(c, third["request_id"])["queue_position"] == 1
        gate.release()
        wait_status(c, second["request_id"], "IN_PROGRESS")
        assert status(c, third["request_id"])["queue_position"] == 0
        assert status(c, running)["status"] == "COMPLETED"
        gate.release()
        wait_status(c, third["request_id"], "IN_PROGRESS")
        gate.release()
        done = wait_status(c, third["request_id"], "COMPLETED")
        assert "queue_position" not in done and done["metrics"]["inference_time"] >= 0


def test_sse_stream_reports_each_change_once_and_closes_after_completed(gate: Stack):
    with gate.client() as c:
        blocker = submit(c)["request_id"]  # keeps the worker busy so the next one is seen IN_QUEUE
        wait_status(c, blocker, "IN_PROGRESS")
        request_id = submit(c)["request_id"]
        events: list[dict[str, Any]] = []
        comments: list[str] = []

        def read() -> None:
            with gate.client(timeout=60) as s, s.stream("GET", f"/fal-ai/rife/requests/{request_id}/status/stream", params={"logs": "1"}) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                assert r.headers["x-fal-request-id"] == request_id
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                    elif line.startswith(":"):
                        comments.append(line)

        reader = threading.Thread(target=read)
        reader.start()
        wait_for(lambda: bool(events) and len(comments) >= 1, "the first event and a keep-alive", 10)  # SSE_KEEPALIVE_S=0.5
        gate.release()
        wait_for(lambda: any(e["status"] == "IN_PROGRESS" for e in events), "IN_PROGRESS on the stream", 20)
        gate.release()
        reader.join(30)
        assert not reader.is_alive(), "the server must close the stream after COMPLETED"
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE" and events[0]["queue_position"] == 0
    assert statuses[-1] == "COMPLETED" and statuses.count("COMPLETED") == 1
    assert statuses.index("IN_PROGRESS") < statuses.index("COMPLETED")
    assert comments[0] == ": keep-alive"
    lines = [entry["message"] for e in events for entry in (e["logs"] or [])]
    assert len(lines) == len(set(lines)), "each log line is sent once"
    assert "gate: waiting for release" in lines and "gate: released" in lines and "Done." in lines
    with gate.client() as c:
        assert [x["message"] for x in status(c, request_id, logs=True)["logs"]] == lines


def test_two_workers_drain_one_queue_together(gate: Stack):
    extra = gate.start_worker()
    try:
        with gate.client() as c:
            ids = [submit(c)["request_id"] for _ in range(4)]
            wait_for(lambda: sum(status(c, i)["status"] == "IN_PROGRESS" for i in ids) == 2, "two jobs running at once", 20)
            gate.release(4)
            for i in ids:
                wait_status(c, i, "COMPLETED")
        workers = {gate.record(i)["worker"] for i in ids}
        assert len(workers) == 2
    finally:
        gate.stop_worker(extra)


def test_cancel_queued_and_running_requests_with_fal_client(gate: Stack, fal):
    clients = fal(gate)
    running = clients.sync.submit("fal-ai/rife/video", {"video_url": VIDEO})
    wait_for(lambda: isinstance(running.status(), fal_client.InProgress), "the first request to start", 20)
    queued = clients.sync.submit("fal-ai/rife/video", {"video_url": VIDEO})
    assert isinstance(queued.status(), fal_client.Queued)

    queued.cancel()  # off the queue at once
    done = queued.status()
    assert isinstance(done, fal_client.Completed) and done.error_type == "cancelled"

    clients.sync.cancel("fal-ai/rife/video", running.request_id)  # the engine sees the flag while it works
    wait_for(lambda: isinstance(running.status(), fal_client.Completed), "the running request to stop", 20)
    assert running.status().error_type == "cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as e:
        running.get()
    assert e.value.status_code == 400 and e.value.error_type == "cancelled"

    with gate.client() as c:
        r = c.put(f"/fal-ai/rife/requests/{running.request_id}/cancel")
        assert r.status_code == 400 and r.json() == {"status": "ALREADY_COMPLETED"}
        assert c.put("/fal-ai/rife/requests/00000000-0000-0000-0000-000000000000/cancel").status_code == 404


def test_webhook_receiver_gets_the_payload(gate: Stack):
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        with gate.client() as c:
            queued = submit(c, params={"fal_webhook": hook_url})
            assert queued["gateway_request_id"] == queued["request_id"]
            gate.release()
            wait_status(c, queued["request_id"], "COMPLETED")
            wait_for(lambda: bool(received), "the webhook", 20)
            result = c.get(f"/fal-ai/rife/requests/{queued['request_id']}").json()
        body = received[0]
        assert body["request_id"] == queued["request_id"] and body["gateway_request_id"] == queued["request_id"]
        assert body["status"] == "OK" and body["error"] is None and body["payload"] == result
        time.sleep(0.5)
        assert len(received) == 1
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({}, ["body", "video_url"], "missing"),
        ({"video_url": VIDEO, "num_frames": 0}, ["body", "num_frames"], "greater_than_equal"),
        ({"video_url": VIDEO, "num_frames": 5}, ["body", "num_frames"], "less_than_equal"),
        ({"video_url": VIDEO, "fps": 61}, ["body", "fps"], "less_than_equal"),
        ({"video_url": VIDEO, "num_frames": "two"}, ["body", "num_frames"], "int_type"),
        ({"video_url": VIDEO, "use_scene_detection": "yes"}, ["body", "use_scene_detection"], "bool_type"),
        ({"video_url": ["a"]}, ["body", "video_url"], "string_type"),
        ({"video_url": VIDEO, "strength": 0.5}, ["body", "strength"], "extra_forbidden"),
    ],
)
def test_validation_422_shapes_over_the_wire(gate: Stack, body, loc, type_):
    with gate.client() as c:
        r = c.post("/fal-ai/rife/video", json=body)
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == loc and item["type"] == type_ and item["msg"]


def test_fal_client_sees_422_as_an_error_with_the_detail(gate: Stack, fal):
    with pytest.raises(fal_client.FalClientHTTPError) as e:
        fal(gate).sync.submit("fal-ai/rife/video", {"video_url": VIDEO, "num_frames": 5, "prompt": "x"})
    assert e.value.status_code == 422
    assert {tuple(d["loc"]) for d in e.value.message} == {("body", "num_frames"), ("body", "prompt")}


def test_auth_is_required_and_keys_are_isolated(gate: Stack):
    with gate.client(key=None) as anonymous:
        r = anonymous.post("/fal-ai/rife/video", json={"video_url": VIDEO})
        assert r.status_code == 401 and r.json()["detail"]
        assert anonymous.get("/health").status_code == 200
    with gate.client(key="not-a-key") as wrong:
        assert wrong.post("/fal-ai/rife/video", json={"video_url": VIDEO}).status_code == 401
    with gate.client(KEYS[0]) as alice, gate.client(KEYS[1]) as bob:
        request_id = submit(alice)["request_id"]
        for method, suffix in (("GET", "/status"), ("GET", ""), ("PUT", "/cancel"), ("GET", "/status/stream")):
            assert bob.request(method, f"/fal-ai/rife/requests/{request_id}{suffix}").status_code == 404
        assert alice.get(f"/fal-ai/rife/video/requests/{request_id}/status").status_code == 202
        gate.release()
        wait_status(alice, request_id, "COMPLETED")


def test_upload_then_interpolate_by_url_and_presigned_urls_are_enforced(gate: Stack):
    with gate.client() as c:
        up = c.post("/storage/upload", content=b"uploaded input", headers={"content-type": "video/mp4", "x-fal-file-name": "in.mp4"})
        assert up.status_code == 200
        url = up.json()["url"]
        assert httpx.get(url).content == b"uploaded input"  # a presigned SeaweedFS URL
        request_id = submit(c, {"video_url": url})["request_id"]
        gate.release()
        wait_status(c, request_id, "COMPLETED")
        video = c.get(f"/fal-ai/rife/requests/{request_id}").json()["video"]
    assert httpx.get(video["url"]).content == b"uploaded input" and video["file_name"] == "in_rife.mp4"
    tampered = video["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered).status_code == 403
    unsigned = video["url"].split("?")[0]
    assert httpx.get(unsigned).status_code == 403


def test_redis_down_is_503_never_500(gate: Stack, service_logs):
    from worker.dev import localstack

    env = {**gate.env, "REDIS_URL": f"redis://127.0.0.1:{localstack.free_port()}/0", "API_PORT": str(localstack.free_port())}
    url = f"https://127.0.0.1:{env['API_PORT']}"
    context = gate.certs.context()
    api = localstack.start_python("dead-redis-api", "api", env, service_logs / "dead-redis-api.log", url,
                                  ready=lambda: httpx.get(f"{url}/openapi.json", verify=context, timeout=1).status_code == 200)
    try:
        headers = {"Authorization": f"Key {KEYS[0]}"}
        with httpx.Client(base_url=url, verify=context, headers=headers, timeout=30) as c:
            for r in (
                c.post("/fal-ai/rife/video", json={"video_url": VIDEO}),
                c.get("/fal-ai/rife/requests/x/status"),
                c.get("/fal-ai/rife/requests/x"),
                c.get("/health"),
            ):
                assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    finally:
        stop_group(api)
