"""A stand-in engine for worker processes whose job timing a test must control.

`GateEngine` holds every job until the test pushes a token onto the Redis list `<RQ_QUEUE>:gate`
(one token releases one job) or sets `<RQ_QUEUE>:gate:open`; it checks the cancel flag while it
waits, like the real pipeline between batches. It imports no torch, so its workers start in a
second. Loaded by workers through RIFE_ENGINE=standin_engines:GateEngine (PYTHONPATH=tests/service).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from rife_core.errors import CancelledError


@dataclass(frozen=True)
class GateResult:
    output_frames: int
    output_fps: float
    inference_s: float
    wall_s: float


@dataclass(frozen=True)
class GateProgress:
    frames_done: int
    frames_total: int
    fps: float
    elapsed_s: float


class GateEngine:
    def __init__(self, settings: Any) -> None:
        self.redis = Redis.from_url(settings.redis_url)
        self.gate = f"{settings.rq_queue}:gate"

    def run(self, input_path: Path, output_path: Path, options: Any, *, progress: Any, log: Any, should_cancel: Any) -> GateResult:
        started = time.monotonic()
        log("INFO", "gate: waiting for release")
        while True:
            if should_cancel():
                raise CancelledError("cancelled while waiting")
            if self.redis.exists(f"{self.gate}:open") or self.redis.blpop([self.gate], timeout=0.1):
                break
        progress(GateProgress(1, 2, 10.0, time.monotonic() - started))
        log("INFO", "gate: released")
        shutil.copyfile(input_path, output_path)
        progress(GateProgress(2, 2, 10.0, time.monotonic() - started))
        return GateResult(output_frames=2, output_fps=20.0, inference_s=0.01, wall_s=time.monotonic() - started)
