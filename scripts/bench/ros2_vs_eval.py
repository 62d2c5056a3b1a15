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
A 20-episode run of a 10 Hz state policy takes about 6 minutes on a 2-core CPU. Logs go to a
temporary directory (printed); every process started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "ros2_ws" / "src" / "robot_learning_ros"
BRINGUP = PACKAGE_DIR / "bringup" / "sim_robot.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@contextlib.contextmanager
def bringup(args: argparse.Namespace, env: dict[str, str], logs: Path) -> Iterator[None]:
    """The sim closed loop, stopped with SIGINT (then SIGKILL) however the block ends."""
    cmd = [sys.executable, "-m", "robot_learning.cli", "bringup", str(BRINGUP)]
    for key, value in (
        ("policy", args.policy),
        ("port", free_port()),
        ("task", args.task),
        ("variant", args.variant),
        ("seed", args.seed),
        ("execution", args.execution or "rtc"),
    ):
        cmd += ["--arg", f"{key}={value}"]
    with open(logs / "bringup.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_ros(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    sys.path.insert(0, str(PACKAGE_DIR))
    from robot_learning_ros.dds_profile import use_robot_learning_transports

    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR), env.get("PYTHONPATH")) if p)
    env.setdefault("MUJOCO_GL", "egl")
    use_robot_learning_transports(env)
    out = logs / "ros_episodes.json"
    with bringup(args, env, logs):
        runner = subprocess.run(
            [sys.executable, "-m", "robot_learning_ros.episode_runner"]
            + ["--episodes", str(args.episodes), "--out", str(out), "--episode-timeout-s", "120"],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            check=False,
        )
    (logs / "episode_runner.log").write_text(runner.stderr)
    if runner.returncode != 0:
        raise SystemExit(f"the ROS 2 loop failed (logs in {logs}):\n{runner.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


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
