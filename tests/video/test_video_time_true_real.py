"""Time-true interpolation with the real model on tiny pieces of the real sample clips (issue 13's
checks that need real pictures: target_fps on real footage, dedup against blending)."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from clipmaker import cut_clip, psnr, read_pngs, read_video, write_video
from timedclips import stream_start, video_duration

from rife_core.video.dedup import RepeatFilter
from rife_core.video.timing import ON_FRAME

pytestmark = pytest.mark.slow


def _bbb_piece(src, dst, rate: Fraction, frames: int, video_delay: Fraction) -> list[np.ndarray]:
    """bigbuckbunny frames 40.. at 160x90, lossless, at `rate`, with its own AAC track copied; the video
    starts `video_delay` after the audio. Returns the piece's frames as decoded."""
    with av.open(os.fspath(src)) as inp, av.open(os.fspath(dst), "w", format="mp4") as out:
        v_in, a_in = inp.streams.video[0], inp.streams.audio[0]
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = 160, 90, "yuv420p"
        v.options = {"qp": "0", "preset": "ultrafast"}
        tb = 1 / rate / 1000
        v.time_base = v.codec_context.time_base = tb
        a = out.add_stream_from_template(a_in)
        for i, frame in enumerate(inp.decode(v_in)):
            if i < 40:
                continue
            if i == 40 + frames:
                break
            small = frame.reformat(width=160, height=90, format="yuv420p")
            small.pts, small.time_base = round((video_delay + Fraction(i - 40) / rate) / tb), tb
            for p in v.encode(small):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        inp.seek(0)
        end = video_delay + Fraction(frames) / rate
        for p in inp.demux(a_in):
            if p.dts is not None and p.pts * p.time_base < end:
                p.stream = a
                out.mux(p)
    return read_video(dst, keep_images=True).images


def _luma(path) -> list[np.ndarray]:
    with av.open(os.fspath(path)) as c:
        return [f.to_ndarray(format="yuv420p")[: f.height] for f in c.decode(video=0)]


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(24)], ids=["23.976", "24"])
def test_target_fps_60_on_a_real_clip(tmp_path, clip, model, run, rate):
    src = tmp_path / "bbb.mp4"
    originals = _bbb_piece(clip("bigbuckbunny.mp4"), src, rate, 24, Fraction(1, 4))
    out = tmp_path / "out.mp4"
    # crf 4: at the default crf 17 x264 alone costs a 160x90 piece of detailed animation ~6 dB (39 dB on
    # luma), whether a frame was touched or not; the check is that real frames pass through untouched.
    result = run(src, out, model, target_fps="60", frames_dir=tmp_path / "png", crf=4)
    duration = 24 / rate
    assert result.output_fps == 60 and result.timing == "constant" and result.audio_kept
    assert abs(result.output_frames - round(duration * 60)) <= 1
    assert abs(video_duration(out) - float(duration)) <= 1 / 60
    # output frames that fall on input times are the input frames, after encoding too (luma, as stored)
    out_luma, in_luma = _luma(out), _luma(src)
    on_input = [(k, round(Fraction(k, 60) * rate)) for k in range(len(out_luma))
                if abs(Fraction(k, 60) - round(Fraction(k, 60) * rate) / rate) <= ON_FRAME]
    assert len(on_input) == result.kept_frames >= 1
    scores = [psnr(out_luma[k], in_luma[i]) for k, i in on_input]
    print(f"\n{rate} -> 60: {result.output_frames} frames, {len(on_input)} on input times, luma PSNR after "
          f"encoding min {min(scores):.1f} dB")
    assert min(scores) >= 45
    pngs = read_pngs(tmp_path / "png")
    assert all(np.array_equal(pngs[k], originals[i]) for k, i in on_input)  # exactly, before encoding
    # the frames between are the model's, not repeats
    assert not any(np.array_equal(pngs[1], o) for o in originals[:2])
    # the audio keeps its head start on the video
    in_offset = stream_start(src, "video") - stream_start(src, "audio")
    out_offset = stream_start(out, "video") - stream_start(out, "audio")
    assert abs(in_offset - 0.25) < 0.01 and abs(out_offset - in_offset) <= 1 / 60


