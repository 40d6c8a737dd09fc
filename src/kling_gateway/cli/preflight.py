"""Opening the gateway's data from a command: what may be created, and by which command.

``serve``, ``worker`` and ``db upgrade`` set up: they may create the database and the master key and
they write the upstream accounts the settings define. Every other command opens what is there and
says in one line where it looked when nothing is; it never creates a database, a key, or an account.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ..crypto import check_master_key
from ..errors import ConfigError
from ..services.gateway import Gateway, build_gateway
from ..settings import Settings
from ..storage import db, presence


def shown_url(settings: Settings) -> str:
    """KGW_DATABASE_URL without its password, for messages."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _require_sqlite_file(settings: Settings) -> None:
    path = db.sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        raise ConfigError(
            f"no database at {path.resolve()} "
            f"(KGW_DATABASE_URL; KGW_HOME={settings.home.resolve()}): "
            "run this where `kling-gateway serve` runs, set KGW_HOME, or create one with "
            "`kling-gateway db upgrade`"
        )


async def _probe(settings: Settings) -> tuple[bool, str | None]:
    engine = db.make_engine(settings.database_url)
    try:
        return await presence.probe(engine)
    except (OSError, DBAPIError) as exc:  # refused, unknown host, bad password, unreadable file
        reason = getattr(exc, "orig", None) or exc
        url = shown_url(settings)
        raise ConfigError(f"KGW_DATABASE_URL {url}: cannot connect ({reason})") from exc
    finally:
        await engine.dispose()


async def open_gateway(settings: Settings, *, setup: bool) -> Gateway:
    """A built Gateway, after the checks above; ``setup`` for serve, worker and db upgrade."""
    if not setup:
        _require_sqlite_file(settings)  # before any engine: SQLite would create the file
    schema, stored = await _probe(settings)
    if not schema and not setup:
        raise ConfigError(
            f"KGW_DATABASE_URL {shown_url(settings)} has no gateway schema: "
            "start `kling-gateway serve` or run `kling-gateway db upgrade` first"
        )
    check_master_key(settings, may_create=setup, stored=stored)
    return await build_gateway(settings, seed=setup)
