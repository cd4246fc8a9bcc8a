"""A stand-in engine whose behaviour the test picks through the input's bytes, for fault injection.

Built on `standin_engines.GateEngine` (tests/service): by default a job waits for a gate token,
like there. The input (a data: URI the test submits) may instead start with
- `sleep:<s>`: work for `s` seconds without touching Redis (as the real pipeline: only the
  worker's callbacks do), asking `should_cancel` and logging between 0.1 s steps;
- `hang`: never return and never look at `should_cancel` (only JOB_TIMEOUT_S can stop it);
- `big:<n>`: write an output of `n` bytes;
- `boom:<text>`: raise an unexpected error whose message is `<text>`.
Each job also writes a scratch file beside its output, so temp-file cleanup has something to clean.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from standin_engines import GateEngine, GateProgress, GateResult


class ChaosEngine(GateEngine):
    def run(self, input_path: Path, output_path: Path, options: Any, *, progress: Any, log: Any, should_cancel: Any) -> GateResult:
        command = input_path.read_bytes()[:200]
        (output_path.parent / "scratch.bin").write_bytes(b"\0" * 4096)
        started = time.monotonic()
        if command.startswith(b"sleep:"):
            seconds = float(command[6:].split()[0])
            log("INFO", f"chaos: working for {seconds} s")
            while time.monotonic() - started < seconds:
                should_cancel()
                time.sleep(0.1)
            output_path.write_bytes(b"slept")
            progress(GateProgress(2, 2, 10.0, time.monotonic() - started))
            return GateResult(output_frames=2, output_fps=20.0, inference_s=0.01, wall_s=time.monotonic() - started)
        if command.startswith(b"hang"):
            log("INFO", "chaos: hanging")
            while True:
                time.sleep(0.05)
        if command.startswith(b"big:"):
            output_path.write_bytes(b"\0" * int(command[4:].split()[0]))
            return GateResult(output_frames=2, output_fps=20.0, inference_s=0.01, wall_s=time.monotonic() - started)
        if command.startswith(b"boom:"):
            raise RuntimeError(command[5:].decode())
        return super().run(input_path, output_path, options, progress=progress, log=log, should_cancel=should_cancel)
