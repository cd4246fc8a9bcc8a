"""Helpers of the service tests: TLS material, a running stack (API + workers), waiting."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq import Queue, Worker

from worker.dev import localstack

KEYS = ("svc-key-alice", "svc-key-bob")


def stop_group(server: localstack.Server, grace_s: float = 10.0) -> None:
    """SIGTERM the process we started, then SIGKILL its process group (a worker forks RQ's scheduler)."""
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session=True: the group id is our child's pid
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(5)


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_certs(folder: Path) -> Certs:
    """A test CA and a certificate for 127.0.0.1/localhost that it signed (the fal clients speak https only)."""
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    paths = Certs(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    issued.private_key_pem.write_to_path(str(paths.key))
    with paths.cert.open("wb") as f:
        for pem in issued.cert_chain_pems:
            f.write(pem.bytes())
    return paths


@dataclass
class Stack:
    """One API plus its workers on their own RQ queue."""

    name: str
    url: str  # https://127.0.0.1:PORT
    env: dict[str, str]
    certs: Certs
    logs: Path
    workers: list[localstack.Server] = field(default_factory=list)
    api: localstack.Server | None = None

    @property
    def host_port(self) -> str:
        return self.url.removeprefix("https://")

    @property
    def queue_name(self) -> str:
        return self.env["RQ_QUEUE"]

    @property
    def redis(self) -> Redis:
        return Redis.from_url(self.env["REDIS_URL"])

    def client(self, key: str | None = KEYS[0], **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Key {key}"} if key else {}
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, verify=self.certs.context(), headers=headers, **kwargs)

    def start_worker(self, index: int | None = None) -> localstack.Server:
        index = len(self.workers) + 1 if index is None else index
        name = f"{self.name}-worker-{index}"
        server = localstack.start_python(name, "worker", self.env, self.logs / f"{name}.log")
        self.workers.append(server)
        wait_for(lambda: self.worker_count() >= len(self.workers), f"{name} to register", 180, server)
        return server

    def stop_worker(self, server: localstack.Server) -> None:
        stop_group(server)
        self.workers.remove(server)

    def worker_count(self) -> int:
        return Worker.count(connection=self.redis, queue=Queue(self.queue_name, connection=self.redis))

    def record(self, request_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(f"{self.queue_name}:request:{request_id}")
        return {k.decode(): v.decode() for k, v in raw.items()}

    def release(self, count: int = 1) -> None:
        """Let `count` gated jobs finish (GateEngine)."""
        self.redis.rpush(f"{self.queue_name}:gate", *["go"] * count)

    def live_workers(self) -> list[Worker]:
        """The workers registered on this stack's queue that have not shut down."""
        workers = Worker.all(connection=self.redis, queue=Queue(self.queue_name, connection=self.redis))
        return [w for w in workers if w.death_date is None]

    @contextmanager
    def gate_closed(self) -> Iterator[Stack]:
        """The gate (GateEngine) closed with no tokens for what runs inside; then opened, and the queue
        drained and the workers idle, so the next test starts from an empty stack."""
        gate = (f"{self.queue_name}:gate", f"{self.queue_name}:gate:open")
        self.redis.delete(*gate)
        yield self
        self.redis.set(gate[1], 1)
        wait_for(lambda: Queue(self.queue_name, connection=self.redis).count == 0, "the queue to drain", 30)
        wait_for(lambda: all(w.get_state() != "busy" for w in self.live_workers()), "workers to go idle", 30)
        self.redis.delete(*gate)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()  # whatever the test did: every process this stack started is stopped

    def stop(self) -> None:
        self.redis.set(f"{self.queue_name}:gate:open", 1)  # let held jobs end so workers stop quickly
        for server in reversed(self.workers):
            stop_group(server)
        self.workers.clear()
        if self.api is not None:
            stop_group(self.api)


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30.0, proc: localstack.Server | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with code {proc.proc.returncode} while waiting for {what}")
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def start_stack(name: str, backends: dict[str, str], certs: Certs, logs: Path, workers: int, extra: dict[str, str]) -> Stack:
    port = localstack.free_port()
    env = {
        **backends,
        "RQ_QUEUE": f"svc-{name}",
        "S3_PREFIX": f"svc-{name}/",
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_TLS_CERT": str(certs.cert),
        "API_TLS_KEY": str(certs.key),
        "API_KEYS": ",".join(KEYS),
        "FETCH_ALLOW": "127.0.0.0/8,localhost",
        "SSL_CERT_FILE": str(certs.ca),  # workers fetch our own https URLs (uploads) and trust the test CA
        "LOCAL_STORAGE_DIR": str(logs / f"{name}-storage"),
        "SSE_KEEPALIVE_S": "0.5",
        "WEBHOOK_RETRY_DELAYS_S": "1,1",
        "LOG_LEVEL": "INFO",
        **extra,
    }
    stack = Stack(name, f"https://127.0.0.1:{port}", env, certs, logs)
    try:
        context = certs.context()
        stack.api = localstack.start_python(
            f"{name}-api",
            "api",
            env,
            logs / f"{name}-api.log",
            stack.url,
            ready=lambda: httpx.get(f"{stack.url}/health", verify=context, timeout=1).status_code == 200,
        )
        for _ in range(workers):
            stack.start_worker()
    except BaseException:
        stack.stop()
        raise
    return stack


@dataclass
class FalClients:
    sync: Any
    aio: Any
