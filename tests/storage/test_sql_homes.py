"""Every statement that writes ``tasks`` is built in one place: task_sql.py, and create_pg.py for
the PostgreSQL one-statement forms of the create path. Others ask the task store (or those
builders); read-only views (admin listings, the overview) may select from the table."""

from __future__ import annotations

import ast
from pathlib import Path

import kling_gateway

PACKAGE = Path(kling_gateway.__file__).parent
HOMES = {"storage/task_sql.py", "storage/create_pg.py"}
WRITES = {"insert", "update", "delete"}


def _writes_tasks(path: Path) -> bool:
    """``insert(tasks)``, ``update(tasks)``, ``delete(tasks)`` or ``tasks.update()`` and kin."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name.rsplit("_", 1)[-1] not in WRITES:
            continue
        on_tasks = isinstance(func, ast.Attribute) and ast.unparse(func.value) == "tasks"
        first_is_tasks = bool(node.args) and ast.unparse(node.args[0]) == "tasks"
        if on_tasks or first_is_tasks:
            return True
    return False


def test_only_the_homes_of_the_tasks_sql_write_the_table() -> None:
    found = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts and _writes_tasks(path)
    }
    assert found == HOMES


def test_the_write_finder_sees_each_form(tmp_path: Path) -> None:
    cases = {
        "update(tasks).values(x=1)": True,
        "pg_insert(tasks)": True,
        "tasks.delete()": True,
        "select(tasks)": False,
        "update(users)": False,
    }
    for source, expected in cases.items():
        path = tmp_path / "m.py"
        path.write_text(source + "\n")
        assert _writes_tasks(path) is expected, source
