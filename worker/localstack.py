"""Local servers the service needs, started on loopback: redis-server, SeaweedFS (S3), the API, a worker.

Used by `make run` (`python -m worker.localstack`, data under `.data/`) and by the test fixtures, so
both start the same servers the same way. Every server is a child process we started ourselves and
stop by PID (SIGTERM, then SIGKILL), also when start-up fails half way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port(limit: int = 50000) -> int:
    """A free loopback TCP port below `limit` (SeaweedFS derives gRPC ports as port + 10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < limit:
            return port
    raise RuntimeError("no free loopback port found")


def find_binary(name: str) -> str:
    """On PATH, else beside this Python (the venv's bin, where `make setup` links fallbacks)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError(f"{name} not found on PATH or in {Path(sys.executable).parent}; run `make setup`")
    return found


@dataclass
class Server:
    """A child process we own, plus what clients need to reach it."""

    name: str
    proc: subprocess.Popen
    url: str
    env: dict[str, str] = field(default_factory=dict)  # settings a client of this server needs
    ports: dict[str, int] = field(default_factory=dict)  # to start it again on the same ports

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def wait_until(check: Callable[[], bool], proc: subprocess.Popen, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout_s} s")


def start_redis(data_dir: Path, port: int | None = None, log: Path | None = None, persist: bool = False) -> Server:
    """redis-server on loopback; `persist` keeps an append-only file in `data_dir` (fsync on every
    write), so that a restart on the same port and folder finds the same data, as production's AOF."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log or data_dir / "redis.log", "ab")
    durability = ["--appendonly", "yes", "--appendfsync", "always"] if persist else ["--appendonly", "no"]
    proc = subprocess.Popen(
        [find_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         *durability, "--dir", str(data_dir), "--daemonize", "no"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server("redis", proc, f"redis://127.0.0.1:{port}/0", {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}, {"redis": port})

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    try:
        wait_until(ping, proc, "redis-server")
    except BaseException:
        server.stop()
        raise
    return server


def start_seaweedfs(data_dir: Path, bucket: str = "rife-video", access_key: str = "rife-local",
                    secret_key: str = "rife-local-secret", s3_port: int | None = None,
                    ports: dict[str, int] | None = None) -> Server:
    """`weed mini` with SigV4 enforced (an identities file), on loopback only, telemetry off.

    `ports` (a previous server's `Server.ports`) starts it again on the same ports and data.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(ports) if ports else {"s3": s3_port or free_port(), "master": free_port(), "volume": free_port(), "filer": free_port()}
    s3_config = data_dir / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "rife", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    weed_dir = data_dir / "weed"
    weed_dir.mkdir(exist_ok=True)
    out = open(data_dir / "seaweedfs.log", "ab")
    proc = subprocess.Popen(
        [find_binary("weed"), "mini", f"-dir={weed_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.config={s3_config}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
         "-s3.port.lance=0", "-master.telemetry=false", f"-s3.port={ports['s3']}",
         f"-master.port={ports['master']}", f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=data_dir)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    env = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": endpoint, "S3_BUCKET": bucket,
           "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key, "S3_REGION": "us-east-1"}
    server = Server("seaweedfs", proc, endpoint, env, ports)

    def bucket_ready() -> bool:
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                          aws_secret_access_key=secret_key, region_name="us-east-1")
        names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
        if bucket not in names:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="_ready", Body=b"ok")
        return True

    try:
        wait_until(bucket_ready, proc, "SeaweedFS", timeout_s=60)
    except BaseException:
        server.stop()
        raise
    return server


def start_python(name: str, module: str, env: dict[str, str], log: Path, url: str = "",
                 ready: Callable[[], bool] | None = None, timeout_s: float = 120.0) -> Server:
    """`python -m module` with extra environment; waits for `ready` when given."""
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env},
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, proc, url, {})
    if ready:
        try:
            wait_until(ready, proc, name, timeout_s)
        except BaseException:
            server.stop()
            raise
    return server


@contextmanager
def stack(data_dir: Path, api_port: int = 8000, workers: int = 1, extra_env: dict[str, str] | None = None
          ) -> Iterator[dict[str, Server]]:
    """Redis + SeaweedFS + API + workers, stopped in reverse order on exit whatever happens."""
    import httpx

    started: list[Server] = []
    try:
        redis = start_redis(data_dir / "redis")
        started.append(redis)
        s3 = start_seaweedfs(data_dir / "s3")
        started.append(s3)
        env = {**redis.env, **s3.env, "API_HOST": "127.0.0.1", "API_PORT": str(api_port),
               "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}", "FETCH_ALLOW": "127.0.0.0/8,localhost",
               "LOCAL_STORAGE_DIR": str(data_dir / "storage"), **(extra_env or {})}
        api_url = f"http://127.0.0.1:{api_port}"
        api = start_python("api", "api", env, data_dir / "api.log", api_url,
                           ready=lambda: httpx.get(f"{api_url}/health", timeout=1).status_code == 200)
        started.append(api)
        for i in range(workers):
            started.append(start_python(f"worker-{i + 1}", "worker", env, data_dir / f"worker-{i + 1}.log"))
        yield {s.name: s for s in started}
    finally:
        for s in reversed(started):
            s.stop()


def main() -> int:
    """`make run`: the whole service on loopback with embedded defaults, until Ctrl-C."""
    data_dir = Path(os.environ.get("RIFE_DATA_DIR", ".data")).resolve()
    port = int(os.environ.get("API_PORT", "8000"))
    print(f"starting redis-server, SeaweedFS, the API on http://127.0.0.1:{port} and one worker (logs in {data_dir})",
          flush=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with stack(data_dir, api_port=port) as servers:
        print(f"ready: API http://127.0.0.1:{port} (try GET /health, POST /fal-ai/rife/video); "
              f"S3 {servers['seaweedfs'].url}; Redis {servers['redis'].url}. Ctrl-C stops everything.", flush=True)
        while not stop["now"]:
            for s in servers.values():
                if s.proc.poll() is not None:
                    print(f"{s.name} exited with code {s.proc.returncode}; see {data_dir}/{s.name}.log", flush=True)
                    stop["now"] = True
            time.sleep(0.5)
    print("stopped all servers", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
