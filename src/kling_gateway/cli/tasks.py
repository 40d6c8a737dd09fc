"""``kling-gateway tasks …`` and ``mirror sweep``: the operator's view of tasks and results."""

from __future__ import annotations

from typing import Annotated

import typer

from ..domain.pricing import charge_view
from ..mirror.service import build_mirror, sweep
from ..services import admin
from ..services.gateway import Gateway
from ..storage.tasks import TaskRecord
from .common import ms, run, table

tasks_app = typer.Typer(help="Inspect tasks (operator view).", no_args_is_help=True)
mirror_app = typer.Typer(help="Result mirroring.", no_args_is_help=True)


_STATUS_HELP = "Only tasks in this status"
_USER_HELP = "Whose external_task_id it is (needed when several users have it)"


def _status(value: str | None) -> str | None:
    try:
        return admin.check_status(value)
    except admin.AdminError as exc:
        raise typer.BadParameter(str(exc).removeprefix("status: ")) from None


@tasks_app.command("list")
def tasks_list(
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    status: Annotated[str | None, typer.Option(help=_STATUS_HELP, callback=_status)] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's tasks")] = None,
) -> None:
    """Recent tasks of every user."""

    async def work(gw: Gateway) -> tuple[list[TaskRecord], dict[int, str]]:
        rows = await admin.list_tasks(gw, limit=limit, status=status, user_name=user)
        return rows, await admin.user_names(gw)

    rows, names = run(work)
    typer.echo(
        table(
            ["task id", "user", "model", "status", "ext id", "created", "updated"],
            [
                (
                    t.id,
                    names.get(t.user_id, t.user_id),
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
def tasks_show(
    task_id: Annotated[str, typer.Argument(help="Our task id, or the client's external_task_id")],
    user: Annotated[str | None, typer.Option(help=_USER_HELP)] = None,
) -> None:
    """Everything stored about a task, upstream side and charge included."""

    async def work(gw: Gateway) -> tuple[TaskRecord, str | None]:
        record = await admin.show_task(gw, task_id, user)
        return record, (await admin.user_names(gw)).get(record.user_id)

    t, user_name = run(work)
    charge = charge_view(t.reserved_micro, t.charged_micro)
    for field, value in (
        ("task id", t.id),
        ("user", user_name),
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
        ("reserved", f"{charge['reserved']} credits"),
        ("settled", _closed(charge["settled"], t)),
        ("refunded", _closed(charge["refunded"], t)),
        ("kling units", t.unit_deduction),
        ("created", ms(t.created_at)),
        ("updated", ms(t.updated_at)),
        ("next poll", ms(t.next_poll_at)),
        ("polls", t.poll_attempts),
    ):
        typer.echo(f"{field:>18}: {'' if value is None else value}")


def _closed(credits: str | None, t: TaskRecord) -> str:
    """A settled or refunded amount; '-' while the reserve is open or when nothing was reserved."""
    if credits is not None:
        return f"{credits} credits"
    return "- (until the task ends)" if t.reserved_micro else "-"


@mirror_app.command("sweep")
def mirror_sweep() -> None:
    """Delete mirrored videos past KGW_MIRROR_RETENTION_DAYS now (the worker does it hourly)."""

    async def work(gw: Gateway) -> int:
        mirror = build_mirror(gw.settings)
        try:
            return await sweep(gw, mirror)
        finally:
            await mirror.aclose()

    typer.echo(f"deleted {run(work)} files")
