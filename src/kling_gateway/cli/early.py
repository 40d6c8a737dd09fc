"""``serve``'s ports, checked before anything heavy is imported: a port that another process holds
is one line naming the setting, exit 2, at once. ``serve`` binds for real later (cli/listen.py)."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from ..errors import ConfigError
from ..settings import Settings
from .listen import probe, wanted


def serve_settings(argv: list[str]) -> Settings | None:
    """The settings a single-process ``serve`` would listen with; None for any other command, for
    ``--help``, for ``--workers`` (checked by its own path) or when the settings are invalid (the
    command itself then says so)."""
    if not argv or argv[0] != "serve" or {"--help", "-h"} & set(argv):
        return None
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--host")
    options.add_argument("--port", type=int)
    options.add_argument("--workers", type=int, default=1)
    try:
        given, _ = options.parse_known_args(argv[1:])
        settings = Settings()
    except (SystemExit, ValidationError):
        return None
    if given.workers != 1:
        return None
    updates = {k: v for k, v in (("host", given.host), ("port", given.port)) if v is not None}
    return settings.model_copy(update=updates) if updates else settings


def check_serve_ports(argv: list[str]) -> None:
    settings = serve_settings(argv)
    if settings is None:
        return
    try:
        probe(wanted(settings))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
