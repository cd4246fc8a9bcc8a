"""Container metadata carried into the output (title, creation time, chapters), location dropped unless
asked for, and the NVENC selection/fallback logic (no NVENC here: a stand-in says whether it opens)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clipmaker import encode_all, moving_square

from rife_core.cli import build_parser, output_format
from rife_core.video.codecs import choose_encoder, nvenc_cannot_open, plan_codec
from rife_core.video.formats import OutputFormat
from rife_core.video.metadata import ContainerMetadata, is_location_tag

TAGS = {
    "title": "Harbour at dusk",
    "creation_time": "2024-05-01T10:00:00.000000Z",
    "location": "+48.8577+002.2950/",
}


def _tagged_clip(path: Path, frames: int = 6, rate: int = 10, fmt: str | None = None) -> Path:
    """A clip whose container has a title, a creation time, a location and two chapters."""
    out = av.open(os.fspath(path), "w", format=fmt)
    out.metadata.update(TAGS)
    out.set_chapters([
        {"id": 1, "start": 0, "end": 3, "time_base": Fraction(1, rate), "metadata": {"title": "one"}},
        {"id": 2, "start": 3, "end": frames, "time_base": Fraction(1, rate), "metadata": {"title": "two"}},
    ])
    stream = out.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    pictures = (av.VideoFrame.from_ndarray(moving_square(i), format="rgb24") for i in range(frames))
    encode_all(out, stream, _numbered(pictures))
    out.close()
    return path


def _numbered(frames: Iterable[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    for i, frame in enumerate(frames):
        frame.pts = i
        yield frame


def _read(path: Path) -> tuple[dict[str, str], list[tuple[float, str | None]]]:
    with av.open(os.fspath(path)) as c:
        meta = ContainerMetadata.read(c)
    return dict(meta.tags), [(round(ch.start_s, 3), ch.title) for ch in meta.chapters]


@pytest.mark.parametrize("name, codec", [("out.mp4", "h264"), ("out.mkv", "hevc"), ("out.mov", "prores")])
def test_title_creation_time_and_chapters_are_carried(tmp_path, blend, run, name, codec):
    src = _tagged_clip(tmp_path / "in.mp4")
    fmt = OutputFormat(codec=codec, container=name.rsplit(".", 1)[1])
    run(src, tmp_path / name, blend, output=fmt)
    tags, chapters = _read(tmp_path / name)
    lower = {k.lower(): v for k, v in tags.items()}
    assert lower["title"] == TAGS["title"] and lower["creation_time"] == TAGS["creation_time"]
    assert not any(is_location_tag(k) for k in tags), tags
    assert chapters == [(0.0, "one"), (0.3, "two")]


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv"])
def test_location_is_kept_when_asked(tmp_path, blend, run, name):
    src = _tagged_clip(tmp_path / "in.mp4")
    run(src, tmp_path / name, blend, keep_location_metadata=True,
        output=OutputFormat(container=name.rsplit(".", 1)[1]))
    tags, _ = _read(tmp_path / name)
    assert {k.lower(): v for k, v in tags.items()}["location"] == TAGS["location"]


def test_chapters_are_dropped_when_retimed(tmp_path, blend, run):
    src = _tagged_clip(tmp_path / "in.mp4")
    run(src, tmp_path / "out.mp4", blend, use_calculated_fps=False, fps=24)
    _, chapters = _read(tmp_path / "out.mp4")
    assert chapters == [] and "chapters dropped: the output is retimed" in run.text()


def test_location_tag_names():
    for key in ("location", "location-eng", "LOCATION", "com.apple.quicktime.location.ISO6709", "GPSCoordinates"):
        assert is_location_tag(key)
    for key in ("title", "creation_time", "encoder", "comment"):
        assert not is_location_tag(key)


# --- NVENC ---------------------------------------------------------------------------------------------


def _opens(name: str) -> str | None:
    return None


def _fails(name: str) -> str | None:
    return "Operation not permitted (no video engine)"


@pytest.mark.parametrize(
    "codec, setting, device, opener, expected, note",
    [
        ("h264", "auto", "cuda", _opens, "h264_nvenc", "NVENC, on the GPU"),
        ("hevc", "auto", "cuda", _opens, "hevc_nvenc", "NVENC"),
        ("av1", "nvenc", "cpu", _opens, "av1_nvenc", "NVENC"),
        ("h264", "auto", "cpu", _opens, None, None),  # a CPU worker does not try it
        ("h264", "x264", "cuda", _opens, None, None),  # the setting says no
        ("vp9", "auto", "cuda", _opens, None, None),  # no NVENC for vp9: silently software
        ("vp9", "nvenc", "cuda", _opens, None, "vp9 has no NVENC encoder; using libvpx-vp9"),
        ("h264", "auto", "cuda", _fails, None, "h264_nvenc cannot be opened (Operation not permitted"),
        ("hevc", "nvenc", "cuda", _fails, None, "falling back to libx265 on the CPU"),
    ],
)
def test_nvenc_selection_and_fallback(codec, setting, device, opener, expected, note):
    asked: list[str] = []

    def cannot_open(name: str) -> str | None:
        asked.append(name)
        return opener(name)

    chosen, message = choose_encoder(codec, setting, device, cannot_open)
    assert chosen == expected
    if note is None:
        assert message is None
    else:
        assert message is not None and note in message
    tried = expected is not None or opener is _fails  # every _fails case above is one that tries NVENC
    assert asked == ([f"{codec}_nvenc"] if tried else [])


def test_nvenc_plan():
    plan = plan_codec(OutputFormat(codec="hevc"), 10, 17, "veryfast", encoder="hevc_nvenc")
    assert (plan.encoder, plan.pix_fmt) == ("hevc_nvenc", "p010le") and plan.options["cq"] == "20"
    assert plan_codec(OutputFormat(), 8, 17, "veryfast", encoder="h264_nvenc").options["cq"] == "17"


def test_nvenc_cannot_open_here():
    """This machine has no NVIDIA driver: the real probe reports why instead of raising."""
    why = nvenc_cannot_open("h264_nvenc")
    assert why is None or isinstance(why, str) and why
    assert nvenc_cannot_open("no_such_encoder")


def test_bad_video_encoder_setting():
    with pytest.raises(ValueError, match="auto, x264, nvenc"):
        choose_encoder("h264", "vaapi", "cuda", _opens)


# --- CLI -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["in.mp4", "out.mp4"], OutputFormat("h264", "mp4")),
        (["in.mp4", "out.webm"], OutputFormat("vp9", "webm")),
        (["in.mp4", "out.mkv", "--codec", "hevc", "--bit-depth", "10"], OutputFormat("hevc", "mkv", None, 10)),
        (["in.mp4", "out.bin", "--codec", "prores", "--container", "mov", "--codec-quality", "2"],
         OutputFormat("prores", "mov", 2)),
        (["in.mp4", "out.gif"], OutputFormat("gif", "gif")),
    ],
)
def test_cli_output_flags(argv, expected):
    args = build_parser().parse_args(["interpolate", *argv])
    assert output_format(args) == expected


def test_cli_refuses_a_bad_pair(tmp_path, capsys):
    from rife_core.cli import main

    src = tmp_path / "in.mp4"
    src.write_bytes(b"x")
    with pytest.raises(SystemExit):
        main(["interpolate", str(src), str(tmp_path / "out.webm"), "--codec", "prores"])
    assert "output.container: prores cannot go in webm" in capsys.readouterr().err


def test_frames_survive_metadata_copy(tmp_path, blend, run):
    """Tags and chapters do not disturb the video itself."""
    src = _tagged_clip(tmp_path / "in.mkv", fmt="matroska")
    result = run(src, tmp_path / "out.mp4", blend)
    assert result.output_frames == 11
    with av.open(os.fspath(tmp_path / "out.mp4")) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - moving_square(0)).mean() < 4
