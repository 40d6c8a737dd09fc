"""The ``kling-gateway`` command tree: serve, worker, simulator, and the operator's commands.

Every admin command calls the same service functions as HTTP, on a Gateway built from the same
Settings. This module only assembles the command groups; each lives in its own module, helpers in
``common``.
"""

from __future__ import annotations

import logging

import typer

from ..observability.logs import configure_logging
from .channels import channels_app
from .common import OperatorErrors
from .console import console_app
from .db import db_app
from .keys import keys_app
from .models import models_app
from .money import money_app, prices_app
from .processes import serve, simulator, worker
from .tasks import mirror_app, tasks_app
from .users import users_app
from .webhooks import webhooks_app

app = typer.Typer(
    cls=OperatorErrors,
    help="Kling AI text2video gateway.",
    no_args_is_help=True,
    add_completion=False,
)
for command in (serve, worker, simulator):
    app.command()(command)
for group, name in (
    (users_app, "users"),
    (keys_app, "keys"),
    (models_app, "models"),
    (tasks_app, "tasks"),
    (db_app, "db"),
    (webhooks_app, "webhooks"),
    (money_app, "money"),
    (prices_app, "prices"),
    (channels_app, "channels"),
    (mirror_app, "mirror"),
    (console_app, "console"),
):
    app.add_typer(group, name=name)


def run() -> None:
    configure_logging(logging.INFO)  # JSON lines on stderr, secrets and prompts redacted
    app()
