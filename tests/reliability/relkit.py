"""Helpers of the reliability tests: inputs, clients that keep every error body, waiting, worker processes.

Builds on tests/service's `servicekit` (Stack, stop_group, wait_for): the servers are the same
real processes, started the same way, stopped by PID (process group) whatever happens.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq import Worker
from servicekit import KEYS, Stack, stop_group, wait_for

from worker.dev import localstack

SUBMIT = "/fal-ai/rife/video"
ALL_KEYS = (*KEYS, "rel-key-carol", "rel-key-dave")
DECOY_KEY = "rel-decoy-key-9f8e7d6c5b4a"  # a key nobody configured: it must not be echoed or logged


@dataclass
class Exposure:
    """Every error response the tests saw, and every presigned URL signature handed out, for the secrets check."""

    bodies: list[tuple[int, str, str]] = field(default_factory=list)  # (status, url path, body and headers)
    signatures: set[str] = field(default_factory=set)

    def record(self, response: httpx.Response) -> None:
        if "event-stream" in response.headers.get("content-type", ""):
            return
        response.read()
        self.signatures.update(re.findall(r"X-Amz-Signature=([0-9a-f]{64})", response.text))
        if response.status_code >= 300:
            self.bodies.append((response.status_code, response.request.url.path, response.text + str(dict(response.headers))))


EXPOSURE = Exposure()


def data_uri(payload: bytes, media_type: str = "video/mp4") -> str:
    return f"data:{media_type};base64," + base64.b64encode(payload).decode()


def client(stack: Stack, key: str | None = KEYS[0], **kwargs: Any) -> httpx.Client:
    """An httpx client of the stack's API whose error responses are kept for the secrets check."""
    kwargs.setdefault("event_hooks", {"response": [EXPOSURE.record]})
    return stack.client(key, **kwargs)


def submit(c: httpx.Client, body: dict[str, Any], **kw: Any) -> str:
    r = c.post(SUBMIT, json=body, **kw)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def status(c: httpx.Client, request_id: str, logs: bool = False) -> dict[str, Any]:
    r = c.get(f"/fal-ai/rife/requests/{request_id}/status", params={"logs": "1" if logs else "0"})
    assert r.status_code in (200, 202), r.text
    return dict(r.json())


def wait_done(c: httpx.Client, request_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """Poll (10/s, like fal_client) until COMPLETED; the final status body, logs included."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = status(c, request_id)
        if body["status"] == "COMPLETED":
            return status(c, request_id, logs=True)
        time.sleep(0.1)
    raise TimeoutError(f"{request_id} not COMPLETED after {timeout_s} s: {status(c, request_id, logs=True)}")


def record(stack: Stack, request_id: str) -> dict[str, str]:
    return stack.record(request_id)


def wait_record(stack: Stack, request_id: str, check: Callable[[dict[str, str]], bool], what: str, timeout_s: float = 30) -> dict[str, str]:
    seen: dict[str, str] = {}

    def ok() -> bool:
        seen.clear()
        seen.update(stack.record(request_id))
        return check(seen)

    wait_for(ok, f"{request_id}: {what}", timeout_s)
    return seen


def messages(final: dict[str, Any]) -> list[str]:
    return [entry["message"] for entry in final.get("logs") or []]


def rq_worker_name(redis: Redis, pid: int) -> str | None:
    """The RQ name of the worker process with this PID, once it has registered."""
    for w in Worker.all(connection=redis):
        if w.pid == pid and w.death_date is None:
            return str(w.name)
    return None


def start_worker(stack: Stack, **env: str) -> tuple[localstack.Server, str]:
    """One more `python -m worker` for the stack (extra settings in `env`); (server, its RQ name) once registered."""
    index = len(stack.workers) + 1
    name = f"{stack.name}-worker-{index}-{int(time.time() * 1000) % 100000}"
    server = localstack.start_python(name, "worker", {**stack.env, **env}, stack.logs / f"{name}.log")
    stack.workers.append(server)
    found: dict[str, str] = {}

    def registered() -> bool:
        n = rq_worker_name(stack.redis, server.proc.pid)
        if n:
            found["name"] = n
        return bool(n)

    wait_for(registered, f"{name} to register", 120, server)
    return server, found["name"]


def kill_worker(stack: Stack, server: localstack.Server) -> float:
    """SIGKILL the worker's main process (its forked scheduler is reaped later by its group); when it died."""
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    return time.monotonic()


def stop_workers(stack: Stack) -> None:
    for server in list(stack.workers):
        stop_group(server)
        stack.workers.remove(server)


def files_under(folder: Path) -> list[Path]:
    """Every file below `folder` except the live workers' lock files."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


class HookReceiver:
    """A loopback HTTP server that records the JSON bodies POSTed to it (webhooks)."""

    def __init__(self, host: str = "127.0.0.1", status: int = 200) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.posts: list[Any] = []
        self.webhook_ids: list[str] = []  # the X-Webhook-Id header of each POST
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                outer.posts.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
                outer.webhook_ids.append(self.headers.get("X-Webhook-Id", ""))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
