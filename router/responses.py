"""The protocol endpoints' fast path: the request body parsed once, the answer encoded once.

FastAPI's own body handling decodes the JSON with the standard library, then validates the
resulting dicts with pydantic, and its `JSONResponse` encodes with the standard library again;
its dependency machinery runs per call. On the proxy's hot path the endpoints instead read the
body and validate it straight from JSON bytes (`model_validate_json`, pydantic-core's parser)
and answer with orjson. A body that fails validation raises the same `RequestValidationError`
FastAPI would, so the caller sees the same 400 in its protocol (router/app.py). The OpenAPI
document still describes the body (`body_schema`), so SDK generators and the schemathesis
fuzzer see the same contract.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)

#: the models whose schemas `install_body_schemas` adds to the OpenAPI components
_BODY_MODELS: list[type[BaseModel]] = []


class JSONBytes(Response):
    """A JSON answer encoded with orjson (several times faster than the standard library)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def parse_body(request: Request, model: type[M]) -> M:
    """The request body as `model`, validated straight from its JSON bytes; a body that is not
    valid JSON or not a valid `model` raises `RequestValidationError`, as FastAPI would."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors, body=raw) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that parses `model` itself: a required JSON body."""
    if model not in _BODY_MODELS:
        _BODY_MODELS.append(model)
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def install_body_schemas(app: FastAPI) -> None:
    """Add the schemas of the bodies named with `body_schema` to the app's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        if _BODY_MODELS:
            _, schemas = models_json_schema(
                [(m, "validation") for m in _BODY_MODELS],
                ref_template="#/components/schemas/{model}",
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schemas.get("$defs", {}).items():
                components.setdefault(name, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
