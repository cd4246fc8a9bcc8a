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


@dataclass(frozen=True)
class SplitResult:
    """What `SplitEngine` reports; JSON round-trips like rife_core's VideoResult, to travel to the merge."""

    output_frames: int
    output_fps: float
    inference_s: float
    input_frames: int | None = None
    input_fps: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SplitResult:
        return cls(**data)


class SplitEngine:
    """A stand-in with segments, for the fan-out tests: its "video" is a JSON file
    `{"frames": F, "fps": r, "fail_frame": i | null, "gate": bool, "frame_s": s}` and its output one line
    per output frame (`"<input frame>.<k>"`, k = 0..num_frames, the last input frame alone), so an
    output joined from segments can be compared byte for byte with the unsplit run's.

    - `plan_segments`: segments of about `segment_s` seconds when F / r > `min_s`;
    - `run` / `run_segment`: write the lines of the whole input / of input frames [first, end); a run
      that covers `fail_frame` raises InvalidVideoError there (the same error either way); with `gate`,
      wait for a token on `<RQ_QUEUE>:gate` (or `<RQ_QUEUE>:gate:open`) after the first input frame's lines and progress, checking
      cancel meanwhile; `frame_s` sleeps per input frame;
    - `merge_segments`: concatenate the parts in order.
    """

    def __init__(self, settings: Any) -> None:
        self.redis = Redis.from_url(settings.redis_url) if settings is not None else None
        self.gate = f"{settings.rq_queue}:gate" if settings is not None else ""
        self.calls: list[tuple[int, int]] = []  # (first, end) of every run and segment run in this process

    @staticmethod
    def spec(path: Path) -> dict[str, Any]:
        import json

        return dict(json.loads(path.read_text()))

    def plan_segments(self, input_path: Path, request: Any, *, segment_s: float, min_s: float, log: Any) -> list[dict[str, Any]]:
        spec = self.spec(input_path)
        frames, fps = int(spec["frames"]), float(spec.get("fps", 10.0))
        if frames / fps <= min_s:
            return []
        step = max(1, round(segment_s * fps))
        firsts = list(range(0, frames - 1, step))
        log("INFO", f"stand-in plan: {len(firsts)} segments of {step} frames")
        return [
            {"index": i, "count": len(firsts), "first": first, "end": firsts[i + 1] if i + 1 < len(firsts) else None,
             "start_s": first / fps, "end_s": firsts[i + 1] / fps if i + 1 < len(firsts) else None}
            for i, first in enumerate(firsts)
        ]

    def run(self, input_path: Path, output_path: Path, request: Any, *, progress: Any, log: Any, should_cancel: Any) -> SplitResult:
        spec = self.spec(input_path)
        return self._write(spec, 0, int(spec["frames"]), output_path, request, progress, log, should_cancel)

    def run_segment(self, input_path: Path, output_path: Path, request: Any, segment: dict[str, Any], *,
                    progress: Any, log: Any, should_cancel: Any) -> SplitResult:
        spec = self.spec(input_path)
        end = segment["end"] if segment["end"] is not None else int(spec["frames"])
        return self._write(spec, int(segment["first"]), end, output_path, request, progress, log, should_cancel)

    def merge_segments(self, input_path: Path, parts: list[tuple[Path, dict[str, Any]]], output_path: Path, request: Any, *, log: Any) -> SplitResult:
        spec = self.spec(input_path)
        results = [SplitResult.from_json(r) for _p, r in parts]
        with output_path.open("wb") as out:
            for path, _r in parts:
                out.write(path.read_bytes())
        log("INFO", f"stand-in merge of {len(parts)} parts")
        return SplitResult(sum(r.output_frames for r in results), results[0].output_fps, sum(r.inference_s for r in results),
                           int(spec["frames"]), float(spec.get("fps", 10.0)))

    def _write(self, spec: dict[str, Any], first: int, end: int, output_path: Path, request: Any,
               progress: Any, log: Any, should_cancel: Any) -> SplitResult:
        from rife_core.errors import InvalidVideoError

        started = time.monotonic()
        self.calls.append((first, end))
        frames, n = int(spec["frames"]), int(getattr(request, "num_frames", 1))
        per_frame = [n + 1 if i < frames - 1 else 1 for i in range(first, end)]
        total, done = sum(per_frame), 0
        log("INFO", f"stand-in frames {first}..{end}")
        with output_path.open("w") as out:
            for i, count in zip(range(first, end), per_frame, strict=True):
                if should_cancel():
                    raise CancelledError("cancelled")
                if spec.get("fail_frame") == i:
                    raise InvalidVideoError(f"damaged frame {i}")
                out.write("".join(f"{i}.{k}\n" for k in range(count)))
                out.flush()
                time.sleep(float(spec.get("frame_s", 0.0)))
                done += count
                progress(GateProgress(done, total, 10.0, time.monotonic() - started))
                if i == first and spec.get("gate"):
                    self._wait_for_gate(should_cancel)
        fps = float(spec.get("fps", 10.0)) * (n + 1)
        return SplitResult(total, fps, 0.01 * (end - first), frames if (first, end) == (0, frames) else None,
                           float(spec.get("fps", 10.0)))

    def _wait_for_gate(self, should_cancel: Any) -> None:
        assert self.redis is not None
        while True:
            if should_cancel():
                raise CancelledError("cancelled while waiting")
            if self.redis.exists(f"{self.gate}:open") or self.redis.blpop([self.gate], timeout=0.1):
                return
