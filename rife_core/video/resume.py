"""Where a segment's run can pick the whole job up: a key frame to seek to, and the job's state there.

A segment of a split job (see `segments`) makes only the output frames of its window, but they must
be the whole job's frames. Decoding from the input's start and discarding what comes before the
window gives that by construction, at the price of decoding the whole prefix: for the last of 16
segments of a two-hour film, most of the film. So a segment seeks to a key frame before its window
instead, and starts in the state the whole job has there. That state is arithmetic on the frames'
times, known from the demuxer without decoding:

- the output clock's count: how many output frames the pairs before the key frame take;
- the model batch the first pair falls in: batches are the whole job's (the model's rounding
  depends on what it is batched with, `pairs`), so the seek goes back to a key frame at or before
  the first pair of the batch that holds the window's first frame, and the pair stage starts with
  that batch's count of pairs with frames to make already behind it.

Scene cuts need only the frame before each pair (the detector compares neighbours), so they come
out the same. Dropping repeats (`dedup`) decides which frames pair up from every frame before, so a
`dedup` job's segments decode from the start (no `Resume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from rife_core.video.probe import VideoInfo, open_input
from rife_core.video.schedule import OutputClock


@dataclass(frozen=True)
class FrameIndex:
    """Every frame-carrying packet's time (from the first shown frame), pts and key flag, in display order."""

    times: list[Fraction]
    pts: list[int]
    keys: list[bool]


def index_frames(path: Path, stream_index: int, origin: Fraction) -> FrameIndex:
    """Demuxing only (no decoding), as `probe.scan_times` does."""
    rows: list[tuple[Fraction, int, bool]] = []
    with open_input(path) as container:
        stream = container.streams[stream_index]
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None or packet.time_base is None or packet.is_discard:
                    continue
                when = Fraction(packet.pts) * Fraction(packet.time_base) - origin
                if when >= 0:
                    rows.append((when, packet.pts, bool(packet.is_keyframe)))
        except av.FFmpegError:
            pass  # a damaged tail: the frames before it still count
    rows.sort()
    return FrameIndex([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


@dataclass(frozen=True)
class Resume:
    """Start at input frame `index` (a key frame at `pts`), with `numbered` output frames before its
    first pair and `busy` pairs with frames to make already in the current model batch."""

    index: int
    pts: int
    numbered: int
    busy: int


def plan_resume(info: VideoInfo, frames: FrameIndex, clock_rate: Fraction, batch_size: int,
                window_start: int) -> Resume | None:
    """The latest key frame a segment whose window starts at output frame `window_start` can start
    decoding at; None when that is the input's first frame (decode from the start)."""
    timing = info.timing
    grid = timing is None or timing.constant
    fps = timing.fps if timing is not None else info.fps
    count = len(frames.times)
    if count < 2 or window_start <= 0:
        return None

    def time_of(i: int) -> Fraction:
        return Fraction(i) / fps if grid else frames.times[i]

    clock = OutputClock(clock_rate)
    numbered: list[int] = []  # before pair j = (frame j, frame j+1)
    busy_total: list[int] = []
    batch_start: list[int] = []  # the first pair of the batch pair j is in
    busy = 0
    start = 0
    for j in range(count - 1):
        numbered.append(clock.next)
        busy_total.append(busy)
        batch_start.append(start)
        ts = clock.between(time_of(j), time_of(j + 1))
        if clock.next > window_start:
            break  # pair j holds the window's first frame
        if any(ts):
            busy += 1
            if busy % batch_size == 0:
                start = j + 1
    else:
        return None  # the window starts in the job's tail (loop's wrap pair, held frames): decode it all
    first_pair = len(numbered) - 1
    earliest = batch_start[first_pair]
    key = next((i for i in range(earliest, 0, -1) if frames.keys[i]), 0)
    if key == 0:
        return None
    return Resume(index=key, pts=frames.pts[key], numbered=numbered[key], busy=busy_total[key] % batch_size)
