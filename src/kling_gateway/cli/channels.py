"""``kling-gateway channels …``: several upstream Kling accounts, their keys, state and figures.

Same service functions as ``/admin/v1/channels``. Secrets are read from options or, better, from the
environment (``KGW_NEW_ACCESS_KEY`` …) so they stay out of shell history; they are never printed
back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..services import channel_admin
from .common import ms, run, table

if TYPE_CHECKING:
    from ..services.gateway import Gateway

channels_app = typer.Typer(
    help="Upstream Kling accounts (channels): selection, failover, health.", no_args_is_help=True
)

AccessKey = Annotated[
    str | None, typer.Option(envvar="KGW_NEW_ACCESS_KEY", help="Kling access key")
]
SecretKey = Annotated[
    str | None, typer.Option(envvar="KGW_NEW_SECRET_KEY", help="Kling secret key")
]
ApiKey = Annotated[str | None, typer.Option(envvar="KGW_NEW_API_KEY", help="Kling API key")]
Priority = Annotated[int | None, typer.Option(help="Higher tiers are used first")]
Weight = Annotated[int | None, typer.Option(help="Share of traffic inside its tier (0-10000)")]
Models = Annotated[
    str | None, typer.Option(help="Comma-separated upstream models offered; 'all' for every model")
]
ModelMap = Annotated[
    list[str] | None,
    typer.Option("--map", help="MODEL=NAME: this account's name for MODEL (repeat)"),
]
Caps = Annotated[
    list[str] | None,
    typer.Option("--cap", help="MODEL=N or *=N: max tasks in flight here (repeat)"),
]


def _fields(
    priority: int | None,
    weight: int | None,
    models: str | None,
    model_map: list[str] | None,
    caps: list[str] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if priority is not None:
        out["priority"] = priority
    if weight is not None:
        out["weight"] = weight
    if models is not None:
        out["models"] = (
            None if models == "all" else [m.strip() for m in models.split(",") if m.strip()]
        )
    if model_map is not None:
        out["model_map"] = dict(_pair(p, "--map") for p in model_map) or None
    if caps is not None:
        parsed = {k: _int(v, "--cap") for k, v in (_pair(p, "--cap") for p in caps)}
        out["caps"] = parsed or None
    return out


def _pair(text: str, option: str) -> tuple[str, str]:
    left, sep, right = text.partition("=")
    if not sep or not left.strip() or not right.strip():
        raise typer.BadParameter(f"{option} takes NAME=VALUE (got {text!r})")
    return left.strip(), right.strip()


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{option}: {text!r} is not a whole number") from None


def _print(view: dict[str, Any]) -> None:
    keys = ", ".join(
        f"#{k['id']} {k['hint'] or '?'}"
        + ("" if k["enabled"] else " (off)")
        + (" (cooling)" if k["cooldown_until"] else "")
        for k in view["keys"]
    )
    probe = view["probe"]
    for label, value in (
        ("name", view["name"]),
        ("base url", view["base_url"]),
        ("state", view["state"]),
        ("priority / weight", f"{view['priority']} / {view['weight']}"),
        ("models", ", ".join(view["models"]) if view["models"] else "all"),
        ("model map", view["model_map"] or "-"),
        ("caps", view["caps"] or "-"),
        ("keys", keys or "none"),
        ("in flight", view["in_flight"]),
        (
            "last probe",
            "-" if probe["at"] is None else f"{probe['latency_ms']} ms, {probe['error'] or 'ok'}",
        ),
    ):
        typer.echo(f"{label:>18}: {value}")


def _show(work: Callable[[Gateway], Awaitable[dict[str, Any]]]) -> None:
    _print(run(work))


@channels_app.command("list")
def channels_list() -> None:
    """Accounts: state, tier, weight, keys, tasks in flight, last probe, this process's figures."""
    views = run(channel_admin.describe)
    rows = [
        (
            v["name"],
            v["state"],
            v["priority"],
            v["weight"],
            ",".join(v["models"]) if v["models"] else "all",
            len(v["keys"]),
            v["in_flight"],
            ms(v["probe"]["at"]),
            "-" if v["probe"]["at"] is None else f"{v['probe']['latency_ms']} ms",
            v["probe"]["error"] or ("ok" if v["probe"]["at"] else "-"),
            v["base_url"],
        )
        for v in views
    ]
    headers = [
        "name",
        "state",
        "prio",
        "weight",
        "models",
        "keys",
        "in flight",
        "probed",
        "latency",
        "probe",
        "url",
    ]
    typer.echo(table(headers, rows))


@channels_app.command("add")
def channels_add(
    name: str,
    base_url: str,
    access_key: AccessKey = None,
    secret_key: SecretKey = None,
    api_key: ApiKey = None,
    priority: Priority = None,
    weight: Weight = None,
    models: Models = None,
    model_map: ModelMap = None,
    cap: Caps = None,
) -> None:
    """Add account NAME at BASE_URL (e.g. https://api-singapore.klingai.com) with its first key."""
    fields = _fields(priority, weight, models, model_map, cap)
    creds = {"access_key": access_key, "secret_key": secret_key, "api_key": api_key}
    _show(lambda gw: channel_admin.add(gw, name, base_url, **creds, **fields))


@channels_app.command("set")
def channels_set(
    name: str,
    base_url: Annotated[str | None, typer.Option(help="New base URL")] = None,
    priority: Priority = None,
    weight: Weight = None,
    models: Models = None,
    model_map: ModelMap = None,
    cap: Caps = None,
) -> None:
    """Change NAME's routing: only the options given change."""
    fields = _fields(priority, weight, models, model_map, cap)
    if base_url is not None:
        fields["base_url"] = base_url
    _show(lambda gw: channel_admin.update(gw, name, **fields))


@channels_app.command("enable")
def channels_enable(name: str) -> None:
    """Send new traffic to NAME again (also ends any cooldown)."""
    _show(lambda gw: channel_admin.update(gw, name, enabled=True))


@channels_app.command("disable")
def channels_disable(name: str) -> None:
    """Send no new traffic to NAME; its tasks in flight are still followed to the end."""
    _show(lambda gw: channel_admin.update(gw, name, enabled=False))


@channels_app.command("show")
def channels_show(name: str) -> None:
    """Account NAME: routing, keys (masked), tasks in flight, last probe."""
    _show(lambda gw: channel_admin.show(gw, name))


@channels_app.command("probe")
def channels_probe(name: str) -> None:
    """Call NAME's cheapest authenticated endpoint now and record latency or error."""
    _show(lambda gw: channel_admin.probe(gw, name))


@channels_app.command("key-add")
def channels_key_add(
    name: str, access_key: AccessKey = None, secret_key: SecretKey = None, api_key: ApiKey = None
) -> None:
    """Add a key to NAME; creates rotate over its usable keys."""
    _show(
        lambda gw: channel_admin.add_key(
            gw, name, access_key=access_key, secret_key=secret_key, api_key=api_key
        )
    )


@channels_app.command("key-remove")
def channels_key_remove(name: str, key_id: int) -> None:
    """Remove key KEY_ID from NAME (`channels show NAME` lists the ids)."""
    _show(lambda gw: channel_admin.remove_key(gw, name, key_id))
