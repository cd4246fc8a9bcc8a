"""Errors a video job can end with. Each has a stable `error_type` that the API returns to clients.

They live in rife_core so the pipeline can raise them without knowing about HTTP or queues; the
worker maps them to the fal-style `error` / `error_type` fields unchanged.
"""

from __future__ import annotations


class RifeError(Exception):
    error_type = "internal_error"


class InvalidVideoError(RifeError):
    """The input is not a decodable video (not media, truncated, audio-only, zero bytes...)."""

    error_type = "invalid_video"


class TooFewFramesError(InvalidVideoError):
    """A video with fewer than two frames has nothing to interpolate between."""

    error_type = "too_few_frames"


class LimitExceededError(RifeError):
    """The input or output is larger than this deployment allows (duration, frames, resolution...)."""

    error_type = "limit_exceeded"

    def __init__(self, message: str, limit: str = "limit_exceeded") -> None:
        super().__init__(message)
        # e.g. "duration_limit", "frame_limit", "resolution_limit", "output_limit"
        self.error_type = limit


class CancelledError(RifeError):
    """The client cancelled the request; raised between batches."""

    error_type = "cancelled"


class WeightsError(RuntimeError):
    """A model name, file or state dict that cannot be used; the message says how to fix it.

    Not a RifeError: it is the operator's problem (a worker's model files), raised at load time.
    """
