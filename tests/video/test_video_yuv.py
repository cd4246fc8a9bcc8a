"""RGB -> yuv420p on the model's device (the GPU worker's encoder path), checked on the CPU against
swscale, the conversion it replaces, and through the whole pipeline."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from clipmaker import read_pngs, read_video, write_video

from rife_core.samples import sample_clip
from rife_core.video.encode import _planar_frame
from rife_core.video.yuv import DeviceYuv420p, rgb_to_yuv420p


def _real_frame(index: int = 40) -> np.ndarray:
    with av.open(str(sample_clip("bikes.mp4"))) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="rgb24")
    raise AssertionError("clip too short")


def _sws_planes(rgb: np.ndarray, matrix: str, full: bool) -> list[np.ndarray]:
    f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=matrix, dst_color_range="JPEG" if full else "MPEG"
    )
    h, w = rgb.shape[:2]
    sizes = ((h, w), (h // 2, w // 2), (h // 2, w // 2))
    return [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:ph, :pw] for p, (ph, pw) in zip(f.planes, sizes, strict=True)]


def _split(planes: np.ndarray, h: int, w: int) -> list[np.ndarray]:
    y = planes[: h * w].reshape(h, w)
    u = planes[h * w : h * w + h * w // 4].reshape(h // 2, w // 2)
    v = planes[h * w + h * w // 4 :].reshape(h // 2, w // 2)
    return [y, u, v]


@pytest.mark.parametrize("colorspace, matrix", [(1, "ITU709"), (6, "SMPTE170M"), (9, "BT2020")])
@pytest.mark.parametrize("full", [False, True])
def test_matches_swscale_on_a_real_frame(colorspace, matrix, full):
    rgb = _real_frame()
    ours = _split(rgb_to_yuv420p(torch.from_numpy(rgb), colorspace, full).numpy(), *rgb.shape[:2])
    ref = _sws_planes(rgb, matrix, full)
    y_diff = np.abs(ours[0].astype(int) - ref[0])
    assert y_diff.max() <= 1, "luma is the same matrix and range, up to rounding"
    for o, r in zip(ours[1:], ref[1:], strict=True):
        # swscale filters chroma with its own taps and siting; on real footage that moves few samples far.
        d = np.abs(o.astype(int) - r)
        assert d.mean() < 1.0 and np.percentile(d, 99) <= 4


def test_flat_colours_are_exact_to_a_level():
    for colour in [(200, 40, 90), (0, 0, 0), (255, 255, 255), (16, 235, 128)]:
        rgb = np.full((8, 12, 3), colour, np.uint8)
        for full in (False, True):
            ours = _split(rgb_to_yuv420p(torch.from_numpy(rgb), 1, full).numpy(), 8, 12)
            ref = _sws_planes(rgb, "ITU709", full)
            for o, r in zip(ours, ref, strict=True):
                assert np.abs(o.astype(int) - r).max() <= 1, (colour, full)


def test_odd_size_is_refused():
    with pytest.raises(ValueError, match="even size"):
        rgb_to_yuv420p(torch.zeros((3, 4, 3), dtype=torch.uint8), 1, False)


def test_planar_frame_round_trips_with_padded_rows():
    # 70 is not a multiple of FFmpeg's row alignment, so the frame's planes have padded rows.
    h, w = 38, 70
    planes = np.random.default_rng(0).integers(0, 256, h * w * 3 // 2, dtype=np.uint8)
    frame = _planar_frame(planes, w, h)
    assert frame.planes[0].line_size > w
    back = np.concatenate([
        np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:ph, :pw].ravel()
        for p, (ph, pw) in zip(frame.planes, ((h, w), (h // 2, w // 2), (h // 2, w // 2)), strict=True)
    ])
    assert np.array_equal(back, planes)


@pytest.mark.parametrize("color_range", [1, 2])
def test_pipeline_output_matches_the_swscale_path(tmp_path, blend, run, color_range):
    frames = [np.ascontiguousarray(_real_frame(i)[:96, :128]) for i in range(40, 46)]
    src = write_video(tmp_path / "in.mp4", frames, color_range=color_range, colorspace=1, options={"qp": "0"},
                      pix_fmt="yuv444p")
    run(src, tmp_path / "sws.mp4", blend, yuv_on_model_device=False, frames_dir=tmp_path / "sws")
    # On the device path the generated frames reach the encoder as tensors (here CPU ones).
    run(src, tmp_path / "dev.mp4", blend, yuv_on_model_device=True, frames_dir=tmp_path / "dev")
    sws_rgb, dev_rgb = read_pngs(tmp_path / "sws"), read_pngs(tmp_path / "dev")
    assert len(dev_rgb) == len(sws_rgb) == 11
    assert all(np.array_equal(a, b) for a, b in zip(dev_rgb, sws_rgb, strict=True)), "same frames before YUV"
    sws = read_video(tmp_path / "sws.mp4", keep_images=True)
    dev = read_video(tmp_path / "dev.mp4", keep_images=True)
    assert (dev.frames, dev.color_range, dev.colorspace) == (sws.frames, color_range, 1)
    for a, b in zip(dev.images, sws.images, strict=True):
        assert np.abs(a.astype(float) - b).mean() < 1.5


def test_interpolate_on_device_returns_the_same_frames(model):
    rgb = [np.ascontiguousarray(_real_frame(i)[:64, :96]) for i in (40, 41)]
    a, b = (torch.from_numpy(np.stack([x])) for x in rgb)
    kept = model.interpolate(a, b, [0.25, 0.5], on_device=True)
    assert kept.device == model.device and kept.dtype == torch.uint8 and kept.shape == (1, 2, 64, 96, 3)
    assert torch.equal(kept.cpu(), model.interpolate(a, b, [0.25, 0.5]))


def test_device_converter_on_the_cpu_is_the_function():
    rgb = _real_frame()
    conv = DeviceYuv420p(torch.device("cpu"), 1, False)
    assert np.array_equal(conv(rgb), rgb_to_yuv420p(torch.from_numpy(rgb), 1, False).numpy())


def test_preset_is_checked_and_used(tmp_path, blend, run):
    from rife_core.video import InterpolationOptions

    with pytest.raises(ValueError, match="preset must be one of ultrafast"):
        InterpolationOptions(preset="fastest")
    frames = [np.ascontiguousarray(_real_frame(i)[:96, :128]) for i in range(40, 44)]
    src = write_video(tmp_path / "in.mp4", frames)
    sizes = {}
    for preset in ("ultrafast", "veryfast"):
        result = run(src, tmp_path / f"{preset}.mp4", blend, preset=preset)
        assert result.output_frames == 7
        sizes[preset] = (tmp_path / f"{preset}.mp4").stat().st_size
    assert sizes["ultrafast"] > sizes["veryfast"]  # ultrafast turns off most of x264's tools: more bytes


def test_default_preset_follows_the_device(tmp_path, blend, run, monkeypatch):
    import rife_core.video.encode as encode

    seen: list[str | None] = []
    real_init = encode.Encoder.__init__

    def spy(self, *args, preset=None, **kwargs):
        seen.append(preset)
        real_init(self, *args, preset=preset, **kwargs)

    monkeypatch.setattr(encode.Encoder, "__init__", spy)
    src = write_video(tmp_path / "in.mp4", [np.ascontiguousarray(_real_frame(i)[:48, :64]) for i in (40, 41, 42)])
    run(src, tmp_path / "cpu.mp4", blend)
    blend.device = torch.device("cuda")  # only its type is read; YUV stays on the CPU for this check
    run(src, tmp_path / "gpu.mp4", blend, yuv_on_model_device=False)
    assert seen == ["veryfast", "superfast"]
    assert "x264 preset superfast" in run.text()
