"""Tiny real clips for the end-to-end tests, cut with PyAV from the verified sample footage."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av


def cut_clip(source: Path, dest: Path, frames: int) -> Path:
    """The first `frames` frames of `source`, re-encoded as H.264 at the source's frame rate."""
    with av.open(str(source)) as inp, av.open(str(dest), "w") as out:
        src = inp.streams.video[0]
        rate = Fraction(src.average_rate)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = src.width, src.height, "yuv420p"
        stream.codec_context.time_base = 1 / rate
        for i, frame in enumerate(inp.decode(src)):
            if i == frames:
                break
            picture = frame.reformat(format="yuv420p")
            picture.pts = i  # one tick of 1/rate per frame
            picture.time_base = 1 / rate
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dest


def describe_video(path: Path) -> dict:
    """Frame count (decoded), rate, size and codec of the first video stream, and whether audio is present."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        count = sum(1 for _ in c.decode(v))
        return {
            "frames": count,
            "fps": Fraction(v.average_rate),
            "size": (v.width, v.height),
            "codec": v.codec_context.name,
            "audio": bool(c.streams.audio),
            "format": c.format.name,
        }
