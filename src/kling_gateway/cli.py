"""``kling-gateway`` command line: serve, simulator, worker-free admin (users, keys, models, tasks), db.

Every admin command calls the same service functions as HTTP, on a Gateway built from the same Settings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from .cli_channels import channels_app
from .cli_money import money_app, prices_app
from .cli_webhooks import webhooks_app
from .errors import ConfigError, KlingError
from .services import admin
from .services.gateway import Gateway, build_gateway
from .settings import Settings
from .storage import db

app = typer.Typer(help="Kling AI text2video gateway.", no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Gateway users.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and access/secret key pairs.", no_args_is_help=True)
models_app = typer.Typer(help="Public model names and their upstream routes.", no_args_is_help=True)
tasks_app = typer.Typer(help="Inspect tasks (operator view).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
for sub, name in ((users_app, "users"), (keys_app, "keys"), (models_app, "models"), (tasks_app, "tasks")):
    app.add_typer(sub, name=name)
app.add_typer(db_app, name="db")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(money_app, name="money")
app.add_typer(prices_app, name="prices")
app.add_typer(channels_app, name="channels")

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        typer.echo("invalid settings:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


def _run(work: Callable[[Gateway], Awaitable[T]]) -> T:
    settings = _settings()

    async def main() -> T:
        gw = await build_gateway(settings)
        try:
            return await work(gw)
        finally:
            await gw.aclose()

    try:
        return asyncio.run(main())
    except (admin.AdminError, ConfigError, KlingError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ms(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_key(issued: admin.IssuedKey, base_url: str | None = None) -> None:
    if issued.api_key:
        typer.echo(f"API key for user {issued.user!r} (shown once, store it now):\n\n    {issued.api_key}\n")
        if base_url:
            typer.echo(
                "Try it:\n\n"
                f"    curl -s {base_url}/kling/v1/videos/text2video \\\n"
                f"      -H 'Authorization: Bearer {issued.api_key}' -H 'Content-Type: application/json' \\\n"
                '      -d \'{"model_name":"kling-v2-6","prompt":"A red fox trotting through snow"}\'\n\n'
                f"    curl -s {base_url}/kling/v1/videos/text2video/<task_id> \\\n"
                f"      -H 'Authorization: Bearer {issued.api_key}'\n"
            )
    else:
        typer.echo(
            f"Access key / secret key for user {issued.user!r} (secret shown once):\n\n"
            f"    access key: {issued.access_key}\n    secret key: {issued.secret_key}\n\n"
            "Sign an HS256 JWT with the secret key (iss = access key, exp, nbf), as Kling's clients do."
        )


# ---------------------------------------------------------------------------------------------- serve
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default KGW_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default KGW_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Gateway processes on this port")] = 1,
) -> None:
    """Run the gateway: migrate the DB, print a bootstrap key on first start, serve, refresh tasks."""
    from .serve import run_serve

    settings = _settings()
    updates: dict[str, Any] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    chosen = settings.model_copy(update=updates) if updates else settings
    if workers > 1:
        from .serve_workers import run_workers

        run_workers(chosen, workers)
        return
    run_serve(chosen)


@app.command()
def worker() -> None:
    """Run the background workers alone (task refresher, webhook delivery, mirroring), no HTTP.

    Start as many as you like against one database: leases keep them from doing the same work twice."""
    import signal

    from .worker.runner import run_all

    settings = _settings()

    async def main() -> None:
        gw = await build_gateway(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo("kling-gateway worker running (Ctrl-C to stop)")
        try:
            await run_all(gw, stop)
        finally:
            await gw.aclose()

    asyncio.run(main())


@app.command()
def simulator(
    host: str = "127.0.0.1",
    port: int = 8001,
    submitted_seconds: float = 1.0,
    processing_seconds: float = 3.0,
    failure_rate: float = 0.0,
    concurrency: Annotated[int, typer.Option(help="Tasks in flight per account and model")] = 100,
) -> None:
    """Run the built-in Kling simulator alone (AK sim-ak / SK sim-sk)."""
    from .upstream.simulator import SimulatorConfig, run_simulator

    config = SimulatorConfig(
        submitted_seconds=submitted_seconds,
        processing_seconds=processing_seconds,
        task_failure_rate=failure_rate,
        concurrency_per_model=concurrency,
        public_base_url=f"http://{host}:{port}",
    )
    run_simulator(host, port, config)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION."""
    settings = _settings()

    async def main() -> None:
        engine = db.make_engine(settings.database_url)
        try:
            await db.upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(main())
    typer.echo(f"database at {revision}")


