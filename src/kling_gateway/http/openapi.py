"""OpenAPI documentation for the Kling routes: request schema and examples for /docs.

Bodies are parsed by hand on the hot path (orjson + the pure domain validator), so FastAPI cannot
infer the schema; it is written out here once instead.
"""

from __future__ import annotations

from typing import Any

from . import openapi_responses as R

_STR = {"type": "string"}

TEXT2VIDEO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model_name": {
            "type": "string",
            "default": "kling-v1",
            "description": "Public model name; mapped to an upstream model by the operator",
        },
        "prompt": {"type": "string", "maxLength": 2500},
        "negative_prompt": {"type": "string", "maxLength": 2500},
        "cfg_scale": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "kling-v1.x only",
        },
        "mode": {"type": "string", "enum": ["std", "pro", "4k"], "default": "std"},
        "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1"], "default": "16:9"},
        "duration": {
            "oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer"}],
            "default": "5",
            "description": (
                "Seconds; allowed values depend on the model (5/10, or 3–15 on kling-v3)"
            ),
        },
        "sound": {"type": "string", "enum": ["on", "off"], "default": "off"},
        "multi_shot": {"type": "boolean", "default": False},
        "shot_type": {"type": "string", "enum": ["customize", "intelligence"]},
        "multi_prompt": {
            "type": "array",
            "minItems": 1,
            "maxItems": 6,
            "items": {
                "type": "object",
                "required": ["index", "prompt", "duration"],
                "properties": {
                    "index": {"type": "integer"},
                    "prompt": {"type": "string", "maxLength": 512},
                    "duration": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                },
            },
        },
        "voice_list": {
            "type": "array",
            "maxItems": 2,
            "items": {"type": "object", "required": ["voice_id"], "properties": {"voice_id": _STR}},
        },
        "camera_control": {
            "type": "object",
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "simple",
                        "down_back",
                        "forward_up",
                        "right_turn_forward",
                        "left_turn_forward",
                    ],
                },
                "config": {
                    "type": "object",
                    "properties": {
                        k: {"type": "number", "minimum": -10, "maximum": 10}
                        for k in ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
                    },
                },
            },
        },
        "watermark_info": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
        "callback_url": {"type": "string", "format": "uri", "description": "Kept by the gateway"},
        "external_task_id": {"type": "string", "maxLength": 64, "description": "Unique per user"},
    },
    "additionalProperties": True,
}

CREATE_EXAMPLES: dict[str, Any] = {
    "minimal": {
        "value": {"model_name": "kling-v2-6", "prompt": "A red fox trotting through fresh snow"}
    },
    "with_sound": {
        "value": {
            "model_name": "kling-v2-6",
            "prompt": "Waves crash on rocks, seagulls call overhead",
            "mode": "pro",
            "sound": "on",
            "duration": "10",
            "external_task_id": "my-0002",
        }
    },
    "multi_shot": {
        "value": {
            "model_name": "kling-v3",
            "multi_shot": True,
            "shot_type": "customize",
            "multi_prompt": [
                {"index": 1, "prompt": "Two friends talk under a streetlight", "duration": "4"},
                {"index": 2, "prompt": "A runner sprints through a forest", "duration": "6"},
            ],
            "duration": "10",
        }
    },
}

_TASK_EXAMPLE = {
    "code": 0,
    "message": "SUCCEED",
    "request_id": "9a1f3c2e-5b7d-4e21-8c3a-000000000005",
    "data": {
        "task_id": "100123456789012345",
        "task_status": "succeed",
        "task_status_msg": "",
        "task_info": {"external_task_id": "my-0001"},
        "created_at": 1781080000000,
        "updated_at": 1781080187000,
        "task_result": {
            "videos": [{"id": "3f0c9d2a", "url": "https://…/video.mp4", "duration": "5.1"}]
        },
        "watermark_info": {"enabled": False},
    },
}


