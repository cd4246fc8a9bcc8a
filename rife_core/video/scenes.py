"""Hard-cut detection on the frames the pipeline already decodes.

Interpolating across a cut warps one shot into another and produces a ghostly mix; at a cut the
new frames must repeat a real frame instead. We run PySceneDetect's `ContentDetector` on each
decoded frame inside the streaming decode instead of a separate pass over the file: it costs no
second decode, works for every input PyAV reads (a separate OpenCV pass would not see the same
frames for rotated, GIF or variable-rate input), the frame indices are ours by construction, and
memory stays at one thumbnail. The detector's score for frame i only compares frame i with frame
i-1, so the decision for the pair (i-1, i) is known as soon as frame i is decoded.

The threshold was tuned on `bikes.mp4` (640x272, 5 hard cuts, at frames 30, 76, 137, 187, 242)
with 256-pixel thumbnails: the cuts score 38.0-60.6 and every other frame at most 20.2 (fast
camera pans); `carphone_pristine.mp4` and `bigbuckbunny.mp4` have no cuts and stay below 7.3. The
scene detector's own default, 27, sits between both groups with room on either side, so we keep
it. `min_scene_len=0` switches off its flash filter: every hard cut counts, also two frames apart
or next to the first or last frame.
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
from scenedetect import ContentDetector, FrameTimecode

THRESHOLD = 27.0
THUMBNAIL_SIDE = 256  # scores barely depend on size (160-640 px wide agree within ~2 points)


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = THUMBNAIL_SIDE / max(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # the detector expects OpenCV's BGR order


class CutDetector:
    """Feed every frame in order; `push` says whether a hard cut lies just before that frame."""

    def __init__(self, fps: Fraction, threshold: float = THRESHOLD) -> None:
        self.fps = Fraction(fps)
        self.threshold = threshold
        self._detector = self._new_detector()
        self._index = 0
        self._first: np.ndarray | None = None
        self._last: np.ndarray | None = None

    def _new_detector(self) -> ContentDetector:
        return ContentDetector(threshold=self.threshold, min_scene_len=0)

    def push(self, rgb: np.ndarray) -> bool:
        thumb = _thumbnail(rgb)
        if self._first is None:
            self._first = thumb
        self._last = thumb
        cuts = self._detector.process_frame(FrameTimecode(self._index, self.fps), thumb)
        self._index += 1
        return bool(cuts) and self._index > 1

    def remember_first(self, rgb: np.ndarray) -> None:
        """The input's first frame, for `wraps_with_cut`, when the frames pushed start later (a segment's seek)."""
        self._first = _thumbnail(rgb)

    def wraps_with_cut(self) -> bool:
        """For `loop`: whether going from the last frame back to the first is a cut, by the same score."""
        if self._first is None or self._last is None:
            return False
        detector = self._new_detector()
        detector.process_frame(FrameTimecode(0, self.fps), self._last)
        return bool(detector.process_frame(FrameTimecode(1, self.fps), self._first))
