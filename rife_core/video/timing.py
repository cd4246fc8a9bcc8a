"""Exact frame-rate and timestamp arithmetic.

Rates are `Fraction`s end to end: NTSC 30000/1001 doubled must be 60000/1001, not 59.94, or
timestamps drift by a frame every few minutes. The encoder's time base is 1/output_fps, so output
frame k has pts k exactly.
"""

from __future__ import annotations

from fractions import Fraction

# Rates within this relative distance are treated as the same rate.
_SAME_RATE = 1e-3


def rational_fps(value: float | Fraction) -> Fraction:
    """A user-given rate as a Fraction: NTSC-style values snap to k*1000/1001 (23.976 -> 24000/1001)."""
    if isinstance(value, Fraction):
        return value
    if value <= 0:
        raise ValueError(f"frame rate must be > 0, got {value}")
    ntsc = Fraction(round(value * 1001 / 1000) * 1000, 1001)
    if ntsc > 0 and abs(float(ntsc) - value) <= 1e-3 * value and abs(value - round(value)) > 1e-6:
        return ntsc
    return Fraction(value).limit_denominator(1000)


def output_fps(input_fps: Fraction, num_frames: int, use_calculated_fps: bool, fps: float) -> Fraction:
    """Input rate x (n+1) when the duration is kept; else the requested rate (the video is retimed)."""
    if use_calculated_fps:
        return input_fps * (num_frames + 1)
    return rational_fps(fps)


def output_frame_count(input_frames: int, num_frames: int, loop: bool) -> int:
    """F inputs give (F-1)*n + F frames; `loop` adds the n frames from the last back to the first."""
    if input_frames < 2:
        return input_frames
    return (input_frames - 1) * num_frames + input_frames + (num_frames if loop else 0)


def timesteps(num_frames: int) -> list[float]:
    """The n positions t = k/(n+1), k = 1..n, between a pair of frames."""
    return [k / (num_frames + 1) for k in range(1, num_frames + 1)]


def pick_input_rate(
    average: Fraction | None, nominal: Fraction | None, frames: int, duration_s: float | None
) -> tuple[Fraction, bool]:
    """The rate to treat the input as constant-rate at, and whether it looked variable.

    The nominal rate (FFmpeg's r_frame_rate) is exact for constant-rate video (30000/1001 where the
    average can come out as 2997/100); when it disagrees with the average the video is variable
    rate and the average is the honest choice. The average is rounded to a denominator <= 1001 so
    that it stays usable as an MP4 time base.
    """
    avg = average if average and average > 0 else None
    nom = nominal if nominal and nominal > 0 else None
    if avg is None and frames > 1 and duration_s:
        avg = Fraction(frames / duration_s).limit_denominator(1001)
    if avg is None:
        if nom is not None:
            return nom, False
        return Fraction(25), True
    if nom is not None and abs(float(nom / avg) - 1) <= _SAME_RATE:
        return nom, False
    variable = nom is not None
    return (avg if avg.denominator <= 1001 else avg.limit_denominator(1001)), variable
