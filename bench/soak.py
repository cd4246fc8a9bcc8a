"""`make soak`: the service under load and faults, on loopback, bounded in count and time.

Starts its own redis-server (append-only, fsync always), SeaweedFS, the API and 4 workers running a
fast stand-in engine (`bench/soak_engine.py`, deterministic output), a webhook receiver, and 20
client threads that submit requests (a unique data: URI each, with `?fal_webhook=`), poll their
status like fal clients and check every result byte for byte. Meanwhile it SIGKILLs redis-server
and restarts it on the same port and data several times, SIGKILLs a worker (and starts another),
and SIGKILLs SeaweedFS and restarts it 20 s later. Clients keep submitting until at least
--requests were submitted and every fault was done (or --max-s passed), then every request must
end COMPLETED.

Prints, and writes into RELIABILITY.md (between the `soak` markers), the table: requests submitted
/ completed, lost, stuck, completed twice, webhooks twice or missing, 5xx other than 503 +
Retry-After, latency percentiles, jobs/s, Redis bytes per finished request, API and worker RSS
growth. Exits 1 when a target is missed. Everything it starts is stopped by PID (process group)
whatever happens; its files are under .data/soak/ (logs kept for reading).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from soak_engine import expected_output  # noqa: E402

from worker.dev import localstack  # noqa: E402
from worker.shared.request_log import decode_entries  # noqa: E402

API_KEY = "soak-key-4f1e"
SUBMIT = "/fal-ai/rife/video"
BYTES_TARGET = 3 * 1024
POLL_S = 0.25
REQUEST_DEADLINE_S = 240.0  # one request, submit to verified result, faults included


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Receiver:
    """Webhook receiver: how many POSTs each request got, and their X-Webhook-Id headers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: Counter[str] = Counter()
        self.bad_ids = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                request_id = str(body.get("request_id"))
                with outer.lock:
                    outer.posts[request_id] += 1
                    if self.headers.get("X-Webhook-Id") != request_id:
                        outer.bad_ids += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    submit_ms: list[float] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    bad_5xx: list[str] = field(default_factory=list)  # 5xx other than 503 with Retry-After
    transport_errors: int = 0

    def add(self, kind: str, ms: float, response: httpx.Response) -> None:
        with self.lock:
            self.codes[response.status_code] += 1
            if response.status_code < 500:
                (self.submit_ms if kind == "submit" else self.status_ms).append(ms)
            elif response.status_code != 503 or int(response.headers.get("retry-after", "0") or 0) <= 0:
                self.bad_5xx.append(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:120]}")


