"""A failing multinode test shows what its processes said: each child's log tail is attached to the
failure report (the assertion messages quote only some of them)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.multinode.cluster import Cluster


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(cluster, Cluster):
        report.sections.append((f"multinode logs ({report.when})", cluster.logs()))
    return report
