"""In-process fixtures for the queue and API logic: fakeredis, RQ's SimpleWorker, a stand-in engine.

Nothing here starts a server or loads the model; the real processes are exercised in tests/service.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from rq import Queue, SimpleWorker

from worker.process import runtime as runtime_module
from worker.process.runtime import Runtime
from worker.shared.settings import Settings
from worker.shared.storage import LocalStorage


@dataclass
class FakeResult:
    output_frames: int = 3
    output_fps: float = 50.0
    inference_s: float = 0.25
    wall_s: float = 0.5


class CopyEngine:
    """Copies the input to the output, reporting progress; `behaviour` can replace what it does."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.behaviour: Callable[..., None] | None = None

    def run(self, input_path: Path, output_path: Path, options: Any, *, progress: Any, log: Any, should_cancel: Any) -> FakeResult:
        self.calls.append({"input": input_path.read_bytes(), "options": options})
        log("info", "stand-in engine starting")
        if self.behaviour is not None:
            self.behaviour(should_cancel=should_cancel)
        shutil.copyfile(input_path, output_path)

        @dataclass
        class P:
            frames_done: int
            frames_total: int
            fps: float = 10.0

        for done in (1, 2, 3):
            progress(P(done, 3))
        return FakeResult()


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        storage_backend="local",
        local_storage_dir=str(tmp_path / "storage"),
        rq_queue="unit",
        fetch_allow=("127.0.0.0/8",),
        webhook_retry_delays_s=(),
    )


@pytest.fixture
def engine() -> CopyEngine:
    return CopyEngine()


@pytest.fixture
def runtime(settings: Settings, redis: fakeredis.FakeRedis, engine: CopyEngine) -> Iterator[Runtime]:
    rt = Runtime(settings=settings, redis=redis, storage=LocalStorage(settings), name="unit-worker", engine_override=engine)
    rt.storage.ensure_ready()
    runtime_module.install(rt)
    yield rt
    runtime_module.install(None)


@pytest.fixture
def drain(runtime: Runtime) -> Callable[[], None]:
    """Run every queued job (webhooks first) in this process, then return."""

    def run() -> None:
        queues = [Queue(q, connection=runtime.redis) for q in (runtime.settings.webhook_queue, runtime.settings.rq_queue)]
        SimpleWorker(queues, connection=runtime.redis).work(burst=True)

    return run


class Receiver:
    """A loopback HTTP server recording the JSON bodies POSTed to it (webhooks) and serving files."""

    def __init__(self) -> None:
        self.posts: list[Any] = []
        self.post_headers: list[dict[str, str]] = []
        self.files: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                import json

                length = int(self.headers.get("content-length", 0))
                outer.posts.append(json.loads(self.rfile.read(length)))
                outer.post_headers.append(dict(self.headers.items()))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                code, headers, body = outer.files.get(self.path, (404, {}, b""))
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
