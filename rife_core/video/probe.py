"""Look at an input once, cheaply, before any work: is it a video, how big, how long, which rate.

Everything a request can be refused for is decided here (not a video, too long, too large), so a
bad request fails in well under a second and before the model runs. The first frame is decoded as
part of the probe: it proves the stream is decodable and carries what the container does not say
reliably (rotation side data, colour range and matrix, the pixel format actually produced).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av

from rife_core.errors import InvalidVideoError, LimitExceededError, TooFewFramesError
from rife_core.video.metadata import ContainerMetadata, HdrMetadata
from rife_core.video.options import Limits
from rife_core.video.sniff import is_animated_webp, looks_like, plain_reason, y4m_size
from rife_core.video.timing import InputTiming, classify_times, pick_input_rate

LogFn = Callable[[str, str], None]


@dataclass(frozen=True)
class AudioInfo:
    index: int
    codec: str
    sample_rate: int
    duration_s: float | None
    start_s: float = 0.0  # time of the first sample played (priming samples an edit list discards excluded)


@dataclass(frozen=True)
class VideoInfo:
    """The facts about an input that the rest of the pipeline needs."""

    path: Path
    stream_index: int
    codec: str
    coded_width: int  # as decoded, before rotation
    coded_height: int
    rotation: int  # counter-clockwise degrees to display upright: 0, 90, 180 or 270
    width: int  # as displayed (after rotation), before the crop to even size
    height: int
    pix_fmt: str
    bit_depth: int
    fps: Fraction  # treated as constant
    variable_rate: bool
    frame_count: int  # from the container, or estimated from duration x fps; exact after decoding
    duration_s: float | None
    start_s: float  # time of the first frame; output time 0
    color_range: int  # FFmpeg AVColorRange (1 limited/MPEG, 2 full/JPEG, 0 unknown)
    colorspace: int  # FFmpeg AVColorSpace (1 BT.709, 5/6 BT.601, 2 unspecified...)
    color_primaries: int
    color_trc: int
    audio: AudioInfo | None
    hdr: HdrMetadata | None = None  # mastering display / content light side data of the first frame
    container_metadata: ContainerMetadata = ContainerMetadata()
    # How frames are placed in time (rife_core.video.timing); None for a VideoInfo built by hand.
    timing: InputTiming | None = None
    start_time: Fraction | None = None  # exact `start_s`

    @property
    def even_size(self) -> tuple[int, int]:
        """Output size: yuv420p needs even dimensions, so an odd side loses its last pixel row/column."""
        return self.width - self.width % 2, self.height - self.height % 2


def open_input(path: Path) -> av.container.InputContainer:
    """Open a media file, turning every way it can fail into InvalidVideoError (in the user's words:
    the file is "the video", FFmpeg's errno and the local path stay out of the message)."""
    if not path.is_file():
        raise InvalidVideoError("the video does not exist or is not a file")
    if path.stat().st_size == 0:
        raise InvalidVideoError("the video is empty (0 bytes)")
    try:
        return av.open(os.fspath(path), "r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        what = looks_like(path)
        if what is not None:
            raise InvalidVideoError(f"not a video: looks like {what}") from e
        reason = plain_reason(e) if isinstance(e, av.FFmpegError) else "its data is invalid or damaged"
        raise InvalidVideoError(f"the video cannot be read: {reason}") from e


def is_empty_packet(packet: av.Packet) -> bool:
    """A zero-length packet inside a stream (Theora's "repeat the last frame", Vorbis padding).

    Handing one to a decoder means "end of stream": it drains, and refuses every later packet, so
    a plain decode loop silently stops there. The demuxer's own end-of-stream marker (no timestamps
    at all) is not one of these: that is the flush the decoder needs.
    """
    return packet.size == 0 and (packet.pts is not None or packet.dts is not None)


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The main video stream; cover art (attached pictures) does not count as video."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    kinds = sorted({str(s.type) for s in container.streams})
    raise InvalidVideoError(f"not a video: the file has no video stream (found: {', '.join(kinds) or 'no streams'})")


def rotation_of(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Counter-clockwise degrees, a multiple of 90, from the display matrix or an old `rotate` tag.

    Rotation is applied so the output is upright, since the output carries no display matrix.
    Mirroring in a display matrix is rare and ignored.
    """
    deg = 0
    try:
        deg = int(round(frame.rotation or 0))
    except (AttributeError, ValueError):
        deg = 0
    if deg == 0:
        tag = stream.metadata.get("rotate")
        if tag and tag.lstrip("-").isdigit():
            deg = -int(tag)  # the tag is clockwise
    return int(round(deg / 90.0)) * 90 % 360


def check_limits(info: VideoInfo, limits: Limits, output_frames: int | None = None) -> None:
    """Refuse work that is too big, naming the limit (the API returns it as `error_type`)."""
    lim = limits
    _check_size(info.width, info.height, lim)
    if lim.max_duration_s is not None and info.duration_s is not None and info.duration_s > lim.max_duration_s:
        raise LimitExceededError(
            f"video is {info.duration_s:.1f} s long; the limit is {lim.max_duration_s:g} s", limit="duration_limit"
        )
    if lim.max_frames is not None and info.frame_count > lim.max_frames:
        raise LimitExceededError(
            f"video has {info.frame_count} frames; the limit is {lim.max_frames}", limit="frame_limit"
        )
    if lim.max_output_frames is not None and output_frames is not None and output_frames > lim.max_output_frames:
        raise LimitExceededError(
            f"the output would have {output_frames} frames; the limit is {lim.max_output_frames}",
            limit="output_limit",
        )


def _check_size(width: int, height: int, limits: Limits) -> None:
    """Orientation-free when both limits are set; a single limit applies to its own axis."""
    too_big = False
    if limits.max_width is not None and limits.max_height is not None:
        long_limit, short_limit = max(limits.max_width, limits.max_height), min(limits.max_width, limits.max_height)
        too_big = max(width, height) > long_limit or min(width, height) > short_limit
    elif limits.max_width is not None:
        too_big = width > limits.max_width
    elif limits.max_height is not None:
        too_big = height > limits.max_height
    if too_big:
        raise LimitExceededError(
            f"video is {width}x{height}; the limit is {limits.max_width or 'any'}x{limits.max_height or 'any'}",
            limit="resolution_limit",
        )


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _first_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> av.VideoFrame:
    """Decode the first frame; a stream with no packets at all has too few frames, one whose
    packets do not decode is broken. Empty packets and a damaged packet before the first good
    frame are skipped, as decoding does later."""
    packets = 0
    error: av.FFmpegError | None = None
    try:
        for packet in container.demux(stream):
            if is_empty_packet(packet):
                continue
            packets += packet.size > 0
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                error = e
                continue
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    return frame
    except av.FFmpegError as e:
        error = e
    if packets == 0 and not stream.frames:
        raise TooFewFramesError("the video stream has no frames; at least two are needed to interpolate")
    if error is not None:
        if is_animated_webp(Path(container.name)):
            raise InvalidVideoError(
                "animated WebP cannot be decoded here (FFmpeg decodes still WebP only): convert it to GIF, APNG or MP4"
            ) from error
        raise InvalidVideoError(f"the video cannot be decoded: {plain_reason(error)}") from error
    raise InvalidVideoError("the video has no decodable frame; the file may be truncated or corrupt")


def _audio_info(container: av.container.InputContainer) -> AudioInfo | None:
    for s in container.streams.audio:
        ctx = s.codec_context
        duration = _seconds(s.duration, s.time_base)
        start = _seconds(s.start_time, s.time_base) or 0.0
        return AudioInfo(s.index, ctx.name, ctx.sample_rate or 0, duration, start)
    return None


def _hdr_of(frame: av.VideoFrame) -> HdrMetadata | None:
    """HDR10 side data of a decoded frame (HEVC and AV1 repeat it on key frames; the first has it)."""
    found: dict[str, bytes] = {}
    for sd in cast(Any, frame.side_data):  # iterating yields the SideData entries (the stubs say keys)
        name = getattr(sd.type, "name", str(sd.type))
        if name in ("MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"):
            found[name] = bytes(sd)
    return HdrMetadata.from_side_data(found.get("MASTERING_DISPLAY_METADATA"), found.get("CONTENT_LIGHT_LEVEL"))


def _container_metadata(container: av.container.InputContainer) -> ContainerMetadata:
    """Tags and chapters are a courtesy: odd ones (undecodable text, broken chapter tables) never fail a job."""
    try:
        return ContainerMetadata.read(container)
    except Exception:
        return ContainerMetadata()


def scan_times(path: Path, stream_index: int) -> tuple[list[Fraction], int, int]:
    """The presentation times of every frame-carrying packet of the stream, sorted, how many packets
    had none, and how many an edit list discards. Demuxing only (no decoding): a few ms per thousand frames, and it reads the truth where
    headers can lie. Sorting undoes B-frame order (including the out-of-order timestamps of packed
    MPEG-4 in AVI); packets an edit list discards are left out, as the decoder drops their frames."""
    times: list[Fraction] = []
    missing = discarded = 0
    with open_input(path) as container:
        stream = container.streams[stream_index]
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.is_discard:
                    discarded += 1
                    continue
                ts = packet.pts if packet.pts is not None else None
                if ts is None or packet.time_base is None:
                    missing += 1
                    continue
                times.append(Fraction(ts) * Fraction(packet.time_base))
        except av.FFmpegError:
            pass  # a damaged tail: the frames before it still count (decode reports the damage)
    times.sort()
    return times, missing, discarded


def _timing(info_fps: Fraction, declared: int, duration: float | None, times: list[Fraction], missing: int,
            first_time: Fraction | None, warn: Callable[[str], None]) -> InputTiming:
    """Classify the input's timing; warn where it is not what the header says (the pipeline logs the rest)."""
    if missing and (len(times) < 2 or missing > len(times)):
        warn(f"the input's frames carry no usable timestamps: timing them at the nominal rate {info_fps} "
             f"({float(info_fps):.3f} fps)")
        return InputTiming(True, info_fps, len(times) + missing, Fraction(max(len(times) + missing - 1, 0)) / info_fps,
                           nominal=True)
    if first_time is not None:
        times = [t for t in times if t >= first_time]  # packets before the first shown frame (edit lists)
    timing = classify_times(times, info_fps, declared, duration)
    if timing.nominal:
        warn(f"the input's timestamps do not advance: timing the frames at the nominal rate {info_fps} "
             f"({float(info_fps):.3f} fps)")
    elif timing.overruled:
        warn(f"header overruled: {timing.overruled}")
    return timing


def probe(path: str | os.PathLike[str], limits: Limits, log: LogFn | None = None) -> VideoInfo:
    """Probe `path`; raise InvalidVideoError, TooFewFramesError or LimitExceededError as early as possible."""
    path = Path(path)
    warn = (lambda msg: log("WARN", msg)) if log else (lambda msg: None)
    declared = y4m_size(path)  # FFmpeg refuses an absurd Y4M size itself, with an unrelated errno
    if declared is not None:
        _check_size(*declared, limits)
    with open_input(path) as container:
        stream = video_stream(container)
        ctx = stream.codec_context
        # Before decoding anything, as a header can declare a frame far too large to allocate. Only
        # the orientation-free check is safe before the rotation is known; the rest follows below.
        if ctx.width > 0 and ctx.height > 0 and limits.max_width is not None and limits.max_height is not None:
            _check_size(ctx.width, ctx.height, limits)

        duration = _seconds(stream.duration, stream.time_base)
        if duration is None and container.duration:
            duration = container.duration / av.time_base
        declared_frames = stream.frames or 0
        if stream.average_rate is None and stream.base_rate is None and not (declared_frames and duration):
            warn("the input does not state its frame rate; assuming 25 fps")
        fps, _ = pick_input_rate(stream.average_rate, stream.base_rate, declared_frames, duration)
        stream_index = stream.index
        if declared_frames:
            frame_count = declared_frames
        elif duration:
            frame_count = max(1, round(duration * fps))
        else:
            frame_count = 0
        if declared_frames == 1:
            raise TooFewFramesError("video has a single frame; at least two are needed to interpolate")

        stream.thread_type = "AUTO"
        first = _first_frame(container, stream)
        rotation = rotation_of(first, stream)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        first_time = Fraction(first.pts) * Fraction(first.time_base) if first.pts is not None and first.time_base else None
        start_s = float(first_time) if first_time is not None else 0.0
        fmt = first.format
        bit_depth = max((c.bits for c in fmt.components), default=8)

        info = VideoInfo(
            path=path,
            stream_index=stream.index,
            codec=ctx.name,
            coded_width=first.width,
            coded_height=first.height,
            rotation=rotation,
            width=w,
            height=h,
            pix_fmt=fmt.name,
            bit_depth=bit_depth,
            fps=fps,
            variable_rate=False,
            frame_count=frame_count,
            duration_s=duration,
            start_s=start_s,
            color_range=int(first.color_range or ctx.color_range or 0),
            colorspace=int(first.colorspace or ctx.colorspace or 2),
            color_primaries=int(first.color_primaries or ctx.color_primaries or 2),
            color_trc=int(first.color_trc or ctx.color_trc or 2),
            audio=_audio_info(container),
            hdr=_hdr_of(first),
            container_metadata=_container_metadata(container),
            start_time=first_time,
        )
    if w < 2 or h < 2:
        raise InvalidVideoError(f"video is {w}x{h}; frames must be at least 2x2")
    check_limits(info, limits)  # before reading the whole file: a request that is too large fails at once
    times, missing, discarded = scan_times(path, stream_index)
    # The header counts the frames an edit list hides; those are not a contradiction.
    timing = _timing(fps, max(declared_frames - discarded, 0), duration, times, missing, first_time, warn)
    if discarded and declared_frames:
        info = replace(info, frame_count=max(declared_frames - discarded, 0))
    if not info.frame_count and timing.frames:
        info = replace(info, frame_count=timing.frames)  # counted where the container does not say
    if timing.overruled:
        info = replace(info, fps=timing.fps, frame_count=timing.frames, variable_rate=not timing.constant,
                       timing=timing)
    elif not timing.constant:
        warn(
            f"variable frame rate input (average {float(timing.fps):.3f} fps, nominal {float(fps):.3f} fps): "
            f"every frame is placed by its own timestamp"
        )
        info = replace(info, fps=timing.fps, variable_rate=True, timing=timing)
    else:
        info = replace(info, fps=timing.fps, timing=timing)
    check_limits(info, limits)
    return info
