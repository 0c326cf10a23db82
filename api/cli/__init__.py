"""The ``huegis`` command line (typer + rich): one module per command group.

``api.cli:app`` is the entry point; importing the group modules registers their commands.
"""

from __future__ import annotations

import sys

from api.cli import auth, data, db, maps, serve, tiles  # noqa: F401  (register commands)
from api.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
