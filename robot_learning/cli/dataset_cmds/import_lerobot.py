"""``robot-learning dataset import-lerobot SRC_DIR OUT_STORE``: read a LeRobotDataset v3.0.

Reads the parquet data and (for video datasets) decodes the MP4s with PyAV, then writes a new
episode store: one episode per LeRobot episode, its task as the episode's task/instruction, the
dataset's fps, and ``timestamp`` as each step's time. A dataset exported by ``export-lerobot``
gets its original feature names, specs and episode metadata back.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robot_learning.cli import PROGRESS, CLIError, print_json

IMAGE_FORMATS = ("jpeg", "png", "jpegxl")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "import-lerobot",
        help="read a LeRobotDataset v3.0 directory into a new episode store",
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src_dir", type=Path, help="LeRobot dataset directory (meta/info.json)")
    parser.add_argument("out_store", type=Path, help="episode store to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument(
        "--image-format", choices=IMAGE_FORMATS, default="jpeg", help="store image codec"
    )
    parser.add_argument("--image-quality", type=int, default=90, help="lossy codec quality 1..100")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data.errors import StoreError
    from robot_learning.data.lerobot_v3 import import_lerobot
    from robot_learning.data.lerobot_video import VideoError
    from robot_learning.specs import SpecError

    if not 1 <= args.image_quality <= 100:
        raise CLIError(f"--image-quality must be in 1..100, got {args.image_quality}")
    if not args.src_dir.is_dir():
        raise CLIError(f"{args.src_dir} is not a directory")

    def progress(done: int, total: int) -> None:
        PROGRESS.info("imported episode %d/%d", done, total)

    try:
        result = import_lerobot(
            args.src_dir,
            args.out_store,
            overwrite=args.overwrite,
            image_format=args.image_format,
            image_quality=args.image_quality,
            progress=progress,
        )
    except (StoreError, SpecError, VideoError) as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(result.to_json())
    else:
        print(
            f"imported {result.episodes} episodes ({result.frames} frames, "
            f"{len(result.tasks)} task(s)) from {result.src_dir} into {result.out_store} "
            f"in {result.seconds:.1f} s"
        )
        if result.skipped:
            print(f"skipped features with no store equivalent: {', '.join(result.skipped)}")
    return 0
