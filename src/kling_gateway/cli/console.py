"""``kling-gateway console …``: the operator's web console (served by ``serve`` at /console)."""

from __future__ import annotations

import typer

from ..console.auth import issue_token
from .common import load_settings, print_console, run

console_app = typer.Typer(help="The operator web console at /console.", no_args_is_help=True)


@console_app.command("token")
def token() -> None:
    """Issue a new operator token (printed once); the old one and its sessions stop working."""
    issued = run(issue_token)
    settings = load_settings()
    print_console(f"http://{settings.host}:{settings.port}", issued)
    if settings.admin_token is not None:
        typer.echo(
            "note: KGW_ADMIN_TOKEN is set, so it is the only token accepted until it is unset",
            err=True,
        )
