"""``robot-learning dataset import-mcap``: ROS 2 bags (MCAP) -> an episode store.

Why a map file: which topic is which feature, the joint order, the action topic and the clock
are properties of a robot set-up, written once and reused; see docs/mcap_import.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    non_negative_float,
    positive_float,
    print_json,
)

EPILOG = """\
examples:
  robot-learning dataset import-mcap run1.mcap run2.mcap --out data/ur5e \\
      --map policies/mcap_maps/ur5e_realsense.yaml --task "pick the cube"
  robot-learning dataset import-mcap long_session.mcap --out data/ur5e --map MAP.yaml \\
      --episode-gap 2.0 --resume --json
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import-mcap",
        help="import ROS 2 bags (MCAP) into an episode store",
        description=(
            "Import ROS 2 bags (.mcap files or rosbag2 directories) into an episode store.\n"
            "A map YAML says which topic becomes which feature; every feature is resampled\n"
            "onto one control timeline by zero-order hold (the latest sample stamped at or\n"
            "before each tick). Format and semantics: docs/mcap_import.md."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bags", nargs="+", metavar="BAG", help=".mcap file or rosbag2 directory")
    parser.add_argument("--out", required=True, metavar="STORE", help="episode store to write")
    parser.add_argument("--map", required=True, metavar="MAP.yaml", help="topic -> feature map")
    parser.add_argument(
        "--fps",
        type=positive_float,
        metavar="HZ",
        help="control rate (default: the map's fps, else the rate of its clock topic)",
    )
    parser.add_argument("--task", metavar="TEXT", help="episode task (default: the map's task)")
    parser.add_argument(
        "--episode-gap",
        type=non_negative_float,
        metavar="S",
        help="split a bag into episodes where its split_on/clock topic pauses longer than S s",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="append to an existing store (episodes it already holds are skipped)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data.errors import StoreError
    from robot_learning.data.mcap_map import McapImportError
    from robot_learning.specs import SpecError

    try:
        from robot_learning.data.mcap_import import import_bags
    except ImportError as exc:  # rosbags is the one extra dependency of this tool
        raise CLIError(f"dataset import-mcap needs the 'rosbags' package ({exc})") from None

    try:
        result = import_bags(
            args.bags,
            args.out,
            args.map,
            fps=args.fps,
            task=args.task,
            episode_gap=args.episode_gap,
            resume=args.resume,
        )
    except (McapImportError, StoreError, SpecError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    summary = result.to_json()
    if args.json:
        print_json(summary)
        return 0
    PROGRESS.info("imported %d bag(s) into %s", summary["bags"], summary["store"])
    out = sys.stdout
    out.write(
        f"{summary['episodes']} episode(s), {summary['steps']} steps at {summary['fps_hz']:g} Hz"
        f" -> {summary['store']}"
        + (f" ({summary['episodes_skipped']} already there)" if summary["episodes_skipped"] else "")
        + "\n"
    )
    for key, stale in summary["max_staleness_s"].items():
        out.write(f"  max staleness {key}: {stale * 1000:.1f} ms\n")
    for text in summary["warnings"]:
        out.write(f"  skipped {text}\n")
    return 0
