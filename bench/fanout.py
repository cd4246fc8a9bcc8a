"""Fan-out across workers: one long 480p request through the whole service on 2 single-threaded CPU
workers (split in two segments) against 1 (run whole), wall time from submit to COMPLETED.

Each configuration is a fresh stack (`worker.dev.localstack.stack`: redis-server, SeaweedFS, the API,
N `python -m worker` with the real RIFE 4.0 model on the CPU), with TORCH_THREADS=1 (and
OMP_NUM_THREADS=1) and ENCODE_SEGMENTS=1 in the workers, so one worker is one core's worth of model. The input is bigbuckbunny.mp4 played forward and back, scaled to 854x480,
`seconds` long; it is uploaded through `POST /storage/upload` and submitted by URL with num_frames 1.
The workers have loaded the model before the clock starts (they register with RQ only then).

`python bench/fanout.py [--seconds 60]` prints the row; `bench/run.py --only fanout` also writes it
into bench/RESULTS.md (between the fan-out markers, leaving the other sections as they are).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from worker.dev import localstack  # noqa: E402

BEGIN, END = "<!-- fanout:begin -->", "<!-- fanout:end -->"
SIZE = (854, 480)


def make_clip(dest: Path, seconds: float) -> int:
    """bigbuckbunny.mp4 ping-ponged to `seconds` at 854x480; its frame count."""
    import av

    sys.path.insert(0, str(ROOT / "bench"))
    from run import ping_pong

    from rife_core.samples import sample_clip

    src = sample_clip("bigbuckbunny.mp4")
    with av.open(str(src)) as c:
        frames = int(round(seconds * float(c.streams.video[0].average_rate)))
    ping_pong(src, dest, frames, size=SIZE)
    return frames


def measure(clip: Path, data_dir: Path, workers: int, split: bool, seconds: float) -> dict[str, Any]:
    env = {
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TORCH_THREADS": "1", "RIFE_DEVICE": "cpu", "ENCODE_SEGMENTS": "1",
        "SPLIT_MIN_S": f"{seconds / 2:g}" if split else "0", "SPLIT_SEGMENT_S": f"{seconds / workers:g}",
        "LOG_LEVEL": "WARNING", "MAX_VIDEO_FRAMES": "100000",
    }
    port = localstack.free_port()
    base = f"http://127.0.0.1:{port}"
    with localstack.stack(data_dir, api_port=port, workers=workers, extra_env=env), httpx.Client(base_url=base, timeout=60) as c:
        deadline = time.monotonic() + 600
        while c.get("/health").json().get("workers", 0) < workers:  # registered = model loaded
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.5)
        up = c.post("/storage/upload", content=clip.read_bytes(), headers={"content-type": "video/mp4", "x-fal-file-name": clip.name})
        up.raise_for_status()
        started = time.perf_counter()
        r = c.post("/fal-ai/rife/video", json={"video_url": up.json()["url"], "num_frames": 1})
        r.raise_for_status()
        request_id = r.json()["request_id"]
        while True:
            status = c.get(f"/fal-ai/rife/requests/{request_id}/status", params={"logs": "1"}).json()
            if status["status"] == "COMPLETED":
                break
            time.sleep(0.5)
        wall = time.perf_counter() - started
        if status.get("error"):
            raise RuntimeError(f"{workers} worker(s): {status['error']}")
        media = c.get(f"/fal-ai/rife/requests/{request_id}").json()["media"]
        split_lines = [e["message"] for e in status["logs"] if e["message"].startswith("Split into")]
    row = {"workers": workers, "split": bool(split_lines), "wall_s": wall, "output_frames": media["output_frames"],
           "input_frames": media["input_frames"], "load": os.getloadavg()[1]}
    print(f"  fan-out: {workers} worker(s), {'split' if row['split'] else 'whole'}: {wall:.1f} s, "
          f"{media['output_frames']} output frames; 5-min load average {row['load']:.2f}", flush=True)
    return row


def bench_fanout(seconds: float) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / f"bbb_{seconds:g}s_480p.mp4"
        make_clip(clip, seconds)
        one = measure(clip, Path(tmp) / "one", 1, False, seconds)
        two = measure(clip, Path(tmp) / "two", 2, True, seconds)
    assert one["output_frames"] == two["output_frames"], (one, two)
    return [one, two]


def section(rows: list[dict[str, Any]], seconds: float) -> str:
    one, two = rows
    lines = [
        BEGIN,
        f"## Fan-out: one {seconds:g} s 854x480 request (bigbuckbunny.mp4 ping-ponged, num_frames 1) through the "
        "whole service, CPU workers with one torch thread each (`bench/fanout.py`, measured "
        f"{time.strftime('%Y-%m-%d')})\n",
        f"Machine: {os.cpu_count()} CPU cores; the 5-minute load average at the end of each run says how much "
        "else ran meanwhile (a shared machine).\n",
        "| workers | run as | wall s (submit to COMPLETED) | output frames | wall / 1 worker | load average |",
        "|---|---|---|---|---|---|",
        f"| 1 | whole (SPLIT_MIN_S=0) | {one['wall_s']:.1f} | {one['output_frames']} | 1.00 | {one['load']:.2f} |",
        f"| 2 | {'2 segments' if two['split'] else 'whole'} | {two['wall_s']:.1f} | {two['output_frames']} | "
        f"{two['wall_s'] / one['wall_s']:.2f} | {two['load']:.2f} |",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str, results: Path) -> None:
    """Put the section into RESULTS.md in place of the previous one (or at the end), leaving the rest."""
    old = results.read_text() if results.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text.rstrip("\n") + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    results.write_text(new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--write", type=Path, help="also write the section into this RESULTS.md")
    args = ap.parse_args()
    rows = bench_fanout(args.seconds)
    text = section(rows, args.seconds)
    print("\n" + text)
    if args.write:
        write_section(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
