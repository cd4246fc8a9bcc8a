"""Find input frames that repeat their predecessor: animation drawn on twos or threes, screen
recordings, stalled captures.

A repeat is judged on a small luma thumbnail split into blocks: the frame repeats the previous one
when no block changed by more than `THRESHOLD` grey levels on average. Per block, not over the whole
frame, so a small moving thing (a mouth, a cursor) in an otherwise still shot keeps its frames;
on a thumbnail, so the noise a lossy encoder leaves between two copies of one picture averages out.
The threshold was tuned on the three sample clips (x264 re-encodes of frames shown on twos
against every pair of consecutive distinct frames): of 487 consecutive real frames none changed
less than 2.11 (the slowest drift, in bigbuckbunny's animation; carphone's near-static camera shot
3.22); repeats re-encoded at crf 18 changed at most 1.07, at crf 23 at most 0.92 on bikes and
bigbuckbunny but up to 3.14 on carphone's noisy camera footage, which no threshold below the real
frames can catch. 1.75 leaves real frames a 17% margin: losing a real frame costs more than
interpolating over a repeat.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_WIDTH = 160
BLOCKS = 8  # per side
THRESHOLD = 1.75  # mean absolute luma difference of the most changed block, in grey levels


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A small float luma image: cheap to compare, and area-averaged so that coding noise cancels."""
    h, w = rgb.shape[:2]
    tw = min(THUMB_WIDTH, w)
    th = max(BLOCKS, round(h * tw / w))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (max(BLOCKS, tw), th), interpolation=cv2.INTER_AREA).astype(np.float32)


def block_change(a: np.ndarray, b: np.ndarray) -> float:
    """The mean absolute difference of the most changed of BLOCKS x BLOCKS blocks of two thumbnails."""
    diff = np.abs(a - b)
    h, w = diff.shape
    rows = np.array_split(np.arange(h), BLOCKS)
    cols = np.array_split(np.arange(w), BLOCKS)
    return max(float(diff[r[0] : r[-1] + 1, c[0] : c[-1] + 1].mean()) for r in rows for c in cols)


class RepeatFilter:
    """Fed the decoded frames in order; says which ones repeat their predecessor."""

    def __init__(self, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None
        self.dropped = 0

    def is_repeat(self, rgb: np.ndarray) -> bool:
        thumb = thumbnail(rgb)
        previous, self._previous = self._previous, thumb
        if previous is None or previous.shape != thumb.shape:
            return False
        repeat = block_change(previous, thumb) < self.threshold
        self.dropped += repeat
        return repeat
