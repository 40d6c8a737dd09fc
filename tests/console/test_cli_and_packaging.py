"""The operator token from the command line and the first start's banner; the console's files in the
wheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kling_gateway.cli.serve import print_banner
from tests.conftest import make_settings
from tests.test_cli import Cli

TOKEN_RE = re.compile(r"kgw-op-[A-Za-z0-9_\-]{40,}")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A database set up as `serve` leaves it, no stray KGW_* or .env (as tests/test_cli.py
    does)."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("KGW_")]:
        monkeypatch.delenv(name)
    made = Cli(tmp_path)
    made("db", "upgrade")
    return made


def test_console_token_prints_a_new_token_once_replacing_the_old(cli: Cli) -> None:
    first = TOKEN_RE.findall(cli("console", "token").output)
    second = TOKEN_RE.findall(cli("console", "token").output)
    assert len(first) == 1 and len(second) == 1 and first != second
    assert "/console" in cli("console", "token").output


def test_console_token_notes_that_the_env_token_rules(cli: Cli) -> None:
    result = cli("console", "token", KGW_ADMIN_TOKEN="from-env")
    assert TOKEN_RE.search(result.output) and "KGW_ADMIN_TOKEN is set" in result.output


@pytest.mark.parametrize(
    "token,env_token,expected",
    [
        ("kgw-op-" + "x" * 43, False, "Operator token (shown once"),
        (None, True, "sign in with KGW_ADMIN_TOKEN"),
        (None, False, "kling-gateway console token"),
    ],
)
def test_banner_shows_the_console_and_how_to_sign_in(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    token: str | None,
    env_token: bool,
    expected: str,
) -> None:
    settings = make_settings(tmp_path, admin_token="t" if env_token else None)
    print_banner(settings, None, console_token=token)
    out = capsys.readouterr().out
    assert "Operator console: http://127.0.0.1:8000/console" in out and expected in out
    assert (token in out) if token else "kgw-op-" not in out


def test_the_wheel_carries_templates_static_files_and_licences(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            tmp_path,
            ROOT,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("kling_gateway-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    base = "kling_gateway/console/"
    for name in (
        "templates/base.html",
        "templates/task.html",
        "static/console.js",
        "static/console.css",
        "static/vendor/README.md",
        "static/vendor/htmx-2.0.11/htmx.min.js",
        "static/vendor/htmx-2.0.11/LICENSE",
        "static/vendor/uplot-1.6.32/uPlot.iife.min.js",
        "static/vendor/uplot-1.6.32/LICENSE",
    ):
        assert base + name in names, name
    assert "kling_gateway/storage/migrations/versions/0010_console.py" in names
