"""Real-world containers and codecs through `interpolate_video`: each completes with the right
frame count or fails with a clear client error (never `internal_error`, never a stray FFmpeg
exception), whole or cut to its first 30 %."""

from __future__ import annotations

import re

import av
import pytest
from corpus import CASES, Case, truncate, write_case, write_y4m_declaring

import rife_core.video.decode as decode_module
from rife_core.errors import InvalidVideoError, LimitExceededError, RifeError
from rife_core.video import Limits

# Cases FFmpeg 8.1 (PyAV 18) cannot decode at all, with the error they must get instead.
UNDECODABLE = {"webp": "invalid_video"}  # libwebp_anim's animated WebP: FFmpeg's decoder refuses its frames
_INTERNALS = re.compile(r"errno|avcodec|avformat|returned -?\d|/tmp/|\[Errno", re.IGNORECASE)


def _clean(message: str) -> None:
    assert message and not _INTERNALS.search(message), message


def _run_or_client_error(run, src, tmp_path, model):
    """(result, None) when it completes, (None, error) for a client error; anything else fails the test."""
    try:
        return run(src, tmp_path / f"{src.stem}_out.mp4", model), None
    except RifeError as e:
        assert e.error_type != "internal_error", e
        _clean(str(e))
        return None, e


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_file_completes_with_every_frame(case: Case, tmp_path, blend, run):
    src = write_case(case, tmp_path)
    result, error = _run_or_client_error(run, src, tmp_path, blend)
    if case.name in UNDECODABLE:
        assert error is not None and error.error_type == UNDECODABLE[case.name]
        assert "animated WebP cannot be decoded here" in str(error)
        return
    assert error is None, error
    assert result.input_frames == case.frames
    assert result.output_frames == 2 * case.frames - 1
    if case.acodec:
        assert result.audio_kept, run.text()
    for message in result.warnings:
        _clean(message)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_file_cut_at_30_percent_completes_or_says_why(case: Case, tmp_path, blend, run):
    src = truncate(write_case(case, tmp_path), 0.3)
    result, error = _run_or_client_error(run, src, tmp_path, blend)
    if error is not None:
        assert isinstance(error, InvalidVideoError), error
        return
    assert 2 <= result.input_frames <= case.frames
    assert result.output_frames == 2 * result.input_frames - 1
    for message in result.warnings:
        _clean(message)


@pytest.mark.parametrize("name", ["mp4_h264_aac", "mkv_vp9_opus"])
def test_truncated_input_says_what_was_recovered(name, tmp_path, blend, run):
    case = next(c for c in CASES if c.name == name)
    src = truncate(write_case(case, tmp_path), 0.3)
    result = run(src, tmp_path / "out.mp4", blend)
    assert 2 <= result.input_frames < case.frames
    truncated = [w for w in result.warnings if "truncated" in w]
    assert len(truncated) == 1, result.warnings
    found = re.search(r"recovered (\d+) frames \(([\d.]+) s\) of about \d+ \(([\d.]+) s\)", truncated[0])
    assert found and int(found[1]) == result.input_frames, truncated[0]
    # The seconds recovered are those the output covers (within one output frame), less than the header's.
    covered = result.output_frames / float(result.output_fps)
    assert abs(float(found[2]) - covered) <= 1 / float(result.output_fps) + 0.01 and float(found[2]) < float(found[3])
    assert truncated[0] in run.warnings()


def test_ogg_with_empty_vorbis_packets_keeps_its_audio(tmp_path, blend, run):
    case = next(c for c in CASES if c.name == "ogg_vp8_vorbis_empty")
    src = write_case(case, tmp_path)
    with av.open(str(src)) as container:
        sizes = [p.size for p in container.demux(audio=0) if p.pts is not None]
    assert sizes.count(0) >= 10  # the demuxer does hand the empty packets on
    result = run(src, tmp_path / "out.mp4", blend)
    assert result.audio_kept and result.input_frames == case.frames
    with av.open(str(tmp_path / "out.mp4")) as out:
        audio = out.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert sum(1 for _ in out.decode(audio)) > 20  # about 2 s of 1024-sample AAC frames at 44.1 kHz
    assert "transcoded" in run.text()


