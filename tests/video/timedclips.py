"""Clips with timestamps chosen by the test (gaps, joined rates, lying headers) and readers that find
where things are in time: a marker frame (one solid colour) and an audio click (a short tone burst).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from clipmaker import encode_all

MARKER = (255, 0, 255)  # a solid magenta frame
SAMPLE_RATE = 48_000


def marker_frame(w: int = 64, h: int = 48) -> np.ndarray:
    return np.full((h, w, 3), MARKER, np.uint8)


def write_timed(
    path: Path,
    frames: list[np.ndarray],
    times: list[Fraction],
    time_base: Fraction = Fraction(1, 90_000),
    click_at: float | None = None,
    audio_start: Fraction = Fraction(0),
    audio_seconds: float | None = None,
    fmt: str | None = None,
    rate: Fraction | None = None,
    gop: int | None = None,
) -> Path:
    """Encode `frames` losslessly (x264 qp 0) at the given `times` (seconds), plus optionally an AAC
    track starting at `audio_start` that is silent except for a 20 ms 1 kHz burst at `click_at`. `gop`: a key frame every `gop` frames (x264's default otherwise)."""
    h, w = frames[0].shape[:2]
    out = av.open(os.fspath(path), "w", format=fmt)
    stream = out.add_stream("libx264", rate=rate or Fraction(30))
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    stream.options = {"qp": "0", "preset": "ultrafast", "bf": "0"}
    if gop is not None:  # a key frame every `gop` frames
        stream.options = {**stream.options, "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
    audio = None
    if click_at is not None:
        audio = out.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
    for rgb, when in zip(frames, times, strict=True):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = round(when / time_base)
        frame.time_base = time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    if audio is not None and click_at is not None:
        seconds = audio_seconds if audio_seconds is not None else float(times[-1]) + 0.2
        total = int(SAMPLE_RATE * seconds)
        signal = np.zeros(total, np.float32)
        start = int((click_at - float(audio_start)) * SAMPLE_RATE)
        burst = np.arange(int(0.02 * SAMPLE_RATE))
        signal[start : start + len(burst)] = 0.8 * np.sin(2 * np.pi * 1000 * burst / SAMPLE_RATE)
        offset = round(audio_start * SAMPLE_RATE)

        def chunks() -> Iterator[av.AudioFrame]:
            for first in range(0, total, 1024):
                chunk = av.AudioFrame.from_ndarray(signal[None, first : first + 1024], format="fltp", layout="mono")
                chunk.sample_rate = SAMPLE_RATE
                chunk.pts = offset + first
                chunk.time_base = Fraction(1, SAMPLE_RATE)
                yield chunk

        encode_all(out, audio, chunks())
    out.close()
    return path


def video_times(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """Presentation times (s) and RGB pictures of every frame of the first video stream."""
    times, images = [], []
    with av.open(os.fspath(path)) as c:
        for frame in c.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
            images.append(frame.to_ndarray(format="rgb24"))
    return times, images


def stream_start(path: Path, kind: str) -> float:
    """The first presentation time of the first stream of `kind` ("video" or "audio"), as a player sees it."""
    with av.open(os.fspath(path)) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        for frame in c.decode(stream):
            return float(frame.pts * frame.time_base)
    raise AssertionError(f"no {kind} frame in {path}")


def video_duration(path: Path) -> float:
    with av.open(os.fspath(path)) as c:
        v = c.streams.video[0]
        return float(v.duration * v.time_base)


def marker_time(path: Path) -> float:
    """The time of the output frame closest to the solid marker colour."""
    times, images = video_times(path)
    target = np.array(MARKER, np.float64)
    distance = [float(np.abs(img.reshape(-1, 3).astype(np.float64) - target).mean()) for img in images]
    return times[int(np.argmin(distance))]


def click_time(path: Path) -> float:
    """When the audio first gets loud (the burst's onset), on the file's timeline."""
    with av.open(os.fspath(path)) as c:
        for frame in c.decode(audio=0):
            samples = np.abs(frame.to_ndarray()).max(axis=0)
            loud = np.nonzero(samples > 0.2)[0]
            if len(loud):
                return float(frame.pts * frame.time_base) + loud[0] / frame.sample_rate
    raise AssertionError(f"no click in {path}")
