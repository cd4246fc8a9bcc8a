"""Fault injection against the service as it runs for real: redis-server, SeaweedFS, the API (uvicorn,
TLS) and worker processes, started here on loopback and stopped by PID (process group) whatever
happens. Reuses tests/service's helpers (`servicekit`) and stand-in engines.

Stacks (each an API plus workers on its own RQ queue):
- `chaos`: stand-in `ChaosEngine`, liveness tuned short (heartbeat 0.3 s, lost after 1.5 s, reaper
  every 0.5 s, 2 attempts); its tests start and kill their own workers.
- `guard`: stand-in engine, `FETCH_ALLOW=127.0.0.1/32` only (so 127.0.0.2 is "private"), a 2 s
  fetch deadline, a small input limit, tight per-key rate and queue limits.
- `real`: the real model and pipeline, with small job limits, for limits and broken media.
- `fragile`: like chaos, but with its own Redis (append-only, fsync always) and its own SeaweedFS,
  which its tests stop and start again on the same ports.
- `crashable`: like chaos (no workers; each test starts its own, with a fault point), with its own
  Redis (append-only, fsync always) that tests SIGKILL and start again at an exact step of a job.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SERVICE = HERE.parent / "service"
sys.path[:0] = [str(HERE), str(SERVICE)]

from relkit import ALL_KEYS, stop_workers  # noqa: E402
from servicekit import Certs, Stack, make_certs, start_stack, stop_group  # noqa: E402

from worker.dev import localstack  # noqa: E402

ENGINE_PATH = os.pathsep.join([str(HERE), str(SERVICE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)

S3_STOP_GRACE_S = 2.0  # SeaweedFS can take 10 s to exit on SIGTERM; test data need not be flushed

LIVENESS = {"WORKER_HEARTBEAT_S": "0.3", "WORKER_LOST_AFTER_S": "1.5", "REAPER_INTERVAL_S": "0.5", "MAX_JOB_ATTEMPTS": "2"}
CHAOS = {
    "RIFE_ENGINE": "chaos_engines:ChaosEngine",
    "PYTHONPATH": ENGINE_PATH,
    "API_KEYS": ",".join(ALL_KEYS),
    "MAX_OUTPUT_BYTES": "100000",
    "STORAGE_ATTEMPTS": "3",
    "STORAGE_BACKOFF_S": "0.2",
    **LIVENESS,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secrets check goes last: it reads every log the session's servers wrote."""
    last = [item for item in items if "test_secrets_in_logs" in item.nodeid]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("rel-tls")
    return make_certs(folder)