@dataclass
class Outcome:
    request_id: str
    payload: bytes
    submitted_at: float
    completed_at: float | None = None
    error_type: str | None = None
    bytes_ok: bool = False
    result_url: str = ""
    final: dict[str, Any] | None = None


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder = ROOT / ".data" / "soak"
        self.servers: list[localstack.Server] = []
        self.workers: list[localstack.Server] = []
        self.stats = Stats()
        self.outcomes: list[Outcome] = []
        self.outcomes_lock = threading.Lock()
        self.faults: list[str] = []
        self.faults_done = threading.Event()
        self.stop = threading.Event()
        self.submitted = 0
        self.submit_lock = threading.Lock()
        self.receiver = Receiver()
        self.t0 = 0.0
        self.rss: dict[str, dict[str, int]] = {}
        self.storage_outage_s = 0.0

    # --- the stack ---------------------------------------------------------------------------

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.redis_server = localstack.start_redis(self.folder / "redis", log=self.folder / "redis.log", persist=True)
        self.servers.append(self.redis_server)
        self.s3 = localstack.start_seaweedfs(self.folder / "s3", bucket="soak")
        self.servers.append(self.s3)
        port = localstack.free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.runs_file = self.folder / "engine-runs.txt"
        self.env = {
            **self.redis_server.env,
            **self.s3.env,
            "RQ_QUEUE": "soak",
            "S3_PREFIX": "soak/",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "API_KEYS": API_KEY,
            "FETCH_ALLOW": "127.0.0.0/8",
            "RIFE_ENGINE": "soak_engine:SoakEngine",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
            "SOAK_RUNS_FILE": str(self.runs_file),
            "SOAK_ENGINE_S": str(self.args.engine_s),
            "WORKER_HEARTBEAT_S": "1",
            "WORKER_LOST_AFTER_S": "5",
            "REAPER_INTERVAL_S": "2",
            "RATE_LIMIT_REQUESTS": "1000000",
            "MAX_QUEUED_PER_KEY": "0",
            "WEBHOOK_RETRY_DELAYS_S": "1,2,5,10,20",
            "STORAGE_RETRY_BUDGET_S": "60",
            "WORKER_TMP_DIR": str(self.folder / "tmp"),
            "LOG_LEVEL": "WARNING",
        }
        api = localstack.start_python(
            "soak-api", "api", self.env, self.folder / "api.log", self.api_url,
            ready=lambda: httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200,
        )
        self.api = api
        self.servers.append(api)
        for _ in range(self.args.workers):
            self.start_worker()
        deadline = time.monotonic() + 120
        while self.live_workers() < self.args.workers:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not register")
            time.sleep(0.2)

    def redis(self) -> Redis:
        return Redis.from_url(self.redis_server.env["REDIS_URL"], socket_timeout=5)

    def live_workers(self) -> int:
        try:
            return len([k for k in self.redis().scan_iter(match="soak:alive:*")])
        except Exception:
            return 0

    def start_worker(self) -> localstack.Server:
        index = len(self.workers) + 1
        server = localstack.start_python(f"soak-worker-{index}", "worker", self.env, self.folder / f"worker-{index}.log")
        self.workers.append(server)
        self.servers.append(server)
        return server

    def close(self) -> None:
        self.stop.set()
        for server in reversed(self.servers):
            if server.proc.poll() is None:
                try:
                    os.killpg(server.proc.pid, signal.SIGTERM)
                    server.proc.wait(5 if server.name != "seaweedfs" else 2)
                except Exception:
                    try:
                        os.killpg(server.proc.pid, signal.SIGKILL)
                        server.proc.wait(5)
                    except Exception:
                        pass
        self.receiver.close()

    # --- faults ------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.faults.append(f"{time.monotonic() - self.t0:6.1f} s  {text}")
        print(self.faults[-1], flush=True)

    def kill_redis(self) -> None:
        os.killpg(self.redis_server.proc.pid, signal.SIGKILL)
        self.redis_server.proc.wait(10)
        self.note(f"redis-server SIGKILLed (down {self.args.redis_down_s} s)")
        time.sleep(self.args.redis_down_s)
        self.servers.remove(self.redis_server)
        self.redis_server = localstack.start_redis(
            self.folder / "redis", port=self.redis_server.ports["redis"], log=self.folder / "redis.log", persist=True
        )
        self.servers.append(self.redis_server)
        self.note("redis-server back (same port, same append-only file)")

    def kill_worker(self) -> None:
        victim = self.workers[0]
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        self.note(f"{victim.name} SIGKILLed (mid-load); a new worker started")
        self.start_worker()

    def kill_storage(self) -> None:
        os.killpg(self.s3.proc.pid, signal.SIGKILL)
        self.s3.proc.wait(10)
        killed = time.monotonic()
        self.note(f"SeaweedFS SIGKILLed (started again after {self.args.storage_down_s} s)")
        time.sleep(self.args.storage_down_s)
        self.servers.remove(self.s3)
        self.s3 = localstack.start_seaweedfs(self.folder / "s3", bucket="soak", ports=self.s3.ports)
        self.servers.append(self.s3)
        self.storage_outage_s = time.monotonic() - killed
        self.note(f"SeaweedFS back (same ports and data), {self.storage_outage_s:.1f} s after the kill")

    def fault_loop(self) -> None:
        schedule: list[tuple[float, Callable[[], None]]] = [(15, self.kill_redis), (30, self.kill_worker), (45, self.kill_redis),
                                                            (60, self.kill_storage)]
        at = 100.0
        for _ in range(self.args.redis_kills - 2):
            schedule.append((at, self.kill_redis))
            at += 20
        for when, fault in schedule:
            while time.monotonic() - self.t0 < when:
                if self.stop.wait(0.2):
                    return
            fault()
        self.faults_done.set()

    # --- clients -----------------------------------------------------------------------------

    def call(self, c: httpx.Client, kind: str, method: str, url: str, deadline: float, **kw: Any) -> httpx.Response:
        """One API call, retried through 503s (honouring Retry-After, at most 1 s) and dropped connections."""
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {url}: no answer before the deadline")
            started = time.monotonic()
            try:
                response = c.request(method, url, **kw)
            except httpx.TransportError:
                with self.stats.lock:
                    self.stats.transport_errors += 1
                time.sleep(0.5)
                continue
            self.stats.add(kind, (time.monotonic() - started) * 1000, response)
            if response.status_code >= 500:
                time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 1.0))
                continue
            return response

    def fetch_result(self, url: str, deadline: float) -> bytes:
        """The result file (a presigned storage URL), retried while storage is down."""
        while True:
            try:
                r = httpx.get(url, timeout=10)
                if r.status_code == 200:
                    return r.content
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("result file not readable before the deadline")
            time.sleep(0.5)

    def want_more(self) -> bool:
        if self.stop.is_set() or time.monotonic() - self.t0 > self.args.max_s:
            return False
        with self.submit_lock:
            if self.submitted < self.args.requests or not self.faults_done.is_set():
                self.submitted += 1
                return True
        return False

    def client_loop(self, index: int) -> None:
        headers = {"Authorization": f"Key {API_KEY}"}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30) as c:
            serial = 0
            while self.want_more():
                serial += 1
                payload = f"client {index} request {serial} ".encode() + os.urandom(512)
                video_url = "data:video/mp4;base64," + base64.b64encode(payload).decode()
                deadline = time.monotonic() + REQUEST_DEADLINE_S
                try:
                    r = self.call(c, "submit", "POST", SUBMIT, deadline, json={"video_url": video_url},
                                  params={"fal_webhook": self.receiver.url})
                except TimeoutError:
                    continue  # never accepted: not a submitted request
                if r.status_code != 200:
                    self.stats.bad_5xx.append(f"submit refused: {r.status_code} {r.text[:120]}")
                    continue
                outcome = Outcome(r.json()["request_id"], payload, time.monotonic())
                with self.outcomes_lock:
                    self.outcomes.append(outcome)
                self.follow(c, outcome, deadline)

    def follow(self, c: httpx.Client, outcome: Outcome, deadline: float) -> None:
        base = f"/fal-ai/rife/requests/{outcome.request_id}"
        try:
            while True:
                body = self.call(c, "status", "GET", f"{base}/status", deadline).json()
                if body.get("status") == "COMPLETED":
                    break
                if self.stop.wait(POLL_S):
                    return
            outcome.completed_at = time.monotonic()
            result = self.call(c, "result", "GET", base, deadline)
            outcome.final = result.json()
            if result.status_code != 200:
                outcome.error_type = str(outcome.final.get("error_type") if isinstance(outcome.final, dict) else result.status_code)
                return
            outcome.result_url = outcome.final["video"]["url"]
            outcome.bytes_ok = self.fetch_result(outcome.result_url, deadline) == expected_output(outcome.payload)
        except TimeoutError:
            return

    # --- the run -----------------------------------------------------------------------------

    def sample_rss(self, label: str) -> None:
        self.rss[label] = {"api": rss_kib(self.api.proc.pid)}
        for w in self.workers:
            if w.proc.poll() is None:
                self.rss[label][w.name] = rss_kib(w.proc.pid)

    def run(self) -> dict[str, Any]:
        baseline = self.memory()
        self.t0 = time.monotonic()
        faults = threading.Thread(target=self.fault_loop, daemon=True)
        clients = [threading.Thread(target=self.client_loop, args=(i,), daemon=True) for i in range(self.args.clients)]
        for t in (faults, *clients):
            t.start()
        warm_sampled = False
        while any(t.is_alive() for t in clients):
            time.sleep(1)
            done = sum(1 for o in self.outcomes if o.completed_at is not None)
            if not warm_sampled and done >= 100:
                self.sample_rss("warm")
                warm_sampled = True
            if int(time.monotonic() - self.t0) % 15 == 0:
                print(f"{time.monotonic() - self.t0:6.1f} s  submitted {len(self.outcomes)}, completed {done}", flush=True)
        load_end = time.monotonic()
        self.stop.set()
        faults.join(60)
        self.sample_rss("end")
        # Webhooks: wait for every finished request's POST, then a little longer for repeats.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(self.receiver.posts[o.request_id] == 0 for o in self.outcomes if o.completed_at):
            time.sleep(0.5)
        time.sleep(3)
        # RQ's jobs (webhook deliveries) gone: what is left is what stays for RESULT_TTL_S.
        redis = self.redis()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (redis.llen("rq:queue:soak-webhooks") or list(redis.scan_iter(match="rq:job:*", count=1000))):
            time.sleep(0.5)
        end_memory = self.memory()
        return self.report(baseline, end_memory, load_end)

    def memory(self) -> dict[str, int]:
        redis = self.redis()
        total = sum(int(redis.memory_usage(k, samples=0) or 0) for k in redis.scan_iter(count=1000))
        info = redis.info("memory")
        return {"keys_bytes": total, "used_memory": int(info["used_memory"])}

    def report(self, baseline: dict[str, int], end: dict[str, int], load_end: float) -> dict[str, Any]:
        outcomes = self.outcomes
        finished = [o for o in outcomes if o.completed_at is not None]
        ok = [o for o in finished if o.error_type is None and o.bytes_ok]
        errors = Counter(o.error_type for o in finished if o.error_type is not None)
        wrong_bytes = [o.request_id for o in finished if o.error_type is None and not o.bytes_ok]
        stuck = [o.request_id for o in outcomes if o.completed_at is None]
        runs = Counter(self.runs_file.read_text().split()) if self.runs_file.exists() else Counter()
        reruns = sum(n - 1 for n in runs.values() if n > 1)
        # Completed twice: a result that changed after the client first read it (re-read now).
        changed = 0
        with httpx.Client(base_url=self.api_url, headers={"Authorization": f"Key {API_KEY}"}, timeout=30) as c:
            for o in ok:
                again = c.get(f"/fal-ai/rife/requests/{o.request_id}")
                if again.status_code != 200 or again.json().get("video", {}).get("url", "").split("?")[0] != o.result_url.split("?")[0]:
                    changed += 1
        unknown = 0
        redis = self.redis()
        for o in outcomes:
            if not redis.exists(f"soak:request:{o.request_id}"):
                unknown += 1
        waited_storage = put_back = 0
        for o in outcomes:
            lines = " ".join(e["message"] for e in decode_entries(redis.lrange(f"soak:request:{o.request_id}:logs", 0, -1)))
            waited_storage += "storage is unavailable" in lines
            put_back += "left the queue without starting" in lines or "it is queued again" in lines
        hooks_twice = sum(1 for o in finished if self.receiver.posts[o.request_id] > 1)
        hooks_missing = sum(1 for o in finished if self.receiver.posts[o.request_id] == 0)
        first = min((o.submitted_at for o in outcomes), default=self.t0)
        last = max((o.completed_at for o in finished if o.completed_at), default=load_end)
        per_request = (end["keys_bytes"] - baseline["keys_bytes"]) / max(len(finished), 1)
        used_per_request = (end["used_memory"] - baseline["used_memory"]) / max(len(finished), 1)
        warm, final = self.rss.get("warm", {}), self.rss.get("end", {})
        worker_growth = [final[n] - warm[n] for n in warm if n in final and n != "api"]
        redis_kills = sum(1 for f in self.faults if "redis-server SIGKILLed" in f)
        result = {
            "submitted": len(outcomes),
            "completed": len(finished),
            "completed_ok_bytes_exact": len(ok),
            "completed_with_error": dict(errors),
            "wrong_bytes": len(wrong_bytes),
            "lost": unknown,
            "stuck": len(stuck),
            "completed_twice": changed,
            "engine_reruns": reruns,
            "waited_for_storage": waited_storage,
            "put_back_in_queue": put_back,
            "webhooks_twice": hooks_twice,
            "webhooks_missing": hooks_missing,
            "webhook_id_mismatch": self.receiver.bad_ids,
            "bad_5xx": len(self.stats.bad_5xx),
            "bad_5xx_examples": self.stats.bad_5xx[:5],
            "status_codes": dict(sorted(self.stats.codes.items())),
            "transport_errors": self.stats.transport_errors,
            "submit_ms": {q: round(percentile(self.stats.submit_ms, q / 100), 1) for q in (50, 95, 99)},
            "status_ms": {q: round(percentile(self.stats.status_ms, q / 100), 1) for q in (50, 95, 99)},
            "jobs_per_s": round(len(finished) / max(last - first, 1e-9), 2),
            "duration_s": round(load_end - self.t0, 1),
            "redis_bytes_per_request": round(per_request),
            "redis_used_memory_per_request": round(used_per_request),
            "api_rss_kib": [warm.get("api", 0), final.get("api", 0)],
            "worker_rss_growth_kib_max": max(worker_growth, default=0),
            "redis_kills": redis_kills,
            "worker_kills": sum(1 for f in self.faults if "worker" in f and "SIGKILLed" in f),
            "storage_kills": sum(1 for f in self.faults if "SeaweedFS SIGKILLed" in f),
            "storage_outage_s": round(self.storage_outage_s, 1),
            "faults": self.faults,
            "settings": {k: self.env[k] for k in ("WORKER_HEARTBEAT_S", "WORKER_LOST_AFTER_S", "REAPER_INTERVAL_S",
                                                  "STORAGE_RETRY_BUDGET_S", "WEBHOOK_RETRY_DELAYS_S", "SOAK_ENGINE_S")},
        }
        result["passed"] = (
            unknown == 0 and not stuck and changed == 0 and hooks_twice == 0 and not self.stats.bad_5xx and not wrong_bytes
            and len(outcomes) >= self.args.requests and redis_kills >= 5 and per_request <= BYTES_TARGET
            and self.faults_done.is_set()
        )
        return result


