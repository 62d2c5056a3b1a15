"""``robot-learning sim list | bench | view``: inspect, benchmark and watch the simulated tasks.

``view`` (and ``demo``) drive the sim through the same ``SimRobot`` + ``ScriptedTeleop`` pair that
data collection uses, so what you watch is what gets recorded.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    non_negative_float,
    parse_size,
    positive_float,
    print_json,
)
from robot_learning.eval.video import video_writer

if TYPE_CHECKING:
    from drivers.robots.sim import SimRobot
    from drivers.teleop.scripted import ScriptedTeleop

LOG = logging.getLogger(__name__)
DEFAULT_VIEW_SIZE = "240x320"


# ---- argument checks ---------------------------------------------------------------------------
def check_task(name: str) -> str:
    """``name`` if it is a registered and importable task, else a one-line :class:`CLIError`."""
    from robot_learning.sim.tasks import TASKS

    if name not in TASKS:
        raise CLIError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS.names())}")
    try:
        TASKS.get(name)
    except ImportError as exc:
        raise CLIError(f"task {name!r} is not available in this installation ({exc})") from exc
    return name


def check_variant(name: str) -> str:
    from robot_learning.sim.randomization import VARIANTS

    if name not in VARIANTS:
        raise CLIError(f"unknown variant {name!r}; valid variants: {', '.join(VARIANTS)}")
    return name


def check_camera(name: str) -> str:
    from robot_learning.sim.env import CAMERA_NAMES

    if name not in CAMERA_NAMES:
        raise CLIError(f"unknown camera {name!r}; valid cameras: {', '.join(CAMERA_NAMES)}")
    return name


def check_expert(task: str) -> None:
    from robot_learning.sim.experts import EXPERTS

    try:
        EXPERTS.get(task)
    except (ImportError, KeyError) as exc:
        raise CLIError(
            f"task {task!r} has no scripted expert in this installation ({exc})"
        ) from exc


def check_video_size(size: tuple[int, int]) -> None:
    """H.264 in yuv420p needs even frame sizes."""
    if size[0] % 2 or size[1] % 2:
        raise CLIError(f"--size {size[0]}x{size[1]}: video height and width must be even")


def check_render_size(size: tuple[int, int], max_size: tuple[int, int]) -> None:
    """Frames must fit the model's offscreen framebuffer."""
    (h, w), (max_h, max_w) = size, max_size
    if h > max_h or w > max_w:
        raise CLIError(f"--size {h}x{w} exceeds the offscreen render buffer {max_h}x{max_w}")


# ---- scripted-expert episodes (shared with `demo`) ---------------------------------------------
@dataclass
class EpisodeResult:
    seed: int
    steps: int
    success: bool
    sim_time_s: float
    step_s: float  # wall seconds spent inside robot.send_action
    wall_s: float


