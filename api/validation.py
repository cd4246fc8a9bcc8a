"""Validating a submitted body into `VideoInput`, reporting every problem at once.

fal's clients (and their users) expect FastAPI/pydantic-shaped 422s: a `detail` list with one
`{"loc": ["body", field], "msg", "type"}` per problem. msgspec stops at the first error and words
it differently, so this walks `VideoInput`'s type info (the single source of fields, defaults and
ranges) and checks each field itself; msgspec then builds the struct from the checked values.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import inspect as mi

from api.models import VideoInput

URL_SCHEMES = ("http", "https", "data")


class RequestValidationError(Exception):
    """The body is invalid; `errors` is the 422 `detail` list."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


Loc = str | tuple[str, ...] | None  # a field, or the path to a nested one (`("output", "codec")`)


def _error(field: Loc, msg: str, type_: str, value: Any = msgspec.UNSET, **ctx: Any) -> dict[str, Any]:
    path = (field,) if isinstance(field, str) else (field or ())
    item: dict[str, Any] = {"loc": ["body", *path], "msg": msg, "type": type_}
    if value is not msgspec.UNSET:
        item["input"] = value
    if ctx:
        item["ctx"] = ctx
    return item


def _unwrap(t: mi.Type) -> mi.Type:
    return t.type if isinstance(t, mi.Metadata) else t


Checked = tuple[list[dict[str, Any]], Any]  # (errors, the value as it goes into the struct)


def _check_bounds(loc: Loc, value: float, t: mi.IntType | mi.FloatType) -> list[dict[str, Any]]:
    if t.ge is not None and value < t.ge:
        return [_error(loc, f"Input should be greater than or equal to {t.ge}", "greater_than_equal", value, ge=t.ge)]
    if t.le is not None and value > t.le:
        return [_error(loc, f"Input should be less than or equal to {t.le}", "less_than_equal", value, le=t.le)]
    return []


def _check_int(loc: Loc, value: Any, t: mi.IntType) -> Checked:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return [_error(loc, "Input should be a valid integer", "int_type", value)], value
    return _check_bounds(loc, value, t), value


def _check_float(loc: Loc, value: Any, t: mi.FloatType) -> Checked:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [_error(loc, "Input should be a valid number", "float_type", value)], value
    return _check_bounds(loc, value, t), value


def _check_str(loc: Loc, value: Any, t: mi.StrType) -> list[dict[str, Any]]:
    if not isinstance(value, str):
        return [_error(loc, "Input should be a valid string", "string_type", value)]
    if t.min_length is not None and len(value) < t.min_length:
        return [
            _error(loc, f"String should have at least {t.min_length} character", "string_too_short", value, min_length=t.min_length)
        ]
    return []


def _check_struct(loc: tuple[str, ...], data: Any, info: mi.StructType) -> Checked:
    """Every field of a (nested) struct; unknown keys and missing required ones are errors too."""
    if not isinstance(data, dict):
        return [_error(loc, "Input should be a valid dictionary", "dict_type", data)], data
    known = {f.encode_name: f for f in info.fields}
    errors = [
        _error((*loc, name), "Extra inputs are not permitted", "extra_forbidden", value)
        for name, value in data.items()
        if name not in known
    ]
    cleaned: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            if f.required:
                errors.append(_error((*loc, name), "Field required", "missing"))
            continue
        field_errors, cleaned[name] = _check_field((*loc, name), data[name], f.type)
        errors += field_errors
    return errors, cleaned


def _check_field(loc: tuple[str, ...], value: Any, t: mi.Type) -> Checked:
    t = _unwrap(t)
    if isinstance(t, mi.UnionType):
        options = [_unwrap(u) for u in t.types if not isinstance(_unwrap(u), mi.NoneType)]
        if value is None and len(options) < len(t.types):
            return [], value
        if len(options) > 1:  # e.g. a number or a string: the first kind that takes the value wins
            for option in options:
                errors, checked = _check_field(loc, value, option)
                if not errors:
                    return [], checked
            kinds = " or ".join(_KIND_NAMES.get(type(o), type(o).__name__) for o in options)
            return [_error(loc, f"Input should be {kinds}", "union_type", value)], value
        (t,) = options
    if isinstance(t, mi.LiteralType):
        if value not in t.values or isinstance(value, bool):
            allowed = ", ".join(repr(v) for v in t.values)
            return [_error(loc, f"Input should be {allowed}", "literal_error", value, expected=allowed)], value
        return [], value
    if isinstance(t, mi.IntType):
        return _check_int(loc, value, t)
    if isinstance(t, mi.FloatType):
        return _check_float(loc, value, t)
    if isinstance(t, mi.BoolType):
        if not isinstance(value, bool):
            return [_error(loc, "Input should be a valid boolean", "bool_type", value)], value
        return [], value
    if isinstance(t, mi.StrType):
        return _check_str(loc, value, t), value
    if isinstance(t, mi.StructType):
        return _check_struct(loc, value, t)
    raise TypeError(f"VideoInput.{'.'.join(loc)}: no check for {t!r}")  # a new field type needs a branch


