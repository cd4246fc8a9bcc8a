"""The video pipeline: probe -> decode -> pair -> interpolate -> encode, streaming and bounded.

`interpolate_video` is the one entry point; the worker and the CLI call it with options, a loaded
model and optional progress, log and cancel callbacks. What it promises:

- Frames at their true times: output frame k is shown at T = k / rate and shows the input at T: the
  real frame where one is at T, else RIFE between the two real frames around T at
  t = (T - t_a) / (t_b - t_a) by their timestamps (`schedule`). The timing comes from every packet's
  timestamp (`timing.classify_times`): constant (frames on a grid of the exact rate), variable, or
  header overruled (a frame count or rate the frames contradict); no timestamps: the nominal rate.
- n = `num_frames` new frames between each pair of constant-rate input frames, at t = k/(n+1), each
  computed directly. F input frames give (F-1)*n + F output frames; with `loop` also the n frames
  from the last frame back to the first (the first frame is not repeated at the end): (F-1)*n + F + n.
- `use_calculated_fps`: output rate = input rate x (n+1) as an exact Fraction (30000/1001 x 2 =
  60000/1001), timestamps exact, duration and audio kept (copied; transcoded to AAC when MP4 cannot
  carry the codec; its offset from the video kept). Variable-rate input: (n+1) x its average rate,
  snapped to a standard rate within 0.1%. Otherwise the same frames are retimed to `fps` and the audio
  is dropped.
- `target_fps`: exactly that rate and the input's duration (round(duration x rate) frames), up or down.
- `dedup`: frames that repeat their predecessor are dropped before interpolation (`dedup`); their
  slots are interpolated between the distinct frames at their true times.
- `use_scene_detection`: across a hard cut (PySceneDetect's content score, see `scenes`) the new
  frames repeat the nearer real frame instead of mixing two shots; with `loop`, last -> first is
  judged the same way.
- Input: anything PyAV decodes. Rotation metadata is applied; an odd width/height is cropped by one
  pixel to even (yuv420p); 10-bit stays 16-bit RGB when the output keeps 10 bits (else it is converted
  to 8-bit, and the log says so); primaries, transfer, matrix, range and HDR10 side data are kept;
  variable frame rate is placed by its timestamps, with a warning.
- Output: H.264 (libx264, yuv420p, `crf`) in MP4 with +faststart by default; `options.output`
  (formats.OutputFormat) picks hevc/av1/vp9/prores/ffv1/gif/webp and mp4/mov/mkv/webm/gif/webp
  (codecs.py: encoders, gif.py: palette per clip). Title, creation time and chapters are carried,
  location tags only with `keep_location_metadata`. Written under a temporary name and renamed
  when complete.
- Encoding in parallel: `encode_segments` encoders at once on consecutive chunks of the output, each
  starting with a key frame, joined by stream copy with the audio (`chunks`, `join`); the frames are
  the single encoder's. Split jobs: `segments.plan_segments` cuts a job into ranges of output frames at
  key frames, `interpolate_video(..., segment=)` makes one range anywhere (seeking to a key frame
  before it, `resume`), `segments.join_segments` joins them: the whole job's frames, each made once.
- Errors (rife_core.errors): InvalidVideoError, TooFewFramesError, LimitExceededError (at probe
  time, before any inference), CancelledError (between batches).

The options and results (`options`) import without torch or av, so the API can use them; the
pipeline itself is loaded on first use of `interpolate_video`.
"""

from __future__ import annotations

from typing import Any

from rife_core.video.options import InterpolationOptions, Limits, Progress, VideoResult

__all__ = ["InterpolationOptions", "Limits", "Progress", "VideoResult", "interpolate_video"]


def __getattr__(name: str) -> Any:
    if name == "interpolate_video":
        from rife_core.video.pipeline import interpolate_video

        return interpolate_video
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
