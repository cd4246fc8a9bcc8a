"""The service as it runs for real: redis-server, SeaweedFS (SigV4 enforced), the API under uvicorn
over TLS with a certificate made here, and worker processes (`python -m worker`).

Servers are started with `worker.dev.localstack` (the same code `make run` uses) on free loopback
ports, once per session, and stopped by the PIDs (process groups) started here, also when a test
or a start-up fails. Two stacks share Redis and S3 on separate RQ queues:
- `real_stack`: one worker with the real RIFE model and pipeline, for the end-to-end tests;
- `gate_stack`: workers with `standin_engines.GateEngine`, whose jobs wait for a token the test
  pushes, so queue positions, streaming and cancellation can be observed deterministically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servicekit import KEYS, Certs, FalClients, Stack, make_certs, start_stack, stop_group

from worker.dev import localstack

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("tls")
    return make_certs(folder)


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """redis-server and SeaweedFS; yields the environment that points the service at them."""
    data = tmp_path_factory.mktemp("backends")
    started: list[localstack.Server] = []
    try:
        redis = localstack.start_redis(data / "redis")
        started.append(redis)
        s3 = localstack.start_seaweedfs(data / "s3", bucket="svc-tests")
        started.append(s3)
        yield {**redis.env, **s3.env}
    finally:
        for server in reversed(started):
            stop_group(server)


@pytest.fixture(scope="session")
def service_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def gate_stack(backends: dict[str, str], certs: Certs, service_logs: Path) -> Iterator[Stack]:
    extra = {
        "RIFE_ENGINE": "standin_engines:GateEngine",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    with start_stack("gate", backends, certs, service_logs, workers=1, extra=extra) as stack:
        yield stack


@pytest.fixture
def gate(gate_stack: Stack) -> Iterator[Stack]:
    """The gate stack with an empty queue, no tokens, the gate closed, and one worker."""
    with gate_stack.gate_closed():
        yield gate_stack


@pytest.fixture(scope="session")
def real_stack(backends: dict[str, str], certs: Certs, service_logs: Path) -> Iterator[Stack]:
    extra = {"RIFE_DEVICE": "cpu", "MAX_VIDEO_FRAMES": "10"}
    with start_stack("real", backends, certs, service_logs, workers=1, extra=extra) as stack:
        stack.env["PUBLIC_BASE_URL"] = stack.url
        yield stack


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6 frames of carphone_pristine.mp4 (176x144, 29.97 fps): real footage, a few KB."""
    from clips import cut_clip

    from rife_core.samples import sample_clip

    return cut_clip(sample_clip("carphone_pristine.mp4"), tmp_path_factory.mktemp("clips") / "carphone6.mp4", 6)


@pytest.fixture
def fal(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FalClients]:
    """Real fal_client clients pointed at a stack: the module's URL constants patched, the test CA trusted.

    Fresh `SyncClient`/`AsyncClient` objects per test, because a client caches its httpx client
    (and with it the CA bundle) on first use. The zero-code route (env vars set before import) is
    exercised by `test_subscribe_with_environment_only` in a fresh process.
    """
    import fal_client
    import fal_client.client as fc

    def point(stack: Stack, key: str = KEYS[0]) -> FalClients:
        monkeypatch.setenv("SSL_CERT_FILE", str(stack.certs.ca))
        monkeypatch.setattr(fc, "QUEUE_URL_FORMAT", f"https://{stack.host_port}/")
        monkeypatch.setattr(fc, "RUN_URL_FORMAT", f"https://{stack.host_port}/run/")
        return FalClients(fal_client.SyncClient(key=key), fal_client.AsyncClient(key=key))

    return point
