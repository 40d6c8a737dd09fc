"""``kling-gateway keys …``: API keys and access/secret key pairs of users, and master keys."""

from __future__ import annotations

from typing import Annotated

import typer
from cryptography.fernet import Fernet

from ..services import admin
from .common import ms, print_key, run, table

keys_app = typer.Typer(help="API keys and access/secret key pairs.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    user: str,
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
    aksk: Annotated[bool, typer.Option(help="Issue a Kling-style access/secret key pair")] = False,
    model: Annotated[
        list[str] | None, typer.Option(help="Allow only this model (repeatable)")
    ] = None,
    expires_days: Annotated[float | None, typer.Option(help="Expire after N days")] = None,
) -> None:
    """Issue a key for USER; its secret is printed once."""
    issued = run(
        lambda gw: admin.create_key(
            gw, user, name=name, aksk=aksk, models=model, expires_days=expires_days
        )
    )
    print_key(issued)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option(help="Only this user's keys")] = None,
) -> None:
    """Every key (prefixes only; secrets are never shown again)."""
    rows = run(lambda gw: admin.list_keys(gw, user))
    typer.echo(
        table(
            ["id", "user", "kind", "prefix", "name", "models", "expires", "disabled"],
            [
                (
                    k.id,
                    k.user_name,
                    k.kind,
                    k.prefix,
                    k.name,
                    ",".join(sorted(k.allowed_models or [])) or "*",
                    ms(k.expires_at),
                    k.disabled,
                )
                for k in rows
            ],
        )
    )


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Disable key KEY_ID at once (every process forgets it within KGW_KEY_CACHE_SECONDS)."""
    run(lambda gw: admin.revoke_key(gw, key_id))
    typer.echo(f"key {key_id} revoked")


@keys_app.command("new-master-key")
def keys_new_master_key() -> None:
    """Print a fresh master key for KGW_MASTER_KEY."""
    typer.echo(Fernet.generate_key().decode())
