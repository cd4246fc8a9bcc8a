"""`GET /metrics` and the JSON logs, over real processes (the gate stack: API over TLS, an RQ worker
with the gate engine, redis-server, SeaweedFS), plus in-process checks of what a process alone
decides: the exposition parses, auth follows METRICS_PUBLIC, Redis down is a 503, log lines are
JSON with the bound request id."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from servicekit import Stack, wait_for

from api.app import create_app
from worker.shared import metrics as job_metrics
from worker.shared import process_log
from worker.shared.requests import Failure, RequestRecord, Status
from worker.shared.settings import Settings

pytestmark = pytest.mark.timeout(120)

VIDEO = "data:video/mp4;base64,Z2F0ZSBlbmdpbmUgaW5wdXQ="  # "gate engine input"
UNREACHABLE = "http://127.0.0.1:1/missing.mp4"  # connection refused: file_download_error


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, sorted labels) -> value), via Prometheus' own parser."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def scrape(stack: Stack) -> Samples:
    with stack.client(key=None) as c:  # no API key: METRICS_PUBLIC defaults to true
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)[1]


def jobs(samples: Samples, status: str, error_type: str) -> float:
    return samples.get(("rife_jobs_total", (("error_type", error_type), ("status", status))), 0.0)


def submit(stack: Stack, video_url: str = VIDEO) -> str:
    with stack.client() as c:
        r = c.post("/fal-ai/rife/video", json={"video_url": video_url})
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def wait_record(stack: Stack, request_id: str, status: str) -> dict[str, str]:
    wait_for(lambda: stack.record(request_id).get("status") == status, f"{request_id} to be {status}", 30)
    return stack.record(request_id)


def test_metrics_count_each_outcome_and_parse_as_prometheus_text(gate: Stack):
    before = scrape(gate)

    ok = submit(gate)
    wait_record(gate, ok, "IN_PROGRESS")
    queued = submit(gate)  # the only worker is busy behind the closed gate
    now = scrape(gate)
    assert now[("rife_queue_depth", ())] == 1 and now[("rife_workers_busy", ())] == 1
    assert now[("rife_workers", ())] >= 1
    time.sleep(0.6)  # so the queued job's wait lands above the 0.5 s bucket
    gate.release(2)
    wait_record(gate, ok, "COMPLETED")
    wait_record(gate, queued, "COMPLETED")

    failed = submit(gate, UNREACHABLE)
    assert wait_record(gate, failed, "COMPLETED")["error_type"] == "file_download_error"

    cancelled = submit(gate)
    wait_record(gate, cancelled, "IN_PROGRESS")
    with gate.client() as c:
        assert c.put(f"/fal-ai/rife/requests/{cancelled}/cancel").status_code == 202
    assert wait_record(gate, cancelled, "COMPLETED")["error_type"] == "cancelled"

    after = scrape(gate)
    assert after[("rife_queue_depth", ())] == 0
    assert jobs(after, "ok", "") - jobs(before, "ok", "") == 2
    assert jobs(after, "error", "file_download_error") - jobs(before, "error", "file_download_error") == 1
    assert jobs(after, "cancelled", "cancelled") - jobs(before, "cancelled", "cancelled") == 1
    # GateEngine reports 2 output frames and 0.01 s of inference per job; only the two ok jobs ran it.
    assert after[("rife_frames_interpolated_total", ())] - before.get(("rife_frames_interpolated_total", ()), 0) == 4
    assert after[("rife_interpolation_fps", ())] == pytest.approx(200.0)
    for name in ("rife_job_duration_seconds", "rife_queue_wait_seconds"):
        # all four jobs were taken by the worker (the cancelled one while it ran), so each is observed once
        added = after[(f"{name}_count", ())] - before.get((f"{name}_count", ()), 0)
        assert added == 4, name
        assert after[(f"{name}_bucket", (("le", "+Inf"),))] == after[(f"{name}_count", ())]
        assert after[(f"{name}_sum", ())] > before.get((f"{name}_sum", ()), 0)
    buckets = sorted(
        (float(dict(labels)["le"]), v) for (n, labels), v in after.items() if n == "rife_queue_wait_seconds_bucket"
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets), "buckets are cumulative"
    le_half = ("rife_queue_wait_seconds_bucket", (("le", "0.5"),))
    assert after[le_half] - before.get(le_half, 0) <= 3, "the queued job waited > 0.5 s"


def test_worker_and_api_log_json_lines_carrying_the_request_id(gate: Stack):
    request_id = submit(gate)
    wait_record(gate, request_id, "IN_PROGRESS")
    gate.release()
    with gate.client() as c:
        wait_for(lambda: c.get(f"/fal-ai/rife/requests/{request_id}/status").json()["status"] == "COMPLETED", "completion", 30)

    def lines_about(pattern: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted(gate.logs.glob(pattern)):
            for line in path.read_text().splitlines():
                if request_id in line:
                    found.append(json.loads(line))  # every line about the request is one JSON object
        return found

    worker_lines = lines_about("gate-worker-*.log")
    tagged = [e for e in worker_lines if e.get("request_id") == request_id]
    assert {e["event"] for e in tagged if "event" in e} >= {"job_started", "frames_done", "job_finished"}
    finished = next(e for e in tagged if e.get("event") == "job_finished")
    assert finished["status"] == "ok" and finished["duration_s"] >= 0 and finished["logger"] == "worker.shared.metrics"
    assert all({"ts", "level", "logger", "message"} <= e.keys() for e in worker_lines)

    api_lines = [e for e in lines_about("gate-api.log") if e.get("request_id") == request_id]
    messages = " ".join(e["message"] for e in api_lines)
    assert "POST /fal-ai/rife/video" in messages and f"/requests/{request_id}/status" in messages


# --- in-process: what the API process and the formatter decide alone -------------------------------


def app_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(storage_backend="local", local_storage_dir=str(tmp_path), rq_queue="m", api_keys=("k1",), **overrides)


def test_metrics_auth_follows_metrics_public_and_exposition_parses(tmp_path: Path):
    redis = fakeredis.FakeRedis()
    record = RequestRecord(id="r1", status=Status.IN_PROGRESS, created_at=100.0, started_at=100.25)
    job_metrics.job_started(redis, "m", record)
    job_metrics.frames_done(redis, "m", type("R", (), {"output_frames": 25, "input_frames": 10, "inference_s": 3.0})())
    redis.hset("m:request:r1", mapping={"started_at": "100.25", "completed_at": "170.25"})
    job_metrics.job_finished(redis, "m", "r1", None)
    job_metrics.job_finished(redis, "m", "r1", Failure("bad", "invalid_video", 422))

    with TestClient(create_app(app_settings(tmp_path), redis=redis)) as c:
        r = c.get("/metrics")
    assert r.status_code == 200
    types, samples = parse(r.text)
    assert types == {
        "rife_queue_depth": "gauge",
        "rife_workers": "gauge",
        "rife_workers_busy": "gauge",
        "rife_jobs": "counter",
        "rife_job_duration_seconds": "histogram",
        "rife_queue_wait_seconds": "histogram",
        "rife_frames_interpolated": "counter",
        "rife_interpolation_fps": "gauge",
    }
    assert samples[("rife_frames_interpolated_total", ())] == 15 and samples[("rife_interpolation_fps", ())] == 5.0
    assert jobs(samples, "ok", "") == 1 and jobs(samples, "error", "invalid_video") == 1
    assert samples[("rife_queue_wait_seconds_bucket", (("le", "0.1"),))] == 0
    assert samples[("rife_queue_wait_seconds_bucket", (("le", "0.5"),))] == 1
    assert samples[("rife_job_duration_seconds_bucket", (("le", "60.0"),))] == 0
    assert samples[("rife_job_duration_seconds_bucket", (("le", "120.0"),))] == 2  # both finishes read the same record
    assert samples[("rife_job_duration_seconds_sum", ())] == pytest.approx(140.0)

    with TestClient(create_app(app_settings(tmp_path, metrics_public=False), redis=redis)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Key k1"}).status_code == 200
        assert c.get("/openapi.json").json()["paths"]["/metrics"]["get"]["tags"] == ["service"]


def test_metrics_is_503_when_redis_is_down(tmp_path: Path):
    from worker.dev import localstack

    settings = app_settings(tmp_path, redis_url=f"redis://127.0.0.1:{localstack.free_port()}/0")
    with TestClient(create_app(settings)) as c:
        r = c.get("/metrics")
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0


def test_histogram_buckets_survive_a_change_of_bounds():
    raw = {b"0.3": b"2", b"7.0": b"1", b"+Inf": b"1", b"sum": b"12.5"}
    h = job_metrics.histogram_from_hash(raw, (0.5, 10.0))
    assert h.buckets == [("0.5", 2.0), ("10.0", 3.0), ("+Inf", 4.0)] and h.sum == 12.5 and h.count == 4


def test_json_formatter_binds_the_request_id_only_inside_the_scope():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(process_log.RequestIdFilter())
    handler.setFormatter(process_log.JsonFormatter())
    logger = logging.getLogger("test.logjson")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    @process_log.request_scoped()
    def job(request_id: str) -> None:
        logger.info("inside %s", "the job", extra={"frames": 3})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")

    try:
        job("req-1")
        logger.info("between jobs")
    finally:
        logger.removeHandler(handler)
    inside, failed, between = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["message"] == "inside the job" and inside["request_id"] == "req-1" and inside["frames"] == 3
    assert inside["level"] == "INFO" and inside["logger"] == "test.logjson" and inside["ts"].endswith("Z")
    assert failed["request_id"] == "req-1" and "ValueError: boom" in failed["exc"]
    assert "request_id" not in between


def test_http_hooks_bind_the_path_or_response_request_id():
    import asyncio

    class Req:
        path_params = {"request_id": "from-path"}

    class Resp:
        headers = {"x-fal-request-id": "from-response"}

    def run(coro_factory: Any) -> str | None:
        async def body() -> str | None:  # asyncio.run's task works on a copy of the context
            await coro_factory()
            return process_log.request_id_var.get()

        return asyncio.run(body())

    assert run(lambda: process_log.bind_from_http_request(Req())) == "from-path"
    assert run(lambda: process_log.bind_from_http_response(Resp())) == "from-response"


def test_text_format_names_the_request_too():
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        process_log.configure("text", "INFO", stream=out)
        token = process_log.bind_request_id("req-9")
        logging.getLogger("test.text").info("hello")
        process_log.request_id_var.reset(token)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    assert "INFO test.text [req-9]: hello" in out.getvalue()
