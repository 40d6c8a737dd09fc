"""Every statement on ``tasks`` is built in one place: task_sql.py, and create_pg.py for the
PostgreSQL one-statement forms of the create path. Others ask the task store (or those builders)."""

from __future__ import annotations

import ast
from pathlib import Path

import kling_gateway

PACKAGE = Path(kling_gateway.__file__).parent
HOMES = {"storage/task_sql.py", "storage/create_pg.py"}


def _imports_tasks_table(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").endswith("tables"):
            continue
        if any(alias.name == "tasks" for alias in node.names):
            return True
    return False


def test_only_the_homes_of_the_tasks_sql_import_the_table() -> None:
    found = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and _imports_tasks_table(path)
    }
    assert found == HOMES
