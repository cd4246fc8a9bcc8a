"""The video pipeline: probe -> decode -> pair -> interpolate -> encode, streaming and bounded.

`interpolate_video` is the one entry point; the worker and the CLI call it with options, a loaded
model and optional progress, log and cancel callbacks.
"""

from rife_core.video.options import InterpolationOptions, Limits, Progress, VideoResult
from rife_core.video.pipeline import interpolate_video

__all__ = ["InterpolationOptions", "Limits", "Progress", "VideoResult", "interpolate_video"]
