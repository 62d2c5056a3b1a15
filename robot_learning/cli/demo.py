"""``robot-learning demo``: the whole stack on the MuJoCo ``lift`` task, end to end.

Collects scripted demonstrations into a Zarr store, trains a diffusion policy, evaluates it
(training distribution and the held-out ``real-proxy`` variant), runs it through the ROS 2 loop
(policy server + sim node + policy client node), and writes an HTML report. About 15 minutes
on a 2-core CPU. Ctrl-C stops at any point; running it again resumes from what exists.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    positive_float,
    positive_int,
    print_json,
    signals_interrupt,
)


def cmd_demo(args: argparse.Namespace) -> int:
    from robot_learning.demo.commands import DemoError
    from robot_learning.demo.config import DEFAULT_RECIPE, DemoConfig
    from robot_learning.demo.pipeline import run_demo
    from robot_learning.demo.report import summary_rows, text_table

    try:
        cfg = DemoConfig(
            out_dir=Path(args.out),
            demos=args.demos,
            recipe=Path(args.recipe) if args.recipe else DEFAULT_RECIPE,
            train_steps=args.train_steps,
            train_minutes=args.train_minutes,
            eval_episodes=args.eval_episodes,
            ros_episodes=args.ros_episodes,
            videos=args.videos,
            ros_domain_id=args.ros_domain_id,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if cfg.out_dir.exists() and not cfg.out_dir.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a directory")
    # Ctrl-C and SIGTERM both stop the running stage cleanly, even where the shell started
    # this process with SIGINT ignored (a background job): its ROS 2 processes run in their
    # own sessions and are only stopped by this process
    try:
        with signals_interrupt(signal.SIGINT, signal.SIGTERM):
            results = run_demo(cfg, fresh=args.fresh)
    except DemoError as exc:
        raise CLIError(str(exc), exit_code=1) from None
    except KeyboardInterrupt:
        PROGRESS.warning("stopped; run the same command again to resume from %s", cfg.out_dir)
        raise
    report = results["report"]
    if args.json:
        print_json(
            {
                "out": str(cfg.out_dir),
                "report": report["html"],
                "summary": report["summary"],
                "wall_s": results["wall_s"],
            }
        )
        return 0
    rows = summary_rows(results, cfg.ros_variant)
    print(
        f"\n{cfg.task}: {results['collect']['episodes']} demonstrations, policy trained for "
        f"{results['train']['steps']} steps"
    )
    print(text_table(rows))
    print(f"\nreport: {report['html']}")
    sys.stdout.flush()
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="collect -> train -> eval -> ROS 2 loop -> HTML report, on the sim lift task",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    p.add_argument("--fresh", action="store_true", help="delete --out first and start over")
    p.add_argument(
        "--demos", type=positive_int, default=200, help="demonstrations to collect (default: 200)"
    )
    p.add_argument(
        "--recipe", default=None, help="training recipe (default: policies/demo_lift_state.yaml)"
    )
    p.add_argument(
        "--train-steps", type=positive_int, default=None, help="training steps (default: recipe's)"
    )
    p.add_argument(
        "--train-minutes",
        type=positive_float,
        default=None,
        help="training wall-clock budget (default: the recipe's)",
    )
    p.add_argument(
        "--eval-episodes", type=positive_int, default=20, help="episodes per eval (default: 20)"
    )
    p.add_argument(
        "--ros-episodes",
        type=positive_int,
        default=20,
        help="episodes through the ROS 2 loop (default: 20)",
    )
    p.add_argument(
        "--videos", type=int, default=2, help="rollout videos per eval variant (default: 2)"
    )
    p.add_argument(
        "--ros-domain-id",
        type=int,
        default=77,
        help="ROS_DOMAIN_ID of the ROS 2 loop, 0-232; not 0, where lab robots talk (default: 77)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_demo)
