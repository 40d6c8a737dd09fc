"""Operator use cases (users, keys, model routes, task inspection), shared by the CLI and the admin
API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..domain.shape import storable
from ..domain.task import TaskStatus
from ..errors import ConfigError
from ..storage.accounts import AlreadyExists, KeyRecord, User
from ..storage.task_lookups import by_external_id_of_any_user
from ..storage.tasks import TaskRecord
from .auth import new_aksk, new_sk
from .catalog import Catalog
from .gateway import Gateway
from .money import adjust

BOOTSTRAP_USER = "default"
STATUSES = tuple(s.value for s in TaskStatus)
_AMBIGUOUS_SHOWN = 20  # users named in an "external id of several users" refusal


class AdminError(Exception):
    """An operator request that cannot be done; the message says why."""


class AdminNotFound(AdminError):
    """What the request names does not exist (HTTP: 404 rather than 400)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: int
    user: str
    prefix: str
    api_key: str | None = None  # sk-… (shown once)
    access_key: str | None = None
    secret_key: str | None = None  # shown once


async def create_user(gw: Gateway, name: str) -> User:
    if not name or len(name) > 64:
        raise AdminError("user name must be 1–64 characters")
    try:
        return await gw.accounts.create_user(name, gw.now_ms())
    except AlreadyExists as exc:
        raise AdminError(str(exc)) from exc


async def _user(gw: Gateway, name: str) -> User:
    # PostgreSQL text cannot hold NUL: no user has it in their name, and the query would fail on it.
    user = None if "\x00" in name else await gw.accounts.get_user(name)
    if user is None:
        raise AdminNotFound(f"no user named {name!r}")
    return user


async def create_key(
    gw: Gateway,
    user_name: str,
    *,
    name: str = "",
    aksk: bool = False,
    models: list[str] | None = None,
    expires_days: float | None = None,
) -> IssuedKey:
    user = await _user(gw, user_name)
    if models:
        unknown = [m for m in models if gw.catalog.resolve(m) is None]
        if unknown:
            raise AdminError(f"unknown model(s): {', '.join(unknown)}")
    now = gw.now_ms()
    expires_at = now + int(expires_days * 86_400_000) if expires_days is not None else None
    if aksk:
        access_key, secret = new_aksk()
        issued = IssuedKey(0, user.name, access_key, access_key=access_key, secret_key=secret)
        stored = {"kind": "aksk", "access_key": access_key, "secret_enc": gw.box.encrypt(secret)}
    else:
        key, prefix, digest = new_sk()
        issued = IssuedKey(0, user.name, prefix, api_key=key)
        stored = {"kind": "sk", "key_hash": digest}
    key_id = await gw.accounts.add_key(
        user_id=user.id,
        name=name,
        prefix=issued.prefix,
        now_ms=now,
        allowed_models=models,
        expires_at=expires_at,
        **stored,
    )
    return dataclasses.replace(issued, id=key_id)


async def list_keys(gw: Gateway, user_name: str | None = None) -> list[KeyRecord]:
    user_id = (await _user(gw, user_name)).id if user_name else None
    return await gw.accounts.list_keys(user_id)


async def revoke_key(gw: Gateway, key_id: int) -> None:
    if not await gw.accounts.set_key_disabled(key_id, True):
        raise AdminError(f"no key with id {key_id}")
    gw.auth.forget()


async def bootstrap(gw: Gateway) -> IssuedKey | None:
    """First start only: a user and one key, so a fresh install can be called at once. When several
    nodes start together on an empty database one of them bootstraps; the others find the user
    taken."""
    if await gw.accounts.list_users():
        return None
    try:
        user = await gw.accounts.create_user(BOOTSTRAP_USER, gw.now_ms())
    except AlreadyExists:
        return None
    if gw.money is not None and gw.settings.bootstrap_credits not in ("", "0"):
        await adjust(
            gw, user.id, gw.settings.bootstrap_credits, debit=False, note="first-start credit"
        )
    return await create_key(gw, BOOTSTRAP_USER, name="bootstrap")


async def list_models(gw: Gateway) -> list[tuple[str, str, str]]:
    await gw.refresh_catalog()
    return gw.catalog.describe()


async def map_model(gw: Gateway, public_name: str, target: str) -> str:
    """Route ``public_name`` to ``target``; refused (nothing stored) if it would make a cycle or
    dead end."""
    routes = await gw.upstreams.routes()
    routes[public_name] = target
    try:
        catalog = Catalog(gw.catalog.table, routes)
    except ConfigError as exc:
        raise AdminError(str(exc)) from exc
    await gw.upstreams.set_route(public_name, target, gw.now_ms())
    gw.catalog = catalog
    resolved = catalog.resolve(public_name)
    assert resolved is not None
    return resolved[0]


async def unmap_model(gw: Gateway, public_name: str) -> None:
    routes = await gw.upstreams.routes()
    if public_name not in routes:
        raise AdminError(f"{public_name!r} has no route")
    del routes[public_name]
    try:
        catalog = Catalog(gw.catalog.table, routes)
    except ConfigError as exc:
        raise AdminError(f"cannot remove {public_name!r}: {exc}") from exc
    await gw.upstreams.delete_route(public_name)
    gw.catalog = catalog


def check_status(status: str | None) -> str | None:
    """A status filter must name a status: a typo would otherwise list nothing, which reads as
    "no such tasks"."""
    if status is not None and status not in STATUSES:
        allowed = ", ".join(STATUSES)
        raise AdminError(f"status: {status!r} is not a task status (allowed: {allowed})")
    return status


async def list_tasks(
    gw: Gateway, *, limit: int = 50, status: str | None = None, user_name: str | None = None
) -> list[TaskRecord]:
    check_status(status)
    user_id = (await _user(gw, user_name)).id if user_name else None
    return await gw.tasks.list_all(limit, status, user_id)


async def user_names(gw: Gateway) -> dict[int, str]:
    return {u.id: u.name for u in await gw.accounts.list_users()}


async def show_task(gw: Gateway, ident: str, user_name: str | None = None) -> TaskRecord:
    """A task by our id or, as the client API finds it, by the client's ``external_task_id``. That
    id is unique per user only: with ``user_name``, that user's; else it must match one task."""
    # No stored id holds NUL (PostgreSQL text cannot), and the query would fail on it there.
    if storable(ident):
        found = await (_users_task(gw, ident, user_name) if user_name else _any_task(gw, ident))
        if found is not None:
            return found
    whose = f" of user {user_name!r}" if user_name else ""
    raise AdminNotFound(f"no task {ident!r}{whose} (by task id or external_task_id)")


async def _users_task(gw: Gateway, ident: str, user_name: str) -> TaskRecord | None:
    user = await _user(gw, user_name)
    record = await gw.tasks.get(ident)
    if record is not None and record.user_id == user.id:
        return record
    return await gw.tasks.by_external_id(user.id, ident)


async def _any_task(gw: Gateway, ident: str) -> TaskRecord | None:
    record = await gw.tasks.get(ident)
    if record is not None:
        return record
    matches = await by_external_id_of_any_user(gw.engine, ident, _AMBIGUOUS_SHOWN + 1)
    if len(matches) <= 1:
        return matches[0] if matches else None
    names = await user_names(gw)
    listed = ", ".join(names.get(t.user_id, str(t.user_id)) for t in matches[:_AMBIGUOUS_SHOWN])
    more = ", …" if len(matches) > _AMBIGUOUS_SHOWN else ""
    raise AdminError(
        f"external_task_id {ident!r} names tasks of several users ({listed}{more}); "
        "name the user (--user NAME, or ?user=NAME on the admin API)"
    )