# ---------------------------------------------------------------------------------------------- users
@users_app.command("create")
def users_create(name: str) -> None:
    user = _run(lambda gw: admin.create_user(gw, name))
    typer.echo(f"created user {user.name} (id {user.id})")


@users_app.command("list")
def users_list() -> None:
    rows = _run(lambda gw: gw.accounts.list_users())
    typer.echo(
        table(
            ["id", "name", "disabled", "created"],
            [(u.id, u.name, u.disabled, _ms(u.created_at)) for u in rows],
        )
    )


# ----------------------------------------------------------------------------------------------- keys
@keys_app.command("create")
def keys_create(
    user: str,
    name: str = "",
    aksk: Annotated[bool, typer.Option(help="Issue a Kling-style access/secret key pair")] = False,
    model: Annotated[list[str] | None, typer.Option(help="Allow only this model (repeatable)")] = None,
    expires_days: Annotated[float | None, typer.Option(help="Expire after N days")] = None,
) -> None:
    issued = _run(
        lambda gw: admin.create_key(gw, user, name=name, aksk=aksk, models=model, expires_days=expires_days)
    )
    print_key(issued)


@keys_app.command("list")
def keys_list(user: Annotated[str | None, typer.Option(help="Only this user's keys")] = None) -> None:
    rows = _run(lambda gw: admin.list_keys(gw, user))
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
                    _ms(k.expires_at),
                    k.disabled,
                )
                for k in rows
            ],
        )
    )


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    _run(lambda gw: admin.revoke_key(gw, key_id))
    typer.echo(f"key {key_id} revoked")


@keys_app.command("new-master-key")
def keys_new_master_key() -> None:
    """Print a fresh master key for KGW_MASTER_KEY."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


# --------------------------------------------------------------------------------------------- models
@models_app.command("list")
def models_list() -> None:
    rows = _run(admin.list_models)
    typer.echo(table(["public name", "route", "upstream model"], rows))


@models_app.command("map")
def models_map(public_name: str, target: str) -> None:
    """Offer PUBLIC_NAME, routed to TARGET (an upstream model or another public name)."""
    upstream = _run(lambda gw: admin.map_model(gw, public_name, target))
    typer.echo(f"{public_name} -> {target} (upstream {upstream})")


@models_app.command("unmap")
def models_unmap(public_name: str) -> None:
    _run(lambda gw: admin.unmap_model(gw, public_name))
    typer.echo(f"{public_name} unmapped")


# ---------------------------------------------------------------------------------------------- tasks
@tasks_app.command("list")
def tasks_list(
    limit: int = 50,
    status: str | None = None,
    user: Annotated[str | None, typer.Option(help="Only this user's tasks")] = None,
) -> None:
    rows = _run(lambda gw: admin.list_tasks(gw, limit=limit, status=status, user_name=user))
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
                    _ms(t.created_at),
                    _ms(t.updated_at),
                )
                for t in rows
            ],
        )
    )


@tasks_app.command("show")
def tasks_show(task_id: str) -> None:
    t = _run(lambda gw: admin.show_task(gw, task_id))
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
        ("created", _ms(t.created_at)),
        ("updated", _ms(t.updated_at)),
        ("next poll", _ms(t.next_poll_at)),
        ("polls", t.poll_attempts),
    ):
        typer.echo(f"{field:>18}: {'' if value is None else value}")


mirror_app = typer.Typer(help="Result mirroring.", no_args_is_help=True)
app.add_typer(mirror_app, name="mirror")


@mirror_app.command("sweep")
def mirror_sweep() -> None:
    """Delete mirrored videos older than KGW_MIRROR_RETENTION_DAYS now (the worker does it hourly)."""
    from .mirror.service import build_mirror, sweep

    async def work(gw: Gateway) -> int:
        mirror = build_mirror(gw.settings)
        try:
            return await sweep(gw, mirror)
        finally:
            await mirror.aclose()

    typer.echo(f"deleted {_run(work)} files")


def main() -> None:
    from .observability.logs import configure_logging

    configure_logging(logging.INFO)  # JSON lines on stderr, secrets and prompts redacted
    app()
