"""An operator's day-one mistakes, through the real ``kling-gateway`` process: each is one line on
stderr naming what to change, a non-zero exit (2), quickly, never a traceback or a hang."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

BIN = Path(sys.executable).parent / "kling-gateway"
Env = dict[str, str]
UNREACHABLE = "postgresql+asyncpg://u:pw@127.0.0.1:1/x"  # nothing listens on port 1
TIMEOUT = 15.0  # seconds a command may take


def occupied_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


taken = pytest.fixture(occupied_port)
taken_too = pytest.fixture(occupied_port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Home:
    """A data directory (KGW_HOME) and the environment of a fresh shell pointed at it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KGW_")}
        self.env.update(KGW_HOME=str(path), KGW_SIMULATOR_PORT=str(free_port()))

    def run(
        self, *args: str, timeout: float = TIMEOUT, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args],
            env={**self.env, **env},
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def fails(self, *args: str, naming: str, **env: str) -> str:
        """Runs a command that must fail as an operator error; returns its one line."""
        started = time.monotonic()
        done = self.run(*args, timeout=TIMEOUT, **env)  # named, so no env key can take its place
        assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert naming in lines[0] and "Traceback" not in done.stderr
        assert time.monotonic() - started < 10
        return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


def test_serve_with_the_simulator_port_taken_exits_at_once(home: Home, taken: int) -> None:
    line = home.fails(
        "serve",
        "--port",
        str(free_port()),
        naming="KGW_SIMULATOR_PORT",
        KGW_SIMULATOR_PORT=str(taken),
    )
    assert str(taken) in line
    assert not list(home.path.iterdir())  # nothing written: no database, no key, no half bootstrap


def test_serve_with_the_gateway_port_taken_exits_at_once(home: Home, taken: int) -> None:
    line = home.fails("serve", "--port", str(taken), naming="KGW_PORT")
    assert str(taken) in line and "KGW_SIMULATOR_PORT" not in line
    assert not list(home.path.iterdir())


def test_serve_with_both_ports_taken_names_both(home: Home, taken: int, taken_too: int) -> None:
    sim_port = str(taken_too)
    line = home.fails("serve", "--port", str(taken), naming="KGW_PORT", KGW_SIMULATOR_PORT=sim_port)
    assert "KGW_SIMULATOR_PORT" in line and str(taken_too) in line


EARLY = """
import sys
from kling_gateway.cli import main
sys.argv = ["kling-gateway", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    heavy = [m for m in ("kling_gateway.cli.tree", "sqlalchemy", "fastapi") if m in sys.modules]
    print(exc.code, heavy)
"""


def test_a_taken_port_is_answered_before_the_gateway_is_imported(home: Home, taken: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EARLY, "serve", "--port", str(taken)],
        env=home.env,
        cwd=home.path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.stdout.strip() == "2 []", (done.stdout, done.stderr)
    assert f"port {taken} for the gateway is in use: set KGW_PORT" in done.stderr


def test_serve_workers_with_a_port_taken_exits_at_once(home: Home, taken: int) -> None:
    home.fails("serve", "--workers", "2", "--port", str(taken), naming="KGW_PORT")
    assert not list(home.path.iterdir())


def serve_until_banner(home: Home) -> tuple[str, str]:
    """Start serve, wait for its banner, stop it with Ctrl-C; (stdout, stderr)."""
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(free_port())],
        env=home.env,
        cwd=home.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = ""
    deadline = time.monotonic() + 30
    while "kling-gateway on http" not in out and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
        out += line
    proc.send_signal(signal.SIGINT)
    try:
        rest, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return out + rest, err


def test_first_start_prints_a_key_and_later_starts_say_how_to_get_one(home: Home) -> None:
    first, err = serve_until_banner(home)
    assert "First start" in first and "sk-" in first
    assert "Traceback" not in err  # Ctrl-C stops both servers cleanly
    again, _ = serve_until_banner(home)
    assert "sk-" not in again and "kling-gateway keys create default" in again


@pytest.mark.parametrize(
    ("command", "env", "naming"),
    [
        (["users", "list"], {"KGW_PORT": "eighty"}, "KGW_PORT"),
        (["serve"], {"KGW_PORT": "0"}, "KGW_PORT"),
        (["worker"], {"KGW_KLING_ACCESS_KEY": "ak-only"}, "KGW_KLING_SECRET_KEY"),
        (["serve"], {"KGW_PRICES_FILE": "/nonexistent/prices.json"}, "KGW_PRICES_FILE"),
        (["worker"], {"KGW_MODELS_FILE": "/nonexistent/models.json"}, "KGW_MODELS_FILE"),
        (["db", "upgrade"], {"KGW_MASTER_KEY": "short"}, "KGW_MASTER_KEY"),
        (["worker"], {"KGW_DATABASE_URL": UNREACHABLE}, "KGW_DATABASE_URL"),
        (["serve"], {"KGW_DATABASE_URL": UNREACHABLE}, "KGW_DATABASE_URL"),
    ],
)
def test_start_errors_are_one_line(home: Home, command: list[str], env: Env, naming: str) -> None:
    line = home.fails(*command, naming=naming, **env)
    assert "pw" not in line  # a password in a URL is never echoed


def test_cli_errors_are_one_line(home: Home) -> None:
    assert home.run("db", "upgrade").returncode == 0
    home.fails("users", "list", naming="KGW_MODELS_FILE", KGW_MODELS_FILE="/nonexistent/m.json")
    wrong = Fernet.generate_key().decode()
    home.fails("users", "list", naming="KGW_MASTER_KEY", KGW_MASTER_KEY=wrong)
    home.fails("keys", "list", naming="KGW_DATABASE_URL", KGW_DATABASE_URL=UNREACHABLE)
    (home.path / "kling-gateway.key").unlink()
    home.fails("users", "list", naming="KGW_MASTER_KEY_FILE")
    line = home.fails("serve", naming="KGW_MASTER_KEY_FILE")  # never a new key over old secrets
    assert "missing" in line and not (home.path / "kling-gateway.key").exists()
