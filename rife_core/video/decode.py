"""Decode an input into upright, even-sized RGB frames, one at a time.

Every frame leaves here as a C-contiguous uint8 (H, W, 3) RGB array in display orientation, the
model's input format, or uint16 (`deep`) for a >8-bit input whose output keeps 10 bits, so no 8-bit
step loses its levels: 10-bit and full-range sources are converted with their own range and matrix,
the display rotation is applied, and an odd width or height loses its last column or row so the
yuv420p output can hold it (cropping one pixel keeps every other pixel untouched; scaling would
blur the whole frame).

Real-world files are decoded tolerantly: a zero-length packet (Theora's "repeat the last frame")
is skipped instead of being handed to the decoder, which would take it for the end of the stream
and refuse everything after it; a corrupt packet is skipped; a file that ends early (an
interrupted download) gives the frames it has. Each is counted and reported in `DecodeStats` and
one WARN line, in the user's words. A file whose video cannot be decoded at all was already
refused by the probe.

With `timed`, each frame leaves with its presentation time (`FrameTimes`): the exact grid for
constant-rate input, its own (reordered) timestamp otherwise.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, overload

import av
import numpy as np

from rife_core.errors import InvalidVideoError, LimitExceededError
from rife_core.video.probe import VideoInfo, is_empty_packet, open_input
from rife_core.video.sniff import plain_reason
from rife_core.video.timing import output_frame_count

LogFn = Callable[[str, str], None]

# Decoded frames come in presentation order, but some files (packed MPEG-4 B-frames in AVI) stamp them
# out of order: a frame's time is the smallest of the next few timestamps, as if they were sorted.
REORDER_WINDOW = 4


@dataclass(frozen=True)
class StartAt:
    """Start decoding at input frame `index`, a key frame whose timestamp is `pts` (in the stream's time
    base): a segment of a split job seeks there instead of decoding the input from its start."""

    index: int
    pts: int


@dataclass
class DecodeStats:
    """What decoding had to work around; filled in as `decode_frames` goes."""

    frames: int = 0
    empty_packets: int = 0  # zero-length packets skipped
    bad_packets: int = 0  # packets the decoder refused, skipped
    truncated: bool = False  # the input ended (or broke off) before the frames its header announces


def _to_rgb(frame: av.VideoFrame, info: VideoInfo, deep: bool = False) -> np.ndarray:
    full_range = frame.color_range == 2 or frame.format.name.startswith("yuvj")
    rgb = frame.to_ndarray(
        format="rgb48le" if deep else "rgb24",
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

    def __init__(self, info: VideoInfo, first_index: int = 0) -> None:
        timing = info.timing
        self.grid = timing is None or timing.constant
        self.fps = timing.fps if timing is not None else info.fps
        self.origin = info.start_time if info.start_time is not None else Fraction(info.start_s)
        self.last: Fraction | None = None
        self.count = first_index
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
                  num_frames: int = ..., loop: bool = ..., log: LogFn | None = ..., stats: DecodeStats | None = ...,
                  deep: bool = ..., start: StartAt | None = ..., timed: Literal[False] = ...) -> Iterator[np.ndarray]: ...
@overload
def decode_frames(info: VideoInfo, *, max_frames: int | None = ..., max_output_frames: int | None = ...,
                  num_frames: int = ..., loop: bool = ..., log: LogFn | None = ..., stats: DecodeStats | None = ...,
                  deep: bool = ..., start: StartAt | None = ..., timed: Literal[True]) -> Iterator[tuple[np.ndarray, Fraction]]: ...
def decode_frames(
    info: VideoInfo,
    *,
    max_frames: int | None = None,
    max_output_frames: int | None = None,
    num_frames: int = 1,
    loop: bool = False,
    log: LogFn | None = None,
    stats: DecodeStats | None = None,
    deep: bool = False,
    start: StartAt | None = None,
    timed: bool = False,
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, Fraction]]:
    """Yield the frames of `info.path` in presentation order (uint16 RGB with `deep`); with `timed`, as
    (frame, time in seconds from the first frame) (see FrameTimes).

    The probe's frame count is only an estimate for some containers, so the frame and output
    limits are enforced here too, as frames arrive. `stats`, when given, is filled in with what
    was skipped and whether the input looks truncated. With `start`, decoding begins at that key
    frame (a seek), and the frames are numbered and timed from it as from the whole input.
    """
    frames = _decode(info, max_frames, max_output_frames, num_frames, loop, log,
                     stats if stats is not None else DecodeStats(), deep, start)
    if not timed:
        return (rgb for rgb, _ in frames)
    return _timed(frames, FrameTimes(info, start.index if start is not None else 0))


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
    stats: DecodeStats,
    deep: bool,
    start: StartAt | None = None,
) -> Iterator[tuple[np.ndarray, av.VideoFrame]]:
    count = start.index if start is not None else 0
    skipped = 0
    broke_off: str | None = None
    with open_input(info.path) as container:
        stream = next(s for s in container.streams.video if s.index == info.stream_index)
        stream.thread_type = "AUTO"
        if start is not None:
            container.seek(start.pts, stream=stream, backward=True, any_frame=False)
        leading = start is not None  # frames shown before the key frame (an open GOP's) are not ours
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:  # the container itself is damaged past this point
                if count == 0:
                    raise InvalidVideoError(f"the video cannot be read: {plain_reason(e)}") from e
                broke_off = plain_reason(e)
                break
            if is_empty_packet(packet):
                stats.empty_packets += 1
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError:
                skipped += 1
                stats.bad_packets = skipped
                continue
            for frame in frames:
                if not isinstance(frame, av.VideoFrame):
                    continue
                if leading:
                    assert start is not None
                    if frame.pts is not None and frame.pts < start.pts:
                        continue
                    if frame.pts != start.pts:
                        raise SeekMissed(f"the seek landed on pts {frame.pts}, not the key frame's {start.pts}")
                    leading = False
                count += 1
                stats.frames = count
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
                yield _to_rgb(frame, info, deep), frame
    _report(info, stats, broke_off, log)


class SeekMissed(Exception):
    """A seek did not land on the key frame it was planned for (the caller decodes from the start)."""


def _report(info: VideoInfo, stats: DecodeStats, broke_off: str | None, log: LogFn | None) -> None:
    """One WARN line per kind of trouble, with what was recovered."""
    count = stats.frames
    announced = info.frame_count
    # Empty packets are frames the header counts (repeats), so they count as arrived here.
    if broke_off is not None or (announced and _short(announced, count + stats.empty_packets)):
        stats.truncated = True
    if log is None:
        return
    if stats.empty_packets:
        log("INFO", f"{stats.empty_packets} empty packet(s) in the video stream skipped (repeated frames)")
    if stats.bad_packets:
        log("WARN", f"{stats.bad_packets} damaged packet(s) in the video stream skipped; the video may show a jump there")
    if stats.truncated:
        fps = float(info.fps)
        # Seconds on the input's own timeline (its frames may stand at uneven times), against the header's.
        recovered_s = float(info.timing.duration_s) if info.timing is not None else count / fps
        announced_s = info.duration_s if info.duration_s else announced / fps
        of = f" of about {announced} ({announced_s:.2f} s)" if announced > count else ""
        why = f" ({broke_off})" if broke_off else ""
        log(
            "WARN",
            f"the video looks truncated{why}: recovered {count} frames ({recovered_s:.2f} s){of}; "
            f"the output covers only the recovered part",
        )


def _short(announced: int, count: int) -> bool:
    """The header announces clearly more frames than came: by more than a frame and by 2 %."""
    return announced - count > max(1, 0.02 * announced)
