"""What each documented route answers, per status: Kling's envelope around the route's ``data``.

Written out by hand because the routes build their answers by hand (``envelope.ok`` and
``KlingError.to_body``); tests/fuzz/test_openapi_fuzz.py holds the app to these schemas, so a field
added to an answer without its schema here fails there.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
Schema = dict[str, Any]
Responses = dict[int | str, dict[str, Any]]

STR: Schema = {"type": "string"}
_STR = STR
_INT: Schema = {"type": "integer"}
_MS: Schema = {"type": "integer", "description": "Unix time in milliseconds"}
_CREDITS: Schema = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "Credits"}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


_TASK_INFO = _object({}, {"external_task_id": _STR})
_VIDEO = _object({"id": _STR, "url": _STR}, {"watermark_url": _STR, "duration": _STR})
TASK_STATUS: Schema = {"type": "string", "enum": ["submitted", "processing", "succeed", "failed"]}

TASK: Schema = _object(
    {
        "task_id": _STR,
        "task_status": TASK_STATUS,
        "task_status_msg": _STR,
        "task_info": _TASK_INFO,
        "created_at": _MS,
        "updated_at": _MS,
        "watermark_info": _object({"enabled": {"type": "boolean"}}),
    },
    {
        "task_result": _object({"videos": {"type": "array", "items": _VIDEO}}),
        "final_unit_deduction": {"type": "string", "description": "What the task cost you"},
    },
)
CREATED: Schema = _object(
    {
        "task_id": _STR,
        "task_status": TASK_STATUS,
        "task_info": _TASK_INFO,
        "created_at": _MS,
        "updated_at": _MS,
    }
)
TASK_LIST: Schema = {"type": "array", "items": TASK}
QUOTE: Schema = _object(
    {
        "model_name": _STR,
        "mode": _STR,
        "duration": _STR,
        "sound": {"type": "string", "enum": ["on", "off"]},
        "voice_control": {"type": "boolean"},
        "credits_per_second": _CREDITS,
        "price": _CREDITS,
        "billing": {"type": "string", "enum": ["on", "off"]},
    },
    {"message": {"type": "string", "description": "Set when billing is off"}},
)
BALANCE: Schema = _object({"balance": _CREDITS, "currency": _STR})
USAGE: Schema = _object(
    {
        "total": _CREDITS,
        "items": {
            "type": "array",
            "items": _object({"day": _STR, "model_name": _STR, "tasks": _INT, "credits": _CREDITS}),
        },
    }
)
_PACK = _object(
    {
        "resource_pack_name": _STR,
        "resource_pack_id": _STR,
        "resource_pack_type": _STR,
        "total_quantity": {"type": "number"},
        "remaining_quantity": {"type": "number"},
        "purchase_time": _MS,
        "effective_time": _MS,
        "invalid_time": _MS,
        "status": {"type": "string", "enum": ["online", "runOut"]},
    }
)
ACCOUNT_COSTS: Schema = _object(
    {"code": _INT, "msg": _STR, "resource_pack_subscribe_infos": {"type": "array", "items": _PACK}}
)
SECRET: Schema = _object({"secret": {"type": "string", "pattern": "^whsec_"}})
_NULLABLE_INT: Schema = {"type": ["integer", "null"]}
_NULLABLE_STR: Schema = {"type": ["string", "null"]}
_ATTEMPT = _object(
    {
        "attempted_at": _MS,
        "status_code": _NULLABLE_INT,
        "latency_ms": _NULLABLE_INT,
        "error": _NULLABLE_STR,
    }
)
DELIVERIES: Schema = {
    "type": "array",
    "items": _object(
        {
            "delivery_id": _STR,
            "task_id": _STR,
            "task_status": _STR,
            "url": _STR,
            "status": _STR,
            "attempts": _INT,
            "next_attempt_at": _NULLABLE_INT,
            "last_status_code": _NULLABLE_INT,
            "last_error": _NULLABLE_STR,
            "created_at": _MS,
            "updated_at": _MS,
            "delivered_at": _NULLABLE_INT,
            "attempt_log": {"type": "array", "items": _ATTEMPT},
        }
    ),
}
ANY: Schema = {}  # the operator API: shapes of its own, not a client's contract


def success(data: Schema) -> Schema:
    return _object({"code": {"const": 0}, "message": _STR, "request_id": _STR, "data": data})


def error(codes: Schema) -> Schema:
    return _object({"code": codes, "message": _STR, "request_id": _STR, "data": {"type": "null"}})


def _codes(*codes: int) -> Schema:
    return {"type": "integer", "enum": list(codes)}


# Kling's codes per HTTP status (kling-api.md §5); 400, 429 and 5xx may also carry a code Kling
# answered upstream, so those say only "not 0".
_NONZERO: Schema = {"type": "integer", "not": {"const": 0}}
ERROR_CODES: dict[int | str, tuple[str, Schema]] = {
    400: ("Invalid request: `message` names the field", _NONZERO),
    401: ("Authorization missing or invalid", _codes(1000, 1001, 1002, 1003, 1004)),
    403: (
        "Not allowed (model, or a result link that is unsigned, tampered or expired)",
        _codes(1103),
    ),
    404: ("No such task, video or resource", _codes(1203)),
    405: ("This path does not take this method; `Allow` lists those it does", _codes(1202)),
    413: ("Request body over the size limit", _codes(1200)),
    429: ("Balance, rate or concurrency limit", _NONZERO),
    "5XX": ("Gateway or upstream failure (retry reads; check before retrying a create)", _NONZERO),
}


def _error_response(status: int | str) -> dict[str, Any]:
    description, codes = ERROR_CODES[status]
    return {"description": description, "content": {JSON: {"schema": error(codes)}}}


def responses(
    data: Schema, *errors: int | str, description: str = "Success", example: Any = None
) -> Responses:
    """200 with ``data`` in the envelope, then each listed error status with its envelope."""
    ok: dict[str, Any] = {"schema": success(data)}
    if example is not None:
        ok["example"] = example
    out: Responses = {200: {"description": description, "content": {JSON: ok}}}
    for status in errors:
        out[status] = _error_response(status)
    return out


# What an authenticated route can answer besides its own errors: a bad key, and a gateway failure.
AUTHED = (401, "5XX")

METHOD_NOT_ALLOWED: dict[str, Any] = {
    **_error_response(405),
    "headers": {"Allow": {"description": "The methods this path takes", "schema": _STR}},
}
