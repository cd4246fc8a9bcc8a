"""What file a job writes: codec, container, quality and bit depth, and which combinations exist.

Plain data with no av or torch import, so the API can validate a request's `output` (each entry of
`OutputFormat.problems()` becomes one 422 item naming its field) and the worker can name and label
the file without loading the pipeline. The encoders behind each codec are in `rife_core.video.encode`.

The tables are the facts of the encoders PyAV's wheels carry: libvpx there is built 8-bit only (no
VP9 profile 2), ProRes (prores_ks) is always 10-bit 4:2:2, GIF and WebP are 8-bit; H.264 stays
8-bit because 10-bit H.264 (High 10) plays almost nowhere. `tests/video/test_video_formats.py`
checks these tables against the encoders' pixel formats, so an upgrade that changes them is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Codec = Literal["h264", "hevc", "av1", "vp9", "prores", "ffv1", "gif", "webp"]
Container = Literal["mp4", "mov", "mkv", "webm", "gif", "webp"]
BitDepth = Literal["auto", 8, 10]
CODECS: tuple[str, ...] = get_args(Codec)
CONTAINERS: tuple[str, ...] = get_args(Container)

# The container each codec gets when none is named: the one most players open for it.
DEFAULT_CONTAINER = {
    "h264": "mp4", "hevc": "mp4", "av1": "mp4", "vp9": "webm",
    "prores": "mov", "ffv1": "mkv", "gif": "gif", "webp": "webp",
}
# Where each codec may go. WebM is VP9/AV1 only by its spec; MP4 has no registered ProRes or FFV1 mapping.
ALLOWED_CONTAINERS = {
    "h264": ("mp4", "mov", "mkv"),
    "hevc": ("mp4", "mov", "mkv"),
    "av1": ("mp4", "mkv", "webm"),
    "vp9": ("mp4", "mkv", "webm"),
    "prores": ("mov", "mkv"),
    "ffv1": ("mkv",),
    "gif": ("gif",),
    "webp": ("webp",),
}
# Bit depths each codec can be written with here (see the module docstring).
BIT_DEPTHS = {
    "h264": (8,), "hevc": (8, 10), "av1": (8, 10), "vp9": (8,),
    "prores": (10,), "ffv1": (8, 10), "gif": (8,), "webp": (8,),
}
# `quality` per codec: (lowest, highest, default, what it means). None: the codec has no quality knob.
QUALITY = {
    "h264": (0, 51, 17, "x264 crf: lower is better, 0 is lossless"),
    "hevc": (0, 51, 20, "x265 crf: lower is better"),
    "av1": (0, 63, 30, "SVT-AV1 crf: lower is better"),
    "vp9": (0, 63, 31, "libvpx crf (constant quality): lower is better"),
    "prores": (0, 3, 3, "ProRes profile: 0 proxy, 1 LT, 2 standard, 3 HQ"),
    "ffv1": None,  # lossless
    "gif": None,  # a 256-colour palette per clip
    "webp": (0, 100, 90, "WebP quality: higher is better, 100 is the largest lossy"),
}
CONTENT_TYPES = {
    "mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska",
    "webm": "video/webm", "gif": "image/gif", "webp": "image/webp",
}
# Output path extensions the CLI understands (".m4v" and ".qt" are spellings of MP4 and MOV).
EXTENSIONS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".qt": "mov", ".mkv": "mkv",
    ".webm": "webm", ".gif": "gif", ".webp": "webp",
}
# Largest GIF this service writes: GIFs are uncompressed-ish (LZW over a palette), so a long or large
# one is tens of megabytes; past these the request is refused (limit `gif_limit`) and WebP is the answer.
GIF_MAX_SIDE = 1024
GIF_MAX_FRAMES = 1000
# SVT-AV1 hangs (never returns) on some frames with a side below 32 pixels, so such outputs are refused.
AV1_MIN_SIDE = 32


@dataclass(frozen=True)
class OutputFormat:
    """The `output` of a request. `container` None means the codec's default, `quality` None its
    default, `bit_depth` "auto" keeps the input's depth where the codec can hold it."""

    codec: str = "h264"
    container: str | None = None
    quality: int | None = None
    bit_depth: BitDepth = "auto"

    @property
    def is_default(self) -> bool:
        """Today's H.264 MP4 exactly (fal's own output)."""
        return self.codec == "h264" and self.resolved_container == "mp4" and self.quality is None

    @property
    def resolved_container(self) -> str:
        return self.container or DEFAULT_CONTAINER.get(self.codec, "mp4")

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.resolved_container]

    @property
    def extension(self) -> str:
        """File extension with its dot, e.g. ".mp4", for the result's file name."""
        return "." + self.resolved_container

    @property
    def quality_value(self) -> int | None:
        """The quality the encoder gets: the request's, else the codec's default (None: no knob)."""
        spec = QUALITY.get(self.codec)
        if spec is None:
            return None
        return spec[2] if self.quality is None else self.quality

    def output_bit_depth(self, input_bit_depth: int) -> int:
        """8 or 10: what the file will hold for an input of `input_bit_depth` bits."""
        depths = BIT_DEPTHS[self.codec]
        if self.bit_depth != "auto":
            return int(self.bit_depth)
        wanted = 10 if input_bit_depth > 8 else 8
        return wanted if wanted in depths else depths[-1] if wanted > depths[-1] else depths[0]

    def problems(self) -> list[tuple[str, str]]:
        """What is wrong with this format, as (field, message) pairs; empty when it is valid."""
        out: list[tuple[str, str]] = []
        if self.codec not in CODECS:
            return [("codec", f"unknown codec {self.codec!r}; one of {', '.join(CODECS)}")]
        if self.container is not None:
            if self.container not in CONTAINERS:
                out.append(("container", f"unknown container {self.container!r}; one of {', '.join(CONTAINERS)}"))
            elif self.container not in ALLOWED_CONTAINERS[self.codec]:
                out.append((
                    "container",
                    f"{self.codec} cannot go in {self.container}; use {' or '.join(ALLOWED_CONTAINERS[self.codec])}",
                ))
        spec = QUALITY[self.codec]
        if self.quality is not None:
            if isinstance(self.quality, bool) or not isinstance(self.quality, int):
                out.append(("quality", f"quality must be an integer, got {self.quality!r}"))
            elif spec is None:
                out.append(("quality", f"{self.codec} has no quality setting (remove `quality`)"))
            elif not spec[0] <= self.quality <= spec[1]:
                out.append(("quality", f"quality for {self.codec} must be within {spec[0]}..{spec[1]} ({spec[3]})"))
        if self.bit_depth != "auto":
            if self.bit_depth not in (8, 10) or isinstance(self.bit_depth, bool):
                out.append(("bit_depth", f"bit_depth must be 'auto', 8 or 10, got {self.bit_depth!r}"))
            elif self.bit_depth not in BIT_DEPTHS[self.codec]:
                tens = [c for c in CODECS if 10 in BIT_DEPTHS[c]]
                hint = f"use {', '.join(tens)} for 10-bit" if self.bit_depth == 10 else f"{self.codec} is always 10-bit"
                out.append(("bit_depth", f"{self.codec} cannot be written {self.bit_depth}-bit here; {hint}"))
        return out


def format_for_path(path: str, codec: str | None = None, container: str | None = None,
                    quality: int | None = None, bit_depth: BitDepth = "auto") -> OutputFormat:
    """The CLI's rule: the output path's extension picks the container unless one is named, and a
    container alone picks its usual codec (.webm -> vp9, .gif -> gif, .mov -> h264...)."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    container = container or EXTENSIONS.get(suffix)
    if codec is None:
        codec = {"webm": "vp9", "gif": "gif", "webp": "webp"}.get(container or "", "h264")
    return OutputFormat(codec=codec, container=container, quality=quality, bit_depth=bit_depth)