@pytest.fixture(scope="session")
def rel_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every log file of every server these tests start (the secrets test reads them all)."""
    return tmp_path_factory.mktemp("rel-logs")


@pytest.fixture(scope="session")
def observations(rel_logs: Path) -> Iterator[list[dict[str, Any]]]:
    """What the tests measured (recovery times, requests tried, 5xx seen), for RELIABILITY.md.

    Written as JSON to the log folder, and to $RELIABILITY_OBSERVATIONS when set.
    """
    seen: list[dict[str, Any]] = []
    yield seen
    text = json.dumps(seen, indent=1)
    (rel_logs / "observations.json").write_text(text)
    if os.environ.get("RELIABILITY_OBSERVATIONS"):
        Path(os.environ["RELIABILITY_OBSERVATIONS"]).write_text(text)


@pytest.fixture
def observe(observations: list[dict[str, Any]], request: pytest.FixtureRequest) -> Callable[..., None]:
    def add(**values: Any) -> None:
        observations.append({"test": request.node.name, **values})

    return add


@pytest.fixture(scope="session")
def backends(rel_logs: Path) -> Iterator[dict[str, str]]:
    started: list[localstack.Server] = []
    try:
        redis = localstack.start_redis(rel_logs / "redis", log=rel_logs / "redis.log")
        started.append(redis)
        s3 = localstack.start_seaweedfs(rel_logs / "s3", bucket="rel-tests")
        started.append(s3)
        yield {**redis.env, **s3.env}
    finally:
        for server in reversed(started):
            stop_group(server, grace_s=S3_STOP_GRACE_S if server.name == "seaweedfs" else 10.0)


def _stack(name: str, backends: dict[str, str], certs: Certs, logs: Path, workers: int, extra: dict[str, str]) -> Stack:
    tmp = logs / f"{name}-tmp"
    tmp.mkdir(exist_ok=True)
    return start_stack(name, backends, certs, logs, workers=workers, extra={"WORKER_TMP_DIR": str(tmp), **extra})


@pytest.fixture(scope="session")
def chaos_stack(backends: dict[str, str], certs: Certs, rel_logs: Path) -> Iterator[Stack]:
    with _stack("chaos", backends, certs, rel_logs, 0, CHAOS) as stack:
        yield stack


@pytest.fixture
def chaos(chaos_stack: Stack) -> Iterator[Stack]:
    """The chaos stack with no workers, an empty queue and a closed gate; its workers are stopped after the test."""
    r = chaos_stack.redis
    r.delete(f"{chaos_stack.queue_name}:gate", f"{chaos_stack.queue_name}:gate:open")
    try:
        yield chaos_stack
    finally:
        r.set(f"{chaos_stack.queue_name}:gate:open", 1)
        stop_workers(chaos_stack)
        r.delete(f"{chaos_stack.queue_name}:gate", f"{chaos_stack.queue_name}:gate:open")


@pytest.fixture(scope="session")
def guard(backends: dict[str, str], certs: Certs, rel_logs: Path) -> Iterator[Stack]:
    extra = {
        **CHAOS,
        "FETCH_ALLOW": "127.0.0.1/32",
        "FETCH_TIMEOUT_S": "2",
        "MAX_INPUT_BYTES": "200000",
        "RATE_LIMIT_REQUESTS": "100",
        "RATE_LIMIT_WINDOW_S": "3",
        "MAX_QUEUED_PER_KEY": "3",
    }
    with _stack("guard", backends, certs, rel_logs, 1, extra) as stack:
        yield stack


@pytest.fixture(scope="session")
def real(backends: dict[str, str], certs: Certs, rel_logs: Path) -> Iterator[Stack]:
    extra = {
        "RIFE_DEVICE": "cpu",
        "API_KEYS": ",".join(ALL_KEYS),
        "MAX_INPUT_BYTES": "300000",
        "MAX_VIDEO_DURATION_S": "3",
        "MAX_VIDEO_FRAMES": "80",
        "MAX_VIDEO_WIDTH": "320",
        "MAX_VIDEO_HEIGHT": "240",
        "MAX_OUTPUT_FRAMES": "200",
        **LIVENESS,
    }
    with _stack("real", backends, certs, rel_logs, 1, extra) as stack:
        yield stack


class Fragile:
    """A stack with its own Redis and SeaweedFS, which tests take down and bring back on the same ports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.redis_server: localstack.Server | None = None
        self.s3_server: localstack.Server | None = None
        self.stack: Stack | None = None

    def start(self, certs: Certs) -> None:
        self.redis_server = localstack.start_redis(self.folder / "redis", log=self.folder / "redis.log", persist=True)
        self.s3_server = localstack.start_seaweedfs(self.folder / "s3", bucket="fragile")
        env = {**self.redis_server.env, **self.s3_server.env}
        self.stack = _stack("fragile", env, certs, self.folder, 1, CHAOS)

    def stop_redis(self) -> None:
        assert self.redis_server is not None
        stop_group(self.redis_server)

    def start_redis(self) -> None:
        assert self.redis_server is not None
        self.redis_server = localstack.start_redis(
            self.folder / "redis", port=self.redis_server.ports["redis"], log=self.folder / "redis.log", persist=True
        )

    def start_s3(self) -> None:
        assert self.s3_server is not None
        self.s3_server = localstack.start_seaweedfs(self.folder / "s3", bucket="fragile", ports=self.s3_server.ports)

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        for server in (self.s3_server, self.redis_server):
            if server is not None:
                stop_group(server, grace_s=S3_STOP_GRACE_S if server is self.s3_server else 10.0)


@pytest.fixture(scope="session")
def fragile(certs: Certs, rel_logs: Path) -> Iterator[Fragile]:
    folder = rel_logs / "fragile"
    folder.mkdir()
    stack = Fragile(folder)
    try:
        stack.start(certs)
        yield stack
    finally:
        stack.close()


class Crashable:
    """The chaos settings on a stack whose Redis (append-only, fsync always) tests SIGKILL and restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.redis_server: localstack.Server | None = None
        self.stack: Stack | None = None

    def start(self, backends: dict[str, str], certs: Certs) -> None:
        self.redis_server = localstack.start_redis(self.folder / "redis", log=self.folder / "redis.log", persist=True)
        env = {**backends, **self.redis_server.env}
        self.stack = _stack("crashable", env, certs, self.folder, 0, CHAOS)

    def kill_redis(self) -> None:
        """SIGKILL redis-server: a crash, with whatever the append-only file holds."""
        assert self.redis_server is not None
        os.killpg(self.redis_server.proc.pid, signal.SIGKILL)
        self.redis_server.proc.wait(10)

    def start_redis(self) -> None:
        assert self.redis_server is not None
        self.redis_server = localstack.start_redis(
            self.folder / "redis", port=self.redis_server.ports["redis"], log=self.folder / "redis.log", persist=True
        )

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        if self.redis_server is not None:
            stop_group(self.redis_server)


@pytest.fixture(scope="session")
def crashable_stack(backends: dict[str, str], certs: Certs, rel_logs: Path) -> Iterator[Crashable]:
    folder = rel_logs / "crashable"
    folder.mkdir()
    crashable = Crashable(folder)
    try:
        crashable.start(backends, certs)
        yield crashable
    finally:
        crashable.close()


@pytest.fixture
def crashable(crashable_stack: Crashable) -> Iterator[Crashable]:
    """The crashable stack, Redis up, gate open; the test's workers are stopped after it."""
    try:
        yield crashable_stack
    finally:
        assert crashable_stack.stack is not None
        if crashable_stack.redis_server is not None and crashable_stack.redis_server.proc.poll() is not None:
            crashable_stack.start_redis()
        stop_workers(crashable_stack.stack)
