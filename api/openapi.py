"""The OpenAPI document served at `/openapi.json`.

Litestar documents the routes and response models. The submit and run routes read their raw body
(to report every validation problem at once, see `api.validation`), so their request body is
added here from msgspec's schema of `VideoInput`: the same struct the validator walks, so the
documented fields, defaults, ranges and descriptions are the enforced ones.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Litestar

from api.models import ValidationErrorBody, VideoInput

BODY_OPERATIONS = ("submit", "run")
_REF = "#/components/schemas/{name}"


def openapi_document(app: Litestar) -> dict[str, Any]:
    cached = app.state.get("openapi_document")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    document = copy.deepcopy(app.openapi_schema.to_schema())
    (input_schema, error_schema), components = msgspec.json.schema_components([VideoInput, ValidationErrorBody], ref_template=_REF)
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or operation.get("operationId") not in BODY_OPERATIONS:
                continue
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": input_schema}}}
            operation.setdefault("responses", {})["422"] = {
                "description": "The body is invalid: one `detail` item per problem.",
                "content": {"application/json": {"schema": error_schema}},
            }
    app.state["openapi_document"] = document
    return document
