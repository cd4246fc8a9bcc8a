"""Pure logic: rate arithmetic, frame pairing, cut slots, loop, batching (no video files)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from rife_core.video.options import InterpolationOptions
from rife_core.video.pairs import PairStats, interpolate_pairs
from rife_core.video.timing import output_fps, output_frame_count, pick_input_rate, rational_fps, timesteps


def test_output_fps_is_exact():
    assert output_fps(Fraction(30000, 1001), 1, True, 8) == Fraction(60000, 1001)
    assert output_fps(Fraction(25), 3, True, 8) == Fraction(100)
    assert output_fps(Fraction(25), 3, False, 8) == Fraction(8)
    assert output_fps(Fraction(25), 1, False, 23.976) == Fraction(24000, 1001)
    assert output_fps(Fraction(25), 1, False, 12.5) == Fraction(25, 2)


def test_rational_fps():
    assert rational_fps(29.97) == Fraction(30000, 1001)
    assert rational_fps(59.94) == Fraction(60000, 1001)
    assert rational_fps(30.0) == Fraction(30)
    assert rational_fps(0.5) == Fraction(1, 2)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_output_frame_count(n):
    assert output_frame_count(10, n, False) == 9 * n + 10
    assert output_frame_count(10, n, True) == 9 * n + 10 + n
    assert output_frame_count(1, n, True) == 1


def test_timesteps_are_direct_fractions():
    assert timesteps(1) == [0.5]
    assert timesteps(3) == [0.25, 0.5, 0.75]


def test_pick_input_rate_prefers_nominal_for_cfr_and_average_for_vfr():
    assert pick_input_rate(Fraction(2997, 100), Fraction(30000, 1001), 100, None) == (Fraction(30000, 1001), False)
    rate, variable = pick_input_rate(Fraction(15, 2), Fraction(10), 6, 0.8)
    assert (rate, variable) == (Fraction(15, 2), True)
    assert pick_input_rate(None, None, 50, 2.0) == (Fraction(25), False)


def test_options_validate():
    with pytest.raises(ValueError):
        InterpolationOptions(num_frames=0)
    with pytest.raises(ValueError):
        InterpolationOptions(batch_size=0)
    with pytest.raises(ValueError):
        InterpolationOptions(crf=60)


def _frames(count):
    return [np.full((4, 6, 3), 10 * i, np.uint8) for i in range(count)]


def _ids(frames):
    # Each test frame is flat, so its value identifies it (blends give values in between).
    return [float(f.mean()) / 10 for f in frames]


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("loop", [False, True])
def test_pairs_order_and_count(blend, n, loop):
    frames = _frames(5)
    out = list(interpolate_pairs(((f, False) for f in frames), blend, n, batch_size=2, loop=loop))
    assert len(out) == output_frame_count(5, n, loop)
    ids = _ids(out)
    step = 1 / (n + 1)
    expected = [i + k * step for i in range(4) for k in range(n + 1)] + [4]
    if loop:  # last -> first: from 4 back down to 0, and the first frame is not repeated
        expected += [4 - 4 * k * step for k in range(1, n + 1)]
    assert ids == pytest.approx(expected, abs=0.06)
    # batches of at most 2 pairs, all timesteps in one call
    assert all(b <= 2 and len(ts) == n for b, ts in blend.calls)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_cut_slots_repeat_the_nearer_real_frame(blend, n):
    frames = _frames(4)
    cuts = [False, False, True, False]  # a cut between frame 1 and frame 2
    stats = PairStats()
    out = list(interpolate_pairs(zip(frames, cuts, strict=True), blend, n, batch_size=8, stats=stats))
    slots = out[1 * (n + 1) + 1 : 2 * (n + 1)]
    assert len(slots) == n
    for k, frame in enumerate(slots, start=1):
        nearer = frames[1] if k / (n + 1) < 0.5 else frames[2]
        assert np.array_equal(frame, nearer)
    assert stats.cuts == [2]
    assert stats.generated_frames == 3 * n
    assert sum(b for b, _ in blend.calls) == 2  # the cut pair never reaches the model


def test_loop_wrap_cut(blend):
    frames = _frames(3)
    stats = PairStats()
    out = list(
        interpolate_pairs(
            ((f, False) for f in frames), blend, 1, batch_size=4, loop=True, loop_cut=lambda: True, stats=stats
        )
    )
    assert len(out) == 6
    assert np.array_equal(out[-1], frames[0])  # t = 0.5 -> the later frame, which is the first frame
    assert stats.cuts == [0]


def test_before_batch_runs_before_every_model_call(blend):
    calls = []
    list(interpolate_pairs(((f, False) for f in _frames(9)), blend, 1, batch_size=3, before_batch=lambda: calls.append(1)))
    assert len(calls) == len(blend.calls) == 3
