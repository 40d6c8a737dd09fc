"""OpenAPI for the admin routes (users, keys, money, prices, models, tasks, overview): request
bodies, query parameters and the ``data`` each answers. Bodies are read by hand
(http/routes/admin_common.py), so the schemas are written here, once; every operation carries the
``adminToken`` scheme."""

from __future__ import annotations

from typing import Any

from ..domain.task import TaskStatus
from . import openapi_responses as R
from .openapi import ADMIN

Schema = dict[str, Any]
_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_BOOL: Schema = {"type": "boolean"}
_MS: Schema = {"type": "integer", "description": "Unix time in milliseconds"}
_STATUS: Schema = {"type": "string", "enum": [s.value for s in TaskStatus]}
_CREDITS: Schema = {"type": "string", "description": "Credits, an exact decimal"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(
    props: dict[str, Schema], required: tuple[str, ...] = (), *, closed: bool = True
) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": not closed,
    }


_AMOUNT = {"oneOf": [_STR, {"type": "number"}], "description": "Credits (a string keeps it exact)"}
LIMITS_IN: dict[str, Schema] = {
    "max_in_flight": _nullable({"type": "integer", "minimum": 1, "maximum": 1_000_000}),
    "rate_per_second": _nullable({"oneOf": [_STR, {"type": "number", "exclusiveMinimum": 0}]}),
    "rate_burst": _nullable({"type": "integer", "minimum": 1, "maximum": 1_000_000}),
    "daily_spend": _nullable(_AMOUNT),
}
LIMITS_OUT = _obj(
    {
        "max_in_flight": _nullable(_INT),
        "rate_per_second": _nullable(_STR),
        "rate_burst": _nullable(_INT),
        "daily_spend": _nullable(_CREDITS),
    },
    ("max_in_flight", "rate_per_second", "rate_burst", "daily_spend"),
)
USER = _obj(
    {
        "id": _INT,
        "name": _STR,
        "disabled": _BOOL,
        "created_at": _MS,
        "balance": _CREDITS,
        "price_multiplier": _STR,
        "keys": _INT,
        "in_flight": _INT,
        "limits": LIMITS_OUT,
    },
    ("id", "name", "disabled", "balance", "keys", "in_flight", "limits"),
)
KEY = _obj(
    {
        "id": _INT,
        "user": _STR,
        "name": _STR,
        "kind": {"type": "string", "enum": ["sk", "aksk"]},
        "prefix": _STR,
        "access_key": _nullable(_STR),
        "models": _nullable({"type": "array", "items": _STR}),
        "allowed_ips": _nullable({"type": "array", "items": _STR}),
        "expires_at": _nullable(_MS),
        "disabled": _BOOL,
        "created_at": _MS,
        "quota": _nullable(_CREDITS),
        "spent": _CREDITS,
        "limits": LIMITS_OUT,
        "api_key": _nullable({**_STR, "description": "`sk-…`, in the issuing answer only"}),
        "secret_key": _nullable(
            {**_STR, "description": "AK/SK secret, in the issuing answer only"}
        ),
    },
    ("id", "user", "kind", "prefix", "disabled"),
)
_KEY_SETTINGS: dict[str, Schema] = {
    "name": {"type": "string", "maxLength": 64},
    "expires_at": _nullable(_MS),
    "models": _nullable({"type": "array", "items": _STR, "minItems": 1}),
    "allowed_ips": _nullable(
        {"type": "array", "items": {**_STR, "description": "address or CIDR"}, "minItems": 1}
    ),
    **LIMITS_IN,
}
USER_CREATE = _obj({"name": {"type": "string", "minLength": 1, "maxLength": 64}}, ("name",))
USER_PATCH = _obj({"name": USER_CREATE["properties"]["name"], "disabled": _BOOL, **LIMITS_IN})
KEY_CREATE = _obj(
    {"kind": {"type": "string", "enum": ["sk", "aksk"], "default": "sk"}, **_KEY_SETTINGS}
)
KEY_PATCH = _obj({**_KEY_SETTINGS, "disabled": _BOOL})
ADJUST = _obj({"amount": _AMOUNT, "note": {"type": "string", "maxLength": 500}}, ("amount",))
MULTIPLIER = _obj({"multiplier": _AMOUNT}, ("multiplier",))
BALANCE = _obj({"user": _STR, "balance": _CREDITS, "currency": {"const": "credits"}}, ("balance",))
ENTRY = _obj(
    {
        "id": _INT,
        "created_at": _MS,
        "kind": {"type": "string", "enum": ["reserve", "close", "credit", "debit"]},
        "reason": _STR,
        "task_id": _nullable(_STR),
        "key_id": _nullable(_INT),
        "model_name": _nullable(_STR),
        "amount": {**_STR, "description": "Signed: what it did to the balance"},
        "charged": _nullable(_CREDITS),
        "note": _nullable(_STR),
    }
)
STATEMENT = _obj(
    {
        "user": _STR,
        "page": _INT,
        "page_size": _INT,
        "total": _INT,
        "items": {"type": "array", "items": ENTRY},
    }
)
PRICE = _obj(
    {
        "model_name": _STR,
        "mode": {**_STR, "description": "`std`, `pro`, `4k` or `*` (any)"},
        "kind": {"type": "string", "enum": ["silent", "sound", "voice"]},
        "credits_per_second": _AMOUNT,
    },
    ("model_name", "mode", "kind", "credits_per_second"),
)
MODEL = _obj({"model_name": _STR, "target": _STR, "upstream_model": _STR, "alias": _BOOL})
MODEL_MAP = _obj({"target": {**_STR, "description": "A model name or another alias"}}, ("target",))
TASK = _obj(
    {
        "task_id": _STR,
        "kind": {"const": "text2video"},
        "user": _STR,
        "status": _STATUS,
        "model_name": _STR,
        "upstream_account": _nullable(_STR),
        "upstream_task_id": _nullable(_STR),
        "prompt": _STR,
        "charged": _nullable(_AMOUNT),
        "created_at": _MS,
        "updated_at": _MS,
    },
    closed=False,
)
TASK_PAGE = _obj(
    {"page": _INT, "page_size": _INT, "has_more": _BOOL, "items": {"type": "array", "items": TASK}}
)
TASK_DETAIL = {
    **TASK,
    "description": "The summary plus request, result, videos (as the client sees them now), cost "
    "{reserved, settled, refunded, released}, deliveries (each with attempt_log) and "
    "status_history ([{status, at, by}], oldest first; null for tasks older than the history)",
}
OVERVIEW = _obj(
    {
        "window_hours": _INT,
        "tasks_by_status": {"type": "object", "additionalProperties": _INT},
        "tasks": _INT,
        "success_rate": _nullable({"type": "number", "description": "succeed ÷ finished"}),
        "render_ms": _obj(
            {"count": _INT, "p50": _nullable(_INT), "p90": _nullable(_INT), "p99": _nullable(_INT)}
        ),
        "days": {
            "type": "array",
            "items": _obj({"day": _STR, "tasks": _INT, "spend": _CREDITS}),
        },
        "accounts": {"type": "array", "items": {"type": "object"}},
    }
)


