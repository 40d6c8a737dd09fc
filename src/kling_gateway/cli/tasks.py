"""``kling-gateway tasks …`` and ``mirror sweep``: the operator's view of tasks and their results."""

from __future__ import annotations

from typing import Annotated

import typer

from ..mirror.service import build_mirror, sweep
from ..services import admin
from ..services.gateway import Gateway
from .common import ms, run, table

tasks_app = typer.Typer(help="Inspect tasks (operator view).", no_args_is_help=True)
mirror_app = typer.Typer(help="Result mirroring.", no_args_is_help=True)


@tasks_app.command("list")
def tasks_list(
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    status: Annotated[str | None, typer.Option(help="Only tasks in this status")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's tasks")] = None,
) -> None:
    """Recent tasks of every user."""
    rows = run(lambda gw: admin.list_tasks(gw, limit=limit, status=status, user_name=user))
    typer.echo(
        table(
            ["task id", "user", "model", "status", "ext id", "created", "updated"],
            [
                (
                    t.id,
                    t.user_id,
                    t.public_model,
                    t.status,
                    t.external_task_id,
                    ms(t.created_at),
                    ms(t.updated_at),
                )
                for t in rows
            ],
        )
    )


@tasks_app.command("show")
def tasks_show(task_id: str) -> None:
    """Everything stored about TASK_ID, upstream side included."""
    t = run(lambda gw: admin.show_task(gw, task_id))
    for field, value in (
        ("task id", t.id),
        ("user id", t.user_id),
        ("key id", t.key_id),
        ("model", t.public_model),
        ("upstream model", t.upstream_model),
        ("status", t.status),
        ("message", t.status_msg),
        ("external task id", t.external_task_id),
        ("upstream account", t.upstream_account_id),
        ("upstream task id", t.upstream_task_id),
        ("mode", t.mode),
        ("duration", t.duration),
        ("callback url", t.callback_url),
        ("result", t.result_json),
        ("origin result", t.origin_result_json),
        ("units", t.unit_deduction),
        ("created", ms(t.created_at)),
        ("updated", ms(t.updated_at)),
        ("next poll", ms(t.next_poll_at)),
        ("polls", t.poll_attempts),
    ):
        typer.echo(f"{field:>18}: {'' if value is None else value}")


@mirror_app.command("sweep")
def mirror_sweep() -> None:
    """Delete mirrored videos older than KGW_MIRROR_RETENTION_DAYS now (the worker does it hourly)."""

    async def work(gw: Gateway) -> int:
        mirror = build_mirror(gw.settings)
        try:
            return await sweep(gw, mirror)
        finally:
            await mirror.aclose()

    typer.echo(f"deleted {run(work)} files")
