"""The public request and response bodies of `fal-ai/rife/video`, as msgspec structs.

`VideoInput` is the single source of the request's fields, defaults, ranges and descriptions: the
validator (`api.validation`) walks its type info, and the OpenAPI document is generated from it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

ENDPOINT_ID = "fal-ai/rife/video"


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

    def to_arguments(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class File(msgspec.Struct):
    url: Annotated[str, Meta(description="Where the file can be downloaded (an expiring URL).")]
    content_type: Annotated[str, Meta(description="MIME type of the file.")]
    file_name: Annotated[str, Meta(description="Name of the file.")]
    file_size: Annotated[int, Meta(description="Size of the file in bytes.")]


class MediaSummary(msgspec.Struct, kw_only=True):
    """Frame counts and rates before and after (an extension: fal's clients ignore keys they do not know)."""

    output_frames: int
    output_fps: float
    output_duration_s: float | UnsetType = UNSET
    input_frames: int | UnsetType = UNSET
    input_fps: float | UnsetType = UNSET
    duration_s: Annotated[float | UnsetType, Meta(description="Duration of the input in seconds.")] = UNSET


class VideoOutput(msgspec.Struct):
    """Output of fal-ai/rife/video."""

    video: Annotated[File, Meta(description="The interpolated video (H.264 MP4).")]
    media: Annotated[MediaSummary | UnsetType, Meta(description="(extension) Frame counts and rates, input and output.")] = UNSET


LogLevel = Literal["INFO", "WARN", "ERROR", "DEBUG", "STDOUT", "STDERR"]


class LogEntry(msgspec.Struct):
    message: str
    level: LogLevel
    source: Literal["USER"]
    timestamp: Annotated[str, Meta(description="ISO 8601 time of the entry.")]


class QueueStatus(msgspec.Struct):
    """A request's status. IN_QUEUE carries `queue_position`; a failed or cancelled request ends COMPLETED with `error`."""

    status: Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    request_id: str
    response_url: str
    status_url: str
    cancel_url: str
    logs: Annotated[list[LogEntry] | None, Meta(description="Log lines; null unless asked for with `logs=1`.")] = None
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    queue_position: int | UnsetType = UNSET  # requests ahead of this one; IN_QUEUE only
    error: str | UnsetType = UNSET
    error_type: str | UnsetType = UNSET
    gateway_request_id: str | UnsetType = UNSET


class CancelStatus(msgspec.Struct):
    status: Literal["CANCELLATION_REQUESTED", "ALREADY_COMPLETED"]


class ValidationErrorItem(msgspec.Struct):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = UNSET
    ctx: dict[str, Any] | UnsetType = UNSET


class ValidationErrorBody(msgspec.Struct):
    detail: list[ValidationErrorItem]


class ErrorBody(msgspec.Struct):
    detail: str
    error_type: str | UnsetType = UNSET


class UploadedFile(msgspec.Struct):
    url: Annotated[str, Meta(description="A URL workers can fetch; pass it as `video_url`.")]
    content_type: str
    file_name: str
    file_size: int


class Health(msgspec.Struct):
    status: Literal["ok", "unavailable"]
    redis: bool
    workers: int
    queued: int


class ModelInfo(msgspec.Struct):
    name: str
    version: str
    license: str
    row: Annotated[str, Meta(description="Architecture row the weights were detected as (e.g. `4.0`, `4.25`).")] = ""
    installed: Annotated[bool, Meta(description="The weights file is present where this API looks (workers verify it by sha256 on load).")] = True


class ModelList(msgspec.Struct):
    default: str
    models: list[ModelInfo]