def param(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PAGING = [
    param("page", {"type": "integer", "minimum": 1, "default": 1}, "Page, from 1"),
    param(
        "page_size", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Rows a page"
    ),
]
TASK_QUERY = [
    param("status", _STATUS, "Status"),
    param("user", _STR, "User name"),
    param("model", _STR, "Public model name"),
    param(
        "kind", {"type": "string", "enum": ["text2video"]}, "Task kind; unknown kinds are refused"
    ),
    param("since", _MS, "Created at or after (Unix ms)"),
    param("until", _MS, "Created before (Unix ms)"),
    param("external_task_id", _STR, "The client's own id (needs user)"),
    *PAGING,
]
OVERVIEW_QUERY = [
    param(
        "window_hours", {"type": "integer", "minimum": 1, "maximum": 2160, "default": 24}, "Window"
    ),
    param("days", {"type": "integer", "minimum": 1, "maximum": 90, "default": 14}, "Days per day"),
]


def op(body: Schema | None = None, params: list[Schema] | None = None) -> dict[str, Any]:
    """``openapi_extra`` of an admin operation: the scheme, then its body and query parameters."""
    out: dict[str, Any] = {"security": [{ADMIN: []}]}
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        out["parameters"] = params
    return out


def answers(data: Schema, description: str, *errors: int | str) -> dict[int | str, dict[str, Any]]:
    return R.responses(data, 400, 401, 404, *errors, "5XX", description=description)


def many(item: Schema) -> Schema:
    return {"type": "array", "items": item}


CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    **answers(R.ANY, "unused"),
    200: {"description": "The statement as CSV", "content": {"text/csv": {"schema": _STR}}},
}