class _EmptyPacketsContainer:
    """A container whose demuxer hands on a zero-length packet after every `every`-th video packet,
    as FFmpeg's Ogg demuxer does for Theora's repeated frames."""

    def __init__(self, container, every: int) -> None:
        self._container = container
        self._every = every
        self.injected = 0

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()

    def demux(self, *args, **kwargs):
        for i, packet in enumerate(self._container.demux(*args, **kwargs), start=1):
            yield packet
            if packet.pts is not None and i % self._every == 0:
                empty = av.Packet()
                empty.pts, empty.dts, empty.time_base = packet.pts, packet.dts, packet.time_base
                empty.stream = packet.stream
                self.injected += 1
                yield empty


def test_zero_length_video_packets_do_not_end_decoding(tmp_path, blend, run, monkeypatch):
    case = Case("ogg_vp8_30", ".ogv", "ogg", "libvpx", frames=30)
    src = write_case(case, tmp_path)
    # What a plain loop gets: the first empty packet drains the decoder, every later packet fails.
    plain = 0
    with _EmptyPacketsContainer(av.open(str(src)), every=3) as container:
        for packet in container.demux(video=0):
            try:
                plain += len(packet.decode())
            except av.FFmpegError:
                pass
    assert plain < case.frames
    wrapped: list[_EmptyPacketsContainer] = []
    real_open = decode_module.open_input

    def open_with_empty_packets(path):
        wrapped.append(_EmptyPacketsContainer(real_open(path), every=3))
        return wrapped[-1]

    monkeypatch.setattr(decode_module, "open_input", open_with_empty_packets)
    result = run(src, tmp_path / "out.mp4", blend)
    assert result.input_frames == case.frames
    assert wrapped[0].injected >= 9
    assert f"{wrapped[0].injected} empty packet(s)" in run.text()
    assert not [w for w in result.warnings if "truncated" in w]


def test_y4m_declaring_absurd_dimensions_is_a_resolution_limit(tmp_path, blend, run):
    src = write_y4m_declaring(tmp_path / "huge.y4m", 30000, 30000)
    with pytest.raises(LimitExceededError) as info:
        run(src, tmp_path / "out.mp4", blend)
    assert info.value.error_type == "resolution_limit"
    assert "30000x30000" in str(info.value)
    # Without limits FFmpeg's refusal still reaches the client in plain words.
    with pytest.raises(InvalidVideoError) as info:
        run(src, tmp_path / "out.mp4", blend, limits=Limits(None, None, None, None, None))
    _clean(str(info.value))


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"this is not a video\n" * 50, "not a video: looks like a text file"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "not a video: looks like a web page"),
        (b'{"error": "forbidden"}', "not a video: looks like a JSON document"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "not a video: looks like a PDF document"),
    ],
)
def test_a_file_that_is_not_media_says_what_it_looks_like(content, found, tmp_path, blend, run):
    src = tmp_path / "clip.mp4"
    src.write_bytes(content)
    with pytest.raises(InvalidVideoError) as info:
        run(src, tmp_path / "out.mp4", blend)
    assert str(info.value).startswith(found), info.value
    _clean(str(info.value))


def test_progress_total_is_the_real_count_once_known(tmp_path, blend, run):
    case = next(c for c in CASES if c.name == "mp4_h264_aac")
    src = truncate(write_case(case, tmp_path), 0.3)  # the header announces 12 frames, 3 arrive
    result = run(src, tmp_path / "out.mp4", blend, batch_size=1)
    totals = [p.frames_total for p in run.progress]
    assert totals[-1] == result.output_frames == 5
    # Once the decoder has seen the end, every report carries the real total (no 4/23 after it).
    first_true = totals.index(5)
    assert all(t == 5 for t in totals[first_true:])
