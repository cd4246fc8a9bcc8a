"""Fan-out through the real service: one request split across two worker processes.

Real processes: the API over TLS, two `python -m worker`, redis-server and SeaweedFS (SigV4). The
workers run `standin_engines.SplitEngine` (no torch: its "video" is a small JSON file and its output
one line per output frame, so the merged result is checked line for line), with SPLIT_MIN_S=1 and
SPLIT_SEGMENT_S=1: an input of 20 frames at 10 fps becomes two segments of 10 input frames. With
`gate`, each segment waits after its first frame for a token the test pushes (`<RQ_QUEUE>:gate`), so
the test sees both segments running at once, on both workers, before it lets them finish. Liveness
settings are short (heartbeat 0.3 s, lost after 1.5 s, reaper every 0.5 s) so a killed worker's
segment is back within seconds.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from servicekit import Certs, Stack, start_stack, wait_for

from worker.dev import localstack

HERE = Path(__file__).resolve().parent
NUM_FRAMES = 2
pytestmark = pytest.mark.timeout(180)


class Http:
    """A loopback server: serves `files` on GET (inputs by URL) and records POSTed JSON (webhooks)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.posts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = outer.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_POST(self) -> None:
                outer.posts.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fanout(backends: dict[str, str], certs: Certs, service_logs: Path) -> Iterator[Stack]:
    extra = {
        "RIFE_ENGINE": "standin_engines:SplitEngine",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "SPLIT_MIN_S": "1",
        "SPLIT_SEGMENT_S": "1",
        "WORKER_HEARTBEAT_S": "0.3",
        "WORKER_LOST_AFTER_S": "1.5",
        "REAPER_INTERVAL_S": "0.5",
    }
    with start_stack("fanout", backends, certs, service_logs, workers=2, extra=extra) as stack:
        yield stack


@pytest.fixture
def http() -> Iterator[Http]:
    server = Http()
    yield server
    server.close()


@pytest.fixture
def stack(fanout: Stack) -> Iterator[Stack]:
    with fanout.gate_closed():
        yield fanout


def spec(**kw: Any) -> bytes:
    return json.dumps({"frames": 20, "fps": 10.0, **kw}).encode()


def data_uri(body: bytes) -> str:
    return "data:video/mp4;base64," + base64.b64encode(body).decode()


def expected_lines(frames: int = 20) -> list[str]:
    """The stand-in's output of the whole input (see SplitEngine): what one unsplit run writes."""
    return [f"{i}.{k}" for i in range(frames) for k in range(NUM_FRAMES + 1 if i < frames - 1 else 1)]


def submit(c: httpx.Client, url: str, **params: str) -> str:
    r = c.post("/fal-ai/rife/video", json={"video_url": url, "num_frames": NUM_FRAMES}, params=params)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def status(c: httpx.Client, request_id: str) -> dict[str, Any]:
    r = c.get(f"/fal-ai/rife/requests/{request_id}/status", params={"logs": "1"})
    assert r.status_code in (200, 202), r.text
    return dict(r.json())


def wait_done(c: httpx.Client, request_id: str, timeout_s: float = 60) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    wait_for(lambda: seen.update(status(c, request_id)) or seen["status"] == "COMPLETED", f"{request_id} to complete", timeout_s)
    return seen


def part(stack: Stack, request_id: str, name: str) -> dict[str, str]:
    return stack.record(f"{request_id}__{name}")


