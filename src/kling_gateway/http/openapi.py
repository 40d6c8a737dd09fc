"""OpenAPI documentation for the Kling routes: request schema and examples for /docs.

Bodies are parsed by hand on the hot path (orjson + the pure domain validator), so FastAPI cannot infer
the schema; it is written out here once instead.
"""

from __future__ import annotations

from typing import Any

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
        "cfg_scale": {"type": "number", "minimum": 0, "maximum": 1, "description": "kling-v1.x only"},
        "mode": {"type": "string", "enum": ["std", "pro", "4k"], "default": "std"},
        "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1"], "default": "16:9"},
        "duration": {
            "oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer"}],
            "default": "5",
            "description": "Seconds; allowed values depend on the model (5/10, or 3–15 on kling-v3)",
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
                    "enum": ["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"],
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
    "minimal": {"value": {"model_name": "kling-v2-6", "prompt": "A red fox trotting through fresh snow"}},
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
        "task_result": {"videos": [{"id": "3f0c9d2a", "url": "https://…/video.mp4", "duration": "5.1"}]},
        "watermark_info": {"enabled": False},
    },
}


def _error(code: int, message: str) -> dict[str, Any]:
    body = {"code": code, "message": message, "request_id": "…", "data": None}
    return {"description": message, "content": {"application/json": {"example": body}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error(1201, "duration: '12' is not allowed for model kling-v2-6 (allowed: 5, 10)"),
    401: _error(1001, "Authorization is empty"),
    403: _error(1103, "model_name: this key may not use model 'kling-v3'"),
    404: _error(1203, "task '123' does not exist"),
    429: _error(1303, "parallel task over resource pack limit"),
}

CREATE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TEXT2VIDEO_SCHEMA, "examples": CREATE_EXAMPLES}},
    }
}

TASK_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "Kling task object", "content": {"application/json": {"example": _TASK_EXAMPLE}}}
}
