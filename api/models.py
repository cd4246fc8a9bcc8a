"""The public response bodies of `fal-ai/rife/video` and the API's other bodies, as msgspec structs.

The request, `VideoInput`, lives in `worker.shared.video_input`: the API validates into it and the worker
runs it, so it is one type on both sides. It is re-exported here for the API's modules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from worker.shared.video_input import ENDPOINT_ID as ENDPOINT_ID
from worker.shared.video_input import VideoInput as VideoInput


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
    warnings: Annotated[
        list[str] | UnsetType,
        Meta(description="(extension) What the job had to work around, e.g. a truncated input processed as far as it "
                         "decodes; absent when nothing. fal's clients ignore it."),
    ] = UNSET
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
    installed: Annotated[bool, Meta(description="A live worker offers it (with no live worker: the weights file is on the API's host). Workers verify it by sha256 on load.")] = True
    qualities: Annotated[list[str], Meta(description="The `quality` modes this model runs: `fast`, and `best` where its row has the test-time ensemble.")] = msgspec.field(default_factory=lambda: ["fast"])
    workers: Annotated[list[str], Meta(description="The live workers that offer it; empty when no worker is live and the API's own registry answered.")] = msgspec.field(default_factory=list)


class ModelList(msgspec.Struct):
    default: str
    models: list[ModelInfo]
