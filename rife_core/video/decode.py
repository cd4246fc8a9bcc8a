"""Decode an input into upright, even-sized RGB frames, one at a time.

Every frame leaves here as a C-contiguous uint8 (H, W, 3) RGB array in display orientation, the
model's input format: 10-bit and full-range sources are converted with their own range and matrix,
the display rotation is applied, and an odd width or height loses its last column or row so the
yuv420p output can hold it (cropping one pixel keeps every other pixel untouched; scaling would
blur the whole frame).

A corrupt packet in the middle of a file is skipped with a warning rather than failing the job;
a file whose video cannot be decoded at all was already refused by the probe.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Literal, overload

import av
import numpy as np

from rife_core.errors import InvalidVideoError, LimitExceededError
from rife_core.video.probe import VideoInfo, open_input
from rife_core.video.timing import output_frame_count

LogFn = Callable[[str, str], None]

# Decoded frames come in presentation order, but some files (packed MPEG-4 B-frames in AVI) stamp them
# out of order: a frame's time is the smallest of the next few timestamps, as if they were sorted.
REORDER_WINDOW = 4


def _to_rgb(frame: av.VideoFrame, info: VideoInfo) -> np.ndarray:
    full_range = frame.color_range == 2 or frame.format.name.startswith("yuvj")
    rgb = frame.to_ndarray(
        format="rgb24",
        # A mid-stream size change is scaled back to the size the job was planned for.
        width=info.coded_width,
        height=info.coded_height,
        src_color_range="JPEG" if full_range else "MPEG",
    )
    if info.rotation:
        rgb = np.rot90(rgb, k=info.rotation // 90)  # both counter-clockwise
    ew, eh = info.even_size
    return np.ascontiguousarray(rgb[:eh, :ew])


class FrameTimes:
    """Each decoded frame's presentation time in seconds from the first frame (exact Fractions).

    Constant-rate input is timed on its exact grid i/fps (what the probe decided from all timestamps),
    so rounded timestamps (1 ms in MKV) never turn 30000/1001 into a jittery rate. Otherwise a frame
    gets its own timestamp, sorted within REORDER_WINDOW frames; a frame without one comes one
    interval of the average rate after the previous frame, and time never goes backwards.
    """

    def __init__(self, info: VideoInfo) -> None:
        timing = info.timing
        self.grid = timing is None or timing.constant
        self.fps = timing.fps if timing is not None else info.fps
        self.origin = info.start_time if info.start_time is not None else Fraction(info.start_s)
        self.last: Fraction | None = None
        self.count = 0
        self.missing = 0
        self._heap: list[Fraction] = []

    def push(self, frame: av.VideoFrame) -> None:
        """Take the timestamp of the next decoded frame."""
        if self.grid:
            return
        if frame.pts is None or frame.time_base is None:
            self.missing += 1
            return
        heapq.heappush(self._heap, Fraction(frame.pts) * Fraction(frame.time_base) - self.origin)

    def pop(self, flushing: bool = False) -> Fraction | None:
        """The time of the oldest frame not yet timed; None while the window still has to fill."""
        if self.grid:
            when = Fraction(self.count) / self.fps
        elif self.missing and (flushing or len(self._heap) < REORDER_WINDOW):
            self.missing -= 1
            when = (self.last + 1 / self.fps) if self.last is not None else Fraction(0)
        elif len(self._heap) >= REORDER_WINDOW or (flushing and self._heap):
            when = heapq.heappop(self._heap)
        else:
            return None
        if self.last is not None and when < self.last:
            when = self.last
        self.last = when
        self.count += 1
        return when


@overload
def decode_frames(info: VideoInfo, *, max_frames: int | None = ..., max_output_frames: int | None = ...,
                  num_frames: int = ..., loop: bool = ..., log: LogFn | None = ...,
                  timed: Literal[False] = ...) -> Iterator[np.ndarray]: ...
@overload
def decode_frames(info: VideoInfo, *, max_frames: int | None = ..., max_output_frames: int | None = ...,
                  num_frames: int = ..., loop: bool = ..., log: LogFn | None = ...,
                  timed: Literal[True]) -> Iterator[tuple[np.ndarray, Fraction]]: ...
def decode_frames(
    info: VideoInfo,
    *,
    max_frames: int | None = None,
    max_output_frames: int | None = None,
    num_frames: int = 1,
    loop: bool = False,
    log: LogFn | None = None,
    timed: bool = False,
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, Fraction]]:
    """Yield the frames of `info.path` in presentation order; with `timed`, as (frame, time in seconds
    from the first frame) (see FrameTimes).

    The probe's frame count is only an estimate for some containers, so the frame and output
    limits are enforced here too, as frames arrive.
    """
    frames = _decode(info, max_frames, max_output_frames, num_frames, loop, log)
    if not timed:
        return (rgb for rgb, _ in frames)
    return _timed(frames, FrameTimes(info))


def _timed(frames: Iterator[tuple[np.ndarray, av.VideoFrame]], clock: FrameTimes) -> Iterator[tuple[np.ndarray, Fraction]]:
    held: list[np.ndarray] = []
    for rgb, frame in frames:
        clock.push(frame)
        held.append(rgb)
        when = clock.pop()
        if when is not None:
            yield held.pop(0), when
    while held:
        when = clock.pop(flushing=True)
        yield held.pop(0), when if when is not None else (clock.last or Fraction(0))


def _decode(
    info: VideoInfo,
    max_frames: int | None,
    max_output_frames: int | None,
    num_frames: int,
    loop: bool,
    log: LogFn | None,
) -> Iterator[tuple[np.ndarray, av.VideoFrame]]:
    count = 0
    skipped = 0
    with open_input(info.path) as container:
        stream = next(s for s in container.streams.video if s.index == info.stream_index)
        stream.thread_type = "AUTO"
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:  # the container itself is damaged past this point
                if count == 0:
                    raise InvalidVideoError(f"the input cannot be read: {e}") from e
                if log:
                    log("WARN", f"reading stopped after frame {count}: {e}; the input may be truncated")
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                skipped += 1
                if skipped == 1 and log:
                    log("WARN", f"skipping undecodable data after frame {count}: {e}")
                continue
            for frame in frames:
                if not isinstance(frame, av.VideoFrame):
                    continue
                count += 1
                if max_frames is not None and count > max_frames:
                    raise LimitExceededError(
                        f"video has more than {max_frames} frames (the limit)", limit="frame_limit"
                    )
                outputs = output_frame_count(count, num_frames, loop)
                if max_output_frames is not None and outputs > max_output_frames:
                    raise LimitExceededError(
                        f"the output would have more than {max_output_frames} frames (the limit)",
                        limit="output_limit",
                    )
                yield _to_rgb(frame, info), frame
    if skipped and log:
        log("WARN", f"{skipped} undecodable packet(s) skipped; the input may be damaged")
    if log and info.frame_count and count < info.frame_count - 1:
        log("WARN", f"the input ended after {count} of about {info.frame_count} frames; it may be truncated")
