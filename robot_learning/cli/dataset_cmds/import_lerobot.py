"""``robot-learning dataset import-lerobot``: not built yet in this checkout."""

from __future__ import annotations

from typing import Any

from robot_learning.cli import CLIError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("import-lerobot", help="(not built yet)")
    parser.set_defaults(handler=_run)


def _run(args: Any) -> int:
    raise CLIError("dataset import-lerobot is not built yet")
