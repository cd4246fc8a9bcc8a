"""Every bad input ends with its own error type, before inference; failures leave no output behind."""

from __future__ import annotations

import time

import pytest
from clipmaker import moving_square, write_audio_only, write_video

from rife_core.errors import (
    CancelledError,
    InvalidVideoError,
    LimitExceededError,
    RifeError,
    TooFewFramesError,
)
from rife_core.video import Limits


def _clip(tmp_path, count=10, name="in.mp4", **kw):
    return write_video(tmp_path / name, [moving_square(i) for i in range(count)], **kw)


def _no_output_left(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(("out", ".out"))] == []


def _fails(run, src, tmp_path, model, error, error_type, **options):
    out = tmp_path / "out" / "out.mp4"
    with pytest.raises(error) as info:
        run(src, out, model, **options)
    assert info.value.error_type == error_type, info.value
    assert not out.exists()
    assert not out.parent.exists() or _no_output_left(out.parent)
    return info.value


def test_zero_bytes(tmp_path, blend, run):
    src = tmp_path / "empty.mp4"
    src.write_bytes(b"")
    err = _fails(run, src, tmp_path, blend, InvalidVideoError, "invalid_video")
    assert "empty" in str(err)


def test_text_file_named_mp4(tmp_path, blend, run):
    src = tmp_path / "notes.mp4"
    src.write_text("this is not a video\n" * 50)
    _fails(run, src, tmp_path, blend, InvalidVideoError, "invalid_video")


def test_missing_file(tmp_path, blend, run):
    _fails(run, tmp_path / "nope.mp4", tmp_path, blend, InvalidVideoError, "invalid_video")


