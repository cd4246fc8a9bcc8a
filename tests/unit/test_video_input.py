"""The one request type: every public field reaches the pipeline (or picks the model), through Redis."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import msgspec

from api.validation import validate_video_input
from rife_core.video.formats import OutputFormat
from rife_core.video.options import InterpolationOptions, Limits
from worker.shared.video_input import MODEL_FIELDS, SOURCE_FIELDS, OutputSpec, VideoInput

# A value other than the default for every field (a new field must be added here: the test below fails until it is).
NON_DEFAULT = {
    "video_url": "https://example.com/a.mp4",
    "num_frames": 3,
    "use_scene_detection": True,
    "use_calculated_fps": False,
    "fps": 24,
    "loop": True,
    "model": "rife-4.0",
    "quality": "best",
    "target_fps": "60000/1001",
    "dedup": True,
    "output": {"codec": "hevc", "container": "mkv", "quality": 24, "bit_depth": 10},
}
# How the pipeline holds a request value, where it differs from the JSON (a rate as an exact Fraction).
AS_PIPELINE = {"target_fps": Fraction(60000, 1001)}


def test_every_field_has_a_non_default_sample():
    assert set(NON_DEFAULT) == set(VideoInput.__struct_fields__)
    defaults = msgspec.to_builtins(VideoInput(video_url="x"))
    for name, value in NON_DEFAULT.items():
        if name != "video_url":
            assert defaults.get(name) != value, name


def test_every_field_reaches_the_pipeline_through_the_stored_record():
    """API body -> validated struct -> the record's JSON -> the worker's struct -> pipeline options."""
    body = {**NON_DEFAULT, "num_frames": 1, "use_calculated_fps": True}  # target_fps excludes these two
    request = msgspec.convert(NON_DEFAULT, VideoInput)  # every field non-default (the API refuses this mix)
    validate_video_input(json.dumps(body).encode())
    stored = json.loads(json.dumps(request.to_arguments()))  # what RequestRecord writes to and reads from Redis
    back = VideoInput.from_stored(stored)
    assert back == request
    options = back.pipeline_options(limits=Limits(max_frames=7), preset="fast")
    pipeline_fields = {f.name for f in dataclasses.fields(InterpolationOptions)}
    for name, value in NON_DEFAULT.items():
        if name in SOURCE_FIELDS | MODEL_FIELDS:
            assert name not in pipeline_fields, f"{name} is handled outside the pipeline"
            continue
        assert name in pipeline_fields, f"request field {name!r} has no pipeline option"
        got = getattr(options, name)
        assert (dataclasses.asdict(got) if dataclasses.is_dataclass(got) else got) == AS_PIPELINE.get(name, value), name
    assert (options.limits.max_frames, options.preset) == (7, "fast")


def test_defaults_agree_between_request_and_pipeline():
    """fal's defaults are the pipeline's defaults: a request with only video_url is the pipeline's default run."""
    options = VideoInput(video_url="x").pipeline_options()
    default = InterpolationOptions()
    for name in set(VideoInput.__struct_fields__) - SOURCE_FIELDS - MODEL_FIELDS:
        assert getattr(options, name) == getattr(default, name), name


def test_a_record_written_before_a_field_existed_gets_its_default():
    back = VideoInput.from_stored({"video_url": "https://e.com/a.mp4", "num_frames": 2})
    assert back.num_frames == 2 and back.quality == "fast" and back.loop is False


def test_the_output_struct_has_exactly_the_pipeline_format_fields():
    assert set(OutputSpec.__struct_fields__) == {f.name for f in dataclasses.fields(OutputFormat)}
    assert VideoInput(video_url="x").output_format() == OutputFormat()


def test_stored_request_is_plain_json():
    request = msgspec.convert(NON_DEFAULT, VideoInput)
    assert msgspec.json.decode(json.dumps(request.to_arguments()), type=VideoInput) == request