_KIND_NAMES = {mi.IntType: "a valid integer", mi.FloatType: "a valid number", mi.StrType: "a valid string",
               mi.BoolType: "a valid boolean", mi.StructType: "a valid dictionary"}


def check_video_url(url: str) -> list[dict[str, Any]]:
    """Only http(s) URLs with a host, or data: URIs, can be fetched."""
    if url.startswith("data:"):
        if "," not in url:
            return [_error("video_url", "Invalid data: URI (no comma)", "value_error", url[:64])]
        return []
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as e:  # e.g. an unclosed IPv6 bracket
        return [_error("video_url", f"Input should be a valid URL, {e}", "url_parsing", url[:200])]
    if parts.scheme not in URL_SCHEMES:
        shown = url if len(url) < 200 else url[:200] + "..."
        return [_error("video_url", "URL scheme should be 'http', 'https' or 'data'", "url_scheme", shown, expected_schemes="'http', 'https' or 'data'")]
    if not host:
        return [_error("video_url", "Input should be a valid URL, empty host", "url_parsing", url[:200])]
    return []


def check_target_fps(cleaned: dict[str, Any]) -> list[dict[str, Any]]:
    """`target_fps` is a rate in 1..240 and replaces fal's rate fields: asking for both is a contradiction."""
    from rife_core.video.timing import parse_rate  # plain arithmetic: no torch, no av

    value = cleaned["target_fps"]
    try:
        parse_rate(value)
    except ValueError as e:
        return [_error("target_fps", str(e)[0].upper() + str(e)[1:], "value_error", value)]
    defaults = VideoInput(video_url="x")
    errors = []
    for name in ("num_frames", "use_calculated_fps"):
        if name in cleaned and cleaned[name] != getattr(defaults, name):
            msg = f"`{name}` plays no part when `target_fps` is set: remove one of `target_fps` and `{name}`"
            errors += [_error(field, msg, "conflicting_fields", cleaned[field]) for field in ("target_fps", name)]
    return errors


def _local_models() -> list[str]:
    from rife_core.weights import list_models  # the registry only: never imports torch

    return [m.name for m in list_models()]


def check_model(name: str, known_models: Callable[[], list[str]] = _local_models) -> list[dict[str, Any]]:
    """A model must be one the service can run; the message lists them so the client can pick one."""
    known = known_models()
    if name in known:
        return []
    return [_error("model", f"Unknown model {name!r}; installed models: {', '.join(known)}", "model_unknown", name,
                   installed=known)]


def validate_video_input(body: bytes, known_models: Callable[[], list[str]] = _local_models) -> VideoInput:
    """Parse and check a submit body; raises RequestValidationError listing every problem.

    `known_models` names the models a request may ask for (asked only when it names one): the API
    passes what the live workers offer (`Services.offered_models`)."""
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError) as e:  # RecursionError: absurdly nested arrays
        raise RequestValidationError([_error(None, f"JSON decode error: {e}", "json_invalid")]) from e
    if not isinstance(data, dict):
        raise RequestValidationError([_error(None, "Input should be a valid dictionary", "dict_type", data)])

    info = mi.type_info(VideoInput)
    assert isinstance(info, mi.StructType)
    errors, cleaned = _check_struct((), data, info)
    if not errors and "video_url" in cleaned:
        errors += check_video_url(cleaned["video_url"])
    if not errors and cleaned.get("target_fps") is not None:
        errors += check_target_fps(cleaned)
    if not errors and cleaned.get("model") is not None:
        errors += check_model(cleaned["model"], known_models)
    if errors:
        raise RequestValidationError(errors)
    try:
        video_input = msgspec.convert(cleaned, VideoInput)
    except msgspec.ValidationError as e:  # a constraint the checks above do not know yet
        raise RequestValidationError([_error(None, str(e), "value_error")]) from e
    errors = [_error(("output", name), msg, "output_unsupported", (cleaned.get("output") or {}).get(name))
              for name, msg in video_input.output_format().problems()]
    if errors:
        raise RequestValidationError(errors)
    return video_input
