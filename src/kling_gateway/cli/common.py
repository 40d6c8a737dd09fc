"""What every ``kling-gateway`` command shares: settings, running a use case on a Gateway, output.

Subcommand modules import this one; ``cli/__init__.py`` imports them. Nothing here imports
a subcommand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from ..errors import ConfigError, KlingError
from ..services import admin
from ..services.gateway import Gateway
from ..settings import Settings
from .preflight import open_gateway

T = TypeVar("T")


class OperatorErrors(TyperGroup):
    """The one place operator errors become one line on stderr and exit code 2, for every command:
    settings, files, master key, database. Anything else is a bug and keeps its traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        plain_help(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context, not public API
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            message = str(exc)
        except DBAPIError as exc:  # the database failed under a command (gone, locked, old schema)
            message = f"database (KGW_DATABASE_URL): {exc.orig}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)


def plain_help(command: Any) -> None:
    """Help shows each value as its NAME (flags as nothing) instead of typer's ``<str>``/``<bool>``
    type tags, in every command of the tree."""
    for param in command.params:
        if param.param_type_name == "argument":
            param.metavar = param.name.upper()
            # typer's argument panel prints the Python type (<str>) and ignores the metavar
            param.display_type_rich = _no_type
        else:
            param.metavar = "" if param.is_flag else param.name.upper()
    help_option = command.get_help_option(typer.Context(command))
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def _no_type(ctx: Any) -> None:
    return None


def _setting_error(error: Any) -> str:
    name = f"KGW_{error['loc'][0]}".upper() if error["loc"] else ""
    text = str(error["msg"]).removeprefix("Value error, ")
    return text if not name or name in text else f"{name}: {text}"


def load_settings() -> Settings:
    """Settings from KGW_* and .env; a bad value is a ConfigError naming the variable (never the
    value: it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_setting_error(e) for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


def run(work: Callable[[Gateway], Awaitable[T]]) -> T:
    """Open the existing gateway data, run ``work`` on it, close it; a refused request exits 1."""
    settings = load_settings()

    async def main() -> T:
        gw = await open_gateway(settings, setup=False)
        try:
            return await work(gw)
        finally:
            await gw.aclose()

    try:
        return asyncio.run(main())
    except (admin.AdminError, KlingError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(ms: int | None) -> str:
    """A stored epoch-milliseconds time as UTC text; '-' when unset."""
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_key(issued: admin.IssuedKey, base_url: str | None = None) -> None:
    if issued.api_key:
        typer.echo(
            f"API key for user {issued.user!r} (shown once, store it now):\n\n"
            f"    {issued.api_key}\n"
        )
        if base_url:
            typer.echo(
                "Try it:\n\n"
                f"    curl -s {base_url}/kling/v1/videos/text2video \\\n"
                f"      -H 'Authorization: Bearer {issued.api_key}'"
                " -H 'Content-Type: application/json' \\\n"
                '      -d \'{"model_name":"kling-v2-6",'
                '"prompt":"A red fox trotting through snow"}\'\n\n'
                f"    curl -s {base_url}/kling/v1/videos/text2video/<task_id> \\\n"
                f"      -H 'Authorization: Bearer {issued.api_key}'\n"
            )
    else:
        typer.echo(
            f"Access key / secret key for user {issued.user!r} (secret shown once):\n\n"
            f"    access key: {issued.access_key}\n    secret key: {issued.secret_key}\n\n"
            "Sign an HS256 JWT with the secret key (iss = access key, exp, nbf), "
            "as Kling's clients do."
        )


def print_console(base_url: str, token: str | None, *, env_token: bool = False) -> None:
    """Where the operator console is and how to sign in; a new token is printed this once only."""
    url = f"{base_url}/console"
    if token is not None:
        typer.echo(
            f"Operator console: {url}\nOperator token (shown once, store it now):\n\n    {token}\n"
        )
    elif env_token:
        typer.echo(f"Operator console: {url} (sign in with KGW_ADMIN_TOKEN)")
    else:
        typer.echo(f"Operator console: {url} (a new operator token: kling-gateway console token)")
