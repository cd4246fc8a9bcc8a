"""Several encoders at once on consecutive chunks of one output, joined by stream copy.

One x264 instance with many frame threads stops scaling long before a GPU worker's cores run out
(bench/RESULTS.md: 168 frames/s at 1080p with 16 threads, about 30 per core as separate
instances). So the output is cut into chunks of `chunk_frames` frames, handed in turn to E
encoders that each run with a share of the cores; every chunk is a file of its own that starts
with a key frame, and `join.StreamJoiner` copies them, in order, into the output with the audio.
The frames reaching the encoders are exactly the single encoder's; only the key frames differ
(one at every chunk start). Memory is bounded: each encoder's queue holds at most one chunk.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from rife_core.video.codecs import CodecPlan
from rife_core.video.formats import OutputFormat
from rife_core.video.join import StreamJoiner

# GIF and WebP are written whole, by their own writers. AV1 parts cannot be read back by this build's
# FFmpeg (its AV1 decoder, libdav1d, is missing, and copying a stream needs one), so AV1 is written whole too.
_WHOLE_CONTAINERS = ("gif", "webp")
_WHOLE_CODECS = ("av1",)
# Software encoders that gain from more instances: x264 and x265 (SVT-AV1 and libvpx scale within one).
SCALING_ENCODERS = ("libx264", "libx265")
CORES_PER_ENCODER = 4
# Codecs with B-frames: Matroska/WebM store no decode times for them (its demuxer gives none for the first
# packets), so their parts are written as MP4, which keeps them exactly, and joined into the real container.
_REORDERING = ("h264", "hevc", "av1")


def part_format(output: OutputFormat) -> OutputFormat:
    """The format a part of `output` is written in: its own, but MP4 for a reordering codec in MKV/WebM."""
    if output.resolved_container in ("mkv", "webm") and output.codec in _REORDERING:
        return replace(output, container="mp4")
    return output


class PartEncoder(Protocol):
    def write(self, rgb: Any) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def why_whole(output: OutputFormat) -> str | None:
    """Why an output cannot be written in parts joined by stream copy (None when it can)."""
    if output.resolved_container in _WHOLE_CONTAINERS:
        return f"a {output.resolved_container} output is written whole"
    if output.codec in _WHOLE_CODECS:
        return f"an {output.codec} output is written whole (this build cannot read its parts back to join them)"
    return None


def encoder_count(requested: int, output: OutputFormat, plan: CodecPlan, cores: int | None = None) -> int:
    """How many encoders run at once: `requested`, or with 0 one x264/x265 per CORES_PER_ENCODER cores
    (an instance with four frame threads is near its best per core). Outputs that cannot be joined
    by stream copy (`why_whole`) always get one."""
    if why_whole(output) is not None:
        return 1
    if requested:
        return requested
    if plan.encoder not in SCALING_ENCODERS:
        return 1
    return max(1, (cores or os.cpu_count() or 1) // CORES_PER_ENCODER)


def chunk_frames(fps: float) -> int:
    """Frames per chunk: about two seconds of output, within 48..120. Each chunk starts with a key frame
    (x264's own interval is 250 frames), so shorter chunks cost file size, longer ones memory."""
    return max(48, min(120, round(2 * fps)))


class _Worker(threading.Thread):
    def __init__(self, index: int, open_part: Callable[[Path], PartEncoder], depth: int) -> None:
        super().__init__(name=f"rife-encode-{index}", daemon=True)
        self.items: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._open = open_part
        self.error: BaseException | None = None
        self.aborted = threading.Event()

    def run(self) -> None:
        encoder: PartEncoder | None = None
        try:
            while True:
                kind, value = self.items.get()
                if kind == "stop" or self.aborted.is_set():
                    break
                if kind == "start":
                    assert isinstance(value, Path)
                    encoder = self._open(value)
                elif kind == "frame":
                    assert encoder is not None
                    encoder.write(value)
                elif kind == "end":
                    assert encoder is not None
                    encoder.close()
                    encoder = None
        except BaseException as e:  # re-raised by the dispatching thread
            self.error = e
        finally:
            if encoder is not None:
                encoder.abort()


class ChunkedEncoder:
    """Encoder's interface (write, close, abort, `first_pts`, `last_frame_ticks`) over E encoders."""

    def __init__(self, path: Path, encoders: int, chunk: int, open_part: Callable[[Path], PartEncoder],
                 joiner: StreamJoiner) -> None:
        self.path = path
        self.chunk = chunk
        self.frames = 0
        self.first_pts = 0
        self.last_frame_ticks = 1
        self._joiner = joiner
        self._folder = path.with_name(f"{path.name}.parts")
        self._folder.mkdir(parents=True, exist_ok=True)
        self._parts: list[Path] = []
        self._workers = [_Worker(i, open_part, chunk + 2) for i in range(encoders)]
        for worker in self._workers:
            worker.start()

    def _put(self, worker: _Worker, item: tuple[str, object]) -> None:
        while True:
            self._raise_failed()
            try:
                worker.items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_failed(self) -> None:
        for worker in self._workers:
            if worker.error is not None:
                raise worker.error

    def write(self, rgb: object) -> None:
        index, at = divmod(self.frames, self.chunk)
        worker = self._workers[index % len(self._workers)]
        if at == 0:
            if index:
                self._put(self._workers[(index - 1) % len(self._workers)], ("end", None))
            part = self._folder / f"part_{index:06d}{self.path.suffix}"
            self._parts.append(part)
            self._put(worker, ("start", part))
        self._put(worker, ("frame", rgb))
        self.frames += 1

    def close(self) -> None:
        """Finish every chunk, then join them with the audio into `path`."""
        try:
            if self.frames:
                self._put(self._workers[(len(self._parts) - 1) % len(self._workers)], ("end", None))
            for worker in self._workers:
                self._put(worker, ("stop", None))
            for worker in self._workers:
                worker.join()
            self._raise_failed()
            self._joiner.first_pts = self.first_pts
            for part in self._parts:
                self._joiner.add(part)
            self._joiner.close(self.last_frame_ticks)
        except BaseException:
            self.abort()
            raise
        shutil.rmtree(self._folder, ignore_errors=True)

    def abort(self) -> None:
        """Stop every encoder without finishing; remove the chunks (the caller deletes `path`)."""
        for worker in self._workers:
            worker.aborted.set()
        for worker in self._workers:
            while worker.is_alive():
                try:  # make room, then wake it: it stops at its next item
                    while True:
                        worker.items.get_nowait()
                except queue.Empty:
                    pass
                try:
                    worker.items.put_nowait(("stop", None))
                except queue.Full:
                    pass
                worker.join(timeout=0.05)
        self._joiner.abort()
        shutil.rmtree(self._folder, ignore_errors=True)