def _query(
    name: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


# Security: the routes authenticate by hand (``gw.auth.authenticate``), so FastAPI cannot see it;
# the schemes are declared here so /docs' "Authorize" sends the key, and auth runs as before.
BEARER = "gatewayKey"
ADMIN = "adminToken"
SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "A gateway key (`sk-…`), or an HS256 JWT signed with your secret key",
    },
    ADMIN: {"type": "http", "scheme": "bearer", "description": "The operator's `KGW_ADMIN_TOKEN`"},
}
SECURED: dict[str, Any] = {"security": [{BEARER: []}]}
ADMIN_ONLY: dict[str, Any] = {"security": [{ADMIN: []}]}

LIST_OPENAPI: dict[str, Any] = {
    **SECURED,
    "parameters": [
        _query(
            "pageNum",
            {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
            "Page, from 1",
        ),
        _query(
            "pageSize",
            {"type": "integer", "minimum": 1, "maximum": 500, "default": 30},
            "Tasks a page",
        ),
    ],
}
_UNIX_MS = {"type": "integer", "minimum": 0, "maximum": 9_999_999_999_999_999}


def time_range(*, required: bool) -> dict[str, Any]:
    """``start_time``/``end_time`` in Unix milliseconds (money.py's ``_ms``: up to 16 digits)."""
    return {
        **SECURED,
        "parameters": [
            _query(name, _UNIX_MS, f"{what}, Unix time in milliseconds", required=required)
            for name, what in (("start_time", "From"), ("end_time", "Until"))
        ],
    }


CREATE_OPENAPI: dict[str, Any] = {
    **SECURED,
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TEXT2VIDEO_SCHEMA, "examples": CREATE_EXAMPLES}},
    },
}

CREATE_RESPONSES = R.responses(
    R.CREATED, 400, 401, 403, 413, 429, "5XX", description="Task created"
)
QUOTE_RESPONSES = R.responses(
    R.QUOTE, 400, 401, 403, 413, "5XX", description="Price of this request"
)
TASK_RESPONSES = R.responses(
    R.TASK, 401, 404, "5XX", description="Kling task object", example=_TASK_EXAMPLE
)
LIST_RESPONSES = R.responses(R.TASK_LIST, 400, *R.AUTHED, description="Your tasks, newest first")
BALANCE_RESPONSES = R.responses(R.BALANCE, *R.AUTHED, description="Credits left")
USAGE_RESPONSES = R.responses(
    R.USAGE, 400, *R.AUTHED, description="Credits charged by day and model"
)
COSTS_RESPONSES = R.responses(
    R.ACCOUNT_COSTS, 400, *R.AUTHED, description="Kling's resource-pack report"
)
SECRET_RESPONSES = R.responses(R.SECRET, *R.AUTHED, description="Your webhook signing secret")
DELIVERIES_RESPONSES = R.responses(R.DELIVERIES, 401, 404, "5XX", description="Callback deliveries")
ADMIN_RESPONSES = R.responses(R.ANY, 400, 401, 404, "5XX", description="Operator data")
RESULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The video",
        "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
    },
    302: {"description": "Mirroring was given up: the video's upstream URL (`Location`)"},
    **{k: v for k, v in R.responses(R.ANY, 403, 404, "5XX").items() if k != 200},
}
RESULT_OPENAPI: dict[str, Any] = {
    "security": [],  # the signed link is the credential
    "parameters": [
        _query(
            "expires",
            {"type": "integer", "minimum": 0},
            "From the task object's link",
            required=True,
        ),
        _query("sig", {"type": "string"}, "From the task object's link", required=True),
    ],
}


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document, completed with what the routes cannot declare through FastAPI: the
    security schemes, the 405 every documented path answers to a method it does not list, and no 422
    (a request FastAPI cannot parse is answered 400/1200 by ``envelope.on_validation_error``)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("responses", {})["MethodNotAllowed"] = R.METHOD_NOT_ALLOWED
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    found = components.get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        found.pop(unused, None)
    if "schemas" in components and not found:
        del components["schemas"]
    return schema


_HEALTH = {"type": "object", "required": ["status", "request_id"], "additionalProperties": False}


def _health(status: str) -> dict[str, Any]:
    schema = {**_HEALTH, "properties": {"status": {"const": status}, "request_id": R.STR}}
    return {"content": {"application/json": {"schema": schema}}}


HEALTHZ_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"description": "Up", **_health("ok")}}
READYZ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The database answers", **_health("ready")},
    503: {"description": "The database does not answer", **_health("unavailable")},
}
