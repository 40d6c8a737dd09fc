"""Our task rows rendered as Kling task objects (kling-api.md §4.3): public ids only, the client's
own ``external_task_id``, times in milliseconds. The upstream task id has no field to leak through
here."""

from __future__ import annotations

from typing import Any

import orjson

from ..domain.pricing import from_micro
from ..domain.task import TaskStatus, wire_status
from ..storage.tasks import TaskRecord


def task_object(t: TaskRecord, videos: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``videos``: the result as the client must see it (mirror links); default: ``result_json`` as
    stored."""
    status = TaskStatus(t.status)
    obj: dict[str, Any] = {
        "task_id": t.id,
        "task_status": wire_status(status),
        "task_status_msg": t.status_msg,
        "task_info": {"external_task_id": t.external_task_id} if t.external_task_id else {},
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "watermark_info": {"enabled": t.watermark},
    }
    if status is TaskStatus.SUCCEED and t.result_json:
        obj["task_result"] = {
            "videos": videos if videos is not None else orjson.loads(t.result_json)
        }
    if (
        t.charged_micro is not None
    ):  # what the client paid us; upstream's own deduction is the operator's
        obj["final_unit_deduction"] = from_micro(t.charged_micro)
    elif t.unit_deduction is not None and t.reserved_micro == 0:
        obj["final_unit_deduction"] = t.unit_deduction
    return obj


def created_object(t: TaskRecord) -> dict[str, Any]:
    """The create response ``data``: the short form Kling returns (kling-api.md §4.2)."""
    return {
        "task_id": t.id,
        "task_status": wire_status(TaskStatus(t.status)),
        "task_info": {"external_task_id": t.external_task_id} if t.external_task_id else {},
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def public_videos(videos: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the fields Kling documents for a video; anything else upstream adds stays upstream."""
    keep = ("id", "url", "watermark_url", "duration")
    return [{k: v[k] for k in keep if k in v} for v in videos]
