"""The one request type of `fal-ai/rife/video`: validated by the API, stored in Redis, run by the worker.

`VideoInput` is the single source of the request's fields, defaults, ranges and descriptions. The
API validates a body into it (`api.validation` walks its type info, the OpenAPI document is made
from it), the request record stores it as JSON, and the worker reads it back with `from_stored`
and turns it into the pipeline's options with `pipeline_options`. Every field that is not about
*where the video comes from* (`video_url`) or *which network runs* (`model`, `quality`) is handed
to `rife_core.video.InterpolationOptions` under its own name, so a new request field either
reaches the pipeline or fails loudly at the first job (and in tests/unit/test_video_input.py),
never silently dropped.

This module imports no torch: the API image has none, so the pipeline's options are imported only
inside `pipeline_options`, which only workers call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from rife_core.video.formats import (  # plain data: no torch, no av
    QUALITY,
    BitDepth,
    Codec,
    Container,
    OutputFormat,
)

if TYPE_CHECKING:
    from rife_core.video.options import InterpolationOptions

ENDPOINT_ID = "fal-ai/rife/video"

# Fields that choose the input or the network rather than how the pipeline treats the video.
SOURCE_FIELDS = frozenset({"video_url"})
MODEL_FIELDS = frozenset({"model", "quality"})


_QUALITY_RANGES = "; ".join(f"{codec} {lo}..{hi} (default {default}: {meaning})"
                            for codec, spec in QUALITY.items() if spec is not None
                            for lo, hi, default, meaning in [spec])


class OutputSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The file to write; the fields are those of `rife_core.video.formats.OutputFormat`."""

    codec: Annotated[
        Codec, Meta(description="Video codec. `gif` and `webp` are animated images; `prores` and `ffv1` are for editing.")
    ] = "h264"
    container: Annotated[
        Container | None,
        Meta(description="File type; default by codec: h264/hevc/av1 `mp4`, vp9 `webm`, prores `mov`, ffv1 `mkv`, gif `gif`, webp `webp`."),
    ] = None
    quality: Annotated[
        int | None, Meta(description=f"Codec quality; default by codec. {_QUALITY_RANGES}. ffv1 (lossless) and gif have none.")
    ] = None
    bit_depth: Annotated[
        BitDepth,
        Meta(description="`auto` keeps the input's depth where the codec can hold it (10-bit: hevc, av1, prores, ffv1); 8 or 10 forces it."),
    ] = "auto"


class VideoInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Input of fal-ai/rife/video."""

    video_url: Annotated[
        str,
        Meta(
            description="The video to interpolate: an http(s) URL or a `data:` URI.",
            examples=["https://example.com/clip.mp4"],
            min_length=1,
        ),
    ]
    num_frames: Annotated[
        int, Meta(ge=1, le=4, description="Frames to generate between each pair of input frames.")
    ] = 1
    use_scene_detection: Annotated[
        bool,
        Meta(description="Detect scene cuts and do not interpolate across them (the previous frame is repeated instead)."),
    ] = False
    use_calculated_fps: Annotated[
        bool,
        Meta(description="Set the output frame rate to the input's times (num_frames + 1), keeping the duration. When false, `fps` is used."),
    ] = True
    fps: Annotated[
        int, Meta(ge=1, le=60, description="Output frame rate, used only when `use_calculated_fps` is false.")
    ] = 8
    loop: Annotated[
        bool,
        Meta(description="Also interpolate from the last frame back to the first, so the output loops seamlessly."),
    ] = False
    # Beyond the hosted endpoint: optional, so fal's own requests stay valid unchanged.
    model: Annotated[
        str | None,
        Meta(description="RIFE model to use (a name from `GET /models`); default: the server's `RIFE_MODEL`."),
    ] = None
    quality: Annotated[
        Literal["fast", "best"],
        Meta(description="`best` adds RIFE's test-time ensemble where the model has one: about 1.6x the compute for higher fidelity."),
    ] = "fast"
    target_fps: Annotated[
        float | str | None,
        Meta(description="(extension) Output frame rate, 1..240: a number or a rational string such as `\"60000/1001\"`. "
                         "The output has exactly this rate and the input's duration, every frame placed by its time "
                         "(23.976 -> 60, 25 -> 50, also down: 60 -> 24). When set, `num_frames`, "
                         "`use_calculated_fps` and `fps` play no part (leave them at their defaults)."),
    ] = None
    dedup: Annotated[
        bool,
        Meta(description="(extension) Drop input frames that repeat their predecessor (animation on twos or threes, "
                         "screen recordings, stalled captures) and fill their slots by interpolation at their true "
                         "times. Scene cuts still win."),
    ] = False
    output: Annotated[
        OutputSpec | None,
        Meta(description="(extension) The file to write: codec, container, quality, bit depth. Absent: H.264 in MP4, as fal's endpoint writes."),
    ] = None

    def to_arguments(self) -> dict[str, Any]:
        """The request as the record stores it (plain JSON types)."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    @classmethod
    def from_stored(cls, arguments: dict[str, Any]) -> VideoInput:
        """The request back from its record; a record written before a field existed gets its default."""
        return msgspec.convert(arguments, cls)

    def pipeline_options(self, **local: Any) -> InterpolationOptions:
        """The pipeline's options for this request, plus the worker's own knobs (`limits`, `preset`...)."""
        from rife_core.video.options import InterpolationOptions

        shared = {name: getattr(self, name) for name in self.__struct_fields__ if name not in SOURCE_FIELDS | MODEL_FIELDS}
        shared["output"] = self.output_format()  # the pipeline's own type for the nested struct
        return InterpolationOptions(**shared, **local)

    def output_format(self) -> OutputFormat:
        """`output` as the pipeline's OutputFormat (absent: the default H.264 MP4); `.problems()` lists the
        combinations the encoders cannot write (e.g. prores in webm)."""
        return OutputFormat(**msgspec.structs.asdict(self.output)) if self.output is not None else OutputFormat()
