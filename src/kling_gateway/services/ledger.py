"""The money side of the task path: the price of a create, what its insert debits, and the close
(settle or refund) a terminal status change commits with (services/transitions.py).

Invariants (tested as properties): for every terminal task, charged = rate × billed seconds and
its reserve is closed exactly once; a debit is a compare-and-set on ``balance ≥ amount``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..domain.pricing import BillingPolicy, PriceTable, Quote, billed_seconds, from_micro, quote
from ..domain.request import Text2VideoRequest
from ..domain.task import TaskStatus
from ..errors import InsufficientBalance
from ..storage.money import Close, Reserve
from ..storage.tasks import Refused, TaskRecord
from .auth import Principal
from .catalog import Catalog


@dataclass(frozen=True, slots=True)
class Ledger:
    """``billing`` False (KGW_BILLING=false): nothing is priced, reserved or closed."""

    billing: bool
    prices: PriceTable
    catalog: Catalog
    policy: BillingPolicy

    def quote(self, principal: Principal, req: Text2VideoRequest) -> Quote:
        return quote(
            self.prices,
            public_model=req.model_name,
            mode=req.mode,
            sound=req.sound,
            voice=req.voice_control,
            seconds=req.duration,
            multiplier=Decimal(principal.key.price_multiplier or "1"),
            priced_as=self.catalog.route_of(req.model_name),
        )

    def reserve_micro(self, principal: Principal, req: Text2VideoRequest) -> int:
        """What a create reserves; an unpriced model is refused here, before anything is stored."""
        return self.quote(principal, req).reserve_micro if self.billing else 0

    def close(
        self, t: TaskRecord, new: TaskStatus, values: dict[str, Any], now_ms: int
    ) -> Close | None:
        """The money side of a terminal status change; also sets ``charged_micro`` in ``values``."""
        if not self.billing or t.reserved_micro <= 0 or t.charged_micro is not None:
            return None
        if new is TaskStatus.SUCCEED:
            rate = t.reserved_micro // max(1, t.duration)
            videos = json.loads(values.get("result_json") or t.result_json or "[]")
            charged = rate * billed_seconds(t.duration, videos, self.policy)
            reason = "settle"
        else:
            charged, reason = 0, "refund"
        values["charged_micro"] = charged
        return Close(
            user_id=t.user_id,
            key_id=t.key_id,
            task_id=t.id,
            back=t.reserved_micro - charged,
            charged=charged,
            reason=reason,
            public_model=t.public_model,
            now_ms=now_ms,
        )


def reserve_for(record: TaskRecord, amount: int) -> Reserve:
    """What a new task's insert debits (``Tasks.insert(record, reserve=…)``)."""
    return Reserve(
        user_id=record.user_id,
        key_id=record.key_id,
        amount=amount,
        public_model=record.public_model,
        now_ms=record.created_at,
    )


def refused(exc: Refused, amount: int) -> InsufficientBalance:
    what = "Account balance not enough" if exc.index == 0 else "API key quota not enough"
    return InsufficientBalance(f"{what}: this task needs {from_micro(amount)} credits")
