from __future__ import annotations

import json

import pytest

from api.validation import RequestValidationError, validate_video_input


def errors_of(body) -> list[dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestValidationError) as e:
        validate_video_input(raw)
    return e.value.errors


def test_defaults_fill_in():
    v = validate_video_input(b'{"video_url": "https://example.com/a.mp4"}')
    assert v.to_arguments() == {
        "video_url": "https://example.com/a.mp4",
        "num_frames": 1,
        "use_scene_detection": False,
        "use_calculated_fps": True,
        "fps": 8,
        "loop": False,
        "model": None,
        "quality": "fast",
        "target_fps": None,
        "dedup": False,
        "output": None,
    }


@pytest.mark.parametrize(
    ("output", "loc", "type_"),
    [
        ({"codec": "prores", "container": "webm"}, ["body", "output", "container"], "output_unsupported"),
        ({"codec": "gif", "quality": 10}, ["body", "output", "quality"], "output_unsupported"),
        ({"codec": "h264", "quality": 52}, ["body", "output", "quality"], "output_unsupported"),
        ({"codec": "vp9", "bit_depth": 10}, ["body", "output", "bit_depth"], "output_unsupported"),
        ({"codec": "divx"}, ["body", "output", "codec"], "literal_error"),
        ({"codec": "h264", "bit_depth": 12}, ["body", "output", "bit_depth"], "literal_error"),
        ({"codec": "h264", "size": 3}, ["body", "output", "size"], "extra_forbidden"),
        ({"quality": "high"}, ["body", "output", "quality"], "int_type"),
        ("webm", ["body", "output"], "dict_type"),
    ],
)
def test_output_problems_are_422s_naming_the_nested_field(output, loc, type_):
    (err,) = errors_of({"video_url": "https://e.com/a.mp4", "output": output})
    assert (err["loc"], err["type"]) == (loc, type_), err


def test_output_is_optional_and_its_fields_default():
    v = validate_video_input(b'{"video_url": "https://e.com/a.mp4", "output": {"codec": "hevc", "bit_depth": 10}}')
    fmt = v.output_format()
    assert (fmt.codec, fmt.resolved_container, fmt.bit_depth, fmt.content_type) == ("hevc", "mp4", 10, "video/mp4")
    assert validate_video_input(b'{"video_url": "https://e.com/a.mp4", "output": null}').output is None


@pytest.mark.parametrize(("value", "expected"), [("60000/1001", "60000/1001"), (60, 60.0), (23.976, 23.976), ("25", "25")])
def test_target_fps_takes_a_number_or_a_rational_string(value, expected):
    v = validate_video_input(json.dumps({"video_url": "https://e.com/a.mp4", "target_fps": value}).encode())
    assert v.target_fps == expected and v.pipeline_options().target_fps is not None


@pytest.mark.parametrize(
    ("value", "type_", "words"),
    [(0.5, "value_error", "1..240"), (241, "value_error", "1..240"), ("60/0", "value_error", "fraction"),
     ("fast", "value_error", "fraction"), (True, "union_type", "number"), ([60], "union_type", "number")],
)
def test_a_bad_target_fps_is_a_422_naming_it(value, type_, words):
    (err,) = errors_of({"video_url": "https://e.com/a.mp4", "target_fps": value})
    assert (err["loc"], err["type"]) == (["body", "target_fps"], type_) and words in err["msg"]


@pytest.mark.parametrize(("field", "value"), [("num_frames", 3), ("use_calculated_fps", False)])
def test_target_fps_with_fal_rate_fields_is_a_422_naming_both(field, value):
    errors = errors_of({"video_url": "https://e.com/a.mp4", "target_fps": 60, field: value})
    assert sorted(e["loc"][-1] for e in errors) == sorted(["target_fps", field])
    assert all(e["type"] == "conflicting_fields" and field in e["msg"] for e in errors)
    # Their defaults, or fps (unused unless use_calculated_fps is false), are no contradiction.
    validate_video_input(json.dumps({"video_url": "https://e.com/a.mp4", "target_fps": 60, "num_frames": 1,
                                     "use_calculated_fps": True, "fps": 30}).encode())


