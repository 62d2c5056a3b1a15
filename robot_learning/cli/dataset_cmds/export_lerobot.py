"""``robot-learning dataset export-lerobot STORE OUT_DIR``: write a LeRobotDataset v3.0 directory.

Cameras become H.264 MP4 videos (``--video``, the default, like LeRobot's own recordings) or PNG
image columns in the parquet data (``--images``: lossless, larger, no video decoder needed).
Feature names follow LeRobot's conventions; see docs/lerobot.md for the mapping.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robot_learning.cli import PROGRESS, CLIError, print_json


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export-lerobot",
        help="write a LeRobotDataset v3.0 directory (videos or images)",
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("store", type=Path, help="episode store to export")
    parser.add_argument("out_dir", type=Path, help="LeRobot dataset directory to write")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--video", dest="mode", action="store_const", const="video", help="cameras as MP4 (default)"
    )
    mode.add_argument(
        "--images", dest="mode", action="store_const", const="image", help="cameras as PNG columns"
    )
    parser.set_defaults(mode="video")
    parser.add_argument(
        "--repo-id", default=None, help="dataset name for LeRobotDataset (default local/<store>)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    parser.add_argument(
        "--crf", type=int, default=None, help="H.264 quality 0..51, lower is better (default 23)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data.errors import StoreError
    from robot_learning.data.lerobot_v3 import export_lerobot
    from robot_learning.data.lerobot_video import DEFAULT_CRF, VideoError
    from robot_learning.specs import SpecError

    if args.crf is not None and args.mode != "video":
        raise CLIError("--crf applies to --video exports only")
    crf = DEFAULT_CRF if args.crf is None else args.crf
    if not 0 <= crf <= 51:
        raise CLIError(f"--crf must be in 0..51, got {crf}")

    def progress(done: int, total: int) -> None:
        PROGRESS.info("exported episode %d/%d", done, total)

    try:
        result = export_lerobot(
            args.store,
            args.out_dir,
            mode=args.mode,
            repo_id=args.repo_id,
            overwrite=args.overwrite,
            crf=crf,
            progress=progress,
        )
    except (StoreError, SpecError, VideoError) as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(result.to_json())
    else:
        print(
            f"wrote LeRobot v3.0 dataset {result.out_dir} ({result.mode} mode): "
            f"{result.episodes} episodes, {result.frames} frames, {len(result.tasks)} task(s), "
            f"{result.nbytes / 1e6:.1f} MB in {result.seconds:.1f} s"
        )
        print(f"load it with LeRobotDataset({result.repo_id!r}, root={str(result.out_dir)!r})")
    return 0
