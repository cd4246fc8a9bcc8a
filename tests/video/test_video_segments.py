"""A job split into segments (fan-out) or encoded by several encoders at once gives the whole job's output.

Split: `plan_segments` + `interpolate_video(segment=...)` per segment + `join_segments` must write
exactly the frames of the unsplit run (PNG-identical through `frames_dir`), and one file with the
same timestamps, frame count and audio. Chunked encoding (`encode_segments`): the same frames reach
the encoders, the output has the single encoder's timestamps and audio, with a key frame at every
chunk start.
"""

from __future__ import annotations

import os
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clipmaker import moving_square, psnr, read_pngs, read_video, write_video
from timedclips import click_time, stream_start, write_timed

import rife_core.video.pipeline as pipeline_module
from rife_core.errors import CancelledError
from rife_core.video import InterpolationOptions, interpolate_video
from rife_core.video.formats import OutputFormat
from rife_core.video.options import VideoResult
from rife_core.video.segments import Segment, interpolate_split, join_segments, plan_segments


def _scene_cut_clip(path: Path, cut_at: int, frames: int = 40, gop: int = 5, audio: bool = True) -> Path:
    """`frames` frames at 24 fps, a hard cut before frame `cut_at`, a key frame every `gop` frames."""
    pictures = [moving_square(i, 96, 64) if i < cut_at else 255 - moving_square(3 * i, 96, 64) for i in range(frames)]
    return write_video(path, pictures, rate=24, options={"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"},
                       audio_codec="aac" if audio else None, audio_seconds=frames / 24 if audio else 0.0)


def _keyframes(path: Path) -> list[int]:
    with av.open(os.fspath(path)) as c:
        v = c.streams.video[0]
        packets = sorted((p for p in c.demux(v) if p.size), key=lambda p: p.pts)
        return [i for i, p in enumerate(packets) if p.is_keyframe]


def _whole_and_split(tmp_path: Path, src: Path, model, count: int, seeks: int | None = None,
                     **options) -> tuple[VideoResult, VideoResult, list[Segment]]:
    """The whole run and the split one; `seeks`: how many segments must start decoding at a key frame
    (`resume`) rather than at the input's start (default: all but the first)."""
    whole = interpolate_video(src, tmp_path / "whole.mp4", InterpolationOptions(frames_dir=tmp_path / "whole", **options), model)
    split_options = InterpolationOptions(frames_dir=tmp_path / "split", **options)
    segments = plan_segments(src, split_options, count=count)
    assert len(segments) == count
    logs: list[str] = []
    split = interpolate_split(src, tmp_path / "split.mp4", split_options, model, segments,
                              log=lambda level, message: logs.append(message))
    seeked = [m for m in logs if m.startswith("decoding from input frame")]
    assert len(seeked) == (count - 1 if seeks is None else seeks), seeked
    return whole, split, segments


def _same_frames(tmp_path: Path) -> int:
    whole, split = read_pngs(tmp_path / "whole"), read_pngs(tmp_path / "split")
    assert len(whole) == len(split) > 0
    for k, (a, b) in enumerate(zip(whole, split, strict=True)):
        assert np.array_equal(a, b), f"output frame {k} differs"
    return len(whole)


def _same_file(tmp_path: Path, frames: int) -> None:
    whole, split = read_video(tmp_path / "whole.mp4"), read_video(tmp_path / "split.mp4")
    assert split.frames == whole.frames == frames
    assert split.pts == whole.pts  # continuous: one pts per output interval, no gap or repeat at a boundary
    assert split.average_rate == whole.average_rate
    assert split.audio_codec == whole.audio_codec
    if whole.audio_duration_s is not None:
        assert split.audio_duration_s == pytest.approx(whole.audio_duration_s, abs=1e-6)
        for kind in ("video", "audio"):
            assert stream_start(tmp_path / "split.mp4", kind) == pytest.approx(stream_start(tmp_path / "whole.mp4", kind), abs=1e-6)


