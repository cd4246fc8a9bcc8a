"""The data that goes into and comes out of `interpolate_video`.

Plain dataclasses with no torch or av import, so the worker and the API can build options and read
results without pulling in the pipeline's heavy dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from rife_core.video.formats import OutputFormat
from rife_core.video.timing import parse_rate

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def default_preset(device_type: str) -> str:
    """The x264 preset a job gets unless it names one. On a GPU worker x264 on the CPU is what limits the
    output rate: at 1080p, n = 1, on 16 cores, `superfast` made 157 output frames/s and `veryfast` 117
    (bench/RESULTS.md), for about twice the bitrate at the same crf. On a CPU worker the model takes
    nearly all the time, so the smaller files of `veryfast` cost nothing noticeable."""
    return "superfast" if device_type == "cuda" else "veryfast"


@dataclass(frozen=True)
class Limits:
    """What one job may cost; `None` switches a limit off.

    Checked when the input is probed, before any inference, so a request that is too large fails in
    a second instead of after minutes of work. Width and height are compared orientation-free
    (the longer side against the larger limit, the shorter against the smaller), so a portrait
    2160x3840 phone video passes a 3840x2160 limit.
    """

    max_duration_s: float | None = 600.0
    max_frames: int | None = 20_000
    max_width: int | None = 3840
    max_height: int | None = 2160
    max_output_frames: int | None = 100_000


@dataclass(frozen=True)
class InterpolationOptions:
    """One request, in the terms of the public fal-ai/rife/video API (plus local-only knobs).

    `num_frames` new frames go between every pair of input frames. `fps` is only used when
    `use_calculated_fps` is false; then the same frames are retimed to that rate. `frames_dir`
    additionally writes every output frame as a lossless PNG (tests, debugging). `batch_size` is
    how many frame pairs go to the model per call. `preset` is x264's speed/size trade-off (a faster
    preset writes bigger files at the same crf); None picks `default_preset(device)`.
    `yuv_on_model_device` converts output frames to yuv420p on the model's device instead of with
    swscale on the CPU; None (default) does so exactly when the model runs on CUDA, where the CPU's
    time is better spent on x264.
    `output` is the codec / container / quality / bit depth of the file (default: H.264 in MP4, with
    `crf`); `video_encoder` is the worker's VIDEO_ENCODER (`auto` uses NVENC on a CUDA worker where it
    opens, `nvenc` tries it anywhere, `x264` never); `keep_location_metadata` keeps the input's
    GPS/location tags, which are dropped by default.

    `target_fps` (an extension to fal's API) makes the output exactly that rate with the input's
    duration, every frame placed by time (up or down: 23.976 -> 60, 60 -> 24); `num_frames`,
    `use_calculated_fps` and `fps` then play no part. `dedup` drops input frames that repeat their
    predecessor (animation on twos, stalled captures) before interpolation, so their slots are
    interpolated between the distinct frames at their true times.

    `encode_segments` is how many encoders write consecutive chunks of the output at once (each
    chunk starts with a key frame; the chunks are joined by stream copy): x264 gains far more from
    several instances than from more threads in one. 0 picks by the CPU count
    (`rife_core.video.chunks.encoder_count`); 1 is one encoder, as before.
    """

    num_frames: int = 1
    use_scene_detection: bool = False
    use_calculated_fps: bool = True
    fps: float = 8
    loop: bool = False
    crf: int = 17
    preset: str | None = None
    frames_dir: Path | None = None
    batch_size: int = 4
    yuv_on_model_device: bool | None = None
    limits: Limits = field(default_factory=Limits)
    output: OutputFormat = field(default_factory=OutputFormat)
    video_encoder: str = "auto"
    keep_location_metadata: bool = False
    target_fps: Fraction | None = None
    dedup: bool = False
    encode_segments: int = 1

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.encode_segments < 0:
            raise ValueError(f"encode_segments must be >= 0 (0: by CPU count), got {self.encode_segments}")
        if self.preset is not None and self.preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be within 0..51, got {self.crf}")
        if not self.use_calculated_fps and not self.fps > 0 and self.target_fps is None:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        problems = self.output.problems()
        if problems:
            raise ValueError("; ".join(f"output.{name}: {message}" for name, message in problems))
        if self.video_encoder not in ("auto", "x264", "nvenc"):
            raise ValueError(f"video_encoder must be auto, x264 or nvenc, got {self.video_encoder!r}")
        if self.target_fps is not None:
            object.__setattr__(self, "target_fps", parse_rate(self.target_fps))


@dataclass(frozen=True)
class Progress:
    """A snapshot of a running job. Frame counts are output frames (what the client will get)."""

    frames_done: int
    frames_total: int
    fps: float  # output frames per second so far
    elapsed_s: float
    decode_s: float
    inference_s: float
    encode_s: float


@dataclass(frozen=True)
class VideoResult:
    """What a finished job produced, with exact rates.

    `scene_cuts` holds every input frame index i such that a cut lies between frame i-1 and i.
    With `loop`, a cut between the last frame and the first is reported as 0 (frame -1 being the
    last frame, cyclically). `warnings` holds the job's WARN lines (a truncated input, damaged
    packets skipped, audio dropped...), so a client sees them in the result, not only in the logs.
    `timing` is how the input's frames were placed in time: "constant", "variable", "header
    overruled" or "nominal" (no usable timestamps). Of the output frames,
    `generated_frames` are not an input frame at its own time (model-made, or a real frame repeated
    across a cut or past the end); `kept_frames` input frames appear at their own time and
    `dropped_frames` do not (repeats removed by `dedup`, frames between output times when going down).
    """

    output_path: Path
    input_frames: int
    input_fps: Fraction
    output_frames: int
    output_fps: Fraction
    width: int  # of the output, after rotation and the crop to even size
    height: int
    audio_kept: bool
    scene_cuts: list[int]
    wall_s: float
    inference_s: float
    warnings: list[str] = field(default_factory=list)
    content_type: str = "video/mp4"  # of the container written, for the response and the upload
    file_extension: str = ".mp4"  # with its dot, for the result's file name
    bit_depth: int = 8  # of the output's video
    timing: str = "constant"
    generated_frames: int = 0
    kept_frames: int = 0
    dropped_frames: int = 0
    # For one segment of a split job (rife_core.video.segments): its first frame's number in the
    # whole output, and how many output intervals the last frame of the whole output lasts.
    first_output_frame: int = 0
    last_frame_ticks: int = 1

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (rates as "a/b" strings): a segment's result travels to the job that joins it."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, (Fraction, Path)) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VideoResult:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["output_path"] = Path(values["output_path"])
        for name in ("input_fps", "output_fps"):
            values[name] = Fraction(values[name])
        values["scene_cuts"] = list(values.get("scene_cuts", []))
        values["warnings"] = list(values.get("warnings", []))
        return cls(**values)


@dataclass(frozen=True)
class Segment:
    """One segment of a split job: the output frames numbered `out_start` <= k < `out_end` (None: to
    the end of the job, with `loop`'s wrap pair and the frames held past the last input frame).

    `first` is the input frame shown as output frame `out_start` (a key frame) and `end` the next
    segment's `first`; `start_s` / `end_s` are their times from the first frame, for logs."""

    index: int
    count: int
    first: int
    end: int | None
    start_s: float
    end_s: float | None
    out_start: int
    out_end: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})
