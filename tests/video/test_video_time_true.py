"""Frames at their true times (issue 13), with the blend stand-in: timing decisions, output clocks,
variable-rate and mislabelled inputs, target_fps, dedup, A/V sync and drift."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from clipmaker import moving_square, read_pngs, read_video, write_video
from timedclips import click_time, marker_frame, marker_time, stream_start, video_duration, write_timed

from rife_core.cli import build_parser
from rife_core.video.decode import REORDER_WINDOW, FrameTimes
from rife_core.video.dedup import RepeatFilter
from rife_core.video.options import InterpolationOptions
from rife_core.video.pairs import PairStats, interpolate_timed
from rife_core.video.schedule import EndRule, OutputClock
from rife_core.video.timing import ON_FRAME, classify_times, parse_rate, snap_rate

# --- rates ---


@pytest.mark.parametrize(
    "value, rate",
    [(24, Fraction(24)), (23.976, Fraction(24000, 1001)), ("60000/1001", Fraction(60000, 1001)),
     ("59.94", Fraction(60000, 1001)), (" 50 ", Fraction(50)), (Fraction(30000, 1001), Fraction(30000, 1001)),
     (1, Fraction(1)), ("240", Fraction(240)), (12.5, Fraction(25, 2))],
)
def test_parse_rate_accepts_numbers_and_fractions(value, rate):
    assert parse_rate(value) == rate


@pytest.mark.parametrize("value", [0, 0.5, 241, "241/1", "-24", "abc", "1/0", "", True, None, float("nan"), "24/x"])
def test_parse_rate_refuses_with_a_message(value):
    with pytest.raises(ValueError, match="frame rate"):
        parse_rate(value)


def test_snap_rate_to_standard_rates():
    assert snap_rate(Fraction(5994, 100)) == Fraction(60000, 1001)
    assert snap_rate(Fraction(2 * 29970, 1000)) == Fraction(60000, 1001)
    assert snap_rate(Fraction(60)) == 60
    assert snap_rate(Fraction(1455, 50)) == Fraction(1455, 50)  # 29.1: no standard rate near
    assert snap_rate(Fraction(10**6 + 1, 34567)).denominator <= 1001


def test_options_take_target_fps_and_dedup():
    options = InterpolationOptions(target_fps="60000/1001", dedup=True)
    assert options.target_fps == Fraction(60000, 1001) and options.dedup
    assert InterpolationOptions().target_fps is None and not InterpolationOptions().dedup
    with pytest.raises(ValueError, match="1..240"):
        InterpolationOptions(target_fps=500)


# --- deciding the timing from the timestamps ---


def test_rounded_timestamps_of_a_constant_rate_stay_exact():
    ms = [Fraction(round(i * 1001 / 30), 1000) for i in range(300)]  # 29.97 fps in whole milliseconds (MKV)
    timing = classify_times(ms, Fraction(30000, 1001), 300, 10.01)
    assert timing.constant and timing.fps == Fraction(30000, 1001) and timing.label == "constant"


def test_a_gap_or_a_rate_change_is_variable():
    gap = [Fraction(i, 30) for i in range(10)] + [Fraction(9, 30) + Fraction(1, 5) + Fraction(i, 30) for i in range(20)]
    assert not classify_times(gap, Fraction(30), 30, None).constant
    joined = [Fraction(i, 30) for i in range(30)] + [1 + Fraction(i, 24) for i in range(24)]
    timing = classify_times(joined, Fraction(30), 54, None)
    assert not timing.constant and timing.label == "variable"
    assert timing.fps == snap_rate(Fraction(53) / (1 + Fraction(23, 24)))


def test_out_of_order_timestamps_are_not_variable():
    """B-frame (AVI) timestamps come out of order; the sorted times are a perfect grid."""
    times = [Fraction(i, 25) for i in range(50)]
    shuffled = [times[i ^ 1] for i in range(50)]  # neighbours swapped, as packed B-frames are
    assert classify_times(sorted(shuffled), Fraction(25), 50, 2.0).constant
    clock = FrameTimes(SimpleNamespace(timing=classify_times(times[:2] + [Fraction(5)], Fraction(25), 3, None),
                                       fps=Fraction(25), start_time=Fraction(0), start_s=0.0))
    assert not clock.grid  # a variable-rate timing: frames are timed by their own timestamps
    got = []
    for t in shuffled:
        clock.push(SimpleNamespace(pts=int(t * 25), time_base=Fraction(1, 25)))
        when = clock.pop()
        if when is not None:
            got.append(when)
    while (when := clock.pop(flushing=True)) is not None:
        got.append(when)
    assert got == times and REORDER_WINDOW >= 2


def test_a_header_the_frames_contradict_is_overruled():
    times = [Fraction(i * 10, 30) for i in range(68)]  # one frame every 1/3 s for 22.3 s
    timing = classify_times(times, Fraction(30), 670, 22.4)
    assert timing.overruled and "670 frames" in timing.overruled and "68 frames" in timing.overruled
    assert timing.fps == 3 and timing.frames == 68
    # a file cut short (frames end long before the declared duration) is not a lying header
    assert classify_times(times[:20], Fraction(3), 68, 22.4).overruled is None


# --- the output clock ---


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("fps", [Fraction(30000, 1001), Fraction(25), Fraction(24000, 1001)])
def test_constant_rate_clock_gives_the_fixed_timesteps(n, fps):
    clock = OutputClock(fps * (n + 1))
    for i in range(50):
        assert clock.between(Fraction(i) / fps, Fraction(i + 1) / fps) == [Fraction(k, n + 1) for k in range(n + 1)]
    assert clock.finish(Fraction(50) / fps, EndRule(True, 1 / fps)) == [True]
    assert clock.next == 50 * (n + 1) + 1


class NullModel:
    """A stand-in engine for long runs: returns first frames, counts samples."""

    def __init__(self) -> None:
        self.samples = 0

    def interpolate(self, frames0, frames1, timesteps, on_device=False):
        self.samples += frames0.shape[0] * len(timesteps)
        return frames0[:, None].expand(-1, len(timesteps), -1, -1, -1).clone()

    def interpolate_each(self, frames0, frames1, timesteps, on_device=False):
        self.samples += frames0.shape[0]
        return frames0.clone()


def test_no_drift_over_three_hours_of_ntsc():
    """3 h of 24000/1001 (258,741 frames) by timestamps, with a stand-in engine: to 60 fps, the last output
    frame lands within one output frame of its true time, and the frame count is round(duration x 60)."""
    fps, target = Fraction(24000, 1001), Fraction(60)
    count = int(3 * 3600 * fps)
    tiny = np.zeros((2, 2, 3), np.uint8)
    frames = ((tiny, Fraction(i) / fps, False) for i in range(count))
    clock, stats = OutputClock(target), PairStats()
    out = sum(1 for _ in interpolate_timed(frames, NullModel(), clock, EndRule(False, 1 / fps), 512, stats=stats))
    duration = count / fps
    assert out == round(duration * target)
    last_true = Fraction(out - 1) / target
    assert abs(last_true - (duration - 1 / target)) <= 1 / target
    assert abs(float(last_true) - float(out - 1) / 60) < 1e-9  # k/60 exactly: no float accumulation
    print(f"\n3 h at 24000/1001 -> 60: {out} frames; input duration {float(duration):.4f} s, "
          f"last output frame at {float(last_true):.4f} s")


# --- real files through the pipeline ---


def _gap_clip(path, video_start=Fraction(0)):
    """30 fps with a 200 ms gap after frame 9; a magenta marker at frame 12 and a click at its time."""
    times = [Fraction(i, 30) for i in range(10)] + [Fraction(9, 30) + Fraction(1, 5) + Fraction(i, 30) for i in range(20)]
    frames = [moving_square(i) for i in range(30)]
    frames[12] = marker_frame()
    times = [t + video_start for t in times]
    write_timed(path, frames, times, click_at=float(times[12]), audio_seconds=float(times[-1]) + 0.2)
    return path, times[12] - video_start


def _joined_clip(path, video_start=Fraction(0)):
    """1 s at 30 fps joined to 1 s at 24 fps (a MOV, like a phone's); marker and click at the join, 1.0 s."""
    times = [Fraction(i, 30) for i in range(30)] + [1 + Fraction(i, 24) for i in range(24)]
    frames = [moving_square(i) for i in range(54)]
    frames[30] = marker_frame()
    times = [t + video_start for t in times]
    write_timed(path, frames, times, click_at=1.0 + float(video_start), audio_seconds=2.2, fmt="mov",
                time_base=Fraction(1, 600))
    return path, Fraction(1)


@pytest.mark.parametrize("make", [_gap_clip, _joined_clip], ids=["200ms-gap", "30-then-24fps"])
@pytest.mark.parametrize("video_start", [Fraction(0), Fraction(1, 2)], ids=["together", "audio-first"])
@pytest.mark.parametrize("n", [1, 3])
def test_marker_and_click_stay_at_their_times(tmp_path, blend, run, make, video_start, n):
    src, marker_at = make(tmp_path / ("in.mov" if make is _joined_clip else "in.mp4"), video_start)
    out = tmp_path / "out.mp4"
    result = run(src, out, blend, num_frames=n)
    interval = 1 / float(result.output_fps)
    assert result.timing == "variable" and result.audio_kept
    assert any("variable frame rate" in w for w in run.warnings())
    assert "each frame at its own timestamp" in run.text()
    in_video, out_video = stream_start(src, "video"), stream_start(out, "video")
    # the marker picture sits at its input time (from the video's start), within one output interval
    assert abs((marker_time(out) - out_video) - float(marker_at)) <= interval
    # the click too, and the audio's start keeps its offset from the video's
    assert abs((click_time(out) - out_video) - (click_time(src) - in_video)) <= interval
    assert abs((out_video - stream_start(out, "audio")) - (in_video - stream_start(src, "audio"))) <= interval
    # the output lasts as long as the input's video stream
    assert abs(video_duration(out) - float(result.input_frames) / float(result.input_fps)) <= 2 * interval
    assert abs(video_duration(out) - (float(src_span(src)) + 1 / float(result.input_fps))) <= interval


def src_span(path):
    times = read_video(path)
    return (times.pts[-1] - times.pts[0]) * times.time_base


def test_header_that_lies_is_overruled(tmp_path, blend, run):
    """An AVI that declares 30 fps and (with its empty chunks) 111 frames, but holds 12 frames, one every
    1/3 s: the output lasts the input's 4 s, not 12 frames at 30 fps, and nothing is called truncated."""
    src = write_video(tmp_path / "sparse.avi", [moving_square(i) for i in range(12)], rate=30, codec="mpeg4",
                      pts=[i * 10 for i in range(12)])
    out = tmp_path / "out.mp4"
    result = run(src, out, blend, num_frames=3)
    assert result.timing == "header overruled" and result.input_frames == 12
    assert result.input_fps == 3 and result.output_fps == 12
    assert any(w.startswith("header overruled: the header declares 111 frames at 30.000 fps, but the stream holds "
                            "12 frames over 4.00 s") for w in run.warnings())
    assert not any("truncated" in w for w in run.warnings())
    assert abs(video_duration(out) - 4.0) <= 1 / 12
    assert read_video(out).frames == result.output_frames == 11 * 3 + 12


def test_edit_list_is_honoured(tmp_path, blend, run):
    """An MP4 whose edit list hides its first 3 frames: 10 frames play, from time 0; that is neither a lying
    header nor a truncated file."""
    src = write_video(tmp_path / "edit.mp4", [moving_square(i) for i in range(13)], rate=25, pts=list(range(-3, 10)),
                      options={"qp": "0", "bf": "0"},
                      container_options={"avoid_negative_ts": "disabled", "use_editlist": "1"})
    result = run(src, tmp_path / "out.mp4", blend, frames_dir=tmp_path / "png")
    assert (result.input_frames, result.output_frames, result.timing) == (10, 19, "constant")
    assert run.warnings() == []
    first = read_pngs(tmp_path / "png")[0]
    assert float(np.abs(first.astype(float) - moving_square(3)).mean()) < 3  # the 4th frame written is shown first


def test_no_timestamps_falls_back_to_the_nominal_rate(tmp_path, blend, run):
    src = write_video(tmp_path / "raw.h264", [moving_square(i) for i in range(8)], rate=25, fmt="h264")
    result = run(src, tmp_path / "out.mp4", blend)
    assert result.output_frames == 15 and result.output_fps == 50
    assert result.timing == "nominal"
    assert any("no usable timestamps: timing them at the nominal rate 25" in w for w in run.warnings())


def test_constant_rate_timesteps_and_batches_are_unchanged(tmp_path, blend, run):
    """The time-true path asks the model exactly what it asked before: n timesteps k/(n+1), batch_size pairs."""
    src = write_video(tmp_path / "in.mp4", [moving_square(i) for i in range(9)], rate=Fraction(30000, 1001),
                      options={"qp": "0"})
    result = run(src, tmp_path / "out.mp4", blend, num_frames=3, batch_size=3)
    assert result.timing == "constant" and "timing: constant" in run.text()
    assert blend.calls == [(3, [0.25, 0.5, 0.75])] * 2 + [(2, [0.25, 0.5, 0.75])]
    assert (result.generated_frames, result.kept_frames, result.dropped_frames) == (24, 9, 0)


# --- target_fps ---


@pytest.mark.parametrize(
    "rate, target, count",
    [(Fraction(24), Fraction(60), 12), (Fraction(60), Fraction(24), 30), (Fraction(25), Fraction(50), 10),
     (Fraction(30000, 1001), Fraction(60000, 1001), 10), (Fraction(24000, 1001), Fraction(60), 12)],
)
def test_target_fps_rate_duration_and_real_frames(tmp_path, blend, run, rate, target, count):
    src = write_video(tmp_path / "in.mp4", [moving_square(i) for i in range(count)], rate=rate, options={"qp": "0"},
                      audio_codec="aac", audio_seconds=float(count / rate))
    out = tmp_path / "out.mp4"
    result = run(src, out, blend, target_fps=target, frames_dir=tmp_path / "png")
    duration = count / rate
    assert result.output_fps == target and result.audio_kept
    assert result.output_frames == round(duration * target)
    got = read_video(out)
    assert got.frames == result.output_frames and got.average_rate == target
    assert [p * got.time_base for p in got.pts] == [Fraction(k) / target for k in range(got.frames)]
    assert abs(video_duration(out) - float(duration)) <= 1 / float(target)
    # output frames that fall on input times are those input frames, exactly (lossless PNGs)
    pngs = read_pngs(tmp_path / "png")
    inputs = [moving_square(i) for i in range(count)]
    decoded = read_video(src, keep_images=True).images
    on_input = [(k, round(Fraction(k) / target * rate)) for k in range(len(pngs))
                if abs(Fraction(k) / target - round(Fraction(k) / target * rate) / rate) <= ON_FRAME]
    assert on_input and len(on_input) == result.kept_frames
    for k, i in on_input:
        assert np.array_equal(pngs[k], decoded[i])
    assert result.dropped_frames == count - len(on_input)
    assert result.generated_frames == result.output_frames - len(on_input)
    text = run.text()
    assert f"{result.generated_frames} generated + {result.kept_frames} input frames kept" in text
    assert f"{result.dropped_frames} input frame(s) dropped" in text
    assert len(inputs) == count


def test_target_fps_with_variable_rate_input(tmp_path, blend, run):
    src, marker_at = _joined_clip(tmp_path / "in.mov")
    out = tmp_path / "out.mp4"
    result = run(src, out, blend, target_fps=60)
    assert result.output_fps == 60 and result.timing == "variable"
    duration = float(src_span(src)) + 1 / float(result.input_fps)
    assert abs(result.output_frames - duration * 60) <= 1
    assert abs(marker_time(out) - float(marker_at)) <= 1 / 60
    assert abs(click_time(out) - marker_time(out) - (click_time(src) - float(marker_at))) <= 1 / 60


# --- dedup ---


def test_dedup_fills_repeated_slots_by_time(tmp_path, blend, run):
    """On twos: frames 0,0,2,2,4,4...; the repeats are dropped and their slots are made between the distinct
    frames at their true times (a blend here: the average of the neighbours), the count is unchanged."""
    shown = [moving_square(i - i % 2, step=4) for i in range(12)]
    src = write_video(tmp_path / "twos.mp4", shown, rate=25, options={"qp": "0"})
    result = run(src, tmp_path / "out.mp4", blend, num_frames=1, dedup=True, frames_dir=tmp_path / "png")
    assert result.output_frames == 23 and result.input_frames == 12
    assert result.dropped_frames == 5  # the last repeat stays: it ends the video at its time
    assert "5 repeated frame(s) removed" in run.text()
    pngs = read_pngs(tmp_path / "png")
    decoded = read_video(src, keep_images=True).images
    for i in range(1, 10, 2):  # slot of repeated frame i: halfway between frames i-1 and i+1
        expected = (decoded[i - 1].astype(np.float32) + decoded[i + 1]) / 2
        assert float(np.abs(pngs[2 * i].astype(np.float32) - expected).mean()) < 0.6
        assert np.array_equal(pngs[2 * (i - 1)], decoded[i - 1])  # the distinct frames stay as they are
    # pairs of distinct frames span two intervals: timesteps 1/4, 1/2, 3/4, four pairs in one call
    assert blend.calls[0] == (4, [0.25, 0.5, 0.75])


def test_dedup_without_repeats_changes_nothing(tmp_path, blend, run):
    src = write_video(tmp_path / "in.mp4", [moving_square(i) for i in range(10)], rate=25, options={"qp": "0"})
    plain = run(src, tmp_path / "a.mp4", blend, frames_dir=tmp_path / "a")
    deduped = run(src, tmp_path / "b.mp4", blend, dedup=True, frames_dir=tmp_path / "b")
    assert deduped.dropped_frames == 0 and deduped.output_frames == plain.output_frames == 19
    assert all(np.array_equal(a, b) for a, b in zip(read_pngs(tmp_path / "a"), read_pngs(tmp_path / "b"), strict=True))


def test_repeat_filter_keeps_cut_frames_and_small_motion():
    still = moving_square(0, 320, 240)
    moved = still.copy()
    moved[100:116, 100:116] += 40  # a small thing moves: one block changes
    f = RepeatFilter()
    assert [f.is_repeat(x) for x in (still, still.copy(), moved, moved.copy(), 255 - moved)] == [
        False, True, False, True, False]
    assert f.dropped == 2


def test_cli_flags():
    args = build_parser().parse_args(["interpolate", "a.mp4", "b.mp4", "--target-fps", "60000/1001", "--dedup"])
    assert (args.target_fps, args.dedup) == ("60000/1001", True)
    from rife_core.cli import main

    with pytest.raises(SystemExit):
        main(["interpolate", "a.mp4", "b.mp4", "--target-fps", "1000"])
    with pytest.raises(SystemExit):
        main(["interpolate", "a.mp4", "b.mp4", "--target-fps", "60", "--fps", "30"])