def table(r: dict[str, Any], args: argparse.Namespace) -> str:
    errors = ", ".join(f"{k} {v}" for k, v in r["completed_with_error"].items()) or "none"
    rows = [
        ("load", f"{args.clients} clients, {args.workers} workers, stand-in engine {args.engine_s} s/job, {r['duration_s']} s"),
        ("faults", f"{r['redis_kills']} Redis SIGKILLs (down {args.redis_down_s} s each), {r['worker_kills']} worker SIGKILL, "
                   f"{r['storage_kills']} SeaweedFS SIGKILL (unreachable {r['storage_outage_s']} s: restarted after "
                   f"{args.storage_down_s} s, plus its start-up)"),
        ("requests submitted / completed", f"{r['submitted']} / {r['completed']}"),
        ("completed OK, result byte-exact", f"{r['completed_ok_bytes_exact']} (wrong bytes {r['wrong_bytes']})"),
        ("completed with an error", errors),
        ("requests that waited for storage / were put back in the queue", f"{r['waited_for_storage']} / {r['put_back_in_queue']}"),
        ("lost (record gone) / stuck (not COMPLETED)", f"{r['lost']} / {r['stuck']}"),
        ("completed twice (result changed)", f"{r['completed_twice']} (engine runs repeated, at least once: {r['engine_reruns']})"),
        ("webhooks twice / missing", f"{r['webhooks_twice']} / {r['webhooks_missing']} (X-Webhook-Id mismatches {r['webhook_id_mismatch']})"),
        ("5xx other than 503 + Retry-After", f"{r['bad_5xx']} (all answers: {r['status_codes']})"),
        ("submit latency p50 / p95 / p99", " / ".join(f"{v} ms" for v in r["submit_ms"].values())),
        ("status latency p50 / p95 / p99", " / ".join(f"{v} ms" for v in r["status_ms"].values())),
        ("jobs/s", str(r["jobs_per_s"])),
        ("Redis bytes per finished request", f"{r['redis_bytes_per_request']} (`MEMORY USAGE` of all keys); "
                                             f"{r['redis_used_memory_per_request']} (`INFO memory` used_memory)"),
        ("API RSS after warm-up / at the end", f"{r['api_rss_kib'][0] // 1024} / {r['api_rss_kib'][1] // 1024} MiB"),
        ("worker RSS growth (largest)", f"{r['worker_rss_growth_kib_max'] // 1024} MiB"),
    ]
    lines = ["| measure | observed |", "| --- | --- |", *[f"| {a} | {b} |" for a, b in rows]]
    return "\n".join(lines)


