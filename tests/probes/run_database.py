"""Run by tests/test_postgres_run.py in a pytest of its own (not collected: no ``test_`` file name):
it makes that run's database and writes its URL to the file named by KGW_TEST_PROBE_OUT."""

from __future__ import annotations

import os
from pathlib import Path

from tests.postgres import run_database


async def test_write_the_run_database_url() -> None:
    url = await run_database()
    Path(os.environ["KGW_TEST_PROBE_OUT"]).write_text(url)  # noqa: ASYNC240 - a few bytes, once
