"""The task path's use cases, each built with only the collaborators it uses.

``Gateway`` (the composition root, gateway.py) calls ``wire`` with its parts and hands the result
to http/, worker/ and cli/; a unit test calls it with in-memory stores (storage/memory.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.ids import IdMinter
from ..domain.pricing import PriceTable
from ..netguard import UrlGuard
from ..observability.metrics import Telemetry
from ..settings import Settings
from ..storage.ports import Tasks
from .background import Background
from .callback_urls import CallbackUrls
from .catalog import Catalog
from .channels import ChannelSet
from .inbound import Inbound
from .ledger import Ledger
from .limits import Limiter
from .refresh import Refresher
from .submit import Submitter
from .tasks import Creation
from .transitions import Mover


@dataclass(frozen=True, slots=True)
class Wiring:
    ledger: Ledger
    mover: Mover
    submitter: Submitter
    creation: Creation
    refresher: Refresher
    inbound: Inbound


@dataclass(frozen=True, slots=True)
class Parts:
    """What the use cases are built from."""

    settings: Settings
    tasks: Tasks
    channels: ChannelSet
    catalog: Catalog
    prices: PriceTable
    billing: bool
    limits: Limiter | None
    callbacks: CallbackUrls
    guard: UrlGuard
    ids: IdMinter
    telemetry: Telemetry
    background: Background
    clock: Callable[[], float]
    rng: random.Random


def wire(p: Parts) -> Wiring:
    s = p.settings
    ledger = Ledger(p.billing, p.prices, p.catalog, s.billing_policy)
    mover = Mover(p.tasks, ledger, p.telemetry, s, p.clock)
    submitter = Submitter(p.tasks, p.channels, mover, p.callbacks, s, p.rng, p.clock, p.background)
    creation = Creation(
        p.tasks,
        p.channels,
        p.catalog,
        ledger,
        p.limits,
        submitter,
        p.guard,
        p.ids,
        s,
        p.clock,
    )
    refresher = Refresher(p.tasks, p.channels, mover, submitter, s, p.rng, p.clock)
    inbound = Inbound(p.callbacks, s.upstream_webhook_secret, p.tasks, refresher)
    return Wiring(ledger, mover, submitter, creation, refresher, inbound)