def write_into_reliability(text: str) -> None:
    path = ROOT / "RELIABILITY.md"
    content = path.read_text()
    block = f"<!-- soak:begin -->\n{text}\n<!-- soak:end -->"
    if "<!-- soak:begin -->" in content:
        content = re.sub(r"<!-- soak:begin -->.*?<!-- soak:end -->", lambda _m: block, content, flags=re.S)
    else:
        content += f"\n## Soak (`make soak`)\n\n{block}\n"
    path.write_text(content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--engine-s", type=float, default=0.1)
    parser.add_argument("--redis-kills", type=int, default=5)
    parser.add_argument("--redis-down-s", type=float, default=1.5)
    parser.add_argument("--storage-down-s", type=float, default=20.0)
    parser.add_argument("--max-s", type=float, default=600.0, help="stop submitting after this long, whatever the count")
    parser.add_argument("--no-write", action="store_true", help="do not write the table into RELIABILITY.md")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        soak.start()
        result = soak.run()
    finally:
        soak.close()
    (soak.folder / "result.json").write_text(json.dumps(result, indent=1))
    text = table(result, args)
    print(text)
    print("faults:\n" + "\n".join(result["faults"]))
    if result["bad_5xx_examples"]:
        print("5xx examples:", *result["bad_5xx_examples"], sep="\n  ")
    if not args.no_write:
        stamp = time.strftime("%Y-%m-%d", time.gmtime())
        write_into_reliability(f"Last run {stamp} on a shared 2-core machine; targets {'met' if result['passed'] else 'MISSED'}.\n\n{text}")
    print("soak:", "PASSED" if result["passed"] else "FAILED")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
