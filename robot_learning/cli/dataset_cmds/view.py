"""``robot-learning dataset view STORE --episode K``: watch a stored episode.

Writes an mp4 with the episode's image streams side by side (depth colourized, a progress bar
coloured by success), one frame per control step; ``--rerun F.rrd`` also (or instead) writes a
Rerun recording with images, low-dim streams and actions on their stored timestamps (needs the
optional ``rerun-sdk`` package).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from robot_learning.cli import PROGRESS, CLIError, positive_float, positive_int, print_json


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "view",
        help="render a stored episode to an mp4 (and optionally a Rerun .rrd)",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("store", metavar="STORE", help="path of the episode store")
    parser.add_argument("--episode", type=int, required=True, metavar="K", help="episode index")
    parser.add_argument(
        "--out", metavar="F.mp4", help="video path (default: <store>_episode<K>.mp4 here)"
    )
    parser.add_argument("--keys", metavar="K1,K2", help="features to show (default: all images)")
    parser.add_argument("--fps", type=positive_float, help="video frame rate (default: store fps)")
    parser.add_argument("--scale", type=positive_int, help="integer upscale (default: auto)")
    parser.add_argument("--rerun", metavar="F.rrd", help="also write a Rerun recording")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data import EpisodeStore, StoreError
    from robot_learning.data.video import write_episode_video

    keys = [k.strip() for k in args.keys.split(",") if k.strip()] if args.keys else None
    result: dict[str, Any] = {}
    try:
        with EpisodeStore.open(args.store, "r") as store:
            n = store.n_episodes
            if not 0 <= args.episode < n:
                raise CLIError(
                    f"--episode {args.episode} does not exist: {store.root} has {n} episode(s)"
                    + (f" (0..{n - 1})" if n else "")
                )
            if args.out is not None or args.rerun is None:
                out = args.out or f"{Path(args.store).resolve().name}_episode{args.episode}.mp4"
                video = write_episode_video(
                    store, args.episode, out, keys=keys, fps=args.fps, scale=args.scale
                )
                result["video"] = video.to_json()
            if args.rerun is not None:
                from robot_learning.data.rerun_view import export_rerun

                result["rerun"] = export_rerun(store, args.episode, args.rerun, keys=keys)
    except StoreError as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(result)
        return 0
    if "video" in result:
        v = result["video"]
        print(
            f"wrote {v['path']}: {v['frames']} frames, {v['width_px']}x{v['height_px']} px at "
            f"{v['fps']:g} fps ({'+'.join(v['keys'])})"
        )
    if "rerun" in result:
        PROGRESS.debug("rerun export: %s", result["rerun"])
        print(f"wrote {result['rerun']['path']}: {result['rerun']['rows']} rows")
    return 0
