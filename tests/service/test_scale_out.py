"""Scale-out: a second worker process on the same Redis takes half the jobs and halves the wall time.

Workers share nothing but Redis (and S3), so adding one adds capacity; this shows it with real
processes (API over TLS, two `python -m worker`, redis-server, SeaweedFS). The jobs run
`SleepEngine`, which waits instead of computing: on a 2-core machine shared with other work, CPU
jobs would measure the cores, not the queue. The same N jobs run once with one worker and once with
two; the ratio of wall times is printed (`pytest -s`) and must be well under 1.

`SleepEngine` lives here and is loaded by the workers as `RIFE_ENGINE=test_scale_out:SleepEngine`
(PYTHONPATH=tests/service), so it must stay importable without pytest fixtures.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from servicekit import Certs, Stack, start_stack, wait_for

from rife_core.errors import CancelledError

HERE = Path(__file__).resolve().parent
SLEEP_S = 0.8
JOBS = 6
VIDEO = "data:video/mp4;base64," + base64.b64encode(b"sleep engine input").decode()

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class SleepResult:
    output_frames: int
    output_fps: float
    inference_s: float
    wall_s: float


class SleepEngine:
    """Takes SLEEP_S per job without using the CPU (checking the cancel flag meanwhile), then copies
    the input to the output like the gate engine."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def run(self, input_path: Path, output_path: Path, options: Any, *, progress: Any, log: Any, should_cancel: Any) -> SleepResult:
        started = time.monotonic()
        while time.monotonic() - started < SLEEP_S:
            if should_cancel():
                raise CancelledError("cancelled while sleeping")
            time.sleep(0.05)
        shutil.copyfile(input_path, output_path)
        return SleepResult(output_frames=2, output_fps=20.0, inference_s=SLEEP_S, wall_s=time.monotonic() - started)


@pytest.fixture(scope="module")
def scale_stack(backends: dict[str, str], certs: Certs, service_logs: Path) -> Iterator[Stack]:
    extra = {
        "RIFE_ENGINE": "test_scale_out:SleepEngine",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    with start_stack("scale", backends, certs, service_logs, workers=1, extra=extra) as stack:
        yield stack


def run_batch(stack: Stack, count: int) -> tuple[float, list[str]]:
    """Submit `count` jobs at once through the API; seconds until the last one completed, and the ids."""
    started = time.monotonic()
    with stack.client() as c:
        ids = []
        for _ in range(count):
            r = c.post("/fal-ai/rife/video", json={"video_url": VIDEO})
            assert r.status_code == 200, r.text
            ids.append(r.json()["request_id"])
    redis = stack.redis
    key = f"{stack.queue_name}:request:{{}}"

    def all_done() -> bool:
        with redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hget(key.format(i), "status")
            return all(s == b"COMPLETED" for s in pipe.execute())

    wait_for(all_done, f"{count} jobs to complete", 60)
    elapsed = time.monotonic() - started
    for i in ids:
        assert not stack.record(i).get("error_type"), stack.record(i)
    return elapsed, ids


def gauge(stack: Stack, name: str) -> float:
    with stack.client(key=None) as c:
        text = c.get("/metrics").text
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_a_second_worker_takes_half_the_jobs_and_halves_the_wall_time(scale_stack: Stack):
    assert gauge(scale_stack, "rife_workers") == 1
    one_s, one_ids = run_batch(scale_stack, JOBS)
    assert len({scale_stack.record(i)["worker"] for i in one_ids}) == 1

    scale_stack.start_worker()
    assert gauge(scale_stack, "rife_workers") == 2
    two_s, two_ids = run_batch(scale_stack, JOBS)
    taken: dict[str, int] = {}
    for i in two_ids:
        worker = scale_stack.record(i)["worker"]
        taken[worker] = taken.get(worker, 0) + 1

    ratio = two_s / one_s
    print(f"\n{JOBS} jobs of {SLEEP_S} s: 1 worker {one_s:.2f} s, 2 workers {two_s:.2f} s, ratio {ratio:.2f}; jobs per worker {sorted(taken.values())}")
    assert len(taken) == 2, f"both workers took jobs: {taken}"
    assert min(taken.values()) >= 2, f"jobs spread across both workers: {taken}"
    assert one_s >= JOBS * SLEEP_S, "one worker runs the jobs one after another"
    assert ratio < 0.75, f"two workers should be much faster than one: {two_s:.2f} s vs {one_s:.2f} s"