def test_dedup_is_a_boolean():
    assert validate_video_input(b'{"video_url": "https://e.com/a.mp4", "dedup": true}').pipeline_options().dedup is True
    (err,) = errors_of({"video_url": "https://e.com/a.mp4", "dedup": "yes"})
    assert (err["loc"], err["type"]) == (["body", "dedup"], "bool_type")


def test_model_and_quality_are_optional_extras():
    v = validate_video_input(b'{"video_url": "https://e.com/a.mp4", "model": "rife-4.0", "quality": "best"}')
    assert (v.model, v.quality) == ("rife-4.0", "best")
    assert validate_video_input(b'{"video_url": "https://e.com/a.mp4", "model": null}').model is None


def test_unknown_model_is_a_422_listing_the_installed_ones():
    (err,) = errors_of({"video_url": "https://e.com/a.mp4", "model": "rife-9.9"})
    assert err["loc"] == ["body", "model"] and err["type"] == "model_unknown"
    assert "rife-4.0" in err["msg"] and "rife-9.9" in err["msg"]


@pytest.mark.parametrize("bad", ["medium", "", 1, None])
def test_quality_must_be_fast_or_best(bad):
    (err,) = errors_of({"video_url": "https://e.com/a.mp4", "quality": bad})
    assert err["loc"] == ["body", "quality"] and err["type"] == "literal_error"


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({}, ["body", "video_url"], "missing"),
        ({"video_url": "http://x/a", "num_frames": 0}, ["body", "num_frames"], "greater_than_equal"),
        ({"video_url": "http://x/a", "num_frames": 5}, ["body", "num_frames"], "less_than_equal"),
        ({"video_url": "http://x/a", "fps": 61}, ["body", "fps"], "less_than_equal"),
        ({"video_url": "http://x/a", "fps": 0}, ["body", "fps"], "greater_than_equal"),
        ({"video_url": "http://x/a", "num_frames": "2"}, ["body", "num_frames"], "int_type"),
        ({"video_url": "http://x/a", "num_frames": 1.5}, ["body", "num_frames"], "int_type"),
        ({"video_url": "http://x/a", "num_frames": True}, ["body", "num_frames"], "int_type"),
        ({"video_url": "http://x/a", "loop": "yes"}, ["body", "loop"], "bool_type"),
        ({"video_url": "http://x/a", "loop": None}, ["body", "loop"], "bool_type"),
        ({"video_url": 5}, ["body", "video_url"], "string_type"),
        ({"video_url": ""}, ["body", "video_url"], "string_too_short"),
        ({"video_url": "file:///etc/passwd"}, ["body", "video_url"], "url_scheme"),
        ({"video_url": "https:///nohost"}, ["body", "video_url"], "url_parsing"),
        ({"video_url": "data:video/mp4;base64"}, ["body", "video_url"], "value_error"),
        ({"video_url": "http://x/a", "prompt": "hi"}, ["body", "prompt"], "extra_forbidden"),
    ],
)
def test_each_problem_is_reported_with_loc_msg_type(body, loc, type_):
    errors = errors_of(body)
    assert [e["loc"] for e in errors] == [loc]
    assert errors[0]["type"] == type_ and errors[0]["msg"]


def test_every_problem_is_reported_at_once_and_unknown_fields_are_named():
    errors = errors_of({"num_frames": 9, "fps": "x", "colour": 1, "speed": 2})
    locs = {tuple(e["loc"]) for e in errors}
    assert locs == {("body", "colour"), ("body", "speed"), ("body", "video_url"), ("body", "num_frames"), ("body", "fps")}


def test_integral_float_is_an_int():
    assert validate_video_input(b'{"video_url": "http://x/a", "num_frames": 2.0}').num_frames == 2


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b'"s"'])
def test_body_must_be_a_json_object(raw):
    assert errors_of(raw)[0]["loc"] == ["body"]
