"""deploy/healthcheck.py, the probe both images run: against a local HTTP server and fakeredis."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import threading
from collections.abc import Iterator
from types import ModuleType

import fakeredis
import pytest
from deploy_files import DEPLOY
from rq import Queue, SimpleWorker


@pytest.fixture
def probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rife_deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def health_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """A loopback HTTP server answering GET /health with `state['status']`."""
    state = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            code = state["status"] if self.path == "/health" else 404
            self.send_response(code)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", str(server.server_address[1]))
    monkeypatch.delenv("API_TLS_CERT", raising=False)
    monkeypatch.delenv("API_TLS_KEY", raising=False)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_api_probe_is_healthy_on_200(probe: ModuleType, health_server: dict[str, int]):
    assert probe.check_api() is None
    assert probe.main(["api"]) == 0


def test_api_probe_is_unhealthy_on_error_status(probe: ModuleType, health_server: dict[str, int]):
    health_server["status"] = 503
    assert "503" in probe.check_api()
    assert probe.main(["api"]) == 1


def test_api_probe_is_unhealthy_when_nothing_listens(probe: ModuleType, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("API_PORT", str(port))
    assert probe.check_api() is not None


@pytest.fixture
def fake_redis(probe: ModuleType, monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    connection = fakeredis.FakeRedis()
    monkeypatch.setattr(probe, "_redis", lambda: connection)
    return connection


def test_worker_probe_needs_a_registered_worker_from_this_host(
    probe: ModuleType, fake_redis: fakeredis.FakeRedis
):
    assert "no live RQ worker" in probe.check_worker()  # starting: the model is still loading
    worker = SimpleWorker(
        [Queue("rife-video", connection=fake_redis)], connection=fake_redis, name="rife-test-1"
    )
    worker.register_birth()
    assert probe.check_worker() is None
    assert probe.check_worker(hostname="another-host") is not None  # another pod's worker is not ours
    worker.register_death()
    fake_redis.delete(worker.key)
    assert probe.check_worker() is not None


def test_redis_probe(probe: ModuleType, fake_redis: fakeredis.FakeRedis):
    assert probe.check_redis() is None
    assert probe.main(["redis"]) == 0


def test_probes_fail_when_redis_is_down(probe: ModuleType, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    assert probe.check_redis() is not None
    assert probe.check_worker() is not None
    # Liveness: RQ reconnects by itself; a restart would only reload the model.
    assert probe.check_worker_liveness() is None
    assert probe.main(["worker-liveness"]) == 0


def test_worker_liveness_still_fails_for_an_unregistered_worker(
    probe: ModuleType, fake_redis: fakeredis.FakeRedis
):
    assert probe.check_worker_liveness() is not None


def test_usage_errors(probe: ModuleType):
    assert probe.main([]) == 2
    assert probe.main(["bogus"]) == 2
