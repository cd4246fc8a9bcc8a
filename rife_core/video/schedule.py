"""Output time -> (pair, t): which picture every output frame shows.

Output frame k is shown at T = k / rate (time 0 = the first input frame). Its picture is the input
at time T: the real frame when one is at T, else the frame RIFE makes between the two real frames
around T at t = (T - time_a) / (time_b - time_a), from their timestamps, never their indices. For
constant-rate input and rate = (n+1) x its rate this gives exactly t = k/(n+1) for every pair.

Pure arithmetic on Fractions (no torch, no av), fed one pair at a time, so it streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from rife_core.video.timing import ON_FRAME


@dataclass(frozen=True)
class EndRule:
    """Where the output stops, once the last frame's time is known.

    `through_last`: up to and including the last frame (fal's (F-1)*n + F frames for constant rate);
    otherwise the output covers the input's whole duration, last frame time + `last_duration`
    (`target_fps`: round(duration x rate) frames). Output times past the last frame hold it.
    """

    through_last: bool
    last_duration: Fraction

    def count(self, last_time: Fraction, rate: Fraction) -> int:
        if self.through_last:
            return int(last_time * rate + Fraction(1, 2)) + 1
        return max(1, round((last_time + self.last_duration) * rate))


class OutputClock:
    """Hands out output frames in order: `between` for each pair of input frames, `finish` at the end."""

    def __init__(self, rate: Fraction) -> None:
        if rate <= 0:
            raise ValueError(f"output rate must be > 0, got {rate}")
        self.rate = Fraction(rate)
        self.next = 0  # the next output frame's number

    def time(self, k: int) -> Fraction:
        return Fraction(k) / self.rate

    def between(self, time_a: Fraction, time_b: Fraction) -> list[Fraction]:
        """The t of every output frame in [time_a, time_b): 0 shows frame a itself; an output frame
        within ON_FRAME of time_b is left to the next pair, which shows frame b there."""
        ts: list[Fraction] = []
        if time_b <= time_a:
            return ts
        while True:
            when = self.time(self.next)
            if when >= time_b - ON_FRAME:
                return ts
            ts.append(Fraction(0) if when <= time_a + ON_FRAME else (when - time_a) / (time_b - time_a))
            self.next += 1

    def finish(self, last_time: Fraction, end: EndRule) -> list[bool]:
        """The output frames after the last pair: True where the frame is the last one at its own
        time, False where it is held past it."""
        out: list[bool] = []
        total = end.count(last_time, self.rate)
        while self.next < total:
            out.append(abs(self.time(self.next) - last_time) <= ON_FRAME)
            self.next += 1
        return out
