"""Exact frame-rate and timestamp arithmetic.

Rates are `Fraction`s end to end: NTSC 30000/1001 doubled must be 60000/1001, not 59.94, or
timestamps drift by a frame every few minutes. The encoder's time base is 1/output_fps, so output
frame k has pts k exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
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


# --- time-true planning -------------------------------------------------------------------------------

# The rates players and editors expect; a computed rate within 0.1% of one of them becomes it exactly.
STANDARD_RATES: tuple[Fraction, ...] = tuple(
    sorted(
        {Fraction(r) for r in (12, 15, 24, 25, 30, 48, 50, 60, 72, 90, 96, 100, 120, 144, 150, 180, 200, 240)}
        | {Fraction(r * 1000, 1001) for r in (24, 30, 48, 60, 120, 240)}
    )
)
MIN_TARGET_FPS = Fraction(1)
MAX_TARGET_FPS = Fraction(240)
# A timestamp off a constant-rate grid by more than this fraction of an interval makes the rate variable.
GRID_TOLERANCE = Fraction(1, 4)
# An output time this close to an input frame's time shows that frame itself (below any timestamp precision).
ON_FRAME = Fraction(1, 10_000)


def parse_rate(value: int | float | str | Fraction) -> Fraction:
    """A requested output rate: a number or a rational string ("60000/1001", "59.94", "24"), within 1..240.

    NTSC-style decimals snap to k*1000/1001 (59.94 -> 60000/1001), as they do for `fps`. Raises
    ValueError with a message fit to show a client."""
    if isinstance(value, bool):
        raise ValueError(f"frame rate must be a number or a string such as '60000/1001', got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                rate = Fraction(int(num.strip()), int(den.strip()))
            else:
                number = float(text)
                rate = rational_fps(number) if number > 0 and number == number else Fraction(-1)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"frame rate must be a number or a fraction such as '60000/1001', got {value!r}") from None
    elif isinstance(value, (int, float, Fraction)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"frame rate must be a finite number, got {value!r}")
        rate = rational_fps(value) if value > 0 else Fraction(-1)
    else:
        raise ValueError(f"frame rate must be a number or a string such as '60000/1001', got {value!r}")
    if not MIN_TARGET_FPS <= rate <= MAX_TARGET_FPS:
        raise ValueError(f"frame rate must be within {MIN_TARGET_FPS}..{MAX_TARGET_FPS} fps, got {value!r}")
    return rate


def snap_rate(rate: Fraction) -> Fraction:
    """A computed rate as the standard one within 0.1% (27.97 x 2 -> 60000/1001), else with a
    denominator <= 1001 so that it stays a usable MP4 time base."""
    nearest = min(STANDARD_RATES, key=lambda standard: abs(rate / standard - 1))
    if abs(rate / nearest - 1) <= Fraction(_SAME_RATE):
        return nearest
    return rate if rate.denominator <= 1001 else rate.limit_denominator(1001)


def fits_grid(times: list[Fraction], fps: Fraction) -> bool:
    """Whether every time (relative to the first) lies within GRID_TOLERANCE of an interval of `fps`
    from where a constant rate puts it: checked against the grid, not between neighbours, so a slow
    drift is caught as well as a single gap."""
    slack = GRID_TOLERANCE / fps
    return all(abs(t - i / fps) <= slack for i, t in enumerate(times))


@dataclass(frozen=True)
class InputTiming:
    """How an input's frames are placed in time, decided from its packet timestamps.

    `constant`: the frames sit on a grid of `fps` and are timed at exactly i/fps (the header's exact
    rate, e.g. 30000/1001, where the timestamps were rounded). Otherwise each frame is timed by its own
    timestamp and `fps` is the average rate. `overruled` says in words what the header claimed that
    the frames contradict; `nominal` means there were no usable timestamps.
    """

    constant: bool
    fps: Fraction
    frames: int  # packets that carry a frame (the decoder's count may still differ slightly)
    span_s: Fraction  # first frame to last frame
    overruled: str | None = None
    nominal: bool = False

    @property
    def label(self) -> str:
        if self.overruled:
            return "header overruled"
        if self.nominal:
            return "nominal"
        return "constant" if self.constant else "variable"

    @property
    def duration_s(self) -> Fraction:
        """The stream's duration: the last frame lasts one interval of the (average) rate."""
        return self.span_s + 1 / self.fps


def classify_times(
    times: list[Fraction], header_fps: Fraction, header_frames: int, header_duration_s: float | None
) -> InputTiming:
    """Decide the timing of an input from its sorted frame times (seconds, any origin).

    The header rate wins when the frames fit its grid (so 30000/1001 stays exact); else the frames'
    own average rate, when they fit that grid (a mislabelled constant-rate file); else the input is
    variable rate. A header whose frame count or rate is far from what the frames span the same
    duration with is reported as overruled: that is not a file cut short (issue: the frames reach the
    end of the declared duration), but a header that lies.
    """
    count = len(times)
    if count < 2 or times[-1] <= times[0]:
        return InputTiming(True, header_fps, count, Fraction(max(count - 1, 0)) / header_fps, nominal=True)
    rel = [t - times[0] for t in times]
    span = rel[-1]
    measured = Fraction(count - 1) / span
    average = snap_rate(measured)
    overruled = None
    spans_header = header_duration_s is None or span + 2 / average >= Fraction(header_duration_s) * Fraction(9, 10)
    count_off = header_frames > 1 and abs(header_frames - count) > max(2, count // 20)
    # A header rate far from a constant rate the frames keep (not merely a variable rate's nominal one).
    rate_off = abs(float(measured / header_fps) - 1) > 0.05 and fits_grid(rel, average)
    if (spans_header and count_off) or rate_off:
        overruled = (
            f"the header declares {header_frames or 'no'} frames at {float(header_fps):.3f} fps, but the stream "
            f"holds {count} frames over {float(span + 1 / average):.2f} s ({float(measured):.3f} fps on "
            f"average): the frames' own timestamps are used"
        )
    if overruled is None and fits_grid(rel, header_fps):
        return InputTiming(True, header_fps, count, span)
    if fits_grid(rel, average):
        return InputTiming(True, average, count, Fraction(count - 1) / average, overruled=overruled)
    return InputTiming(False, average, count, span, overruled=overruled)