@pytest.fixture(scope="module")
def bikes_pan(tmp_path_factory, clip):
    """bikes.mp4 frames 40..56 (a fast pan inside one shot) at 320x136, and the same shown on twos."""
    folder = tmp_path_factory.mktemp("pan")
    originals = cut_clip(clip("bikes.mp4"), folder / "pan.mp4", start=40, count=17, size=(320, 136))
    twos = [originals[i - i % 2] for i in range(17)]
    return folder, originals, twos


def test_dedup_rebuilds_frames_on_twos_better_than_blending(tmp_path, bikes_pan, model, run):
    folder, originals, twos = bikes_pan
    src = write_video(tmp_path / "twos.mp4", twos, rate=25, options={"qp": "0"}, pix_fmt="yuv444p")
    result = run(src, tmp_path / "out.mp4", model, num_frames=1, dedup=True, frames_dir=tmp_path / "png")
    assert result.output_frames == 33 and result.dropped_frames == 8
    frames = read_pngs(tmp_path / "png")
    rife = [psnr(frames[2 * i], originals[i]) for i in range(1, 16, 2)]
    blend = [psnr(((originals[i - 1].astype(np.uint16) + originals[i + 1] + 1) // 2).astype(np.uint8), originals[i])
             for i in range(1, 16, 2)]
    print(f"\nrebuilt odd frames: RIFE {np.mean(rife):.2f} dB, blend {np.mean(blend):.2f} dB")
    assert np.mean(rife) >= np.mean(blend) + 3.0


def test_dedup_catches_repeats_after_lossy_encoding(tmp_path, bikes_pan, blend, run):
    _, _, twos = bikes_pan
    src = write_video(tmp_path / "twos.mp4", twos, rate=25, options={"crf": "23"})
    result = run(src, tmp_path / "out.mp4", blend, dedup=True)
    assert result.dropped_frames == 8 and result.output_frames == 33


@pytest.mark.parametrize("name, start, count", [("bikes.mp4", 40, 17), ("carphone_pristine.mp4", 0, 60)])
def test_dedup_keeps_every_real_frame(tmp_path, clip, blend, run, name, start, count):
    """A pan and carphone's near-static camera shot: no frame is a repeat, none is lost."""
    src = tmp_path / "piece.mp4"
    cut_clip(clip(name), src, start=start, count=count)
    plain = run(src, tmp_path / "a.mp4", blend, frames_dir=tmp_path / "a")
    result = run(src, tmp_path / "b.mp4", blend, dedup=True, frames_dir=tmp_path / "b")
    assert result.dropped_frames == 0 and result.output_frames == plain.output_frames == 2 * count - 1
    assert all(np.array_equal(a, b) for a, b in zip(read_pngs(tmp_path / "a"), read_pngs(tmp_path / "b"), strict=True))
    assert RepeatFilter().threshold > 0


def test_interpolate_each_is_the_same_pass_per_sample(model):
    """One t per sample gives what `interpolate` gives for that pair at that t."""
    rng = np.random.default_rng(3)
    a = torch.from_numpy(rng.integers(0, 255, (3, 48, 64, 3), dtype=np.uint8))
    b = torch.from_numpy(np.roll(a.numpy(), 3, axis=2))
    ts = [0.2, 0.5, 0.85]
    each = model.interpolate_each(a, b, ts)
    assert each.shape == (3, 48, 64, 3) and each.dtype == torch.uint8
    for i, t in enumerate(ts):
        single = model.interpolate(a[i : i + 1], b[i : i + 1], [t])[0, 0]
        assert int((each[i].int() - single.int()).abs().max()) <= 1
    with pytest.raises(ValueError, match="one timestep per sample"):
        model.interpolate_each(a, b, [0.5])
