"""``robot-learning dataset <tool>``: inspect, check, combine and convert episode stores.

Each tool is a module in :mod:`robot_learning.cli.dataset_cmds` with ``add_parser(subparsers)``;
list it in :data:`TOOLS` (the order here is the order in ``--help``).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from robot_learning.cli import ArgumentParser

TOOLS: tuple[str, ...] = (
    "info",
    "verify",
    "merge",
    "split",
    "view",
    "export_lerobot",
    "import_lerobot",
    "import_mcap",
)


def add_parser(subparsers: Any) -> None:
    parser: ArgumentParser = subparsers.add_parser(
        "dataset",
        help="inspect, verify, merge, split, view and convert episode stores",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    for name in TOOLS:
        importlib.import_module(f"robot_learning.cli.dataset_cmds.{name}").add_parser(tools)
