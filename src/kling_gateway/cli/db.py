"""``kling-gateway db …``: the database schema."""

from __future__ import annotations

import asyncio

import typer

from ..storage import db
from .common import load_settings
from .preflight import open_gateway

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION; at head also create the master key and write the upstream
    accounts the settings define, as `serve` would."""
    settings = load_settings()

    async def main() -> None:
        if revision == "head":
            await (await open_gateway(settings, setup=True)).aclose()
            return
        engine = db.make_engine(settings.database_url)
        try:
            await db.upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(main())
    typer.echo(f"database at {revision}")
