"""``kling-gateway channels …`` in-process against a temp SQLite database."""

from __future__ import annotations

import re

from tests.test_cli import Cli, bare_cli, cli  # noqa: F401 - the fixtures

SECRET = "cli-secret-key-never-printed"


def test_add_list_set_disable_enable(cli: Cli) -> None:  # noqa: F811
    out = cli(
        "channels", "add", "sg", "https://api-singapore.klingai.com",
        "--priority", "2", "--weight", "3", "--models", "kling-v2-6,kling-v3",
        "--map", "kling-v2-6=kling-v2-6", "--cap", "*=5", "--cap", "kling-v3=2",
        KGW_NEW_ACCESS_KEY="ak-cli-0001", KGW_NEW_SECRET_KEY=SECRET,
    ).output  # fmt: skip
    assert "2 / 3" in out and "kling-v2-6, kling-v3" in out and "ak-c…0001" in out
    assert SECRET not in out

    listed = cli("channels", "list").output
    assert "sg" in listed and "simulator" in listed and SECRET not in listed

    out = cli("channels", "set", "sg", "--weight", "9", "--models", "all").output
    assert "2 / 9" in out and "models: all" in out
    assert "disabled" in cli("channels", "disable", "sg").output
    assert re.search(r"state: ok\n", cli("channels", "enable", "sg").output)


def test_keys_and_errors(cli: Cli) -> None:  # noqa: F811
    cli("channels", "add", "sg", "https://example.com", "--api-key", "api-key-abcdef123456")
    out = cli("channels", "key-add", "sg", "--api-key", "api-key-second-7890").output
    first, second = re.findall(r"#(\d+) api-…(?:3456|7890)", out)
    out = cli("channels", "key-remove", "sg", first).output
    assert f"#{first} " not in out and f"#{second} api-…7890" in out

    err = cli("channels", "add", "x", "https://example.com", expect=1).output
    assert "credentials" in err
    err = cli("channels", "set", "nope", "--weight", "1", expect=1).output
    assert "no upstream account named 'nope'" in err
    err = cli("channels", "set", "sg", "--cap", "kling-v2-6=lots", expect=2).output
    assert "--cap" in err
    err = cli("channels", "add", "sg", "https://example.com", "--api-key", "k2", expect=1).output
    assert "exists already" in err
