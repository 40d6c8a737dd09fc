"""``kling-gateway users …``: the gateway's own users (who holds keys and credits)."""

from __future__ import annotations

import typer

from ..services import admin
from .common import ms, run, table

users_app = typer.Typer(help="Gateway users.", no_args_is_help=True)


@users_app.command("create")
def users_create(name: str) -> None:
    """Create user NAME (then give it a key with `keys create NAME`)."""
    user = run(lambda gw: admin.create_user(gw, name))
    typer.echo(f"created user {user.name} (id {user.id})")


@users_app.command("list")
def users_list() -> None:
    """Every user, oldest first."""
    rows = run(lambda gw: gw.accounts.list_users())
    typer.echo(
        table(
            ["id", "name", "disabled", "created"],
            [(u.id, u.name, u.disabled, ms(u.created_at)) for u in rows],
        )
    )
