"""Tiny synthetic clips and a corpus of broken media files, made with PyAV in a second.

Each corpus entry names the outcome the service must end with: an `error_type`, or None for a
file that is fine despite appearances (a WebM named .mp4).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np


def make_clip(path: Path, *, width: int = 64, height: int = 48, frames: int = 6, fps: int = 30,
              codec: str = "libx264", container: str | None = None, faststart: bool = False) -> Path:
    """A clip of a bar moving over a changing background, so consecutive frames differ."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[:, :, 0] = (i * 40) % 255
            x = (i * 5) % max(1, width - 10)
            image[height // 4 : height // 2, x : x + 10] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def broken_corpus(folder: Path) -> dict[str, tuple[bytes, str | None]]:
    """name -> (file bytes, the error_type the service must answer, None for success)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = make_clip(folder / "good.mp4").read_bytes()
    faststart = make_clip(folder / "faststart.mp4", frames=12, faststart=True).read_bytes()
    webm = make_clip(folder / "clip.webm", codec="libvpx-vp9", container="webm").read_bytes()
    one = make_clip(folder / "one.mp4", frames=1).read_bytes()
    with av.open(str(folder / "audio.wav"), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        samples.sample_rate, samples.pts = 8000, 0
        for packet in [*stream.encode(samples), *stream.encode()]:
            out.mux(packet)
    png = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
           + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))
    return {
        "zero bytes": (b"", "invalid_video"),
        "truncated mp4 (moov lost)": (good[: len(good) // 2], "invalid_video"),
        "truncated faststart mp4": (faststart[: int(len(faststart) * 0.6)], "invalid_video"),
        "text named .mp4": (b"this is not a video, just text\n" * 20, "invalid_video"),
        "random bytes": (np.random.default_rng(1).bytes(20_000), "invalid_video"),
        "huge declared size (y4m 12000x12000)": (b"YUV4MPEG2 W12000 H12000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 1000, "resolution_limit"),
        "huge declared size (png 100000x100000)": (png, "invalid_video"),
        "audio only (wav named .mp4)": ((folder / "audio.wav").read_bytes(), "invalid_video"),
        "a single frame": (one, "too_few_frames"),
        "webm named .mp4": (webm, None),
    }
