"""A corpus of real-world containers and codecs, written by the test at tiny sizes with PyAV.

Each entry says what a user's third-party file looks like (Ogg with empty Vorbis packets, MPEG-PS,
AVI with B-frames, HEVC in MOV, animated images...) and how many frames a correct decoder gets
out of it. `truncate` cuts any of them to a fraction of its bytes, as an interrupted download does.

Empty Vorbis packets are written into the Ogg pages directly (PyAV's muxers drop empty packets):
FFmpeg's Ogg demuxer hands them on, and a decoder given one refuses it. PyAV has no Theora
encoder, and FFmpeg 8.1's demuxers drop zero-length VP8 (Ogg, Matroska) and MJPEG (AVI) packets,
so empty *video* packets are tested at the packet level (tests/video/test_video_media_corpus.py).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from clipmaker import moving_square

FRAMES = 12  # per clip; enough for B-frames and a GOP boundary, few enough to stay instant
W, H = 64, 48


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    fmt: str
    vcodec: str
    pix_fmt: str = "yuv420p"
    vopts: dict[str, str] | None = None
    acodec: str | None = None
    empty_audio_every: int = 0  # Ogg only: a zero-length packet before every Nth audio page's first
    frames: int = FRAMES  # decodable frames the file holds
    rate: int = 10
    container_options: dict[str, str] | None = None


def _audio_frames(codec_ctx: av.codec.context.CodecContext, seconds: float) -> list[av.AudioFrame]:
    channels = codec_ctx.layout.nb_channels
    rate = codec_ctx.sample_rate
    size = codec_ctx.frame_size or 1024
    fmt = codec_ctx.format.name
    total = int(rate * seconds)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / rate)
    frames = []
    for start in range(0, total - size + 1, size):
        chunk = tone[start : start + size]
        if fmt.startswith("s16"):
            data = (chunk * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            data = (chunk * 2**31 * 0.9).astype(np.int32)
        else:
            data = chunk.astype(np.float32)
        # planar: one row per channel; packed: the channels interleaved in one row
        data = np.repeat(data[None], channels, 0) if fmt.endswith("p") else np.repeat(data, channels)[None]
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=codec_ctx.layout.name)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        frames.append(frame)
    return frames


def write_case(case: Case, folder: Path) -> Path:
    """Write `case` into `folder`; returns the file."""
    path = folder / f"{case.name}{case.suffix}"
    rate = Fraction(case.rate)
    out = av.open(os.fspath(path), "w", format=case.fmt, options=case.container_options or {})
    vs = out.add_stream(case.vcodec, rate=rate)
    vs.width, vs.height, vs.pix_fmt = W, H, case.pix_fmt
    vs.time_base = 1 / rate
    vs.codec_context.time_base = 1 / rate
    if case.vopts:
        vs.options = dict(case.vopts)
    aus = None
    if case.acodec:
        aus = out.add_stream(case.acodec, rate=48000 if case.acodec in ("libopus", "ac3", "mp2") else 44100)
        aus.layout = "stereo" if case.acodec == "vorbis" else "mono"  # FFmpeg's own Vorbis encoder: stereo only
    packets: list[tuple[float, av.Packet, bool]] = []  # (time, packet, is_video)

    def take(pkts: list[av.Packet], video: bool) -> None:
        for p in pkts:
            t = float((p.dts if p.dts is not None else p.pts or 0) * p.time_base) if p.time_base else 0.0
            packets.append((t, p, video))

    for i in range(case.frames):
        frame = av.VideoFrame.from_ndarray(moving_square(i, W, H), format="rgb24").reformat(format=case.pix_fmt)
        frame.pts = i
        frame.time_base = 1 / rate
        take(vs.encode(frame), True)
    take(vs.encode(None), True)
    if aus is not None:
        if case.acodec == "vorbis":
            aus.codec_context.options = {"strict": "experimental"}
        aus.codec_context.open()
        for aframe in _audio_frames(aus.codec_context, case.frames / case.rate):
            take(aus.encode(aframe), False)
        take(aus.encode(None), False)
    packets.sort(key=lambda item: item[0])
    for _, packet, _video in packets:
        out.mux(packet)
    out.close()
    if case.empty_audio_every:
        path.write_bytes(ogg_insert_empty_packets(path.read_bytes(), stream=1, every=case.empty_audio_every))
    return path


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def ogg_insert_empty_packets(data: bytes, stream: int, every: int) -> bytes:
    """Add zero-length packets to the `stream`th logical stream of an Ogg file (after its headers).

    A zero-length packet is a 0 lacing value where a packet starts; pages are re-checksummed.
    Returns the new file; the count of packets added is `every`-th of the stream's packet starts.
    """
    serials: list[int] = []
    out = bytearray()
    starts = 0
    i = 0
    while i < len(data):
        assert data[i : i + 4] == b"OggS", f"not an Ogg page at byte {i}"
        nsegs = data[i + 26]
        lacing = list(data[i + 27 : i + 27 + nsegs])
        size = 27 + nsegs + sum(lacing)
        page = data[i : i + size]
        i += size
        header = bytearray(page[:27])
        body = page[27 + nsegs :]
        serial = struct.unpack_from("<I", page, 14)[0]
        if serial not in serials:
            serials.append(serial)
        granule = struct.unpack_from("<q", page, 6)[0]
        if serials.index(serial) == stream and granule > 0:
            new: list[int] = []
            at_start = not header[5] & 1  # the page does not continue a packet from the last one
            for value in lacing:
                if at_start and len(lacing) + (len(new) - len(lacing)) < 254:
                    starts += 1
                    if starts % every == 0:
                        new.append(0)
                new.append(value)
                at_start = value < 255
            lacing = new
        header[26] = len(lacing)
        header[22:26] = b"\0\0\0\0"
        rebuilt = bytearray(bytes(header) + bytes(lacing) + body)
        struct.pack_into("<I", rebuilt, 22, _ogg_crc(bytes(rebuilt)))
        out += rebuilt
    return bytes(out)


def truncate(src: Path, fraction: float, dst: Path | None = None) -> Path:
    """The first `fraction` of `src`'s bytes, as an interrupted download leaves it."""
    dst = dst or src.with_name(f"{src.stem}.cut{src.suffix}")
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def write_y4m_declaring(path: Path, width: int, height: int, frames: int = 2) -> Path:
    """A YUV4MPEG2 file whose header declares `width`x`height` (its frame data is small: a lie)."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"FRAME\n" + bytes(64) * frames)
    return path


CASES: list[Case] = [
    Case("ogg_vp8_vorbis_empty", ".ogg", "ogg", "libvpx", acodec="vorbis", empty_audio_every=2, frames=20),
    Case("ogg_vp8", ".ogv", "ogg", "libvpx"),
    Case("mp4_h264_aac", ".mp4", "mp4", "libx264", acodec="aac", container_options={"movflags": "faststart"}),
    Case("mpeg_ps", ".mpg", "mpeg", "mpeg2video", acodec="mp2"),
    Case("mpeg_ts_h264_ac3", ".ts", "mpegts", "libx264", acodec="ac3"),
    Case("avi_mjpeg", ".avi", "avi", "mjpeg", pix_fmt="yuvj420p"),
    Case("avi_rawvideo", ".avi", "avi", "rawvideo", pix_fmt="bgr24"),
    Case("avi_mpeg4_bframes", ".avi", "avi", "mpeg4", vopts={"bf": "2", "g": "6"}),
    Case("mov_hevc", ".mov", "mov", "libx265", vopts={"x265-params": "log-level=error"}),
    Case("mov_prores", ".mov", "mov", "prores_ks", pix_fmt="yuv422p10le"),
    Case("mkv_vp9_opus", ".mkv", "matroska", "libvpx-vp9", acodec="libopus"),
    Case("webm_av1", ".webm", "webm", "libsvtav1", vopts={"preset": "12"}),
    Case("flv", ".flv", "flv", "flv"),
    Case("y4m", ".y4m", "yuv4mpegpipe", "rawvideo"),
    Case("gif", ".gif", "gif", "gif", pix_fmt="rgb8"),
    Case("webp", ".webp", "webp", "libwebp_anim", pix_fmt="yuv420p", vopts={"loop": "0"}),
    Case("apng", ".png", "apng", "apng", pix_fmt="rgb24"),
]

BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
Maker = Callable[[Path], Path]
