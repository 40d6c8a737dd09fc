"""A small cluster of real processes for the multinode tests: one ``kling-gateway simulator`` per
upstream Kling account and N ``kling-gateway serve`` children sharing one PostgreSQL database,
driven over loopback.

Real processes rather than in-process apps because the property under test is what survives a
SIGKILL: open transactions, leases and half-finished creates die with the process, which no
in-process fake can reproduce. Every child logs to its own file in ``tmp``, so a failure message can
quote what it said, and ``close()`` ends every child it started (by its own handle, never by name)
even when the test failed. Each child also dies with the test process (``die_with_parent``): a
pytest ended by SIGTERM or SIGKILL runs no teardown, and must not leave gateways behind. Nothing
here imports from ``bench/``: the suite must not depend on the benchmark scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import jwt
from cryptography.fernet import Fernet

BIN = Path(sys.executable).parent / "kling-gateway"
SIM_ACCESS_KEY, SIM_SECRET_KEY = "sim-ak", "sim-sk"
READY_SECONDS = 45.0  # two shared cores, several Python processes importing FastAPI at once
CLI_SECONDS = 60.0
_SK = re.compile(r"\bsk-[A-Za-z0-9_-]+")
_PR_SET_PDEATHSIG = 1
_TEST_PID = os.getpid()
_prctl: Any = ctypes.CDLL(
    None, use_errno=True
).prctl  # looked up here: the forked child only calls it


def die_with_parent() -> None:
    """``preexec_fn`` of every child: the kernel SIGKILLs it when the test process dies, however
    that happens. A parent gone before the prctl took effect would never send it, hence the ppid
    check."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != _TEST_PID:
        os._exit(1)


# The servers (uvicorn) close a connection idle for 5 s; a client pooling it as long may reuse it
# just as the server closes it ("Server disconnected without sending a response"). Expire it well
# before.
CLIENT_KEEPALIVE_SECONDS = 1.0
_STALE = "without sending a response"


def client(max_connections: int = 100) -> httpx.AsyncClient:
    """The tests' HTTP client to the cluster: pooled connections expire before the servers' do."""
    limits = httpx.Limits(
        max_connections=max_connections, keepalive_expiry=CLIENT_KEEPALIVE_SECONDS
    )
    return httpx.AsyncClient(limits=limits)


