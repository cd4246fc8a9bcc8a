"""Inputs of every shape: rotation, odd size, 10-bit, full range / BT.709, VFR, GIF, WebM, MKV, audio."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from clipmaker import moving_square, read_pngs, read_video, write_video


def _square_clip(tmp_path, name="in.mp4", count=6, w=64, h=48, **kw):
    return write_video(tmp_path / name, [moving_square(i, w, h) for i in range(count)], **kw)


def _close(a: np.ndarray, b: np.ndarray, tol: float = 6.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) < tol


@pytest.mark.parametrize("rotation", [90, 270, 180])
def test_rotation_metadata_is_applied(tmp_path, blend, run, rotation):
    src = _square_clip(tmp_path, rotation=rotation, options={"qp": "0"})
    result = run(src, tmp_path / "out.mp4", blend, frames_dir=tmp_path / "png")
    upright = np.rot90(moving_square(0), k=rotation // 90)  # display matrix angles are counter-clockwise
    frames = read_pngs(tmp_path / "png")
    assert frames[0].shape == upright.shape
    assert _close(frames[0], upright)
    out = read_video(tmp_path / "out.mp4")
    assert (out.width, out.height) == (result.width, result.height) == (upright.shape[1], upright.shape[0])
    assert f"{rotation} degrees" in run.text()


def test_odd_dimensions_are_cropped_to_even(tmp_path, blend, run):
    src = _square_clip(tmp_path, w=175, h=143, pix_fmt="yuv444p", options={"qp": "0"})
    result = run(src, tmp_path / "out.mp4", blend, num_frames=2, frames_dir=tmp_path / "png")
    assert (result.width, result.height) == (174, 142)
    out = read_video(tmp_path / "out.mp4")
    assert (out.width, out.height, out.frames) == (174, 142, 16)
    assert _close(read_pngs(tmp_path / "png")[0], moving_square(0, 175, 143)[:142, :174], tol=2.0)
    assert "cropped to 174x142" in run.text()


def test_ten_bit_hevc_input(tmp_path, blend, run):
    src = _square_clip(
        tmp_path, "in10.mkv", codec="libx265", pix_fmt="yuv420p10le", options={"x265-params": "log-level=error:lossless=1"}
    )
    result = run(src, tmp_path / "out.mp4", blend, frames_dir=tmp_path / "png")
    assert result.output_frames == 11
    frames = read_pngs(tmp_path / "png")
    assert _close(frames[0], moving_square(0)) and _close(frames[2], moving_square(1))
    out = read_video(tmp_path / "out.mp4")
    assert out.pix_fmt == "yuv420p" and out.frames == 11
    assert "10-bit input" in run.text()


@pytest.mark.parametrize(
    "codec, name, options, color_range",
    [
        ("libx264", "in.mp4", {"qp": "0"}, 2),  # decodes as yuvj444p
        ("libx264", "in.mp4", {"qp": "0"}, 1),
        ("libx265", "in.mkv", {"x265-params": "log-level=error:lossless=1"}, 2),  # yuv444p + a range flag
    ],
)
def test_colour_range_and_bt709_survive(tmp_path, blend, run, codec, name, options, color_range):
    # Decoding BT.709 as BT.601, or full range as limited, moves this colour by 10 or more levels.
    flat = [np.full((48, 64, 3), (200, 40, 90), np.uint8) for _ in range(4)]
    src = write_video(
        tmp_path / name, flat, codec=codec, color_range=color_range, colorspace=1, options=options, pix_fmt="yuv444p"
    )
    run(src, tmp_path / "out.mp4", blend, frames_dir=tmp_path / "png")
    assert _close(read_pngs(tmp_path / "png")[1], flat[0], tol=2.0)
    out = read_video(tmp_path / "out.mp4", keep_images=True)
    assert (out.color_range, out.colorspace) == (color_range, 1)
    assert _close(out.images[-1], flat[0], tol=3.0)


def test_variable_frame_rate_warns_and_uses_the_average(tmp_path, blend, run):
    # timestamps 0,1,2,4,5,8,9,10 at 1/20 s: frames 3 and 6 come late
    pts = [0, 1, 2, 4, 5, 8, 9, 10]
    src = _square_clip(tmp_path, count=len(pts), rate=20, pts=pts)
    result = run(src, tmp_path / "out.mp4", blend)
    assert any("variable frame rate" in w for w in run.warnings())
    assert result.output_frames == 15
    assert result.output_fps == 2 * result.input_fps
    assert abs(float(result.input_fps) - 8 / (11 / 20)) < 2.5  # about the average, not the 20 fps of the time base


def test_gif_input(tmp_path, blend, run):
    src = _square_clip(tmp_path, "in.gif", codec="gif", pix_fmt="rgb8", count=5)
    result = run(src, tmp_path / "out.mp4", blend, num_frames=3)
    assert (result.input_frames, result.input_fps) == (5, Fraction(10))
    assert result.output_frames == 17 and result.output_fps == 40
    assert read_video(tmp_path / "out.mp4").frames == 17


@pytest.mark.parametrize(
    "name, codec",
    [("in.webm", "libvpx-vp9"), ("in.mov", "libx264"), ("in.mkv", "libx264"), ("hevc.mp4", "libx265")],
)
def test_containers_and_codecs(tmp_path, blend, run, name, codec):
    options = {"x265-params": "log-level=error"} if codec == "libx265" else None
    src = _square_clip(tmp_path, name, codec=codec, count=5, rate=Fraction(24000, 1001), options=options)
    result = run(src, tmp_path / "out.mp4", blend, num_frames=1)
    assert result.input_fps == Fraction(24000, 1001) and result.output_fps == Fraction(48000, 1001)
    out = read_video(tmp_path / "out.mp4")
    assert out.frames == result.output_frames == 9
    assert [p * out.time_base for p in out.pts] == [k / Fraction(48000, 1001) for k in range(9)]


def test_audio_is_copied_when_the_duration_is_kept(tmp_path, blend, run):
    src = _square_clip(tmp_path, count=10, rate=10, audio_codec="aac", audio_seconds=1.0)
    source = read_video(src)
    result = run(src, tmp_path / "out.mp4", blend, num_frames=2)
    assert result.audio_kept
    out = read_video(tmp_path / "out.mp4")
    assert out.audio_codec == "aac"
    assert abs(out.audio_duration_s - source.audio_duration_s) <= out.audio_frame_s
    assert "audio kept" in run.text()


def test_audio_is_dropped_when_retimed(tmp_path, blend, run):
    src = _square_clip(tmp_path, count=10, rate=10, audio_codec="aac", audio_seconds=1.0)
    result = run(src, tmp_path / "out.mp4", blend, num_frames=2, use_calculated_fps=False, fps=24)
    assert not result.audio_kept
    assert read_video(tmp_path / "out.mp4").audio_codec is None
    assert any(level == "INFO" and m.startswith("audio dropped") for level, m in run.logs)


def test_audio_that_mp4_cannot_hold_is_transcoded(tmp_path, blend, run):
    src = _square_clip(tmp_path, "in.mkv", count=10, rate=10, audio_codec="pcm_s16le", audio_seconds=1.0)
    result = run(src, tmp_path / "out.mp4", blend)
    assert result.audio_kept
    out = read_video(tmp_path / "out.mp4")
    assert out.audio_codec == "aac"
    assert abs(out.audio_duration_s - 1.0) <= 2 * out.audio_frame_s
    assert "transcoded" in run.text()


@pytest.mark.slow
def test_real_clip_with_aac_keeps_its_audio(tmp_path, clip, model, run):
    """bigbuckbunny.mp4 (720p, AAC) through the real model, scaled down first to stay quick."""
    import av

    src = tmp_path / "bbb.mp4"
    with av.open(str(clip("bigbuckbunny.mp4"))) as inp, av.open(str(src), "w") as out:
        v_in, a_in = inp.streams.video[0], inp.streams.audio[0]
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 160, 90, "yuv420p"
        a = out.add_stream_from_template(a_in)
        for i, frame in enumerate(inp.decode(v_in)):
            if i == 12:
                break
            small = frame.reformat(width=160, height=90)
            small.pts, small.time_base = i, Fraction(1, 25)
            for p in v.encode(small):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        inp.seek(0)  # the video loop read past the first audio packets
        for p in inp.demux(a_in):
            if p.dts is not None and p.pts * p.time_base < Fraction(12, 25):
                p.stream = a
                out.mux(p)
    assert read_video(src).audio_codec == "aac"
    source = read_video(src)
    result = run(src, tmp_path / "out.mp4", model, num_frames=1)
    out = read_video(tmp_path / "out.mp4")
    assert result.audio_kept and out.audio_codec == "aac" and out.frames == 23
    assert abs(out.audio_duration_s - source.audio_duration_s) <= out.audio_frame_s
