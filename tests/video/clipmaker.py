"""Small test inputs made on the fly with PyAV, and readers to check outputs.

Tests build their inputs here instead of shipping binaries: every input is a few KB, made in
milliseconds, and says in code exactly what it holds (rate, codec, rotation, audio...).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


def moving_square(i: int, w: int = 64, h: int = 48, step: int = 3) -> np.ndarray:
    """A frame with motion and no symmetry: a bright square moving right over a diagonal gradient."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, w - 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(1, h - 1)).astype(np.uint8)
    img[..., 2] = 60
    s = max(4, min(w, h) // 4)
    x0 = (4 + i * step) % max(1, w - s)
    img[h // 4 : h // 4 + s, x0 : x0 + s] = (250, 250, 40)
    return img


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    rate: Fraction | int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fmt: str | None = None,
    rotation: int | None = None,
    pts: Sequence[int] | None = None,
    options: dict[str, str] | None = None,
    audio_codec: str | None = None,
    audio_seconds: float = 0.0,
    color_range: int | None = None,
    colorspace: int | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames (plus an optional 440 Hz mono tone) into `path`."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    rate = Fraction(rate)
    out = av.open(os.fspath(path), "w", format=fmt, options=container_options or {})
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
    stream.time_base = 1 / rate
    stream.codec_context.time_base = 1 / rate
    if options:
        stream.options = options
    if color_range is not None:
        stream.codec_context.color_range = color_range
    if colorspace is not None:
        stream.codec_context.colorspace = colorspace
        stream.codec_context.color_primaries = colorspace
        stream.codec_context.color_trc = colorspace
    if rotation is not None:
        stream.set_display_rotation(rotation)
    astream = None
    if audio_codec:
        astream = out.add_stream(audio_codec, rate=44100)
        astream.layout = "mono"
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if pix_fmt != "rgb24" and codec != "gif":
            frame = frame.reformat(
                format=pix_fmt,
                dst_colorspace={1: "ITU709"}.get(colorspace or 0),
                dst_color_range="JPEG" if color_range == 2 else "MPEG",
            )
        elif codec == "gif":
            frame = frame.reformat(format=pix_fmt)
        frame.pts = pts[i] if pts is not None else i
        frame.time_base = 1 / rate
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    if astream is not None:
        total = int(44100 * audio_seconds)
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / 44100)).astype(np.float32)
        fmt_name = astream.codec_context.format.name if astream.codec_context.format else "fltp"
        for start in range(0, total, 1024):
            chunk = tone[start : start + 1024]
            if fmt_name.startswith("s16"):
                frame = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16)[None], format="s16", layout="mono")
            else:
                frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            frame.time_base = Fraction(1, 44100)
            for packet in astream.encode(frame):
                out.mux(packet)
        for packet in astream.encode():
            out.mux(packet)
    out.close()
    return path


def encode_all(out: av.container.OutputContainer, stream: Any, frames: Iterable[Any]) -> None:
    """Encode every frame into `stream`, flush the encoder, and mux each packet into `out`."""
    for frame in frames:
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    out = av.open(os.fspath(path), "w")
    stream = out.add_stream("aac", rate=44100)
    stream.layout = "mono"
    tone = (0.3 * np.sin(np.arange(int(44100 * seconds)) / 10)).astype(np.float32)

    def chunks() -> Iterator[av.AudioFrame]:
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            yield frame

    encode_all(out, stream, chunks())
    out.close()
    return path


def cut_clip(
    src: Path, dst: Path, start: int, count: int, step: int = 1, size: tuple[int, int] | None = None
) -> list[np.ndarray]:
    """Re-encode frames start, start+step, ... of a real clip losslessly (x264 qp 0, same yuv420p).

    The piece's YUV planes equal the source's (or its scaled version), so the returned RGB frames
    are exactly what decoding the piece gives. Returns every frame from `start` to the last kept
    one (step 1), so tests can compare with the frames that were dropped.
    """
    with av.open(os.fspath(src)) as inp:
        vs = inp.streams.video[0]
        rate = vs.average_rate or Fraction(25)
        all_frames = []
        for i, frame in enumerate(inp.decode(vs)):
            if i < start:
                continue
            if i >= start + (count - 1) * step + 1:
                break
            if size is not None:
                frame = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="AREA")
            all_frames.append(frame)
    kept = all_frames[::step]
    out = av.open(os.fspath(dst), "w", format="mp4")
    stream = out.add_stream("libx264", rate=rate / step)
    stream.width, stream.height, stream.pix_fmt = kept[0].width, kept[0].height, "yuv420p"
    stream.options = {"qp": "0", "preset": "ultrafast"}
    for i, frame in enumerate(kept):
        frame.pts = i
        frame.time_base = step / rate
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return [f.to_ndarray(format="rgb24") for f in all_frames]


@dataclass
class Probed:
    frames: int = 0
    pts: list[int] = field(default_factory=list)
    time_base: Fraction | None = None
    average_rate: Fraction | None = None
    width: int = 0
    height: int = 0
    codec: str = ""
    pix_fmt: str = ""
    color_range: int = 0
    colorspace: int = 0
    audio_codec: str | None = None
    audio_duration_s: float | None = None
    audio_frame_s: float | None = None
    images: list[np.ndarray] = field(default_factory=list)


def read_video(path: Path, keep_images: bool = False) -> Probed:
    """Decode an output completely: timestamps, tags, audio duration (from its packets)."""
    r = Probed()
    with av.open(os.fspath(path)) as c:
        v = c.streams.video[0]
        r.time_base, r.average_rate = v.time_base, v.average_rate
        r.codec, r.pix_fmt = v.codec_context.name, v.codec_context.pix_fmt
        r.width, r.height = v.codec_context.width, v.codec_context.height
        for frame in c.decode(v):
            r.pts.append(frame.pts)
            r.color_range, r.colorspace = int(frame.color_range), int(frame.colorspace)
            if keep_images:
                full = frame.color_range == 2
                r.images.append(frame.to_ndarray(format="rgb24", src_color_range="JPEG" if full else "MPEG"))
        r.frames = len(r.pts)
    with av.open(os.fspath(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            r.audio_codec = a.codec_context.name
            r.audio_frame_s = (a.codec_context.frame_size or 1024) / a.codec_context.sample_rate
            start, end = None, None
            for p in c.demux(a):
                if p.pts is None:
                    continue
                t0 = float(p.pts * p.time_base)
                t1 = t0 + float((p.duration or 0) * p.time_base)
                start = t0 if start is None else min(start, t0)
                end = t1 if end is None else max(end, t1)
            if start is not None and end is not None:
                r.audio_duration_s = end - start
    return r


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def read_pngs(folder: Path) -> list[np.ndarray]:
    import cv2

    files = sorted(Path(folder).glob("frame_*.png"))
    return [cv2.cvtColor(cv2.imread(os.fspath(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in files]
