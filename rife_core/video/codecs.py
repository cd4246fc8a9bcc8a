"""Which FFmpeg encoder, pixel format, options and muxer write one `OutputFormat`, and when NVENC does.

Kept apart from the Encoder (which only writes frames) so the choices are plain functions a test
can check without encoding anything. H.264 in MP4 keeps exactly the options the service always
used (libx264, yuv420p, crf, preset, +faststart).

NVENC (h264/hevc/av1 on the GPU's video engine) is used when the worker asks for it
(`VIDEO_ENCODER=nvenc`, or `auto` on a CUDA worker) and the encoder opens; data-centre GPUs without
a video engine (H100, H200) fail to open it, and then the software encoder is used with a log line.
That path cannot be exercised without such a GPU; `choose_encoder` is unit-tested with a stand-in
for "can this encoder be opened".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import cast

from rife_core.video.formats import OutputFormat
from rife_core.video.metadata import HdrMetadata

MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "gif": "gif", "webp": "webp"}
SOFTWARE = {
    "h264": "libx264", "hevc": "libx265", "av1": "libsvtav1", "vp9": "libvpx-vp9",
    "prores": "prores_ks", "ffv1": "ffv1", "gif": "gif", "webp": "libwebp_anim",
}
NVENC = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}
VIDEO_ENCODERS = ("auto", "x264", "nvenc")
# SVT-AV1 speed preset (0 slowest .. 13 fastest): 10 encodes 1080p at several times real time on a
# few cores with a modest size cost, the same kind of trade as x264's veryfast.
SVTAV1_PRESET = "10"


@dataclass(frozen=True)
class CodecPlan:
    """Everything the Encoder needs to open one output."""

    encoder: str  # FFmpeg encoder name
    pix_fmt: str
    bits: int
    muxer: str
    options: dict[str, str] = field(default_factory=dict)
    muxer_options: dict[str, str] = field(default_factory=dict)
    colour_tags: bool = True  # YUV outputs are tagged with the input's colour description

    @property
    def accepts_yuv420p_planes(self) -> bool:
        """Whether frames may arrive already converted to 8-bit yuv420p (the GPU worker's path)."""
        return self.pix_fmt == "yuv420p"


def plan_codec(output: OutputFormat, bits: int, crf: int, preset: str, hdr: HdrMetadata | None = None,
               encoder: str | None = None) -> CodecPlan:
    """The plan for `output` at `bits` (8 or 10). `crf` is the x264 crf used when the request names no
    quality (the service's CRF); `encoder` overrides the software encoder (NVENC)."""
    codec = output.codec
    container = output.resolved_container
    name = encoder or SOFTWARE[codec]
    quality = output.quality if output.quality is not None else (crf if codec == "h264" else output.quality_value)
    muxer_options = {"movflags": "+faststart"} if container in ("mp4", "mov") else {}
    deep = bits > 8
    if name.endswith("_nvenc"):
        return CodecPlan(name, "p010le" if deep else "yuv420p", bits, MUXERS[container],
                         {"preset": "p5", "rc": "vbr", "cq": str(quality), "b": "0"}, muxer_options)
    if codec == "h264":
        return CodecPlan(name, "yuv420p", 8, MUXERS[container], {"crf": str(quality), "preset": preset},
                         muxer_options)
    if codec == "hevc":
        params = ["log-level=error", *(hdr.x265_params() if hdr else [])]
        options = {"crf": str(quality), "preset": preset, "x265-params": ":".join(params)}
        if container in ("mp4", "mov"):
            options["tag"] = "hvc1"  # what Apple's players require of HEVC in MP4/MOV
        return CodecPlan(name, "yuv420p10le" if deep else "yuv420p", bits, MUXERS[container], options, muxer_options)
    if codec == "av1":
        options = {"crf": str(quality), "preset": SVTAV1_PRESET}
        if hdr:
            options["svtav1-params"] = ":".join(hdr.svtav1_params())
        return CodecPlan(name, "yuv420p10le" if deep else "yuv420p", bits, MUXERS[container], options, muxer_options)
    if codec == "vp9":
        options = {"crf": str(quality), "b": "0", "deadline": "good", "cpu-used": "5", "row-mt": "1"}
        return CodecPlan(name, "yuv420p", 8, MUXERS[container], options, muxer_options)
    if codec == "prores":
        return CodecPlan(name, "yuv422p10le", 10, MUXERS[container], {"profile": str(quality), "vendor": "apl0"},
                         muxer_options)
    if codec == "ffv1":
        # 4:4:4 so that "lossless for a next step" keeps full colour resolution.
        return CodecPlan(name, "yuv444p10le" if deep else "yuv444p", bits, MUXERS[container],
                         {"level": "3", "slicecrc": "1"}, muxer_options)
    if codec == "gif":
        return CodecPlan(name, "pal8", 8, "gif", {}, {"loop": "0"}, colour_tags=False)
    if codec == "webp":
        # libwebp converts RGB itself (its own matrix), so it gets BGRA rather than our YUV.
        return CodecPlan(name, "bgra", 8, "webp", {"quality": str(quality)}, {"loop": "0"}, colour_tags=False)
    raise ValueError(f"unknown codec {codec!r}")


def choose_encoder(codec: str, setting: str, device_type: str,
                   cannot_open: Callable[[str], str | None]) -> tuple[str | None, str | None]:
    """(NVENC encoder name or None for the software one, a log line or None).

    `setting` is VIDEO_ENCODER: `x264` never uses NVENC, `nvenc` always tries it, `auto` tries it on a
    CUDA worker only. `cannot_open(name)` returns why the encoder cannot be opened, or None when it can.
    """
    if setting not in VIDEO_ENCODERS:
        raise ValueError(f"video encoder must be one of {', '.join(VIDEO_ENCODERS)}, got {setting!r}")
    nvenc = NVENC.get(codec)
    if setting == "x264" or nvenc is None or (setting == "auto" and device_type != "cuda"):
        if setting == "nvenc" and nvenc is None:
            return None, f"encoder: {codec} has no NVENC encoder; using {SOFTWARE[codec]}"
        return None, None
    why = cannot_open(nvenc)
    if why is None:
        return nvenc, f"encoder: {nvenc} (NVENC, on the GPU)"
    return None, f"encoder: {nvenc} cannot be opened ({why}); falling back to {SOFTWARE[codec]} on the CPU"


@functools.cache
def nvenc_cannot_open(name: str) -> str | None:
    """Open `name` once on a small frame: NVENC fails here on GPUs without a video engine, with no
    driver, or when its sessions are used up. Asked once per process (a GPU does not grow a video
    engine), so a worker on an H100 does not pay for the failed open on every job."""
    import av

    try:
        ctx = cast(av.VideoCodecContext, av.CodecContext.create(name, "w"))
        ctx.width, ctx.height, ctx.pix_fmt = 256, 256, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
    except Exception as e:  # av.FFmpegError, or the codec missing from this build
        return str(e) or type(e).__name__
    return None
