"""Routes of every kind beyond text2video: ``POST /v1/videos/<kind>``, ``GET …/<kind>`` (list) and
``GET …/<kind>/{task_id}``; identify-face answers at once and has no task to read back.

A task is found only under the path of the kind that created it: under another kind's path it
is unknown (1203), as for any id Kling does not know.
"""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kling_gateway.domain.kinds.registry import KINDS, Kind

from .core import Simulator
from .envelope import SimFailure, fail, ok
from .kinds import KindTask, check_body
from .prologue import after_create, begin, json_body, maybe_get_error, page_params
from .sources import identify_face, plan
from .store import TEXT2VIDEO


class KindHandlers:
    def __init__(self, sim: Simulator, kind: Kind[Any]) -> None:
        self.sim = sim
        self.kind = kind
        self._make = functools.partial(KindTask, kind=kind.name)

    async def create(self, request: Request) -> Response:
        sim = self.sim
        try:
            account = await begin(sim, request)
            body = await json_body(request)
            checked = check_body(self.kind, body)
            assert isinstance(body, dict)  # the validator refuses anything else
            task = sim.create_task(account, plan(sim, account, checked, body), self._make)
        except SimFailure as failure:
            return fail(failure)
        late = await after_create(sim)
        return fail(late) if late is not None else ok(task.create_view())

    async def identify(self, request: Request) -> Response:
        sim = self.sim
        try:
            account = await begin(sim, request)
            checked = check_body(self.kind, await json_body(request))
            return ok(identify_face(sim, account, checked))
        except SimFailure as failure:
            return fail(failure)

    async def query(self, request: Request) -> Response:
        try:
            account = await begin(self.sim, request)
            maybe_get_error(self.sim)
            task = self.sim.store.find(account, request.path_params["task_id"])
            if task is None or task.kind != self.kind.name:
                raise SimFailure(1203, "task does not exist")
        except SimFailure as failure:
            return fail(failure)
        return ok(task.wire())

    async def list_tasks(self, request: Request) -> Response:
        try:
            account = await begin(self.sim, request)
            maybe_get_error(self.sim)
            page_num, page_size = page_params(request)
        except SimFailure as failure:
            return fail(failure)
        tasks = self.sim.store.page(account, page_num, page_size, self.kind.name)
        return ok([task.wire() for task in tasks])


def kind_routes(sim: Simulator) -> list[Route]:
    """Every registered kind but text2video, whose routes the app keeps on its own handlers."""
    routes: list[Route] = []
    for kind in KINDS.values():
        if kind.name == TEXT2VIDEO:
            continue
        h = KindHandlers(sim, kind)
        if kind.synchronous:
            routes.append(Route(kind.path, h.identify, methods=["POST"]))
            continue
        routes += [
            Route(kind.path, h.create, methods=["POST"]),
            Route(kind.path, h.list_tasks, methods=["GET"]),
            Route(kind.path + "/{task_id}", h.query, methods=["GET"]),
        ]
    return routes