@pytest.mark.parametrize(("count", "num_frames", "loop", "cut_at"), [
    (2, 1, False, 20),  # the cut is the boundary's own frame
    (3, 3, True, 16),  # a cut one frame after a boundary, with loop
    (3, 1, True, 24),  # a cut one frame before a boundary
])
def test_split_run_writes_the_whole_runs_frames(tmp_path: Path, blend, count: int, num_frames: int, loop: bool,
                                                 cut_at: int) -> None:
    src = _scene_cut_clip(tmp_path / "in.mp4", cut_at)
    whole, split, segments = _whole_and_split(tmp_path, src, blend, count, num_frames=num_frames, loop=loop,
                                              use_scene_detection=True)
    # At the key frames (every 5th) nearest to equal thirds / halves of the 40 frames.
    assert [s.first for s in segments] == {2: [0, 20], 3: [0, 15, 25]}[count]
    assert all(s.first in _keyframes(src) for s in segments)
    frames = _same_frames(tmp_path)
    _same_file(tmp_path, frames)
    assert split.output_frames == whole.output_frames == frames
    assert split.scene_cuts == whole.scene_cuts == ([0, cut_at] if loop else [cut_at])  # 0: last -> first
    assert (split.generated_frames, split.kept_frames, split.input_frames) == (
        whole.generated_frames, whole.kept_frames, whole.input_frames)
    assert split.audio_kept and whole.audio_kept


def test_split_run_with_the_real_model_is_png_identical(tmp_path: Path, model) -> None:
    """The real model's rounding depends on its batch: a segment boundary inside a batch (frame 15 with
    batch 4) must still give the same pictures, so straddling batches are made whole."""
    src = write_video(tmp_path / "in.mp4", [moving_square(i, 96, 64) for i in range(30)], rate=24,
                      options={"g": "5", "keyint_min": "5", "sc_threshold": "0"})
    whole, split, segments = _whole_and_split(tmp_path, src, model, 2, num_frames=3, batch_size=4)
    assert segments[1].first % 4 != 0
    _same_frames(tmp_path)
    assert split.output_frames == whole.output_frames == 117


def test_split_target_fps_and_variable_rate(tmp_path: Path, blend) -> None:
    """Variable-rate input placed by its timestamps, `target_fps` 60, a click in the audio: same frames,
    same file, the click where the whole run has it."""
    times = [Fraction(i, 30) for i in range(20)] + [Fraction(20, 30) + Fraction(i, 24) for i in range(1, 21)]
    frames = [moving_square(i, 64, 48) for i in range(len(times))]
    src = write_timed(tmp_path / "in.mp4", frames, times, click_at=1.2, gop=6)
    whole, split, _ = _whole_and_split(tmp_path, src, blend, 3, target_fps=Fraction(60))
    frames_out = _same_frames(tmp_path)
    _same_file(tmp_path, frames_out)
    assert whole.timing == split.timing == "variable"
    assert click_time(tmp_path / "split.mp4") == pytest.approx(click_time(tmp_path / "whole.mp4"), abs=1e-6)


