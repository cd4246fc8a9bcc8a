"""Decode an input into upright, even-sized RGB frames, one at a time.

Every frame leaves here as a C-contiguous uint8 (H, W, 3) RGB array in display orientation, the
model's input format, or uint16 (`deep`) for a >8-bit input whose output keeps 10 bits, so no 8-bit
step loses its levels: 10-bit and full-range sources are converted with their own range and matrix,
the display rotation is applied, and an odd width or height loses its last column or row so the
yuv420p output can hold it (cropping one pixel keeps every other pixel untouched; scaling would
blur the whole frame).

Real-world files are decoded tolerantly: a zero-length packet (Theora's "repeat the last frame")
is skipped instead of being handed to the decoder, which would take it for the end of the stream
and refuse everything after it; a corrupt packet is skipped; a file that ends early (an
interrupted download) gives the frames it has. Each is counted and reported in `DecodeStats` and
one WARN line, in the user's words. A file whose video cannot be decoded at all was already
refused by the probe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from rife_core.errors import InvalidVideoError, LimitExceededError
from rife_core.video.probe import VideoInfo, is_empty_packet, open_input
from rife_core.video.sniff import plain_reason
from rife_core.video.timing import output_frame_count

LogFn = Callable[[str, str], None]

# Off by more than this fraction of a frame interval, a timestamp means the rate is not constant.
_VFR_TOLERANCE = 0.25


@dataclass
class DecodeStats:
    """What decoding had to work around; filled in as `decode_frames` goes."""

    frames: int = 0
    empty_packets: int = 0  # zero-length packets skipped
    bad_packets: int = 0  # packets the decoder refused, skipped
    truncated: bool = False  # the input ended (or broke off) before the frames its header announces


def _to_rgb(frame: av.VideoFrame, info: VideoInfo, deep: bool = False) -> np.ndarray:
    full_range = frame.color_range == 2 or frame.format.name.startswith("yuvj")
    rgb = frame.to_ndarray(
        format="rgb48le" if deep else "rgb24",
        # A mid-stream size change is scaled back to the size the job was planned for.
        width=info.coded_width,
        height=info.coded_height,
        src_color_range="JPEG" if full_range else "MPEG",
    )
    if info.rotation:
        rgb = np.rot90(rgb, k=info.rotation // 90)  # both counter-clockwise
    ew, eh = info.even_size
    return np.ascontiguousarray(rgb[:eh, :ew])


def decode_frames(
    info: VideoInfo,
    *,
    max_frames: int | None = None,
    max_output_frames: int | None = None,
    num_frames: int = 1,
    loop: bool = False,
    log: LogFn | None = None,
    stats: DecodeStats | None = None,
    deep: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the frames of `info.path` in presentation order (uint16 RGB with `deep`).

    The probe's frame count is only an estimate for some containers, so the frame and output
    limits are enforced here too, as frames arrive. `stats`, when given, is filled in with what
    was skipped and whether the input looks truncated.
    """
    stats = stats if stats is not None else DecodeStats()
    warned_vfr = info.variable_rate
    last_time: float | None = None
    interval = 1 / float(info.fps)
    count = 0
    skipped = 0
    broke_off: str | None = None
    with open_input(info.path) as container:
        stream = next(s for s in container.streams.video if s.index == info.stream_index)
        stream.thread_type = "AUTO"
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:  # the container itself is damaged past this point
                if count == 0:
                    raise InvalidVideoError(f"the video cannot be read: {plain_reason(e)}") from e
                broke_off = plain_reason(e)
                break
            if is_empty_packet(packet):
                stats.empty_packets += 1
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError:
                skipped += 1
                stats.bad_packets = skipped
                continue
            for frame in frames:
                if not isinstance(frame, av.VideoFrame):
                    continue
                t = frame.time
                if t is not None and last_time is not None and not warned_vfr:
                    if abs((t - last_time) / interval - 1) > _VFR_TOLERANCE:
                        warned_vfr = True
                        if log:
                            log(
                                "WARN",
                                f"variable frame rate input: frame {count} comes {t - last_time:.4f} s after "
                                f"the previous one; frames are kept in order and timed at the average rate "
                                f"{info.fps} ({float(info.fps):.3f} fps)",
                            )
                if t is not None:
                    last_time = t
                count += 1
                stats.frames = count
                if max_frames is not None and count > max_frames:
                    raise LimitExceededError(
                        f"video has more than {max_frames} frames (the limit)", limit="frame_limit"
                    )
                outputs = output_frame_count(count, num_frames, loop)
                if max_output_frames is not None and outputs > max_output_frames:
                    raise LimitExceededError(
                        f"the output would have more than {max_output_frames} frames (the limit)",
                        limit="output_limit",
                    )
                yield _to_rgb(frame, info, deep)
    _report(info, stats, broke_off, log)


def _report(info: VideoInfo, stats: DecodeStats, broke_off: str | None, log: LogFn | None) -> None:
    """One WARN line per kind of trouble, with what was recovered."""
    count = stats.frames
    announced = info.frame_count
    # Empty packets are frames the header counts (repeats), so they count as arrived here.
    if broke_off is not None or (announced and _short(announced, count + stats.empty_packets)):
        stats.truncated = True
    if log is None:
        return
    if stats.empty_packets:
        log("INFO", f"{stats.empty_packets} empty packet(s) in the video stream skipped (repeated frames)")
    if stats.bad_packets:
        log("WARN", f"{stats.bad_packets} damaged packet(s) in the video stream skipped; the video may show a jump there")
    if stats.truncated:
        fps = float(info.fps)
        of = f" of about {announced} ({announced / fps:.2f} s)" if announced > count else ""
        why = f" ({broke_off})" if broke_off else ""
        log(
            "WARN",
            f"the video looks truncated{why}: recovered {count} frames ({count / fps:.2f} s){of}; "
            f"the output covers only the recovered part",
        )


def _short(announced: int, count: int) -> bool:
    """The header announces clearly more frames than came: by more than a frame and by 2 %."""
    return announced - count > max(1, 0.02 * announced)
