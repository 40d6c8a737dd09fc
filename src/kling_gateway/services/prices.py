"""Price tables as the operator writes them (JSON of model → mode → silent/sound/voice) and
their loading at start; pricing itself is domain/pricing.py."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..domain.pricing import PriceTable, parse_amount
from ..errors import ConfigError
from ..storage.money import MoneyStore

_KINDS = {"silent": (False, False), "sound": (True, False), "voice": (True, True)}
PriceRow = tuple[str, str, bool, bool, str]


def parse_price_doc(doc: Any, source: str) -> list[PriceRow]:
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: prices must be a JSON object of models")
    rows: list[PriceRow] = []
    for model, modes in doc.items():
        if model.startswith("_"):
            continue
        if not isinstance(modes, dict):
            raise ConfigError(f"{source}: {model}: expected an object of modes")
        for mode, kinds in modes.items():
            if not isinstance(kinds, dict):
                raise ConfigError(
                    f"{source}: {model}.{mode}: expected an object of silent/sound/voice"
                )
            for kind, price in kinds.items():
                if kind not in _KINDS:
                    raise ConfigError(
                        f"{source}: {model}.{mode}.{kind}: use silent, sound or voice"
                    )
                sound, voice = _KINDS[kind]
                rows.append(
                    (
                        model,
                        mode,
                        sound,
                        voice,
                        str(parse_amount(str(price), f"{model}.{mode}.{kind}")),
                    )
                )
    return rows


def default_price_rows() -> list[PriceRow]:
    text = resources.files("kling_gateway").joinpath("data/prices.json").read_text()
    return parse_price_doc(json.loads(text), "built-in prices")


def file_price_rows(path: Path) -> list[PriceRow]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"KGW_PRICES_FILE {path}: cannot read JSON ({exc})") from exc
    return parse_price_doc(doc, str(path))


async def load_prices(store: MoneyStore, prices_file: Path | None, now_ms: int) -> PriceTable:
    """At start: the prices file replaces the table when configured; an empty table gets the
    defaults."""
    if prices_file is not None:
        await store.replace_prices(file_price_rows(prices_file), now_ms)
    elif not await store.price_rows():
        await store.replace_prices(default_price_rows(), now_ms)
    return PriceTable.from_rows(await store.price_rows())
