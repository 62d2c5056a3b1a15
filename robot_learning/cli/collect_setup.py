"""Set-up for ``robot-learning collect``: devices, options, the store, keys and the live view.

Why a module of its own: every check that can refuse a session (names, options, the device's
action spec, the store path and a resumed store's features) lives here and runs before anything
is written; :mod:`robot_learning.cli.collect` only sequences them around the recording loop.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robot_learning.cli import CLIError, key_values

if TYPE_CHECKING:
    from drivers.interfaces import Robot, TeleopDevice
    from robot_learning.data.collect_events import EventSource
    from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger("robot_learning.cli.collect")
SIM_DEFAULT_CAMERAS = "scene,wrist"
SIM_DEFAULT_IMAGE_SIZE = (96, 96)
HARDWARE_DEFAULT_HZ = 20.0
HARDWARE_DEFAULT_EPISODE_S = 60.0
HARDWARE_DEFAULT_RESET_S = 5.0


# ---- set-up: every refusal happens here, before anything is written ----------------------------
def robot_kwargs(args: argparse.Namespace, is_sim: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    cameras = (
        args.cameras if args.cameras is not None else (SIM_DEFAULT_CAMERAS if is_sim else None)
    )
    if cameras is not None:
        names = [] if cameras.strip().lower() in ("", "none") else cameras.split(",")
        kwargs["cameras"] = tuple(c.strip() for c in names if c.strip())
    if args.image_size is not None or is_sim:
        kwargs["image_size"] = args.image_size or SIM_DEFAULT_IMAGE_SIZE
    if args.control_mode is not None:
        kwargs["control_mode"] = args.control_mode
    if getattr(args, "variant", None) is not None:
        if not is_sim:
            raise CLIError(f"--variant is for sim robots only; got {args.robot!r}")
        kwargs["variant"] = args.variant
    if is_sim:
        if args.fps is not None:
            kwargs["control_hz"] = args.fps
        if args.max_steps is not None:
            kwargs["max_episode_steps"] = args.max_steps
    return kwargs


def build_robot(args: argparse.Namespace) -> Robot:
    from drivers.registry import SIM_PREFIX, DriverUnavailableError, make_robot

    is_sim = args.robot.startswith(SIM_PREFIX)
    if args.no_realtime and not is_sim:
        raise CLIError(f"--no-realtime is for sim robots only; {args.robot!r} runs in real time")
    kwargs = robot_kwargs(args, is_sim)
    try:
        return make_robot(args.robot, **kwargs)
    except DriverUnavailableError as exc:
        raise CLIError(str(exc)) from exc
    except (ValueError, TypeError) as exc:
        given = ", ".join(f"--{k.replace('_', '-')}" for k in kwargs) or "no options"
        raise CLIError(f"robot {args.robot!r} rejected the options ({given}): {exc}") from exc


def build_teleop(args: argparse.Namespace, robot: Robot) -> TeleopDevice:
    from drivers.registry import DriverUnavailableError, make_teleop

    options = parse_teleop_options(args.teleop_opt)
    try:
        return make_teleop(args.teleop, robot=robot, **options)
    except DriverUnavailableError as exc:
        raise CLIError(str(exc)) from exc
    except (TypeError, ValueError, ImportError, OSError, RuntimeError) as exc:
        raise CLIError(f"teleop {args.teleop!r} cannot drive robot {args.robot!r}: {exc}") from exc


def parse_teleop_options(items: list[str]) -> dict[str, Any]:
    """``["speed=0.3", "port=/dev/ttyUSB0"]`` -> ``{"speed": 0.3, "port": "/dev/ttyUSB0"}``."""
    options: dict[str, Any] = {}
    for key, text in key_values(items, "--teleop-opt", "speed=0.3").items():
        if not key.isidentifier():
            raise CLIError(f"--teleop-opt {key}={text}: {key!r} is not an option name")
        value: Any = text
        for convert in (int, float):
            try:
                value = convert(text)
                break
            except ValueError:
                continue
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        options[key] = value
    return options


def check_teleop_name(name: str) -> None:
    from drivers.registry import TELEOPS

    if name not in TELEOPS:
        raise CLIError(f"unknown teleop {name!r}; valid teleop names: {', '.join(TELEOPS.names())}")


def live_view(args: argparse.Namespace, features: Any, stack: contextlib.ExitStack) -> Any:
    """The Rerun live view asked for with ``--view`` (None without it)."""
    if args.view is None:
        return None
    from robot_learning.data.errors import StoreError
    from robot_learning.data.rerun_live import LiveView

    try:
        view = LiveView(features, args.view or None)
    except (StoreError, ValueError, RuntimeError) as exc:
        raise CLIError(f"--view: {exc}") from exc
    stack.callback(view.close)
    return view


def store_statistics(store: EpisodeStore) -> None:
    """Store normalization statistics with the dataset, so training reads them (not fatal)."""
    from robot_learning.data.stats import dataset_stats

    if store.n_episodes == 0 or not store.writable:
        return
    try:
        dataset_stats(store)
    except Exception as exc:  # statistics are a cache: training recomputes them
        LOG.warning("could not store normalization statistics: %s", exc)


def check_image_options(args: argparse.Namespace) -> None:
    from robot_learning.data.codecs import available_formats

    if args.image_format not in available_formats():
        raise CLIError(
            f"--image-format {args.image_format}: not available in this installation; "
            f"available: {', '.join(available_formats())}"
        )
    if not 1 <= args.image_quality <= 100:
        raise CLIError(f"--image-quality must be 1..100, got {args.image_quality}")


def connect(device: Any, stack: contextlib.ExitStack, what: str, name: str) -> None:
    try:
        device.connect()
    except (OSError, RuntimeError, ValueError) as exc:
        raise CLIError(f"cannot connect {what} {name!r}: {exc}") from exc
    stack.callback(device.disconnect)


def control_rate(args: argparse.Namespace, robot: Robot, is_sim: bool) -> float:
    if args.fps is not None:
        return float(args.fps)
    if is_sim:
        return float(robot.env.config.control_hz)  # type: ignore[attr-defined]
    return float(getattr(robot, "control_hz", HARDWARE_DEFAULT_HZ))


def max_steps(args: argparse.Namespace, robot: Robot, is_sim: bool, fps: float) -> int:
    if args.max_steps is not None:
        return int(args.max_steps)
    if is_sim:
        return int(robot.env.max_episode_steps)  # type: ignore[attr-defined]
    return max(1, round(HARDWARE_DEFAULT_EPISODE_S * fps))


def reset_time(args: argparse.Namespace, is_sim: bool) -> float:
    if args.reset_time is not None:
        return float(args.reset_time)
    return 0.0 if is_sim else HARDWARE_DEFAULT_RESET_S


def default_task(robot: str, is_sim: bool) -> str:
    return robot.split(":", 1)[1] if is_sim else ""


def key_events(
    args: argparse.Namespace, teleop: TeleopDevice, stack: contextlib.ExitStack
) -> list[EventSource]:
    """Session keys from standard input, unless the device reads the terminal itself."""
    if args.no_keys or getattr(teleop, "uses_terminal", False):
        return []
    from drivers.teleop.terminal import TerminalKeys
    from robot_learning.data.collect_events import KeyEvents

    keys = TerminalKeys(sys.stdin)
    try:
        keys.open()
    except (RuntimeError, OSError, ValueError) as exc:
        LOG.warning("no session keys (%s); episodes end by themselves or with Ctrl-C", exc)
        return []
    stack.callback(keys.close)
    return [KeyEvents(keys)]


def open_store(
    args: argparse.Namespace, out: Path, features: Any, actions: tuple[str, ...], fps: float
) -> EpisodeStore:
    from robot_learning.data.collect_store import create_store, open_for_resume
    from robot_learning.data.errors import StoreError
    from robot_learning.specs import SpecError

    try:
        if args.resume:
            return open_for_resume(out, features, actions=actions, fps=fps)
        return create_store(
            out,
            features,
            actions=actions,
            fps=fps,
            robot=args.robot,
            image_format=args.image_format,
            image_quality=args.image_quality,
        )
    except (StoreError, SpecError) as exc:
        raise CLIError(str(exc)) from exc
