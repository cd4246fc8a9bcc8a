"""Animated GIF output: one 256-colour palette for the whole clip, looping forever.

A GIF holds 256 colours per frame. A palette per frame makes colours flicker from frame to frame as
each frame's palette shifts; one palette made from every frame of the clip (FFmpeg's `palettegen`,
median cut over the clip's colour histogram) keeps them steady. That palette is only known after
the last frame, so frames are spooled raw to a file beside the output (bounded: GIFs are limited to
GIF_MAX_SIDE and GIF_MAX_FRAMES, rife_core.video.formats) and quantised on `close`. The muxer's
`loop=0` writes the NETSCAPE2.0 extension that makes players repeat it forever.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import torch

_BITS = 5  # colour lookup table precision per channel: 32768 cells, each mapped to its nearest palette entry


class GifEncoder:
    """Same interface as Encoder (write / close / abort / frames). Not thread-safe."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction) -> None:
        self.path = path
        self.fps = Fraction(fps)
        self.frames = 0
        # Encoder's timing knobs, kept for the same interface: a GIF has no audio to start after
        # (`first_pts` stays 0) and shows every frame for one interval, as looping GIFs should.
        self.first_pts = 0
        self.last_frame_ticks = 1
        self._size = (width, height)
        self._spool_path = path.with_name(path.name + ".frames")
        self._spool = open(self._spool_path, "wb")  # noqa: SIM115 - closed in close/abort

    def write(self, rgb: np.ndarray | torch.Tensor) -> None:
        """One uint8 RGB frame (H, W, 3)."""
        if isinstance(rgb, torch.Tensor):
            rgb = rgb.cpu().numpy()
        self._spool.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
        self.frames += 1

    def _frames(self):
        w, h = self._size
        with open(self._spool_path, "rb") as f:
            for _ in range(self.frames):
                yield np.frombuffer(f.read(w * h * 3), np.uint8).reshape(h, w, 3)

    def _palette(self) -> np.ndarray:
        """(256, 3) uint8 RGB palette from every frame (FFmpeg palettegen, no transparent entry)."""
        w, h = self._size
        graph = av.filter.Graph()
        src = graph.add_buffer(width=w, height=h, format=av.VideoFormat("rgb24"), time_base=1 / self.fps)
        gen = graph.add("palettegen", "max_colors=256:reserve_transparent=0:stats_mode=full")
        sink = graph.add("buffersink")
        src.link_to(gen)
        gen.link_to(sink)
        graph.configure()
        for i, rgb in enumerate(self._frames()):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, 1 / self.fps
            graph.push(frame)
        graph.push(None)
        bgra = graph.pull().to_ndarray().reshape(-1, 4)
        return np.ascontiguousarray(bgra[:256, 2::-1])

    def close(self) -> None:
        """Quantise every frame with the clip's palette and write the GIF."""
        self._spool.close()
        try:
            if self.frames == 0:
                raise ValueError("no frames were written")
            palette = self._palette()
            lut = _nearest_lut(palette)
            argb = np.concatenate([np.full((256, 1), 255, np.uint8), palette], axis=1)
            w, h = self._size
            with av.open(os.fspath(self.path), "w", format="gif", options={"loop": "0"}) as out:
                stream = out.add_stream("gif", rate=self.fps)
                stream.width, stream.height, stream.pix_fmt = w, h, "pal8"
                stream.time_base = 1 / self.fps
                for i, rgb in enumerate(self._frames()):
                    cells = rgb >> (8 - _BITS)
                    index = lut[(cells[..., 0].astype(np.int32) << (2 * _BITS)) | (cells[..., 1].astype(np.int32) << _BITS)
                                | cells[..., 2]]
                    frame = av.VideoFrame.from_ndarray(cast(Any, (index, argb)), format="pal8")  # pal8: (indices, ARGB)
                    frame.pts, frame.time_base = i, 1 / self.fps
                    for packet in stream.encode(frame):
                        out.mux(packet)
                for packet in stream.encode(None):
                    out.mux(packet)
        finally:
            self._spool_path.unlink(missing_ok=True)

    def abort(self) -> None:
        self._spool.close()
        self._spool_path.unlink(missing_ok=True)


def _nearest_lut(palette: np.ndarray) -> np.ndarray:
    """uint8 (2**(3*_BITS),): for each colour cell (its centre), the index of the nearest palette entry."""
    levels = (np.arange(1 << _BITS) << (8 - _BITS)) + (1 << (7 - _BITS))
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    cells = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1).astype(np.float32)
    pal = palette.astype(np.float32)
    out = np.empty(len(cells), np.uint8)
    for start in range(0, len(cells), 4096):
        chunk = cells[start : start + 4096]
        d = ((chunk[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
        out[start : start + 4096] = d.argmin(1)
    return out
