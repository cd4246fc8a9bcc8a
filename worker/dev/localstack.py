"""Local servers the service needs, started on loopback: redis-server, SeaweedFS (S3), the API, a worker.

Used by `make run` (`python -m worker.dev.localstack`, data under `.data/`) and by the test fixtures, so
both start the same servers the same way. Every server is a child process we started ourselves and
stop by PID (SIGTERM, then SIGKILL), also when start-up fails half way.

`make run WORKERS=N` (`--workers N`) starts N worker processes, so a long request can be watched fanning
out across them (SPLIT_MIN_S, SPLIT_SEGMENT_S). `make run TLS=1` (`--tls`) serves the API over https with a certificate from a local certificate
authority made under the data folder (trustme), since fal's official clients speak https only, and
prints the `export` lines after which they reach this stack. The workers may fetch `video_url`s from
loopback (local test servers) but never from the stack's own Redis or SeaweedFS's internal servers
(FETCH_DENY; see `own_ports_denied`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
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


@dataclass(frozen=True)
class LocalTls:
    """A local certificate authority and a server certificate for 127.0.0.1 and localhost (PEM files)."""

    ca: Path  # what clients trust: SSL_CERT_FILE
    cert: Path  # the server's chain: API_TLS_CERT
    key: Path  # API_TLS_KEY


def make_local_tls(folder: Path) -> LocalTls:
    """A fresh CA and server certificate under `folder` (made at each start: nothing to renew)."""
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="rife-video local CA")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    tls = LocalTls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca))
    server.private_key_pem.write_to_path(str(tls.key))
    tls.key.chmod(0o600)
    with tls.cert.open("wb") as f:
        for blob in server.cert_chain_pems:
            f.write(blob.bytes())
    return tls


def own_ports_denied(redis: Server, s3: Server) -> str:
    """FETCH_DENY for the stack's own servers: Redis, and every SeaweedFS port (master, volume and filer
    answer without credentials; the gRPC ports are theirs + 10000), the S3 gateway included. A
    `video_url` still reaches the gateway with a presigned URL of the service's own bucket (how uploads
    come back to the worker): the one exemption `AddressPolicy` makes, as the gateway checks the
    signature; anything else sent to that port is refused before a connection is made."""
    ports = sorted({*redis.ports.values(), *s3.ports.values(), *(p + 10000 for p in s3.ports.values())})
    return ",".join(f"{net}:{port}" for port in ports for net in ("127.0.0.0/8", "[::1]"))


@contextmanager
def stack(data_dir: Path, api_port: int = 8000, workers: int = 1, extra_env: dict[str, str] | None = None,
          tls: LocalTls | None = None) -> Iterator[dict[str, Server]]:
    """Redis + SeaweedFS + API + workers, stopped in reverse order on exit whatever happens.

    With `tls` the API serves https with that certificate and is probed over https."""
    import httpx

    started: list[Server] = []
    try:
        redis = start_redis(data_dir / "redis")
        started.append(redis)
        s3 = start_seaweedfs(data_dir / "s3")
        started.append(s3)
        scheme = "https" if tls else "http"
        api_url = f"{scheme}://127.0.0.1:{api_port}"
        env = {**redis.env, **s3.env, "API_HOST": "127.0.0.1", "API_PORT": str(api_port),
               "PUBLIC_BASE_URL": api_url, "FETCH_ALLOW": "127.0.0.0/8,localhost",
               "FETCH_DENY": own_ports_denied(redis, s3),
               "LOCAL_STORAGE_DIR": str(data_dir / "storage"), **(extra_env or {})}
        verify: ssl.SSLContext | bool = False
        if tls:
            # The workers fetch the API's own https URLs (uploads) and must trust the local CA too.
            env |= {"API_TLS_CERT": str(tls.cert), "API_TLS_KEY": str(tls.key), "SSL_CERT_FILE": str(tls.ca)}
            verify = ssl.create_default_context(cafile=str(tls.ca))
        api = start_python("api", "api", env, data_dir / "api.log", api_url,
                           ready=lambda: httpx.get(f"{api_url}/health", timeout=1, verify=verify).status_code == 200)
        started.append(api)
        for i in range(workers):
            started.append(start_python(f"worker-{i + 1}", "worker", env, data_dir / f"worker-{i + 1}.log"))
        yield {s.name: s for s in started}
    finally:
        for s in reversed(started):
            s.stop()


def export_lines(api_url: str, tls: LocalTls) -> list[str]:
    """What a shell needs for fal's official clients to reach this stack (README's snippet unchanged)."""
    host = api_url.split("://", 1)[1]
    return [
        f"export SSL_CERT_FILE={tls.ca}",
        "export FAL_KEY=local-key",  # any key: `make run` has no API_KEYS, so the API takes every key
        f"export FAL_QUEUE_RUN_HOST={host}",
        f"export FAL_RUN_HOST={host}/run",
    ]


def main(argv: list[str] | None = None) -> int:
    """`make run` (`--tls`: `make run TLS=1`): the whole service on loopback with embedded defaults, until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m worker.dev.localstack", description=main.__doc__)
    parser.add_argument("--tls", action="store_true", help="serve https with a local CA's certificate (for fal_client)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes to start (default 1); with 2 or more a long request fans out across them")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    data_dir = Path(os.environ.get("RIFE_DATA_DIR", ".data")).resolve()
    port = int(os.environ.get("API_PORT", "8000"))
    tls = make_local_tls(data_dir / "tls") if args.tls else None
    api_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    workers = "one worker" if args.workers == 1 else f"{args.workers} workers"
    print(f"starting redis-server, SeaweedFS, the API on {api_url} and {workers} (logs in {data_dir})", flush=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Workers on one machine share its cores: each gets its share of the model's threads, not all of them.
    extra = {} if args.workers == 1 or os.environ.get("TORCH_THREADS") else \
        {"TORCH_THREADS": str(max(1, (os.cpu_count() or 1) // args.workers))}
    with stack(data_dir, api_port=port, workers=args.workers, extra_env=extra, tls=tls) as servers:
        print(f"ready: API {api_url} (try GET /health, POST /fal-ai/rife/video); "
              f"S3 {servers['seaweedfs'].url}; Redis {servers['redis'].url}. Ctrl-C stops everything.", flush=True)
        if tls:
            print("for fal_client (Python) and the other official clients, in your shell:", flush=True)
            for line in export_lines(api_url, tls):
                print(line, flush=True)
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
