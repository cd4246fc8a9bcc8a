"""Encode RGB frames into the output file with exact timestamps, plus optional lossless PNGs.

The default output is H.264 in MP4; `OutputFormat` picks another codec and container
(rife_core.video.codecs has the encoder choices, rife_core.video.gif the GIF writer).

The stream time base is 1/output_fps, so frame k gets pts k and every timestamp is exact (MP4
stores it with the rate's numerator as timescale, e.g. 60000 for 60000/1001). `+faststart` puts
the index first so players can start before the download ends. Colour range and matrix tags are
carried over from the input, and the RGB->YUV conversion uses that same matrix and range, so
colours round-trip instead of shifting between BT.601 and BT.709.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import torch

from rife_core.video.audio import AudioTrack
from rife_core.video.codecs import plan_codec
from rife_core.video.formats import OutputFormat
from rife_core.video.gif import GifEncoder
from rife_core.video.metadata import Chapter, HdrMetadata
from rife_core.video.options import default_preset
from rife_core.video.probe import VideoInfo

# x264's own threading: frame threads, as the x264 command line uses. PyAV opens encoders with slice
# threads, which split each frame across the cores (bench/gpu.py measures both on a 16-core host).
THREAD_TYPE = "FRAME"
_RGB_SOURCES = ("rgb", "bgr", "argb", "abgr", "gbr", "pal8", "gray", "ya", "0rgb", "rgb0", "0bgr", "bgr0")
# AVColorSpace values that swscale has conversion coefficients for.
_SWS_MATRICES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


@dataclass(frozen=True)
class ColorTags:
    """FFmpeg's enum values for the output's colour description."""

    color_range: int  # 1 limited ("MPEG"), 2 full ("JPEG")
    colorspace: int
    color_primaries: int
    color_trc: int

    @classmethod
    def for_input(cls, info: VideoInfo) -> ColorTags:
        """The input's tags; an RGB source (GIF, PNG sequence...) gets the usual HD/SD defaults."""
        if info.pix_fmt.startswith(_RGB_SOURCES) or info.colorspace == 0:
            standard = 1 if info.height >= 720 else 6  # BT.709 for HD, SMPTE 170M (BT.601) for SD
            return cls(1, standard, standard, standard)
        return cls(2 if info.color_range == 2 else 1, info.colorspace, info.color_primaries, info.color_trc)


def last_frame_lasts(packets: Sequence[av.Packet], ticks: int) -> None:
    """Make the last of a stream's final packets last `ticks` intervals. The muxer takes the track's
    length from the last packet in decode order and the edit list's from the last in presentation
    order: the last frame lasts as long as the input's did, so the output's duration is the input's."""
    if packets and ticks > 1:
        packets[-1].duration = ticks
        max(packets, key=lambda p: p.pts if p.pts is not None else -1).duration = ticks


class OutputFile:
    """An output container with an optional audio track, closed together (or abandoned) whatever happens."""

    _container: av.container.OutputContainer | None
    _audio: AudioTrack | None

    def abort(self) -> None:
        """Stop without finishing the file (the caller deletes it)."""
        try:
            self._close_all()
        except Exception:
            pass

    def _close_all(self) -> None:
        try:
            if self._audio is not None:
                self._audio.close()
        finally:
            if self._container is not None:
                self._container.close()


