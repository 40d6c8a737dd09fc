"""``kling-gateway models …``: public model names and the upstream models they route to."""

from __future__ import annotations

import typer

from ..services import admin
from .common import run, table

models_app = typer.Typer(help="Public model names and their upstream routes.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Every public model name, its route and the upstream model it ends at."""
    rows = run(admin.list_models)
    typer.echo(table(["public name", "route", "upstream model"], rows))


@models_app.command("map")
def models_map(public_name: str, target: str) -> None:
    """Offer PUBLIC_NAME, routed to TARGET (an upstream model or another public name)."""
    upstream = run(lambda gw: admin.map_model(gw, public_name, target))
    typer.echo(f"{public_name} -> {target} (upstream {upstream})")


@models_app.command("unmap")
def models_unmap(public_name: str) -> None:
    """Remove the route of PUBLIC_NAME."""
    run(lambda gw: admin.unmap_model(gw, public_name))
    typer.echo(f"{public_name} unmapped")