def test_split_with_dedup(tmp_path: Path, blend) -> None:
    pictures = [moving_square(i // 2, 64, 48) for i in range(40)]  # shown on twos
    src = write_video(tmp_path / "in.mp4", pictures, rate=24, options={"g": "6", "qp": "0"})
    whole, split, _ = _whole_and_split(tmp_path, src, blend, 2, seeks=0, dedup=True)  # dedup decodes from the start
    _same_frames(tmp_path)
    assert split.dropped_frames == whole.dropped_frames > 0


def test_a_missed_seek_decodes_from_the_start(tmp_path: Path, blend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the seek does not land on the planned key frame (here: a plan with a wrong pts), the segment
    decodes from the start and skips to that frame: still the whole run's frames."""
    real = pipeline_module.plan_resume

    def off_by_one(*args, **kwargs):
        resume = real(*args, **kwargs)
        return resume if resume is None else replace(resume, pts=resume.pts + 1)

    monkeypatch.setattr(pipeline_module, "plan_resume", off_by_one)
    src = _scene_cut_clip(tmp_path / "in.mp4", 21)
    whole, split, _ = _whole_and_split(tmp_path, src, blend, 3, num_frames=2, loop=True, use_scene_detection=True)
    _same_frames(tmp_path)
    assert split.scene_cuts == whole.scene_cuts == [0, 21]


def test_plan_segments_declines_what_it_cannot_split(tmp_path: Path) -> None:
    src = _scene_cut_clip(tmp_path / "in.mp4", 20, audio=False)
    logs: list[str] = []
    assert plan_segments(src, InterpolationOptions(output=OutputFormat(codec="gif")), count=2,
                         log=lambda level, m: logs.append(m)) == []
    assert plan_segments(src, InterpolationOptions(), segment_s=60, log=lambda level, m: logs.append(m)) == []
    assert any("gif output is written whole" in m for m in logs) and any("makes one segment" in m for m in logs)
    segments = plan_segments(src, InterpolationOptions(), segment_s=0.5)
    assert len(segments) == 3 and segments[-1].out_end is None
    assert [s.out_start for s in segments[1:]] == [s.out_end for s in segments[:-1]]
    assert Segment.from_json(segments[1].to_json()) == segments[1]


def test_segment_result_round_trips_through_json(tmp_path: Path, blend) -> None:
    src = _scene_cut_clip(tmp_path / "in.mp4", 20)
    segment = plan_segments(src, InterpolationOptions(), count=2)[1]
    result = interpolate_video(src, tmp_path / "part.mp4", InterpolationOptions(), blend, segment=segment)
    assert result.first_output_frame == segment.out_start == 40
    assert result.output_frames == 79 - 40
    assert VideoResult.from_json(result.to_json()) == result


def test_join_refuses_segments_out_of_order(tmp_path: Path, blend) -> None:
    src = _scene_cut_clip(tmp_path / "in.mp4", 20)
    options = InterpolationOptions()
    segments = plan_segments(src, options, count=2)
    parts = [(tmp_path / f"p{s.index}.mp4", interpolate_video(src, tmp_path / f"p{s.index}.mp4", options, blend, segment=s))
             for s in segments]
    with pytest.raises(ValueError, match="does not follow"):
        join_segments(src, parts[::-1], tmp_path / "out.mp4", options)
    assert not (tmp_path / "out.mp4").exists()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pipeline_module, "chunk_frames", lambda fps: 10)
    return 10


def test_chunked_encoders_keep_frames_timestamps_and_audio(tmp_path: Path, blend, small_chunks: int) -> None:
    src = _scene_cut_clip(tmp_path / "in.mp4", 20)
    one = interpolate_video(src, tmp_path / "one.mp4", InterpolationOptions(num_frames=1, frames_dir=tmp_path / "one"), blend)
    logs: list[str] = []
    two = interpolate_video(src, tmp_path / "two.mp4",
                            InterpolationOptions(num_frames=1, encode_segments=2, frames_dir=tmp_path / "two"), blend,
                            log=lambda level, m: logs.append(m))
    assert any("2 encoders at once on consecutive chunks of 10 frames" in m for m in logs)
    assert one.output_frames == two.output_frames == 79
    pngs_one, pngs_two = read_pngs(tmp_path / "one"), read_pngs(tmp_path / "two")
    assert all(np.array_equal(a, b) for a, b in zip(pngs_one, pngs_two, strict=True))
    a, b = read_video(tmp_path / "one.mp4"), read_video(tmp_path / "two.mp4", keep_images=True)
    assert b.pts == a.pts and b.frames == 79
    assert b.audio_duration_s == pytest.approx(a.audio_duration_s, abs=1e-6)
    assert min(psnr(x, y) for x, y in zip(b.images, pngs_two, strict=True)) > 35
    assert _keyframes(tmp_path / "two.mp4")[:8] == list(range(0, 80, small_chunks))
    assert not list(tmp_path.glob("*.parts"))


def test_chunked_encoders_leave_nothing_when_cancelled(tmp_path: Path, blend, small_chunks: int) -> None:
    src = _scene_cut_clip(tmp_path / "in.mp4", 20)
    asked = iter(range(1000))
    with pytest.raises(CancelledError):
        interpolate_video(src, tmp_path / "out.mp4", InterpolationOptions(num_frames=3, encode_segments=3, batch_size=2),
                          blend, should_cancel=lambda: next(asked) >= 12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_chunked_encoders_convert_on_the_model_device_each_with_its_own_converter(tmp_path: Path, blend,
                                                                                  small_chunks: int) -> None:
    """The GPU worker's path (frames to yuv420p on the model's device), here on the CPU device: every
    encoder thread gets its own converter (on CUDA, its own stream), and the pictures match."""
    src = _scene_cut_clip(tmp_path / "in.mp4", 20, audio=False)
    one = interpolate_video(src, tmp_path / "one.mp4", InterpolationOptions(yuv_on_model_device=True), blend)
    two = interpolate_video(src, tmp_path / "two.mp4", InterpolationOptions(yuv_on_model_device=True, encode_segments=2),
                            blend)
    a, b = read_video(tmp_path / "one.mp4", keep_images=True), read_video(tmp_path / "two.mp4", keep_images=True)
    assert one.output_frames == two.output_frames == b.frames == 79 and a.pts == b.pts
    assert min(psnr(x, y) for x, y in zip(a.images, b.images, strict=True)) > 35


@pytest.mark.parametrize(("codec", "container"), [("hevc", "mkv"), ("vp9", "webm"), ("prores", "mov"), ("h264", "mkv")])
def test_chunked_encoders_and_split_runs_in_other_formats(tmp_path: Path, blend, small_chunks: int, codec: str,
                                                         container: str) -> None:
    """Parts of a B-frame codec in MKV/WebM are written as MP4 (Matroska keeps no decode times) and joined
    into the real container: same timestamps, count and audio as the single encoder, for the chunked
    encoders and for a split run."""
    fmt = OutputFormat(codec=codec, container=container)
    src = _scene_cut_clip(tmp_path / "in.mp4", 20)
    one = interpolate_video(src, tmp_path / f"one{fmt.extension}", InterpolationOptions(output=fmt), blend)
    two = interpolate_video(src, tmp_path / f"two{fmt.extension}", InterpolationOptions(output=fmt, encode_segments=3),
                            blend)
    segments = plan_segments(src, InterpolationOptions(output=fmt), count=2)
    split = interpolate_split(src, tmp_path / f"split{fmt.extension}", InterpolationOptions(output=fmt), blend, segments)
    a = read_video(tmp_path / f"one{fmt.extension}", keep_images=True)
    for name, result in (("two", two), ("split", split)):
        b = read_video(tmp_path / f"{name}{fmt.extension}", keep_images=True)
        assert (b.codec, b.frames, result.output_frames) == (a.codec, 79, one.output_frames)
        assert b.pts == a.pts and b.audio_codec == a.audio_codec
        assert b.audio_duration_s == pytest.approx(a.audio_duration_s, abs=1e-6)
        assert min(psnr(x, y) for x, y in zip(a.images, b.images, strict=True)) > 35


def test_outputs_written_whole_are_neither_chunked_nor_split(tmp_path: Path, blend) -> None:
    """AV1 parts cannot be read back by this build (no AV1 decoder to copy the stream with); GIF is one palette."""
    src = _scene_cut_clip(tmp_path / "in.mp4", 20, audio=False)
    logs: list[str] = []
    for fmt, reason in ((OutputFormat(codec="av1"), "an av1 output is written whole"),
                        (OutputFormat(codec="gif"), "a gif output is written whole")):
        logs.clear()
        assert plan_segments(src, InterpolationOptions(output=fmt), count=2, log=lambda level, m: logs.append(m)) == []
        assert any(reason in m for m in logs)
        logs.clear()
        interpolate_video(src, tmp_path / f"out{fmt.extension}", InterpolationOptions(output=fmt, encode_segments=3),
                          blend, log=lambda level, m: logs.append(m))
        assert not any("encoders at once" in m for m in logs)