class Encoder(OutputFile):
    """One output file. Not thread-safe: one thread writes, then closes or aborts."""

    _container: av.container.OutputContainer  # opened in __init__

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: Fraction,
        crf: int,
        color: ColorTags,
        audio: AudioTrack | None = None,
        threads: int | None = None,
        to_yuv420p: Callable[[np.ndarray | torch.Tensor], np.ndarray] | None = None,
        preset: str | None = None,
        *,
        output: OutputFormat | None = None,
        bits: int = 8,
        hdr: HdrMetadata | None = None,
        tags: Mapping[str, str] | None = None,
        chapters: Sequence[Chapter] = (),
        encoder: str | None = None,
    ) -> None:
        """`to_yuv420p`, when given, replaces swscale's RGB -> yuv420p conversion (rife_core.video.yuv:
        on a GPU worker it runs on the GPU); it must use the matrix and range of `color`, and is only
        valid for 8-bit yuv420p outputs (`CodecPlan.accepts_yuv420p_planes`). `output` (default H.264
        MP4) and `bits` pick the codec (rife_core.video.codecs); `hdr` is written into encoders that carry
        it; `tags` and `chapters` go into the container; `encoder` names an FFmpeg encoder to use instead
        of the codec's software one (NVENC)."""
        self.path = path
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps  # the stream's own time base changes once the muxer starts
        self.frames = 0
        self.last_frame_ticks = 1  # how long the last frame shows, in 1/fps (set before `close`)
        self.first_pts = 0  # where the first frame is shown, in 1/fps: after audio that starts earlier
        self._color = color
        self.plan = plan_codec(output or OutputFormat(), bits, crf, preset or default_preset("cpu"), hdr, encoder)
        if to_yuv420p is not None and not self.plan.accepts_yuv420p_planes:
            raise ValueError(f"{self.plan.encoder} takes {self.plan.pix_fmt}, not yuv420p planes")
        self._to_yuv420p = to_yuv420p
        self._container = av.open(os.fspath(path), "w", format=self.plan.muxer, options=self.plan.muxer_options)
        try:
            if tags:
                self._container.metadata.update(tags)
            if chapters:
                self._container.set_chapters([
                    {"id": i + 1, "start": round(c.start_s * 1000), "end": round(c.end_s * 1000),
                     "time_base": Fraction(1, 1000), "metadata": {"title": c.title} if c.title else {}}
                    for i, c in enumerate(chapters)
                ])
            stream = cast(av.video.stream.VideoStream, self._container.add_stream(self.plan.encoder, rate=self.fps))
            stream.width, stream.height, stream.pix_fmt = width, height, self.plan.pix_fmt
            stream.time_base = self.time_base
            ctx = stream.codec_context
            ctx.time_base = self.time_base
            ctx.thread_count = threads or os.cpu_count() or 1
            if self.plan.encoder == "libx264":
                ctx.thread_type = THREAD_TYPE
            if self.plan.colour_tags:
                ctx.color_range = color.color_range
                ctx.colorspace = color.colorspace
                ctx.color_primaries = color.color_primaries
                ctx.color_trc = color.color_trc
            stream.options = dict(self.plan.options)
            self._stream = stream
            self._audio = audio
            if audio is not None:
                audio.attach(self._container)
        except BaseException:
            self._container.close()
            raise

    def _yuv(self, rgb: np.ndarray | torch.Tensor) -> av.VideoFrame:
        if self._to_yuv420p is not None:
            yuv = _planar_frame(self._to_yuv420p(rgb), rgb.shape[1], rgb.shape[0])
        else:
            if isinstance(rgb, torch.Tensor):
                rgb = rgb.cpu().numpy()
            # 16-bit RGB (a >8-bit input kept deep) goes to the 10-bit formats without an 8-bit step.
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24")
            if not self.plan.colour_tags:
                yuv = frame.reformat(format=self.plan.pix_fmt)
            else:
                matrix = _SWS_MATRICES.get(self._color.colorspace)
                yuv = frame.reformat(
                    format=self.plan.pix_fmt,
                    dst_colorspace=matrix,
                    dst_color_range="JPEG" if self._color.color_range == 2 else "MPEG",
                )
        yuv.pts = self.first_pts + self.frames
        yuv.time_base = self.time_base
        return yuv

    def write(self, rgb: np.ndarray | torch.Tensor) -> None:
        """One RGB frame (H, W, 3), uint8 or (deep outputs) uint16: an array, or a tensor on the device
        `to_yuv420p` converts on."""
        for packet in self._stream.encode(self._yuv(rgb)):
            self._container.mux(packet)
        self.frames += 1
        if self._audio is not None:
            # Keep audio interleaved with the video written so far (plus a little lead).
            self._audio.copy_until(float((self.first_pts + self.frames) / self.fps) + 0.5)

    def close(self) -> None:
        """Flush the encoder and the rest of the audio, and finish the file."""
        try:
            packets = list(self._stream.encode(None))
            last_frame_lasts(packets, self.last_frame_ticks)
            for packet in packets:
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.copy_until(None)
        finally:
            self._close_all()



def open_encoder(path: Path, width: int, height: int, fps: Fraction, crf: int, color: ColorTags,
                 audio: AudioTrack | None = None, *, output: OutputFormat | None = None,
                 **kwargs: Any) -> Encoder | GifEncoder:
    """The writer for `output`: the palette-per-clip GIF writer for gif, else an Encoder."""
    if output is not None and output.codec == "gif":
        return GifEncoder(path, width, height, fps)
    return Encoder(path, width, height, fps, crf, color, audio, output=output, **kwargs)


def _planar_frame(planes: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A yuv420p VideoFrame from its three planes packed one after another (FFmpeg's planes may have
    padded rows, so each is copied row-aware into the frame's own buffer)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    offset = 0
    for plane, (w, h) in zip(frame.planes, ((width, height), (width // 2, height // 2), (width // 2, height // 2)),
                             strict=True):
        dst = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)[:h, :w]
        dst[:] = planes[offset : offset + w * h].reshape(h, w)
        offset += w * h
    return frame


class PngSink:
    """Every output frame as frame_000000.png... in a folder: lossless, for inspection and tests."""

    def __init__(self, folder: Path, first: int = 0) -> None:
        """`first`: the number of the first frame written (a segment of a split job numbers its frames
        as the whole output does, so the segments' folders together hold the whole job's frames)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frames = first

    def write(self, rgb: np.ndarray) -> None:
        """uint8 frames become 8-bit PNGs, uint16 (deep) frames 16-bit ones."""
        path = self.folder / f"frame_{self.frames:06d}.png"
        # Compression level 1: PNG is lossless at every level, and 1 is several times faster than 9.
        if not cv2.imwrite(os.fspath(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"could not write {path}")
        self.frames += 1
