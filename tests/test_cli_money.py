"""The operator's money commands: credit, debit (never below zero), statement CSV, prices."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kling_gateway.cli import app


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    env = {
        "KGW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/m.db",
        "KGW_MASTER_KEY_FILE": str(tmp_path / "m.key"),
        "KGW_UPSTREAM": "simulator",
    }
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.output

    assert invoke("db", "upgrade")[0] == 0  # only serve, worker and db upgrade create a database
    return invoke


def test_credit_debit_statement(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("users", "create", "dora")[0] == 0
    code, out = run("money", "credit", "dora", "12.5", "--note", "welcome")
    assert code == 0 and "balance of dora: 12.5" in out
    code, out = run("money", "debit", "dora", "2.5")
    assert code == 0 and "balance of dora: 10" in out
    code, out = run("money", "debit", "dora", "10.000001")
    assert code == 1 and "not enough" in out
    assert "dora: 10 credits" in run("money", "balance", "dora")[1]
    code, _ = run("money", "statement", "dora", "--csv", str(tmp_path / "s.csv"))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert [(r["kind"], r["amount"], r["note"]) for r in rows] == [
        ("credit", "12.5", "welcome"),
        ("debit", "-2.5", ""),
    ]
    assert run("money", "credit", "nobody", "1")[0] == 1
    assert run("money", "credit", "dora", "-1")[0] != 0


def test_prices_set_and_list(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = run("prices", "list")
    assert code == 0 and "kling-v3" in out
    assert run("prices", "set", "my-model", "*", "silent", "0.25")[0] == 0
    assert "my-model" in run("prices", "list")[1]
    assert run("prices", "set", "m", "std", "loud", "1")[0] != 0
    (tmp_path / "p.json").write_text('{"kling-v1": {"std": {"silent": "0.1"}}}')
    code, out = run("prices", "import", str(tmp_path / "p.json"))
    assert code == 0 and "1 prices" in out
    listed = run("prices", "list")[1]
    assert "kling-v1" in listed and "kling-v3" not in listed


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        (("kling-v3", "4k", "silent"), "mode '4k' is not among the modes of kling-v3 (std, pro)"),
        (("kling-v3", "turbo", "silent"), "mode 'turbo' is not among the modes of kling-v3"),
        (("kling-v1", "std", "sound"), "kling-v1 has no sound (sound: false)"),
        (("kling-v1-6", "*", "voice"), "kling-v1-6 has no sound (sound: false)"),
        (("kling-v2-6", "std", "sound"), "sound on kling-v2-6 needs mode 'pro' (sound_requires"),
        (("kling-v2-master", "pro", "silent"), "kling-v2-master has no mode choice"),
        (("my-fast", "pro", "sound"), "kling-v2-5-turbo has no sound"),  # an alias: its target's
    ],
)
def test_prices_set_refuses_what_the_model_cannot_serve(  # type: ignore[no-untyped-def]
    run, args: tuple[str, str, str], rule: str
) -> None:
    assert run("models", "map", "my-fast", "kling-v2-5-turbo")[0] == 0
    before = run("prices", "list")[1]
    code, out = run("prices", "set", *args, "1")
    assert code == 2, out  # an operator error: one line, exit 2
    assert f"prices set {' '.join(args)}: no task can be billed at it: {rule}" in out
    assert "Traceback" not in out
    assert run("prices", "list")[1] == before  # nothing stored


def test_prices_set_accepts_what_the_model_serves(run) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ("kling-v3", "pro", "voice"),
        ("kling-v2-6", "pro", "sound"),
        ("kling-v2-6", "*", "sound"),
        ("kling-v2-master", "*", "silent"),
        ("kling-v2-master", "std", "silent"),
    ):
        code, out = run("prices", "set", *args, "1.5")
        assert code == 0 and "note:" not in out, out
    code, out = run("prices", "set", "house-model", "std", "silent", "1")
    assert code == 0 and "no model 'house-model' is offered yet" in out
    code, out = run("prices", "set", "kling-v3", "std", "loud", "1")
    assert code == 2 and "use silent, sound or voice" in out and "Traceback" not in out
