"""``/admin/v1`` money, prices and models: credit/debit with a note, balance, statement (JSON pages
and CSV), price multiplier; the price table (list, set a row, delete a row); model aliases (list,
map, unmap)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...services import money_admin
from ...services.gateway import Gateway
from .. import openapi_admin as A
from ..envelope import ok
from .admin import PREFIX
from .admin_common import call, guarded, object_with, page, query

_ADJUST = frozenset({"amount", "note"})


class CsvResponse(Response):
    media_type = "text/csv"


def router(gateway: Callable[[], Gateway]) -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["admin: money, prices and models"])

    for verb in ("credit", "debit"):
        _adjust_route(api, gateway, verb)

    @api.get(
        "/users/{name:seg}/balance",
        summary="Credits a user has left",
        openapi_extra=A.op(),
        responses=A.answers(A.BALANCE, "The balance"),
    )
    async def balance(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(money_admin.balance(gw, name)))

    @api.get(
        "/users/{name:seg}/statement",
        summary="A user's ledger entries, newest first, paged",
        openapi_extra=A.op(params=A.PAGING),
        responses=A.answers(A.STATEMENT, "One page of the statement"),
    )
    async def statement(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        number, size = page(query(request))
        return ok(request, await call(money_admin.statement(gw, name, number, size)))

    @api.get(
        "/users/{name:seg}/statement.csv",
        summary="A user's whole statement as CSV (as `kling-gateway money statement` writes it)",
        openapi_extra=A.op(),
        responses=A.CSV_ANSWER,
        response_class=CsvResponse,
    )
    async def statement_csv(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        text = await call(money_admin.statement_csv(gw, name))
        headers = {"Content-Disposition": f'attachment; filename="statement-{_safe(name)}.csv"'}
        return CsvResponse(text, headers=headers)

    @api.put(
        "/users/{name:seg}/multiplier",
        summary="A user's price multiplier (0.8 = 20 % off)",
        openapi_extra=A.op(A.MULTIPLIER),
        responses=A.answers({"type": "object"}, "The multiplier set"),
    )
    async def multiplier(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, frozenset({"multiplier"}))
        return ok(request, await call(money_admin.set_multiplier(gw, name, body.get("multiplier"))))

    @api.get(
        "/prices",
        summary="Every price: model, mode, kind, credits per second",
        openapi_extra=A.op(),
        responses=A.answers(A.many(A.PRICE), "The price table"),
    )
    async def prices(request: Request) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await money_admin.prices(gw))

    @api.put(
        "/prices",
        summary="Set one price row (0 = free)",
        openapi_extra=A.op(A.PRICE),
        responses=A.answers(A.many(A.PRICE), "The price table after the change"),
    )
    async def set_price(request: Request) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, frozenset(A.PRICE["properties"]))
        return ok(request, await call(money_admin.set_price(gw, body)))

    @api.delete(
        "/prices/{model_name:seg}/{mode:seg}/{kind:seg}",
        summary="Delete one price row (the model is then not priced in that mode and kind)",
        openapi_extra=A.op(),
        responses=A.answers(A.many(A.PRICE), "The price table after the change"),
    )
    async def delete_price(request: Request, model_name: str, mode: str, kind: str) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(money_admin.delete_price(gw, model_name, mode, kind)))

    @api.get(
        "/models",
        summary="Public model names, their route and the upstream model each reaches",
        openapi_extra=A.op(),
        responses=A.answers(A.many(A.MODEL), "The models"),
    )
    async def models(request: Request) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await money_admin.models(gw))

    @api.put(
        "/models/{model_name:seg}",
        summary="Map a public name to a model or another alias (refused if it makes a cycle)",
        openapi_extra=A.op(A.MODEL_MAP),
        responses=A.answers(A.many(A.MODEL), "The models after the change"),
    )
    async def map_model(request: Request, model_name: str) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, frozenset({"target"}))
        return ok(request, await call(money_admin.map_model(gw, model_name, body)))

    @api.delete(
        "/models/{model_name:seg}",
        summary="Remove an alias",
        openapi_extra=A.op(),
        responses=A.answers(A.many(A.MODEL), "The models after the change"),
    )
    async def unmap_model(request: Request, model_name: str) -> Response:
        gw = await guarded(gateway, request)
        return ok(request, await call(money_admin.unmap_model(gw, model_name)))

    return api


def _adjust_route(api: APIRouter, gateway: Callable[[], Gateway], verb: str) -> None:
    debit = verb == "debit"

    @api.post(
        f"/users/{{name:seg}}/{verb}",
        name=f"admin_{verb}",
        summary="Take credits from a user (never below zero: 429/1102)"
        if debit
        else "Credit a user",
        openapi_extra=A.op(A.ADJUST),
        responses=A.answers(A.BALANCE, "The balance after it", *((429,) if debit else ())),
    )
    async def adjust(request: Request, name: str) -> Response:
        gw = await guarded(gateway, request)
        body = await object_with(request, _ADJUST)
        work = money_admin.adjust(gw, name, body.get("amount"), body.get("note"), debit=debit)
        return ok(request, await call(work))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]