def test_truncated_without_index(tmp_path, blend, run):
    # MP4 as PyAV writes it has its index (moov) at the end: cutting the file loses it
    data = _clip(tmp_path).read_bytes()
    src = tmp_path / "cut.mp4"
    src.write_bytes(data[: len(data) // 2])
    _fails(run, src, tmp_path, blend, InvalidVideoError, "invalid_video")


def test_truncated_with_no_decodable_frame(tmp_path, blend, run):
    # index first (faststart), then the file ends before the first frame's data
    full = _clip(tmp_path, name="fast.mp4", container_options={"movflags": "+faststart"})
    data = full.read_bytes()
    mdat = data.index(b"mdat")
    src = tmp_path / "cut.mp4"
    src.write_bytes(data[: mdat + 8])
    _fails(run, src, tmp_path, blend, InvalidVideoError, "invalid_video")


def test_truncated_midway_keeps_the_frames_it_has(tmp_path, blend, run):
    full = _clip(tmp_path, count=20, name="fast.mp4", container_options={"movflags": "+faststart"})
    data = full.read_bytes()
    src = tmp_path / "cut.mp4"
    src.write_bytes(data[: len(data) * 3 // 4])
    result = run(src, tmp_path / "out.mp4", blend)
    assert 2 <= result.input_frames < 20
    assert result.output_frames == 2 * result.input_frames - 1
    assert any("truncated" in w for w in run.warnings())


def test_audio_only(tmp_path, blend, run):
    src = write_audio_only(tmp_path / "sound.m4a")
    err = _fails(run, src, tmp_path, blend, InvalidVideoError, "invalid_video")
    assert "no video stream" in str(err)


def test_single_frame(tmp_path, blend, run):
    src = _clip(tmp_path, count=1)
    _fails(run, src, tmp_path, blend, TooFewFramesError, "too_few_frames")
    assert blend.calls == []


def test_video_stream_without_frames(tmp_path, blend, run):
    """A video track with no packets at all (here beside an audio track): 0 frames."""
    import av
    import numpy as np

    src = tmp_path / "noframes.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "mono"
        out.start_encoding()
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for p in audio.encode(frame):
                out.mux(p)
        for p in audio.encode():
            out.mux(p)
    _fails(run, src, tmp_path, blend, TooFewFramesError, "too_few_frames")


def test_single_frame_gif(tmp_path, blend, run):
    src = _clip(tmp_path, count=1, name="one.gif", codec="gif", pix_fmt="rgb8")
    _fails(run, src, tmp_path, blend, TooFewFramesError, "too_few_frames")


def test_huge_declared_dimensions(tmp_path, blend, run):
    # 2 gray frames of 4352x2448: tiny to store, above the default 3840x2160
    import numpy as np

    frames = [np.full((2448, 4352, 3), 128, np.uint8)] * 2
    src = write_video(tmp_path / "huge.mp4", frames, options={"preset": "ultrafast"})
    start = time.perf_counter()
    err = _fails(run, src, tmp_path, blend, LimitExceededError, "resolution_limit")
    assert time.perf_counter() - start < 2 and "4352x2448" in str(err)
    assert blend.calls == []


def test_portrait_is_judged_orientation_free(tmp_path, blend, run):
    src = _clip(tmp_path, count=3)  # 64x48
    run(src, tmp_path / "ok.mp4", blend, limits=Limits(max_width=48, max_height=64))
    _fails(run, src, tmp_path, blend, LimitExceededError, "resolution_limit", limits=Limits(max_width=60, max_height=40))
    _fails(run, src, tmp_path, blend, LimitExceededError, "resolution_limit", limits=Limits(max_width=60, max_height=None))
    run(src, tmp_path / "ok.mp4", blend, limits=Limits(max_width=None, max_height=48))


def test_duration_limit(tmp_path, blend, run):
    src = _clip(tmp_path, count=10, rate=5)  # 2 s
    err = _fails(run, src, tmp_path, blend, LimitExceededError, "duration_limit", limits=Limits(max_duration_s=1.5))
    assert isinstance(err, RifeError) and blend.calls == []


def test_frame_limit(tmp_path, blend, run):
    src = _clip(tmp_path, count=10)
    _fails(run, src, tmp_path, blend, LimitExceededError, "frame_limit", limits=Limits(max_frames=9))
    assert blend.calls == []


def test_limits_hold_when_the_container_misstates_its_length(tmp_path):
    """The probe's frame count can be an estimate; decoding enforces the limits as frames arrive."""
    from dataclasses import replace

    from rife_core.video.decode import decode_frames
    from rife_core.video.probe import probe

    info = replace(probe(_clip(tmp_path, count=12), Limits()), frame_count=5)
    with pytest.raises(LimitExceededError) as err:
        list(decode_frames(info, max_frames=8))
    assert err.value.error_type == "frame_limit"
    with pytest.raises(LimitExceededError) as err:
        list(decode_frames(info, max_output_frames=30, num_frames=2))
    assert err.value.error_type == "output_limit"
    assert len(list(decode_frames(info, max_frames=12))) == 12


def test_output_limit(tmp_path, blend, run):
    src = _clip(tmp_path, count=10)
    _fails(
        run, src, tmp_path, blend, LimitExceededError, "output_limit", num_frames=4, limits=Limits(max_output_frames=40)
    )
    assert blend.calls == []


@pytest.mark.parametrize("after_batches", [0, 2])
def test_cancel_raises_and_leaves_nothing(tmp_path, blend, run, after_batches):
    src = _clip(tmp_path, count=12)
    asked = []

    def should_cancel():
        asked.append(1)
        return len(asked) > after_batches

    _fails(run, src, tmp_path, blend, CancelledError, "cancelled", batch_size=2, should_cancel=should_cancel)
    assert len(blend.calls) == after_batches


def test_model_failure_leaves_nothing(tmp_path, run):
    class Broken:
        def interpolate(self, *args):
            raise RuntimeError("out of memory")

    src = _clip(tmp_path, count=6)
    out = tmp_path / "out" / "out.mp4"
    with pytest.raises(RuntimeError, match="out of memory"):
        run(src, out, Broken())
    assert _no_output_left(out.parent)


def test_existing_output_is_replaced_only_on_success(tmp_path, blend, run):
    src = _clip(tmp_path, count=4)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with pytest.raises(CancelledError):
        run(src, out, blend, should_cancel=lambda: True)
    assert out.read_bytes() == b"old"
    run(src, out, blend)
    assert out.stat().st_size > 100
