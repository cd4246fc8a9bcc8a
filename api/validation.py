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


def _error(field: str | None, msg: str, type_: str, value: Any = msgspec.UNSET, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": ["body", field] if field else ["body"], "msg": msg, "type": type_}
    if value is not msgspec.UNSET:
        item["input"] = value
    if ctx:
        item["ctx"] = ctx
    return item


def _unwrap(t: mi.Type) -> mi.Type:
    return t.type if isinstance(t, mi.Metadata) else t


def _check_int(name: str, value: Any, t: mi.IntType) -> tuple[list[dict[str, Any]], Any]:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return [_error(name, "Input should be a valid integer", "int_type", value)], value
    if t.ge is not None and value < t.ge:
        return [_error(name, f"Input should be greater than or equal to {t.ge}", "greater_than_equal", value, ge=t.ge)], value
    if t.le is not None and value > t.le:
        return [_error(name, f"Input should be less than or equal to {t.le}", "less_than_equal", value, le=t.le)], value
    return [], value


def _check_str(name: str, value: Any, t: mi.StrType) -> list[dict[str, Any]]:
    if not isinstance(value, str):
        return [_error(name, "Input should be a valid string", "string_type", value)]
    if t.min_length is not None and len(value) < t.min_length:
        return [
            _error(name, f"String should have at least {t.min_length} character", "string_too_short", value, min_length=t.min_length)
        ]
    return []


def _check_field(name: str, value: Any, t: mi.Type) -> tuple[list[dict[str, Any]], Any]:
    t = _unwrap(t)
    if isinstance(t, mi.UnionType) and any(isinstance(_unwrap(u), mi.NoneType) for u in t.types):
        if value is None:
            return [], value
        (t,) = [_unwrap(u) for u in t.types if not isinstance(_unwrap(u), mi.NoneType)]
    if isinstance(t, mi.LiteralType):
        if value not in t.values:
            allowed = ", ".join(repr(v) for v in t.values)
            return [_error(name, f"Input should be {allowed}", "literal_error", value, expected=allowed)], value
        return [], value
    if isinstance(t, mi.IntType):
        return _check_int(name, value, t)
    if isinstance(t, mi.BoolType):
        if not isinstance(value, bool):
            return [_error(name, "Input should be a valid boolean", "bool_type", value)], value
        return [], value
    if isinstance(t, mi.StrType):
        return _check_str(name, value, t), value
    raise TypeError(f"VideoInput.{name}: no check for {t!r}")  # a new field type needs a branch


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
    known = {f.encode_name: f for f in info.fields}
    errors = [
        _error(name, "Extra inputs are not permitted", "extra_forbidden", value)
        for name, value in data.items()
        if name not in known
    ]
    cleaned: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            if f.required:
                errors.append(_error(name, "Field required", "missing"))
            continue
        field_errors, value = _check_field(name, data[name], f.type)
        errors += field_errors
        cleaned[name] = value
    if not errors and "video_url" in cleaned:
        errors += check_video_url(cleaned["video_url"])
    if not errors and cleaned.get("model") is not None:
        errors += check_model(cleaned["model"], known_models)
    if errors:
        raise RequestValidationError(errors)
    try:
        return msgspec.convert(cleaned, VideoInput)
    except msgspec.ValidationError as e:  # a constraint the checks above do not know yet
        raise RequestValidationError([_error(None, str(e), "value_error")]) from e
