"""The soak's stand-in engine: fast, deterministic, no model, so a 2-core machine can push a thousand
requests through the real service (API, Redis, storage, workers) in minutes.

Its output is a pure function of the input (`expected_output`), so the soak checks each result
byte for byte. Each finished engine run appends the request's input digest to SOAK_RUNS_FILE, so
re-runs (a killed worker's request run again) are counted. Loaded by workers through
RIFE_ENGINE=soak_engine:SoakEngine with bench/ on PYTHONPATH.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rife_core.errors import CancelledError

WORK_S = float(os.environ.get("SOAK_ENGINE_S", "0.1"))


def expected_output(payload: bytes) -> bytes:
    """What the engine writes for this input."""
    return b"soak:" + hashlib.sha256(payload).hexdigest().encode() + b":" + payload[::-1]


@dataclass(frozen=True)
class SoakResult:
    output_frames: int
    output_fps: float
    inference_s: float
    wall_s: float


@dataclass(frozen=True)
class SoakProgress:
    frames_done: int
    frames_total: int
    fps: float
    elapsed_s: float


class SoakEngine:
    def __init__(self, settings: Any) -> None:
        self.runs_file = os.environ.get("SOAK_RUNS_FILE", "")

    def run(self, input_path: Path, output_path: Path, options: Any, *, progress: Any, log: Any, should_cancel: Any) -> SoakResult:
        started = time.monotonic()
        payload = input_path.read_bytes()
        while time.monotonic() - started < WORK_S:
            if should_cancel():
                raise CancelledError("cancelled")
            time.sleep(0.02)
        output_path.write_bytes(expected_output(payload))
        wall = time.monotonic() - started
        progress(SoakProgress(2, 2, 2 / wall, wall))
        if self.runs_file:
            with open(self.runs_file, "a") as f:  # O_APPEND: whole lines from concurrent workers
                f.write(hashlib.sha256(payload).hexdigest() + "\n")
        return SoakResult(output_frames=2, output_fps=20.0, inference_s=wall, wall_s=wall)
