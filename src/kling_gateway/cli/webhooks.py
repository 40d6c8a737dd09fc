"""``kling-gateway webhooks …``: a task's callback log, manual redelivery, a user's signing secret.

Same service functions as the admin API.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..services import webhooks
from .common import ms, run, table

webhooks_app = typer.Typer(help="Outbound webhooks to clients' callback_url.", no_args_is_help=True)


_USER_HELP = "Whose external_task_id it is (needed when several users have it)"


@webhooks_app.command("log")
def log(
    task_id: Annotated[str, typer.Argument(help="Our task id, or the client's external_task_id")],
    user: Annotated[str | None, typer.Option(help=_USER_HELP)] = None,
) -> None:
    """Every callback event of TASK_ID with its attempts: time, HTTP status, latency, error."""
    entries = run(lambda gw: webhooks.admin_delivery_log(gw, task_id, user))
    if not entries:
        typer.echo(
            f"task {task_id} has no callback deliveries (no callback_url, or no status change yet)"
        )
        return
    typer.echo(
        table(
            [
                "delivery",
                "event",
                "status",
                "attempts",
                "last code",
                "next attempt",
                "delivered",
                "url",
            ],
            [
                (
                    e.delivery.id,
                    e.delivery.task_status,
                    e.delivery.status,
                    e.delivery.attempts,
                    e.delivery.last_status_code,
                    ms(e.delivery.next_attempt_at),
                    ms(e.delivery.delivered_at),
                    e.delivery.url,
                )
                for e in entries
            ],
        )
    )
    for e in entries:
        typer.echo(f"\n{e.delivery.id} ({e.delivery.task_status}):")
        if not e.attempts:
            typer.echo("  not attempted yet")
            continue
        rows = [
            (
                ms(a.attempted_at),
                "-" if a.status_code is None else a.status_code,
                f"{a.latency_ms} ms",
                a.error,
            )
            for a in e.attempts
        ]
        typer.echo(
            "\n".join(
                "  " + line
                for line in table(["time", "code", "latency", "error"], rows).split("\n")
            )
        )


@webhooks_app.command("redeliver")
def redeliver(delivery_id: str) -> None:
    """Send DELIVERY_ID again (same webhook-id) on the worker's next pass, whatever its state."""
    delivery = run(lambda gw: webhooks.redeliver(gw, delivery_id))
    typer.echo(
        f"delivery {delivery.id} ({delivery.task_status} of task {delivery.task_id}) queued again"
    )


@webhooks_app.command("secret")
def secret(
    user: str,
    rotate: Annotated[
        bool, typer.Option(help="Replace the secret; the old one stops verifying at once")
    ] = False,
) -> None:
    """Print USER's webhook signing secret (created on first use)."""
    value = run(lambda gw: webhooks.secret_for_user_name(gw, user, rotate=rotate))
    typer.echo(f"{'new ' if rotate else ''}webhook secret for user {user!r}:\n\n    {value}\n")
