"""Container health probe for the rife-video images: `python healthcheck.py api|worker|worker-liveness|redis`.

Copied into both images (Dockerfile.api, Dockerfile.worker) and used by their HEALTHCHECK, by
docker-compose.yml and by the Kubernetes probes. Exit 0 means healthy; anything else prints one
line saying why. It reads its settings through `worker.shared.settings` (the one place env vars are
read) and never imports torch, so a probe costs a fraction of a second.

- `api`: GET /health on this container's own API port; 200 is healthy.
- `worker`: Redis answers PING and an RQ worker started on this host (container/pod hostname) is
  registered and alive (RQ drops a worker's key when its heartbeat stops; a busy worker keeps it
  alive for the job's timeout). Before the model is loaded the worker is not registered yet, so
  give the probe a start period (compose `start_period`, a Kubernetes `startupProbe`).
- `worker-liveness`: as `worker`, except that an unreachable Redis counts as alive: RQ waits and
  reconnects by itself, and restarting the worker (reloading the model) would not bring Redis back.
  For liveness probes; readiness and start-up probes use `worker`.
- `redis`: Redis answers PING.
"""

from __future__ import annotations

import socket
import ssl
import sys
import urllib.request

TIMEOUT_S = 5.0


def _settings():  # imported lazily so `--help` works without the package installed
    from worker.shared.settings import Settings

    return Settings.from_env()


def check_api() -> str | None:
    settings = _settings()
    host = settings.api_host if settings.api_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.api_tls_cert else "http"
    url = f"{scheme}://{host}:{settings.api_port}/health"
    # The certificate names the public host, not 127.0.0.1: this local probe does not verify it.
    context = ssl._create_unverified_context() if scheme == "https" else None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as response:
            status = response.status
    except Exception as e:  # connection refused, timeout, HTTP error status
        return f"{url}: {e}"
    return None if status == 200 else f"{url}: HTTP {status}"


def _redis():
    from redis import Redis

    return Redis.from_url(_settings().redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)


def check_redis() -> str | None:
    try:
        _redis().ping()
    except Exception as e:
        return f"redis: {e}"
    return None


def check_worker(hostname: str | None = None, *, redis_down_is_alive: bool = False) -> str | None:
    from rq import Worker

    hostname = hostname or socket.gethostname()
    try:
        connection = _redis()
        connection.ping()
    except Exception as e:
        if redis_down_is_alive:
            print(f"redis unreachable ({e}); not a reason to restart this worker")
            return None
        return f"redis: {e}"
    try:
        workers = Worker.all(connection=connection)
    except Exception as e:
        return f"redis: {e}"
    mine = [w.name for w in workers if w.hostname == hostname]
    if not mine:
        return f"no live RQ worker registered from host {hostname!r} ({len(workers)} worker(s) registered in total)"
    return None


def check_worker_liveness() -> str | None:
    return check_worker(redis_down_is_alive=True)


CHECKS = {
    "api": check_api,
    "worker": check_worker,
    "worker-liveness": check_worker_liveness,
    "redis": check_redis,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in CHECKS:
        print(f"usage: healthcheck.py {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    problem = CHECKS[args[0]]()
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