async def read(http: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """A GET, sent again when the connection it went out on was closed before any answer (a node
    that just restarted or dropped it): a read changes nothing, so repeating it is safe."""
    for attempt in range(3):
        try:
            return await http.get(url, **kwargs)
        except httpx.RemoteProtocolError as exc:
            if _STALE not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_token(ttl: int = 3600) -> str:
    """A JWT for the simulator's well-known pair; PyJWT warns about the short demo secret, which is
    noise here and an error under the suite's ``filterwarnings = error``."""
    now = int(time.time())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(
            {"iss": SIM_ACCESS_KEY, "exp": now + ttl, "nbf": now - 5},
            SIM_SECRET_KEY,
            algorithm="HS256",
        )


def _open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


@dataclass
class Child:
    """One child process; ``start`` again after it died restarts it (on the same port)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    ready_url: str
    proc: asyncio.subprocess.Process | None = None
    pids: list[int] = field(default_factory=list)  # every incarnation, for lease forensics

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        log = _open_log(self.log_path)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()  # the child holds its own copy of the descriptor
        self.pids.append(self.proc.pid)

    async def wait_ready(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(self.ready_url, timeout=2.0)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"{self.name} not ready after {READY_SECONDS:.0f} s:\n{self.log_tail()}"
        )

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its sockets, transactions and leases but changes nothing until
        ``thaw`` (or a SIGKILL, which a stopped process takes at once)."""
        assert self.proc is not None and self.alive, f"{self.name} is not running"
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        if self.alive:
            self.proc.send_signal(signal.SIGCONT)

    def sigkill(self) -> int:
        """Kill without warning (no lifespan shutdown, no lease release); returns the dead pid."""
        assert self.proc is not None and self.alive, f"{self.name} is not running"
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.pid

    async def stop(self, grace: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
        await self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """``simulators`` simulators plus ``nodes`` gateways on one database. ``env`` is what every
    gateway *and* every CLI call gets: the same database URL and master key on every node is the
    deployment contract. The first simulator is the account the KGW_KLING_* settings define; the
    others are separate processes (not accounts of one simulator) so each one's task list and
    counters are one account's alone, and a test adds them with ``kling-gateway channels add`` as an
    operator would."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        *,
        nodes: int = 3,
        simulators: int = 1,
        sim_args: tuple[str, ...] = (),
        gateway_env: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.api_key = ""  # set by create_funded_key
        self.sim_ports = [free_port() for _ in range(simulators)]
        self.ports = [free_port() for _ in range(nodes)]
        self.env = self._base_env(gateway_env or {})
        self.sims = [
            Child(
                f"simulator-{i}",
                [str(BIN), "simulator", "--port", str(port), *sim_args],
                self.env,
                tmp,
                tmp / f"simulator-{i}.log",
                f"{self.sim_url_of(i)}/__sim/stats",
            )
            for i, port in enumerate(self.sim_ports)
        ]
        self.sim = self.sims[0]
        self.gateways = [
            Child(
                f"gateway-{i}",
                [str(BIN), "serve", "--port", str(port)],
                self.env,
                tmp,
                tmp / f"gateway-{i}.log",
                f"http://127.0.0.1:{port}/readyz",
            )
            for i, port in enumerate(self.ports)
        ]

    @property
    def sim_url(self) -> str:
        """The KGW_KLING_* account's simulator."""
        return self.sim_url_of(0)

    def sim_url_of(self, i: int) -> str:
        return f"http://127.0.0.1:{self.sim_ports[i]}"

    def gateway_url(self, node: int) -> str:
        return f"http://127.0.0.1:{self.ports[node]}"

    def _base_env(self, extra: dict[str, str]) -> dict[str, str]:
        # Inherited KGW_* variables (a developer's shell, CI) must not leak into the children.
        env = {k: v for k, v in os.environ.items() if not k.startswith("KGW_")}
        env.update(
            {
                "KGW_DATABASE_URL": self.database_url,
                "KGW_MASTER_KEY": Fernet.generate_key().decode(),
                "KGW_MASTER_KEY_FILE": str(self.tmp / "unused.key"),
                "KGW_UPSTREAM": "kling",
                "KGW_KLING_BASE_URL": self.sim_url,
                "KGW_KLING_ACCESS_KEY": SIM_ACCESS_KEY,
                "KGW_KLING_SECRET_KEY": SIM_SECRET_KEY,
                "KGW_HOST": "127.0.0.1",
                **extra,
            }
        )
        return env

    async def cli(self, *args: str) -> str:
        """Run ``kling-gateway ARGS`` on the cluster's database; its stdout, or an assertion."""
        proc = await asyncio.create_subprocess_exec(
            str(BIN),
            *args,
            env=self.env,
            cwd=self.tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), CLI_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.communicate()
            raise AssertionError(f"kling-gateway {' '.join(args)} timed out") from None
        text = out.decode(errors="replace")
        assert proc.returncode == 0, f"kling-gateway {' '.join(args)} failed:\n{text}"
        return text

    async def create_funded_key(self, user: str, credits: str) -> str:
        """The operator's runbook for a new client, via the CLI against the cluster's database."""
        await self.cli("users", "create", user)
        found = _SK.search(await self.cli("keys", "create", user))
        assert found, "keys create printed no sk- key"
        await self.cli("money", "credit", user, credits, "--note", "multinode test")
        self.api_key = found.group(0)
        return self.api_key

    async def start_gateway(self, node: int, client: httpx.AsyncClient) -> None:
        child = self.gateways[node]
        await child.start()
        await child.wait_ready(client)

    async def close(self) -> None:
        """End every child this cluster started, gateways first (they talk to the simulators)."""
        await asyncio.gather(*(g.stop() for g in self.gateways), return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in self.sims), return_exceptions=True)

    def logs(self) -> str:
        children = [*self.sims, *self.gateways]
        return "\n".join(f"--- {c.name} (pids {c.pids})\n{c.log_tail(15)}" for c in children)
