"""``robot-learning dataset split``: train/val split, or extract a subset, into new stores.

``split STORE --out-train A --out-val B (--val-fraction F | --val-episodes 3,7,9) [--seed S]``
writes two stores (episodes keep their order; the same seed gives the same split).
``split STORE --out C --episodes 0:10,15`` extracts the selected episodes (Python slice syntax,
end exclusive) into one store. The source store is never modified.
"""

from __future__ import annotations

import argparse
from typing import Any

from robot_learning.cli import PROGRESS, CLIError, print_json


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "split",
        help="split a store into train/val stores, or extract episodes into a new store",
        description=__doc__.splitlines()[0].replace("``", ""),
        epilog=__doc__.split("\n\n", 1)[1].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("store", metavar="STORE", help="path of the source store")
    parser.add_argument("--out-train", metavar="A", help="train store to write")
    parser.add_argument("--out-val", metavar="B", help="validation store to write")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--val-fraction", type=float, metavar="F", help="fraction in (0, 1)")
    how.add_argument("--val-episodes", metavar="LIST", help="validation episodes, e.g. 3,7,9")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (0)")
    parser.add_argument("--out", metavar="C", help="with --episodes: the store to extract into")
    parser.add_argument("--episodes", metavar="SEL", help="episodes to extract, e.g. 0:10,15")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that are stores")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data import EpisodeStore, StoreError
    from robot_learning.data.merge_split import (
        extract_episodes,
        parse_episode_selection,
        split_store,
    )

    extract = args.out is not None or args.episodes is not None
    split = any(
        v is not None for v in (args.out_train, args.out_val, args.val_fraction, args.val_episodes)
    )
    if extract == split:
        raise CLIError(
            "use either --out-train A --out-val B with --val-fraction/--val-episodes, "
            "or --out C --episodes SEL"
        )
    try:
        n = EpisodeStore.open(args.store, "r").n_episodes
        if extract:
            if args.out is None or args.episodes is None:
                raise CLIError("extracting needs both --out C and --episodes SEL")
            picks = parse_episode_selection(args.episodes, n)
            PROGRESS.info("extracting %d episode(s) into %s", len(picks), args.out)
            stats = extract_episodes(args.store, args.out, picks, overwrite=args.overwrite)
            result: dict[str, Any] = {"out": stats.to_json()}
        else:
            if args.out_train is None or args.out_val is None:
                raise CLIError("a split needs both --out-train A and --out-val B")
            if args.val_fraction is None and args.val_episodes is None:
                raise CLIError("a split needs --val-fraction F or --val-episodes LIST")
            val = (
                parse_episode_selection(args.val_episodes, n)
                if args.val_episodes is not None
                else None
            )
            train_stats, val_stats = split_store(
                args.store,
                args.out_train,
                args.out_val,
                val_fraction=args.val_fraction,
                val_episodes=val,
                seed=args.seed,
                overwrite=args.overwrite,
            )
            result = {"train": train_stats.to_json(), "val": val_stats.to_json()}
    except StoreError as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(result)
        return 0
    for name, part in result.items():
        picked = [e["episode"] for e in part["source_episodes"]]
        print(f"{name}: {part['path']}: {part['episodes']} episodes {_compact(picked)}")
    return 0


def _compact(indices: list[int]) -> str:
    """[0,1,2,5,7,8] -> '0:3,5,7:9' (the selection syntax)."""
    parts, i = [], 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}:{indices[j] + 1}")
        i = j + 1
    return ",".join(parts) or "-"
