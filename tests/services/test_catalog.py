"""Public model names → upstream models: identity names, alias chains, and the routes refused up
front."""

from __future__ import annotations

import pytest

from kling_gateway.domain.models import DEFAULT_CAPABILITIES
from kling_gateway.errors import ConfigError
from kling_gateway.services.catalog import MAX_CHAIN, Catalog, check_routes, resolve_chain

TABLE = DEFAULT_CAPABILITIES
OFFICIAL = TABLE.names()


def chain(length: int, target: str = "kling-v3") -> dict[str, str]:
    """a0 -> a1 -> … -> a{length-1} -> target: ``length`` hops."""
    names = [f"a{i}" for i in range(length)]
    return dict(zip(names, [*names[1:], target], strict=True))


@pytest.mark.parametrize("name", OFFICIAL)
def test_identity_names_resolve_to_themselves(name: str) -> None:
    assert resolve_chain(name, {}, TABLE) == name
    hit = Catalog(TABLE).resolve(name)
    assert hit is not None
    assert hit[0] == name
    assert hit[1] is TABLE[name]


@pytest.mark.parametrize(
    ("routes", "name", "expected"),
    [
        ({"fast": "kling-v2-5-turbo"}, "fast", "kling-v2-5-turbo"),
        ({"a": "b", "b": "kling-v3"}, "a", "kling-v3"),
        ({"a": "b", "b": "kling-v3"}, "b", "kling-v3"),
        ({"a": "b", "b": "c", "c": "kling-v1"}, "a", "kling-v1"),
        ({"kling-v3": "kling-v3"}, "kling-v3", "kling-v3"),  # self-loop on a table name is identity
        ({"kling-v1": "kling-v3"}, "kling-v1", "kling-v3"),  # a route may shadow a table name
        ({"a": "kling-v1", "kling-v1": "kling-v3"}, "a", "kling-v3"),  # and chains pass through it
        ({"unrelated": "kling-v3"}, "kling-v2-6", "kling-v2-6"),
    ],
)
def test_alias_chains(routes: dict[str, str], name: str, expected: str) -> None:
    assert resolve_chain(name, routes, TABLE) == expected


@pytest.mark.parametrize(
    ("routes", "name", "match"),
    [
        ({"a": "b", "b": "a"}, "a", "cycle: a -> b -> a"),
        ({"a": "b", "b": "a"}, "b", "cycle: b -> a -> b"),
        ({"x": "a", "a": "b", "b": "a"}, "x", "cycle: x -> a -> b -> a"),
        ({"a": "b", "b": "c", "c": "a"}, "a", "cycle"),
        ({"a": "a"}, "a", "not in the capability table"),  # self-loop on an unknown name: dead end
        ({"a": "kling-v9"}, "a", "resolves to 'kling-v9'"),
        ({"a": "b"}, "a", "resolves to 'b'"),
        ({"a": "b", "b": "KLING-V3"}, "a", "not in the capability table"),
        ({}, "kling-v4", "not in the capability table"),
    ],
)
def test_bad_routes_raise_config_error(routes: dict[str, str], name: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_chain(name, routes, TABLE)


def test_dead_end_message_lists_known_models() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_chain("a", {"a": "nope"}, TABLE)
    assert all(name in str(info.value) for name in OFFICIAL)


@pytest.mark.parametrize(
    ("hops", "ok"), [(1, True), (MAX_CHAIN - 1, True), (MAX_CHAIN, False), (40, False)]
)
def test_chain_length_limit(hops: int, ok: bool) -> None:
    routes = chain(hops)
    if ok:
        assert resolve_chain("a0", routes, TABLE) == "kling-v3"
    else:
        with pytest.raises(ConfigError, match=f"longer than {MAX_CHAIN}"):
            resolve_chain("a0", routes, TABLE)


def test_check_routes_resolves_every_public_name() -> None:
    routes = {"a": "b", "b": "kling-v3", "fast": "kling-v2-5-turbo"}
    assert check_routes(routes, TABLE) == {
        "a": "kling-v3",
        "b": "kling-v3",
        "fast": "kling-v2-5-turbo",
    }
    assert check_routes({}, TABLE) == {}


@pytest.mark.parametrize(
    "routes",
    [{"ok": "kling-v3", "bad": "nope"}, {"ok": "kling-v3", "a": "b", "b": "a"}, chain(MAX_CHAIN)],
)
def test_check_routes_and_catalog_refuse_any_bad_route(routes: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        check_routes(routes, TABLE)
    with pytest.raises(ConfigError):
        Catalog(TABLE, routes)


def test_catalog_resolve_and_public_names() -> None:
    routes = {"hd": "fast", "fast": "kling-v2-5-turbo"}
    catalog = Catalog(TABLE, routes)
    assert catalog.public_names() == sorted([*OFFICIAL, "hd", "fast"])
    hit = catalog.resolve("hd")
    assert hit is not None and hit == ("kling-v2-5-turbo", TABLE["kling-v2-5-turbo"])
    assert catalog.resolve("nope") is None
    assert catalog.resolve("") is None
    assert catalog.resolve("KLING-V3") is None


def test_catalog_copies_routes() -> None:
    routes = {"fast": "kling-v2-5-turbo"}
    catalog = Catalog(TABLE, routes)
    routes["fast"] = "kling-v3"
    routes["new"] = "kling-v3"
    assert catalog.routes == {"fast": "kling-v2-5-turbo"}
    assert catalog.resolve("new") is None
    assert Catalog(TABLE).routes == {}
    assert Catalog(TABLE, None).public_names() == sorted(OFFICIAL)


def test_describe_rows() -> None:
    catalog = Catalog(TABLE, {"a": "b", "b": "kling-v3", "kling-v1": "kling-v1-6"})
    rows = catalog.describe()
    assert [r[0] for r in rows] == catalog.public_names()
    by_name = {r[0]: r for r in rows}
    assert by_name["a"] == ("a", "b", "kling-v3")
    assert by_name["b"] == ("b", "kling-v3", "kling-v3")
    assert by_name["kling-v1"] == ("kling-v1", "kling-v1-6", "kling-v1-6")
    assert by_name["kling-v2-6"] == ("kling-v2-6", "kling-v2-6", "kling-v2-6")
    assert len(rows) == len(OFFICIAL) + 2


def test_catalog_over_a_smaller_table() -> None:
    small = TABLE.with_overrides({"house-model": {"modes": ["std"], "durations": [5]}})
    catalog = Catalog(small, {"house": "house-model"})
    hit = catalog.resolve("house")
    assert hit is not None and hit[0] == "house-model"
    assert hit[1].durations == frozenset({5})
    with pytest.raises(ConfigError):
        Catalog(TABLE, {"house": "house-model"})  # not in the default table


def test_route_of_lists_the_names_an_alias_is_priced_through() -> None:
    catalog = Catalog(TABLE, {"hd": "fast", "fast": "kling-v2-5-turbo", "kling-v1": "kling-v1-6"})
    assert catalog.route_of("hd") == ["fast", "kling-v2-5-turbo"]
    assert catalog.route_of("fast") == ["kling-v2-5-turbo"]
    assert catalog.route_of("kling-v1") == ["kling-v1-6"]  # a shadowed table name: its target
    assert catalog.route_of("kling-v3") == []
    assert catalog.route_of("nope") == []
