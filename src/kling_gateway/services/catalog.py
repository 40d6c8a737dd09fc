"""Which public model names the gateway offers and what each resolves to upstream.

A route maps a public name to a target that is either an upstream model of the capability table or
another public name (an alias); chains are followed, and a cycle or a dead end is refused when the
operator sets the route, so resolution at request time cannot fail in a new way.
"""

from __future__ import annotations

from ..domain.models import CapabilityTable, ModelCapabilities
from ..errors import ConfigError

MAX_CHAIN = 16


def resolve_chain(name: str, routes: dict[str, str], table: CapabilityTable) -> str:
    """Follow aliases from ``name`` to an upstream model name; ConfigError on a cycle or dead
    end."""
    seen = [name]
    current = name
    while current in routes and routes[current] != current:
        current = routes[current]
        if current in seen:
            raise ConfigError(f"model route cycle: {' -> '.join([*seen, current])}")
        seen.append(current)
        if len(seen) > MAX_CHAIN:
            raise ConfigError(f"model route chain from {name!r} is longer than {MAX_CHAIN}")
    if current not in table:
        raise ConfigError(
            f"model {name!r} resolves to {current!r}, which is not in the capability table "
            f"(known: {', '.join(table.names())})"
        )
    return current


def check_routes(routes: dict[str, str], table: CapabilityTable) -> dict[str, str]:
    """Every public name resolved once; returns public → upstream."""
    return {name: resolve_chain(name, routes, table) for name in routes}


class Catalog:
    """An immutable snapshot; the app swaps in a new one when routes change."""

    __slots__ = ("_resolved", "routes", "table")

    def __init__(self, table: CapabilityTable, routes: dict[str, str] | None = None) -> None:
        self.table = table
        self.routes = dict(routes or {})
        resolved = {name: name for name in table.names()}
        resolved.update(check_routes(self.routes, table))
        self._resolved = resolved

    def resolve(self, public_name: str) -> tuple[str, ModelCapabilities] | None:
        upstream = self._resolved.get(public_name)
        if upstream is None:
            return None
        caps = self.table.get(upstream)
        return (upstream, caps) if caps is not None else None

    def route_of(self, public_name: str) -> list[str]:
        """The names after ``public_name`` on its route, ending at the upstream model (empty for
        an upstream model itself): an alias without a price of its own is priced as the first."""
        names: list[str] = []
        current = public_name
        while current in self.routes and self.routes[current] != current:
            current = self.routes[current]
            names.append(current)
        return names

    def public_names(self) -> list[str]:
        return sorted(self._resolved)

    def describe(self) -> list[tuple[str, str, str]]:
        """(public name, route target, upstream model) rows for humans."""
        return [(n, self.routes.get(n, n), self._resolved[n]) for n in self.public_names()]
