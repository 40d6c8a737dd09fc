"""``kling-gateway money …`` and ``kling-gateway prices …``: the operator's side of the ledger."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from ..domain.pricing import from_micro, parse_amount, to_micro
from ..services import admin, money
from ..services.gateway import Gateway
from .common import run, table

money_app = typer.Typer(help="Balances, credits, statements.", no_args_is_help=True)
prices_app = typer.Typer(
    help="Credits per second by model, mode, sound and voice control.", no_args_is_help=True
)


async def _user_id(gw: Gateway, name: str) -> int:
    user = await gw.accounts.get_user(name)
    if user is None:
        raise admin.AdminError(f"no user named {name!r}")
    return user.id


def _adjust(user: str, amount: str, note: str | None, *, debit: bool) -> None:
    async def work(gw: Gateway) -> int:
        return await money.adjust(gw, await _user_id(gw, user), amount, debit=debit, note=note)

    left = run(work)
    typer.echo(
        f"{'debited' if debit else 'credited'} {amount}; balance of {user}: {from_micro(left)}"
    )


@money_app.command("credit")
def credit(user: str, amount: str, note: Annotated[str | None, typer.Option()] = None) -> None:
    """Add AMOUNT credits to USER."""
    _adjust(user, amount, note, debit=False)


@money_app.command("debit")
def debit(user: str, amount: str, note: Annotated[str | None, typer.Option()] = None) -> None:
    """Take AMOUNT credits from USER (never below zero)."""
    _adjust(user, amount, note, debit=True)


@money_app.command("balance")
def balance(user: str) -> None:
    """Credits USER has left."""

    async def work(gw: Gateway) -> dict[str, str]:
        return await money.balance(gw, await _user_id(gw, user))

    typer.echo(f"{user}: {run(work)['balance']} credits")


@money_app.command("statement")
def statement(
    user: str, csv_file: Annotated[Path | None, typer.Option("--csv", help="write CSV here")] = None
) -> None:
    """Every ledger entry of USER (reserve, settle/refund, credit, debit), as CSV."""

    async def work(gw: Gateway) -> str:
        return await money.statement_csv(gw, await _user_id(gw, user))

    text = run(work)
    if csv_file is None:
        typer.echo(text, nl=False)
    else:
        csv_file.write_text(text)
        typer.echo(f"wrote {csv_file}")


@money_app.command("multiplier")
def multiplier(user: str, value: str) -> None:
    """Price multiplier of USER (e.g. 0.8 for a 20 % discount)."""
    parsed = parse_amount(value, "multiplier")

    async def work(gw: Gateway) -> None:
        await money.money_store(gw).set_multiplier(await _user_id(gw, user), str(parsed))
        gw.auth.forget()

    run(work)
    typer.echo(f"{user}: prices × {parsed}")


@money_app.command("quota")
def quota(key_id: int, amount: Annotated[str, typer.Argument(help="credits, or 'none'")]) -> None:
    """Spending cap of one API key."""
    micro = None if amount == "none" else to_micro(parse_amount(amount, "quota"))

    async def work(gw: Gateway) -> bool:
        return await money.money_store(gw).set_quota(key_id, micro)

    if not run(work):
        typer.echo(f"error: no key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"key {key_id}: quota {amount}")


@prices_app.command("list")
def prices_list() -> None:
    """Every price: model, mode, kind, credits per second."""
    rows = run(lambda gw: money.money_store(gw).price_rows())
    kind = {
        (False, False): "silent",
        (True, False): "sound",
        (True, True): "voice",
        (False, True): "voice",
    }
    typer.echo(
        table(
            ["model", "mode", "kind", "credits/s"],
            [(m, mode, kind[(s, v)], p) for m, mode, s, v, p in sorted(rows)],
        )
    )


@prices_app.command("set")
def prices_set(
    model: str,
    mode: str,
    kind: Annotated[str, typer.Argument(help="silent | sound | voice")],
    credits_per_second: str,
) -> None:
    """Price MODEL in MODE ('*' = any); 0 marks it free."""
    offered = run(lambda gw: money.set_price(gw, model, mode, kind, credits_per_second))
    typer.echo(f"{model} {mode} {kind}: {Decimal(credits_per_second)} credits/s")
    if not offered:
        typer.echo(f"note: no model {model!r} is offered yet; the price applies once it is mapped")


@prices_app.command("import")
def prices_import(path: Path) -> None:
    """Replace all prices with a JSON file's (same shape as the built-in data/prices.json)."""
    rows = money.file_price_rows(path)

    async def work(gw: Gateway) -> None:
        await money.money_store(gw).replace_prices(rows, gw.now_ms())

    run(work)
    typer.echo(f"{len(rows)} prices loaded from {path}")