def make_expert_pair(
    task: str,
    *,
    variant: str = "default",
    image_size: tuple[int, int] = (96, 96),
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[SimRobot, ScriptedTeleop]:
    """A state-only ``SimRobot`` (frames are rendered on demand) and its scripted teleop."""
    from drivers.registry import make_robot, make_teleop
    from drivers.robots.sim import SimRobot
    from drivers.teleop.scripted import ScriptedTeleop

    robot = make_robot(f"sim:{task}", variant=variant, image_size=image_size, seed=seed)
    teleop = make_teleop("scripted", robot=robot, noise_std=noise, seed=seed)
    assert isinstance(robot, SimRobot) and isinstance(teleop, ScriptedTeleop)
    return robot, teleop


def run_expert_episode(
    robot: SimRobot,
    teleop: ScriptedTeleop,
    seed: int,
    camera: str = "scene",
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> EpisodeResult:
    """One episode of the scripted expert; ``on_frame`` gets the first frame and one per step."""
    start = time.perf_counter()
    obs = robot.reset(seed=seed)
    teleop.reset(seed=seed)
    if on_frame is not None:
        on_frame(robot.render(camera))
    step_s = 0.0
    while not robot.done:
        action = teleop.get_action(obs)
        t0 = time.perf_counter()
        robot.send_action(action)
        step_s += time.perf_counter() - t0
        obs = robot.get_observation()
        if on_frame is not None:
            on_frame(robot.render(camera))
    return EpisodeResult(
        seed=seed,
        steps=robot.episode_steps,
        success=robot.is_success,
        sim_time_s=robot.sim_time,
        step_s=step_s,
        wall_s=time.perf_counter() - start,
    )


def resolve_video_path(out: str) -> Path:
    path = Path(out)
    if path.suffix.lower() != ".mp4":
        raise CLIError(f"--out must be an .mp4 file, got {out!r}")
    if path.exists() and path.is_dir():
        raise CLIError(f"--out {out!r} is a directory")
    return path


# ---- sim list ----------------------------------------------------------------------------------
def sim_catalog() -> dict[str, Any]:
    """Tasks (with whether their module imports here), variants, cameras, control modes."""
    from robot_learning.sim.control import CONTROL_MODES
    from robot_learning.sim.env import CAMERA_NAMES, EnvConfig
    from robot_learning.sim.randomization import VARIANTS
    from robot_learning.sim.tasks import TASKS

    tasks = []
    for name, description in TASKS.describe().items():
        try:
            TASKS.get(name)
            available, reason = True, ""
        except Exception as exc:  # a task still being written must not break the listing
            LOG.debug("task %s unavailable: %s", name, exc)
            available, reason = False, f"{type(exc).__name__}: {exc}"
        entry: dict[str, Any] = {
            "name": name,
            "description": description,
            "robot": f"sim:{name}",
            "available": available,
        }
        if reason:
            entry["unavailable_reason"] = reason
        tasks.append(entry)
    defaults = EnvConfig()
    return {
        "tasks": tasks,
        "variants": list(VARIANTS),
        "cameras": list(CAMERA_NAMES),
        "control_modes": list(CONTROL_MODES),
        "default_control_hz": defaults.control_hz,
        "default_image_size_px": list(defaults.image_size),
    }


def cmd_list(args: argparse.Namespace) -> int:
    catalog = sim_catalog()
    if args.json:
        print_json(catalog)
        return 0
    print("tasks:")
    width = max(len(t["name"]) for t in catalog["tasks"])
    for t in catalog["tasks"]:
        note = "" if t["available"] else "  [not available in this installation]"
        print(f"  {t['name']:<{width}}  {t['description']}{note}")
    print(f"variants:      {', '.join(catalog['variants'])}")
    print(f"cameras:       {', '.join(catalog['cameras'])}")
    print(f"control modes: {', '.join(catalog['control_modes'])}")
    print(
        f"defaults:      {catalog['default_control_hz']:g} Hz control, "
        f"{'x'.join(map(str, catalog['default_image_size_px']))} images"
    )
    return 0


# ---- sim bench ---------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    camera = check_camera(args.camera)
    from robot_learning.sim.bench import bench_task

    result = bench_task(
        task,
        seconds=args.seconds,
        camera=camera,
        image_size=args.size,
        seed=args.seed,
        progress=lambda msg: PROGRESS.info("%s", msg),
    )
    if args.json:
        print_json(result)
        return 0
    h, w = result["camera_height_px"], result["camera_width_px"]
    print(
        f"{task}: MuJoCo {result['mujoco_version']} ({result['mujoco_gl']}), "
        f"{result['substeps']} physics substeps per env step at {result['control_hz']:g} Hz"
    )
    print(f"  env, state only          {result['state_steps_per_s']:10.1f} steps/s")
    print(f"  env, {h}x{w} {camera} camera {result['camera_steps_per_s']:10.1f} steps/s")
    print(
        f"  raw mj_step              {result['mj_steps_per_s']:10.1f} steps/s "
        f"(= {result['raw_env_steps_per_s']:.1f} env steps/s)"
    )
    print(f"  state-only / raw         {result['state_fraction_of_raw']:10.2f}")
    return 0


# ---- sim view ----------------------------------------------------------------------------------
def cmd_view(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    variant = check_variant(args.variant)
    camera = check_camera(args.camera)
    check_expert(task)
    check_video_size(args.size)
    path = resolve_video_path(args.out)
    robot, teleop = make_expert_pair(
        task, variant=variant, image_size=args.size, noise=args.noise, seed=args.seed
    )
    PROGRESS.info("building sim:%s (%s variant)", task, variant)
    with robot, teleop:
        vis = robot.env.model.vis.global_
        check_render_size(args.size, (vis.offheight, vis.offwidth))
        fps = args.fps or robot.env.config.control_hz
        frames = 0
        PROGRESS.info("rendering one scripted-expert episode to %s", path)
        with video_writer(path, fps) as append:

            def on_frame(frame: np.ndarray) -> None:
                nonlocal frames
                append(frame)
                frames += 1
                if frames % 50 == 0:
                    PROGRESS.info("%d frames", frames)

            result = run_expert_episode(robot, teleop, args.seed, camera, on_frame)
    summary = {
        "task": task,
        "variant": variant,
        "camera": camera,
        "seed": args.seed,
        "success": result.success,
        "episode_steps": result.steps,
        "episode_sim_s": result.sim_time_s,
        "video": str(path),
        "video_frames": frames,
        "video_height_px": args.size[0],
        "video_width_px": args.size[1],
        "video_fps": fps,
        "wall_s": result.wall_s,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{task} ({variant}, seed {args.seed}): success={result.success}, "
            f"length={result.steps} steps ({result.sim_time_s:.2f} s sim)"
        )
        print(f"video: {path} ({frames} frames, {args.size[0]}x{args.size[1]}, {fps:g} fps)")
    return 0


# ---- parser ------------------------------------------------------------------------------------
def add_parser(subparsers: Any) -> None:
    sim = subparsers.add_parser(
        "sim",
        help="simulated tasks: list, benchmark, render an episode",
        description="Inspect, benchmark and watch the MuJoCo tasks.",
    )
    sub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "list",
        help="tasks, variants, cameras and control modes",
        description="List the simulated tasks and the env options.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser(
        "bench",
        help="env steps/s (state-only, one camera) vs raw mj_step",
        description="Measure env throughput state-only and with one camera, and raw "
        "mujoco.mj_step on the same model; each measurement runs --seconds.",
    )
    p.add_argument("--task", required=True, help="task name (see 'sim list')")
    p.add_argument(
        "--seconds",
        type=positive_float,
        default=2.0,
        help="wall seconds per measurement (default: 2)",
    )
    p.add_argument("--camera", default="scene", help="camera for the camera run (default: scene)")
    p.add_argument(
        "--size",
        type=parse_size,
        default=(96, 96),
        metavar="HxW",
        help="camera image size (default: 96x96)",
    )
    p.add_argument("--seed", type=int, default=0, help="env and action seed (default: 0)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_bench)

    p = sub.add_parser(
        "view",
        help="render one scripted-expert episode to an mp4",
        description="Run the task's scripted expert for one episode and write it as a video.",
    )
    p.add_argument("--task", required=True, help="task name (see 'sim list')")
    p.add_argument("--out", required=True, metavar="F.mp4", help="output video path")
    p.add_argument(
        "--variant", default="default", help="default | train | real-proxy (default: default)"
    )
    p.add_argument("--camera", default="scene", help="scene | wrist (default: scene)")
    p.add_argument(
        "--size",
        type=parse_size,
        default=parse_size(DEFAULT_VIEW_SIZE),
        metavar="HxW",
        help=f"frame size, even numbers (default: {DEFAULT_VIEW_SIZE})",
    )
    p.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    p.add_argument(
        "--noise",
        type=non_negative_float,
        default=0.0,
        help="expert action noise, fraction of the action bound (default: 0)",
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="video frame rate (default: the control rate)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_view)


__all__ = [
    "EpisodeResult",
    "add_parser",
    "check_task",
    "make_expert_pair",
    "run_expert_episode",
    "sim_catalog",
]
