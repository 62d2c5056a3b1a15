"""``robot-learning demo``: a one-command tour that needs no data, weights or hardware.

For now it runs a few scripted-expert ``lift`` episodes on the sim robot, writes them as one video
(``outputs/demo/lift.mp4``) and prints the success rate and simulation speed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    parse_size,
    positive_int,
    print_json,
)
from robot_learning.cli.sim import (
    check_render_size,
    check_video_size,
    make_expert_pair,
    run_expert_episode,
)
from robot_learning.eval.video import video_writer

TASK = "lift"


def cmd_demo(args: argparse.Namespace) -> int:
    check_video_size(args.size)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"--out-dir {args.out_dir!r} exists and is not a directory")
    video = out_dir / f"{TASK}.mp4"
    start = time.perf_counter()
    robot, teleop = make_expert_pair(TASK, image_size=args.size, seed=args.seed)
    PROGRESS.info("demo: %d scripted-expert %s episodes -> %s", args.episodes, TASK, video)
    results = []
    with robot, teleop:
        vis = robot.env.model.vis.global_
        check_render_size(args.size, (vis.offheight, vis.offwidth))
        with video_writer(video, robot.env.config.control_hz) as append:
            for i in range(args.episodes):
                result = run_expert_episode(robot, teleop, args.seed + i, "scene", append)
                results.append(result)
                PROGRESS.info(
                    "episode %d/%d: %s in %d steps",
                    i + 1,
                    args.episodes,
                    "success" if result.success else "failure",
                    result.steps,
                )
    steps = sum(r.steps for r in results)
    step_s = sum(r.step_s for r in results)
    successes = sum(r.success for r in results)
    summary: dict[str, Any] = {
        "task": TASK,
        "episodes": len(results),
        "successes": successes,
        "success_rate": successes / len(results),
        "steps": steps,
        "mean_episode_steps": steps / len(results),
        "steps_per_s": steps / step_s if step_s > 0 else 0.0,
        "loop_steps_per_s": steps / sum(r.wall_s for r in results),
        "video": str(video),
        "video_frames": steps + len(results),
        "wall_s": time.perf_counter() - start,
    }
    if args.json:
        print_json(summary)
        return 0
    print(
        f"{TASK}: {successes}/{len(results)} episodes succeeded "
        f"(success rate {summary['success_rate']:.0%}), {steps} steps"
    )
    print(
        f"sim speed: {summary['steps_per_s']:.0f} steps/s stepping the robot, "
        f"{summary['loop_steps_per_s']:.0f} steps/s including expert and video rendering"
    )
    print(f"video: {video}")
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="scripted lift episodes -> outputs/demo/lift.mp4 and a summary",
        description="Run a few scripted-expert lift episodes in simulation, write a video and "
        "print the success rate and speed. Needs no data, weights or hardware.",
    )
    p.add_argument("--episodes", type=positive_int, default=3, help="episodes (default: 3)")
    p.add_argument(
        "--out-dir", default="outputs/demo", help="output folder (default: outputs/demo)"
    )
    p.add_argument(
        "--size",
        type=parse_size,
        default=(240, 320),
        metavar="HxW",
        help="video frame size, even numbers (default: 240x320)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_demo)
