"""10-bit and HDR kept end to end: 16-bit RGB from decode through the model to a 10-bit encode, with
the input's colour description and HDR10 side data written to the output."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from clipmaker import encode_all

from rife_core.video.formats import OutputFormat
from rife_core.video.metadata import HdrMetadata
from rife_core.video.options import Limits
from rife_core.video.probe import probe

# The recipe of ../shared/README.md: BT.2020 primaries, PQ transfer, BT.2020 matrix, 1000-nit mastering display.
X265_HDR = ("colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
            "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400")
EXPECTED_HDR = HdrMetadata(((34000, 16000), (13250, 34500), (7500, 3000)), (15635, 16450), (10000000, 1), 1000, 400)


def _hdr_gradient_clip(path: Path, width: int = 512, height: int = 32, frames: int = 6) -> Path:
    """10-bit HEVC, PQ/BT.2020, lossless: a horizontal luma ramp over the whole 10-bit limited range
    (64..940, 877 levels, about 1.7 per column), so an 8-bit step anywhere would leave <= 256 levels."""
    out = av.open(os.fspath(path), "w")
    stream = out.add_stream("libx265", rate=10)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
    stream.options = {"x265-params": "log-level=error:lossless=1:" + X265_HDR}
    ctx = stream.codec_context
    ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 9, 16, 9, 1
    ramp = np.round(64 + np.arange(width) * (876 / (width - 1))).astype(np.uint16)

    def pictures() -> Iterator[av.VideoFrame]:
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p10le")
            luma = np.frombuffer(memoryview(frame.planes[0]), np.uint16).reshape(height, -1)
            luma[:, :width] = ramp
            for plane in frame.planes[1:]:
                np.frombuffer(memoryview(plane), np.uint16)[:] = 512 + 8 * i  # a little chroma motion
            frame.pts = i
            yield frame

    encode_all(out, stream, pictures())
    out.close()
    return path


def _luma_levels(frame: av.VideoFrame) -> int:
    dtype = np.uint16 if frame.format.name.endswith("10le") else np.uint8
    luma = np.frombuffer(memoryview(frame.planes[0]), dtype).reshape(frame.height, -1)[:, : frame.width]
    return len(np.unique(luma))


def _side_data(frame: av.VideoFrame) -> HdrMetadata | None:
    found = {sd.type.name: bytes(sd) for sd in frame.side_data}
    return HdrMetadata.from_side_data(found.get("MASTERING_DISPLAY_METADATA"), found.get("CONTENT_LIGHT_LEVEL"))


def test_probe_reads_the_hdr_side_data(tmp_path):
    info = probe(_hdr_gradient_clip(tmp_path / "hdr.mkv"), Limits())
    assert info.bit_depth == 10 and (info.color_primaries, info.color_trc, info.colorspace) == (9, 16, 9)
    assert info.hdr == EXPECTED_HDR
    assert info.hdr.x265_params() == [
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)", "max-cll=1000,400"]


@pytest.mark.parametrize("codec, container", [("hevc", "mp4"), ("hevc", "mkv"), ("av1", "mkv")])
def test_hdr_ten_bit_is_kept(tmp_path, blend, run, codec, container):
    src = _hdr_gradient_clip(tmp_path / "hdr.mkv")
    fmt = OutputFormat(codec=codec, container=container)  # bit_depth auto
    result = run(src, tmp_path / f"out{fmt.extension}", blend, output=fmt)
    assert result.bit_depth == 10 and result.output_frames == 11
    assert "kept deep: 16-bit RGB through the model" in run.text()
    with av.open(os.fspath(result.output_path)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 11
    for frame in (frames[0], frames[1]):  # an input frame and a generated one
        assert frame.format.name == "yuv420p10le"
        assert (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range) == (9, 16, 9, 1)
        assert _luma_levels(frame) > 256
    assert _side_data(frames[0]) == EXPECTED_HDR


@pytest.mark.parametrize("codec, pix_fmt", [("prores", "yuv422p10le"), ("ffv1", "yuv444p10le")])
def test_ten_bit_without_hdr_side_data(tmp_path, blend, run, codec, pix_fmt):
    """ProRes and FFV1 keep the 10 bits and the colour tags (in the container: ProRes' own frame header
    has no code for PQ), and the log says the side data is left out."""
    src = _hdr_gradient_clip(tmp_path / "hdr.mkv")
    fmt = OutputFormat(codec=codec)
    result = run(src, tmp_path / f"out{fmt.extension}", blend, output=fmt)
    with av.open(os.fspath(result.output_path)) as c:
        ctx = c.streams.video[0].codec_context
        tags = (ctx.color_primaries, ctx.color_trc, ctx.colorspace)
        frame = next(c.decode(video=0))
    assert frame.format.name == pix_fmt and _luma_levels(frame) > 256
    assert tags == (9, 16, 9)
    assert "written by hevc and av1 only" in run.text()


def test_bit_depth_8_asks_for_an_8_bit_output(tmp_path, blend, run):
    src = _hdr_gradient_clip(tmp_path / "hdr.mkv")
    result = run(src, tmp_path / "out.mkv", blend, output=OutputFormat(codec="hevc", container="mkv", bit_depth=8))
    with av.open(os.fspath(result.output_path)) as c:
        frame = next(c.decode(video=0))
    assert result.bit_depth == 8 and frame.format.name == "yuv420p"
    assert (frame.color_primaries, frame.color_trc, frame.colorspace) == (9, 16, 9)


def test_interpolator_takes_16_bit_frames(model):
    """The real model on 16-bit frames gives the 8-bit result scaled by 257 (within rounding): the same
    float network, with no 8-bit step in between."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (1, 32, 48, 3), dtype=np.uint8)
    a8 = torch.from_numpy(np.ascontiguousarray(base))
    b8 = torch.from_numpy(np.ascontiguousarray(np.roll(base, 2, axis=2)))
    out8 = model.interpolate(a8, b8, [0.5])
    out16 = model.interpolate(a8.to(torch.int32).mul(257).to(torch.uint16),
                              b8.to(torch.int32).mul(257).to(torch.uint16), [0.5])
    assert out16.dtype == torch.uint16 and out16.shape == out8.shape
    diff = (out16.to(torch.int32).float() / 257 - out8.float()).abs()
    assert diff.max().item() <= 1.0
    assert len(torch.unique(out16)) > len(torch.unique(out8))  # levels between the 8-bit steps exist
    with pytest.raises(ValueError, match="one dtype"):
        model.interpolate(a8, b8.to(torch.int32).to(torch.uint16), [0.5])


def test_hlg_transfer_is_kept(tmp_path, blend, run):
    """HLG (ARIB STD-B67, AVColorTransferCharacteristic 18) in, HLG out; no mastering metadata involved."""
    src = tmp_path / "hlg.mkv"
    out = av.open(os.fspath(src), "w")
    stream = out.add_stream("libx265", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p10le"
    stream.options = {"x265-params": "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"}
    ctx = stream.codec_context
    ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 9, 18, 9, 1
    def pictures() -> Iterator[av.VideoFrame]:
        for i in range(4):
            rgb = np.full((48, 64, 3), 1000 * (i + 1), np.uint16)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(
                format="yuv420p10le", dst_colorspace="BT2020", dst_color_range="MPEG")
            frame.pts = i
            yield frame

    encode_all(out, stream, pictures())
    out.close()
    result = run(src, tmp_path / "out.mp4", blend, output=OutputFormat(codec="hevc"))
    with av.open(os.fspath(result.output_path)) as c:
        frame = next(c.decode(video=0))
    assert (frame.color_primaries, frame.color_trc, frame.colorspace, frame.format.name) == (9, 18, 9, "yuv420p10le")
    assert _side_data(frame) is None