def both_running(stack: Stack, request_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Wait until both segments are IN_PROGRESS and past their first frame; their records."""
    def ok() -> bool:
        one, two = part(stack, request_id, "seg1of2"), part(stack, request_id, "seg2of2")
        return one.get("status") == two.get("status") == "IN_PROGRESS" and len(stack.redis.hkeys(f"{stack.queue_name}:request:{request_id}:progress")) == 2

    wait_for(ok, "both segments running", 30)
    return part(stack, request_id, "seg1of2"), part(stack, request_id, "seg2of2")


def temp_objects(stack: Stack) -> list[str]:
    env = stack.env
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=env["S3_BUCKET"], Prefix=f"{env['S3_PREFIX']}tmp/")
    return [o["Key"] for o in listed.get("Contents", [])]


def leftover_keys(stack: Stack, request_id: str) -> list[str]:
    r = stack.redis
    keys = [k.decode() for k in r.scan_iter(f"*{request_id}__*")] + [k.decode() for k in r.scan_iter(f"*{request_id}:progress")]
    keys += [f"splits:{k.decode()}" for k in r.hkeys(f"{stack.queue_name}:splits") if k.decode() == request_id]
    keys += [f"inflight:{k.decode()}" for k in r.hkeys(f"{stack.queue_name}:inflight") if k.decode().startswith(request_id)]
    return keys


def messages(final: dict[str, Any]) -> list[str]:
    return [e["message"] for e in final.get("logs") or []]


def test_one_request_runs_its_segments_on_both_workers_and_gives_one_result(stack: Stack, http: Http):
    http.files["/long.json"] = spec(gate=True)
    with stack.client() as c:
        request_id = submit(c, f"{http.url}/long.json", fal_webhook=f"{http.url}/hook")
        one, two = both_running(stack, request_id)
        workers = {w.name for w in stack.live_workers()}
        assert {one["worker"], two["worker"]} == workers and len(workers) == 2  # one segment on each worker
        running = status(c, request_id)
        assert running["status"] == "IN_PROGRESS"
        assert any(m.startswith("[segment 1/2] Processing on") for m in messages(running))
        assert any(m.startswith("[segment 2/2] Processing on") for m in messages(running))
        assert temp_objects(stack) == [f"{stack.env['S3_PREFIX']}tmp/{request_id}/input"]  # the URL's input, fetched once
        stack.release(2)
        final = wait_done(c, request_id)
        result = c.get(f"/fal-ai/rife/requests/{request_id}").json()
    assert "error" not in final, final
    lines = messages(final)
    assert lines.count("Done.") == 1 and lines.count("Downloading input video") == 1
    progress = [m for m in lines if m.startswith("Interpolated ")]
    total = len(expected_lines())
    assert progress[-1].startswith(f"Interpolated {total}/{total} frames"), progress
    body = httpx.get(result["video"]["url"]).text
    assert body.splitlines() == expected_lines()  # every output frame once, in order
    assert result["media"]["output_frames"] == total and result["video"]["file_name"] == "long_rife.mp4"
    wait_for(lambda: len(http.posts) == 1, "the webhook", 20)
    time.sleep(1.0)
    assert len(http.posts) == 1 and http.posts[0]["status"] == "OK" and http.posts[0]["payload"] == result
    wait_for(lambda: temp_objects(stack) == [], "the temporary objects to go", 10)
    assert leftover_keys(stack, request_id) == []


def test_cancel_mid_way_stops_both_segments(stack: Stack):
    with stack.client() as c:
        request_id = submit(c, data_uri(spec(gate=True)))
        one, two = both_running(stack, request_id)
        assert one["worker"] != two["worker"]
        cancelled_at = time.monotonic()
        assert c.put(f"/fal-ai/rife/requests/{request_id}/cancel").json()["status"] == "CANCELLATION_REQUESTED"
        final = wait_done(c, request_id)
        # No token was pushed: both segments stopped on their own, at their next cancel check.
        wait_for(lambda: all(w.get_state() != "busy" for w in stack.live_workers()), "both workers to stop their segment", 10)
        stopped_s = time.monotonic() - cancelled_at
        result = c.get(f"/fal-ai/rife/requests/{request_id}")
    assert final["error_type"] == result.headers["x-fal-error-type"] == "cancelled"
    print(f"\ncancel: both segments stopped {stopped_s:.2f} s after the cancel call")
    assert stopped_s < 5, stopped_s
    wait_for(lambda: temp_objects(stack) == [] and leftover_keys(stack, request_id) == [], "the reaper to clean up", 15)


def test_failure_of_one_segment_fails_the_request_with_its_error(stack: Stack):
    with stack.client() as c:
        # Segment 1 waits at its gate; segment 2 fails on its first frame.
        request_id = submit(c, data_uri(spec(gate=True, fail_frame=10)))
        final = wait_done(c, request_id)
        wait_for(lambda: all(w.get_state() != "busy" for w in stack.live_workers()), "segment 1 to stop", 10)
        result = c.get(f"/fal-ai/rife/requests/{request_id}")
        # The same damage in a clip short enough to run unsplit gives the same error.
        whole_id = submit(c, data_uri(json.dumps({"frames": 8, "fps": 10.0, "fail_frame": 5}).encode()))
        wait_done(c, whole_id)
        whole = c.get(f"/fal-ai/rife/requests/{whole_id}")
    assert final["error"] == "damaged frame 10" and result.status_code == 422
    assert whole.status_code == result.status_code
    assert whole.headers["x-fal-error-type"] == result.headers["x-fal-error-type"] == "invalid_video"
    assert whole.json()["detail"][0]["msg"] == "damaged frame 5" and result.json()["detail"][0]["loc"] == whole.json()["detail"][0]["loc"]
    assert not any(m.startswith("Done.") for m in messages(final))
    wait_for(lambda: temp_objects(stack) == [] and leftover_keys(stack, request_id) == [], "the clean-up", 15)


def test_sigkill_of_one_segments_worker_reruns_only_that_segment(stack: Stack, http: Http):
    with stack.client() as c:
        request_id = submit(c, data_uri(spec(gate=True)), fal_webhook=f"{http.url}/hook")
        one, two = both_running(stack, request_id)
        by_name = {w.name: w.pid for w in stack.live_workers()}
        victim = next(s for s in stack.workers if s.proc.pid == by_name[one["worker"]])
        os.kill(victim.proc.pid, 9)
        victim.proc.wait(10)
        died = time.monotonic()
        replacement = localstack.start_python("fanout-worker-3", "worker", stack.env, stack.logs / "fanout-worker-3.log")
        stack.workers.append(replacement)
        rerun: dict[str, str] = {}

        def segment_one_rerun() -> bool:
            rerun.update(part(stack, request_id, "seg1of2"))
            return rerun.get("status") == "IN_PROGRESS" and rerun.get("attempt") == "2"

        wait_for(segment_one_rerun, "segment 1 to run again", 60, replacement)
        rerun_s = time.monotonic() - died
        print(f"\nsegment 1's worker SIGKILLed: running again on another worker {rerun_s:.2f} s later (incl. its start-up)")
        assert rerun["worker"] != one["worker"] and rerun["lost"] == "1"
        still = part(stack, request_id, "seg2of2")
        assert (still["worker"], still["attempt"], still.get("lost", "0")) == (two["worker"], "1", "0")  # untouched
        stack.redis.set(f"{stack.queue_name}:gate:open", 1)
        final = wait_done(c, request_id)
        result = c.get(f"/fal-ai/rife/requests/{request_id}").json()
    assert "error" not in final, final
    lines = messages(final)
    assert sum(m.startswith("[segment 1/2] Processing on") for m in lines) == 2
    assert sum(m.startswith("[segment 2/2] Processing on") for m in lines) == 1
    assert any(m.startswith("[segment 1/2] The worker running this request stopped unexpectedly") for m in lines), lines
    assert httpx.get(result["video"]["url"]).text.splitlines() == expected_lines()
    wait_for(lambda: len(http.posts) == 1, "the webhook", 20)
    time.sleep(1.0)
    assert len(http.posts) == 1
    wait_for(lambda: temp_objects(stack) == [] and leftover_keys(stack, request_id) == [], "the clean-up", 15)
