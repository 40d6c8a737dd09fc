"""The listening sockets of ``serve``, bound before anything else happens: a taken port then costs
nothing (no database written, no key printed) and is one line naming the setting to change."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import Settings


@dataclass(frozen=True, slots=True)
class Wanted:
    host: str
    port: int
    setting: str  # what the operator changes when the port is taken
    role: str


def wanted(settings: Settings) -> list[Wanted]:
    """The gateway's socket, then the built-in simulator's when it is in use."""
    out = [Wanted(settings.host, settings.port, "KGW_PORT (or --port)", "the gateway")]
    if settings.use_simulator:
        sim_port = settings.simulator_port
        out.append(Wanted("127.0.0.1", sim_port, "KGW_SIMULATOR_PORT", "the simulator"))
    return out


def _bind(want: Wanted, backlog: int | None) -> socket.socket:
    family = socket.AF_INET6 if ":" in want.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind((want.host, want.port))
        if backlog is not None:  # uvicorn's: connections queue from here on, before it accepts
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _problem(want: Wanted, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {want.port} for {want.role} is in use: set {want.setting} to a free port"
    where = f"{want.host}:{want.port} for {want.role}"
    return f"cannot listen on {where} ({exc.strerror}): check KGW_HOST and {want.setting}"


def probe(wants: list[Wanted]) -> None:
    """Refuse, as ``bind_all`` would, when a port is taken; nothing stays bound. A bind without
    listen takes no connections, and another listener's port still refuses it."""
    for sock in bind_all(wants, backlog=None):
        sock.close()


def bind_all(wants: list[Wanted], *, backlog: int | None = 2048) -> list[socket.socket]:
    """Every socket bound; or none (closing those bound) and one ConfigError naming each failure."""
    bound: list[socket.socket] = []
    problems: list[str] = []
    for want in wants:
        try:
            bound.append(_bind(want, backlog))
        except OSError as exc:
            problems.append(_problem(want, exc))
    if problems:
        for sock in bound:
            sock.close()
        raise ConfigError("; ".join(problems))
    return bound
