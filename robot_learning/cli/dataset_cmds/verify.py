"""``robot-learning dataset verify STORE [--json] [--quick]``: does every committed chunk decode?

Reads every committed row of every key (image frames block by block, then frame by frame where a
block fails, so the bad frame is named exactly), checks shapes and dtypes against the feature
specs, timestamps (finite, non-decreasing within an episode), ``episode_ends`` and async stream
ends, per-episode metadata, and that every committed image frame has a chunk file. Prints one
line per problem naming the episode and key. Exit status 0 when clean, 1 when problems were found.
An uncommitted tail is a warning (the next write open repairs it). ``--quick`` skips decoding
image frames (their chunk files are still checked).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robot_learning.cli import PROGRESS, CLIError, print_json


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check that every committed chunk decodes and the metadata is consistent",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 clean, 1 problems found, 2 usage error or no store",
    )
    parser.add_argument("store", metavar="STORE", help="path of the episode store")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--quick", action="store_true", help="do not decode image frames (still check chunk files)"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data import EpisodeStore, StoreError, StoreNotFoundError
    from robot_learning.data.verify import Problem, VerifyReport, verify_store

    try:
        store = EpisodeStore.open(args.store, "r")
    except StoreNotFoundError as exc:
        raise CLIError(str(exc)) from exc
    except (StoreError, ValueError, KeyError) as exc:  # unreadable root metadata is a finding
        report = VerifyReport(store=str(args.store), quick=args.quick)
        report.problems.append(Problem(f"cannot open: {type(exc).__name__}: {exc}"))
    else:
        with store:
            PROGRESS.info("verifying %s (%d episodes)", store.root, store.n_episodes)
            report = verify_store(store, quick=args.quick)
    if args.json:
        print_json(report.to_json())
    else:
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for problem in report.problems:
            print(problem)
        decoded = f", {report.frames_decoded} frames decoded" if not args.quick else ""
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        print(
            f"{verdict}: {report.episodes_checked} episodes, {report.rows_checked} rows "
            f"checked{decoded} in {report.elapsed_s:.2f} s"
        )
    return 0 if report.ok else 1
