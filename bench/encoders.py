"""The encode stage alone: one x264 with all the cores' threads against several x264 instances on
consecutive chunks (`rife_core.video.chunks`), each with a share of the threads, joined by stream copy.

The same decoded frames (bigbuckbunny.mp4 played forward and back, scaled) go to both, interleaved
over rounds; the best round of each counts (the machine is shared). Reports output frames/s, the
ratio, and the file size ratio (every chunk starts with a key frame, which costs some bytes).
"""

from __future__ import annotations

import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rife_core.samples import sample_clip
from rife_core.video.chunks import ChunkedEncoder, chunk_frames
from rife_core.video.codecs import plan_codec
from rife_core.video.encode import ColorTags, Encoder
from rife_core.video.formats import OutputFormat
from rife_core.video.join import StreamJoiner

PRESET = "veryfast"
CRF = 17


def _frames(size: tuple[int, int], count: int) -> list[np.ndarray]:
    with av.open(os.fspath(sample_clip("bigbuckbunny.mp4"))) as c:
        clip = [f.reformat(width=size[0], height=size[1]).to_ndarray(format="rgb24") for f in c.decode(video=0)]
    cycle = clip + clip[-2:0:-1]
    return [cycle[i % len(cycle)] for i in range(count)]


def _single(path: Path, frames: list[np.ndarray], fps: Fraction, threads: int, color: ColorTags) -> float:
    h, w = frames[0].shape[:2]
    start = time.perf_counter()
    enc = Encoder(path, w, h, fps, CRF, color, None, threads, None, PRESET)
    for frame in frames:
        enc.write(frame)
    enc.close()
    return time.perf_counter() - start


def _chunked(path: Path, frames: list[np.ndarray], fps: Fraction, encoders: int, threads: int, color: ColorTags) -> float:
    h, w = frames[0].shape[:2]
    start = time.perf_counter()
    joiner = StreamJoiner(path, plan_codec(OutputFormat(), 8, CRF, PRESET), fps)
    enc = ChunkedEncoder(path, encoders, chunk_frames(float(fps)),
                         lambda part: Encoder(part, w, h, fps, CRF, color, None, threads, None, PRESET), joiner)
    for frame in frames:
        enc.write(frame)
    enc.close()
    return time.perf_counter() - start


def bench_encoders(quick: bool, cores: int | None = None) -> list[dict]:
    """One x264 x `cores` threads against `cores` x264s x 1 thread (this machine: 2 cores)."""
    cores = cores or os.cpu_count() or 1
    fps = Fraction(48)  # a 24 fps input at num_frames 1
    color = ColorTags(1, 1, 1, 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((854, 480), (1280, 720)):
            frames = _frames(size, 96 if quick else 480)
            single, chunked = [], []
            for r in range(2 if quick else 3):
                for kind in (("single", "chunked") if r % 2 == 0 else ("chunked", "single")):
                    if kind == "single":
                        single.append(_single(Path(tmp) / "one.mp4", frames, fps, cores, color))
                    else:
                        chunked.append(_chunked(Path(tmp) / "many.mp4", frames, fps, cores, 1, color))
            one_fps, many_fps = len(frames) / min(single), len(frames) / min(chunked)
            size_ratio = (Path(tmp) / "many.mp4").stat().st_size / (Path(tmp) / "one.mp4").stat().st_size
            rows.append({"size": f"{size[0]}x{size[1]}", "frames": len(frames), "cores": cores, "one_fps": one_fps,
                         "many_fps": many_fps, "ratio": many_fps / one_fps, "size_ratio": size_ratio,
                         "chunk": chunk_frames(float(fps))})
            print(f"  encode {size[0]}x{size[1]}: 1 x264 x {cores} threads {one_fps:.1f} frames/s, {cores} x264 x 1 "
                  f"thread {many_fps:.1f} frames/s ({many_fps / one_fps:.2f}x), file size x{size_ratio:.3f}", flush=True)
    return rows


def encoder_table(rows: list[dict]) -> list[str]:
    lines = ["\n## Encode stage alone: one x264 with every core's threads vs one x264 per core on consecutive chunks "
             f"(x264 {PRESET}, crf {CRF}, 48 fps output; chunks of {rows[0]['chunk']} frames joined by stream copy; "
             "best of interleaved rounds)\n",
             "| size | frames | cores | 1 encoder x all threads, frames/s | 1 encoder per core x 1 thread, frames/s | ratio | file size ratio |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['size']} | {r['frames']} | {r['cores']} | {r['one_fps']:.1f} | {r['many_fps']:.1f} | {r['ratio']:.2f} | "
              f"{r['size_ratio']:.3f} |" for r in rows]
    return lines


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    table = encoder_table(bench_encoders(ap.parse_args().quick))
    print("\n".join(table))
