"""``kling-gateway`` command line (the command tree is ``cli.tree``).

``main`` checks ``serve``'s ports before importing the tree: a taken port is answered in a fraction
of a second, not after the whole gateway has been imported.
"""

from __future__ import annotations

import sys
from typing import Any

from .early import check_serve_ports


def main() -> None:
    check_serve_ports(sys.argv[1:])
    from .tree import run  # the whole gateway: only once the early check has passed

    run()


def __getattr__(name: str) -> Any:
    """``from kling_gateway.cli import app``, imported late so ``main``'s early check is light."""
    if name == "app":
        from .tree import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
