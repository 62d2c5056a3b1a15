#!/usr/bin/env python
"""One checkpoint, the same seeded episodes: ``robot-learning eval`` against the ROS 2 loop.

Why: a policy should succeed as often on the robot's real-time ROS 2 loop as in evaluation.
This runs ``robot-learning eval --json`` (simulated time, no middleware) and then the whole
closed loop of ``bringup/sim_robot.yaml`` (policy server, MuJoCo sim node, policy client node;
real time, Fast DDS between processes) driven by the episode runner, on the same seeds, and
prints both success rates with their Wilson 95% intervals, the ROS loop's late commands and
whether the intervals overlap.

Usage:
  .venv/bin/python scripts/bench/ros2_vs_eval.py --policy DIR [--task lift] [--episodes 20]
      [--seed 100000] [--variant default] [--execution rtc] [--json]
A 20-episode run of a 10 Hz state policy takes about 2-6 minutes on a 2-core CPU. Logs go to a
temporary directory (printed); every process started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run_eval(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "robot_learning.cli", "eval", "--policy", str(args.policy)]
    cmd += ["--task", args.task, "--episodes", str(args.episodes), "--seed", str(args.seed)]
    cmd += ["--variant", args.variant, "--videos", "0", "--json", "--out", str(logs / "eval")]
    if args.execution:
        cmd += ["--execution", args.execution]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    (logs / "eval.log").write_text(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"robot-learning eval failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_ros(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    from robot_learning.bringup.sim_episodes import SimLoopError, SimLoopRun, run_sim_episodes

    run = SimLoopRun(
        policy=args.policy,
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        variant=args.variant,
        execution=args.execution or "rtc",
        domain_id=args.domain,
    )
    try:
        return run_sim_episodes(run, logs / "ros")
    except SimLoopError as exc:
        raise SystemExit(f"the ROS 2 loop failed: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, required=True, help="checkpoint directory")
    parser.add_argument("--task", default="lift")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100000, help="seed of the first episode")
    parser.add_argument("--variant", default="default")
    parser.add_argument(
        "--execution", default=None, help="rtc | ensemble | naive (default: the recipe's)"
    )
    parser.add_argument(
        "--domain",
        type=int,
        default=190 + os.getpid() % 10,
        help="ROS_DOMAIN_ID of the run, 0-232 (Fast DDS's port range; default 190-199)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not (args.policy / "config.json").is_file():
        parser.error(f"--policy {args.policy} is not a checkpoint directory (no config.json)")
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if not 0 <= args.domain <= 232:
        parser.error(f"--domain {args.domain}: a ROS_DOMAIN_ID must be 0-232 for Fast DDS")
    args.policy = args.policy.resolve()
    logs = Path(tempfile.mkdtemp(prefix="ros2_vs_eval_"))
    print(f"logs in {logs}", file=sys.stderr)
    t0 = time.monotonic()
    print(f"eval: {args.episodes} episodes of {args.task} ...", file=sys.stderr)
    ev = run_eval(args, logs)
    print("ROS 2 loop: bringup + episode runner ...", file=sys.stderr)
    ros = run_ros(args, logs)
    episodes = ros["per_episode"]
    late = int(episodes[-1].get("late_commands", 0)) if episodes else 0  # the sim's running total
    overlap = (
        ros["success_ci95_low"] <= ev["success_ci95_high"]
        and ev["success_ci95_low"] <= ros["success_ci95_high"]
    )
    summary = {
        "command": " ".join(sys.argv),
        "policy": str(args.policy),
        "task": args.task,
        "variant": args.variant,
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "eval": {
            "success_rate": ev["success_rate"],
            "successes": ev["successes"],
            "ci95_low": ev["success_ci95_low"],
            "ci95_high": ev["success_ci95_high"],
        },
        "ros": {
            "success_rate": ros["success_rate"],
            "successes": ros["successes"],
            "ci95_low": ros["success_ci95_low"],
            "ci95_high": ros["success_ci95_high"],
            "late_commands": late,
        },
        "intervals_overlap": overlap,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    last = args.seed + args.episodes - 1
    print(f"{args.policy.name} on {args.task} ({args.variant}), seeds {args.seed}..{last}")
    for name, r in (("eval", summary["eval"]), ("ROS 2 loop", summary["ros"])):
        print(
            f"  {name:<11} {r['successes']:>3}/{args.episodes} = {r['success_rate']:.0%}"
            f"  (95% CI {r['ci95_low']:.0%}-{r['ci95_high']:.0%})"
        )
    print(
        f"  late commands in the ROS loop: {late}; intervals overlap: {'yes' if overlap else 'NO'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
