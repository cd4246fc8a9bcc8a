"""Decode an input into upright, even-sized RGB frames, one at a time.

Every frame leaves here as a C-contiguous uint8 (H, W, 3) RGB array in display orientation, the
model's input format, or uint16 (`deep`) for a >8-bit input whose output keeps 10 bits, so no 8-bit
step loses its levels: 10-bit and full-range sources are converted with their own range and matrix,
the display rotation is applied, and an odd width or height loses its last column or row so the
yuv420p output can hold it (cropping one pixel keeps every other pixel untouched; scaling would
blur the whole frame).

A corrupt packet in the middle of a file is skipped with a warning rather than failing the job;
a file whose video cannot be decoded at all was already refused by the probe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av
import numpy as np

from rife_core.errors import InvalidVideoError, LimitExceededError
from rife_core.video.probe import VideoInfo, open_input
from rife_core.video.timing import output_frame_count

LogFn = Callable[[str, str], None]

# Off by more than this fraction of a frame interval, a timestamp means the rate is not constant.
_VFR_TOLERANCE = 0.25


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
    deep: bool = False,
) -> Iterator[np.ndarray]:
    """Yield the frames of `info.path` in presentation order (uint16 RGB with `deep`).

    The probe's frame count is only an estimate for some containers, so the frame and output
    limits are enforced here too, as frames arrive.
    """
    warned_vfr = info.variable_rate
    last_time: float | None = None
    interval = 1 / float(info.fps)
    count = 0
    skipped = 0
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
                    raise InvalidVideoError(f"the input cannot be read: {e}") from e
                if log:
                    log("WARN", f"reading stopped after frame {count}: {e}; the input may be truncated")
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as e:
                skipped += 1
                if skipped == 1 and log:
                    log("WARN", f"skipping undecodable data after frame {count}: {e}")
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
    if skipped and log:
        log("WARN", f"{skipped} undecodable packet(s) skipped; the input may be damaged")
    if log and info.frame_count and count < info.frame_count - 1:
        log("WARN", f"the input ended after {count} of about {info.frame_count} frames; it may be truncated")
