"""``robot-learning dataset merge OUT SRC1 SRC2 [...] [--overwrite]``: combine episode stores.

Writes a new store with every committed episode of the sources, in order. The features (and
roles, async streams, fps) must match exactly, otherwise the error names the first mismatching
feature and both specs. Encoded image chunks are copied without re-encoding when the codecs match.
Each episode keeps its metadata; ``source`` records ``<store>#<episode>`` it came from.
"""

from __future__ import annotations

import argparse
from typing import Any

from robot_learning.cli import PROGRESS, CLIError, print_json


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge episode stores with identical features into a new store",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", metavar="OUT", help="path of the new store")
    parser.add_argument("sources", metavar="SRC", nargs="+", help="source stores, in order")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it is a store")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data import StoreError
    from robot_learning.data.merge_split import merge_stores
    from robot_learning.specs import SpecError

    PROGRESS.info("merging %d store(s) into %s", len(args.sources), args.out)
    try:
        stats = merge_stores(args.out, args.sources, overwrite=args.overwrite)
    except (StoreError, SpecError) as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(stats.to_json())
    else:
        print(
            f"wrote {stats.path}: {stats.episodes} episodes, {stats.steps} steps from "
            f"{len(args.sources)} store(s); {stats.chunks_copied} image chunks copied, "
            f"{stats.frames_reencoded} frames re-encoded"
        )
    return 0
