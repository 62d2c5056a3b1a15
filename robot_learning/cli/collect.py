"""``robot-learning collect``: record teleoperated demonstrations into an episode store.

Why the order of operations: every check that can refuse (robot and device names, the device's
action spec against the robot's, the store path, a resumed store's features and rate) runs
before anything is written, so a typo never leaves an empty store behind. Recording itself is
:class:`~robot_learning.data.collect_loop.CollectSession`; this module wires devices, the store,
operator keys, the status line and signals around it. See ``docs/collect.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    non_negative_float,
    parse_size,
    positive_float,
    positive_int,
    print_json,
    signals_interrupt,
)
from robot_learning.cli.collect_setup import (
    SIM_DEFAULT_CAMERAS,
    build_robot,
    build_teleop,
    check_image_options,
    check_teleop_name,
    connect,
    control_rate,
    default_task,
    key_events,
    live_view,
    max_steps,
    open_store,
    reset_time,
    store_statistics,
)

if TYPE_CHECKING:
    from robot_learning.data.store import EpisodeStore

LOG = logging.getLogger(__name__)
EXIT_INTERRUPTED = 130


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect",
        help="record teleoperated demonstrations into an episode store",
        description=(
            "Record demonstrations from a teleop device driving a robot (sim or hardware) into "
            "a Zarr episode store. Keys while recording: s save, d discard, r re-record, "
            "q stop. Ctrl-C discards the episode in progress and keeps the saved ones."
        ),
    )
    p.add_argument("--robot", required=True, help="robot name, e.g. sim:lift (see 'sim list')")
    p.add_argument(
        "--teleop",
        required=True,
        help="teleop device: keyboard | spacemouse | gamepad | leader | scripted",
    )
    p.add_argument(
        "--teleop-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="device option, repeatable (e.g. calibration=leader.yaml, port=/dev/ttyUSB0, "
        "speed=0.3); see docs/teleop.md",
    )
    p.add_argument(
        "--episodes", type=positive_int, required=True, help="episodes to save in this session"
    )
    p.add_argument("--out", required=True, metavar="STORE", help="episode store directory")
    p.add_argument("--task", default=None, help="task text stored with every episode")
    p.add_argument(
        "--resume", action="store_true", help="append to an existing store (numbering continues)"
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="control/recording rate in Hz (default: the robot's; sim: 20)",
    )
    p.add_argument(
        "--no-realtime",
        action="store_true",
        help="sim only: run as fast as possible instead of at --fps wall-clock rate",
    )
    p.add_argument("--operator", default=None, help="operator name (default: $USER)")
    p.add_argument(
        "--cameras",
        default=None,
        help=f"sim cameras, comma separated, or 'none' (default: {SIM_DEFAULT_CAMERAS})",
    )
    p.add_argument(
        "--control-mode",
        choices=("ee_delta", "joint"),
        default=None,
        help="sim action space (default: ee_delta; the leader arm needs joint)",
    )
    p.add_argument(
        "--variant",
        choices=("default", "train", "real-proxy"),
        default=None,
        help="sim only: domain randomization per episode (train: the training ranges; "
        "real-proxy: the held-out ones; default: none)",
    )
    p.add_argument(
        "--image-size", type=parse_size, default=None, metavar="HxW", help="sim camera size"
    )
    p.add_argument(
        "--image-format",
        choices=("jpeg", "png", "jpegxl"),
        default="jpeg",
        help="how camera frames are stored (default: jpeg)",
    )
    p.add_argument(
        "--image-quality", type=positive_int, default=90, help="jpeg/jpegxl quality 1-100"
    )
    p.add_argument("--seed", type=int, default=0, help="episode i is reset with seed SEED+i (sim)")
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="episode step limit (default: the sim task's; hardware: 60 s worth)",
    )
    p.add_argument(
        "--reset-time",
        type=non_negative_float,
        default=None,
        metavar="S",
        help="pause between episodes to reset the scene (default: 0 sim, 5 s hardware)",
    )
    p.add_argument(
        "--review",
        action="store_true",
        help="when an episode ends by itself, wait for s/d/r/q instead of saving it",
    )
    p.add_argument(
        "--successes-only",
        action="store_true",
        help="discard episodes that end without success (e.g. a policy teleop collecting "
        "demonstrations for distillation); --episodes counts saved ones",
    )
    p.add_argument(
        "--no-keys", action="store_true", help="do not read session keys from the terminal"
    )
    p.add_argument(
        "--view",
        nargs="?",
        const="",
        default=None,
        metavar="FILE.rrd",
        help="live view in Rerun: spawn the viewer, or write FILE.rrd (needs rerun-sdk)",
    )
    p.add_argument("--json", action="store_true", help="final summary as one JSON object")
    p.set_defaults(handler=run)


# ---- run -----------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from drivers.registry import SIM_PREFIX
    from drivers.teleop.session_keys import session_key_help
    from robot_learning.data.collect_loop import CollectSession, SessionConfig
    from robot_learning.data.collect_status import StatusReporter
    from robot_learning.data.collect_store import check_target
    from robot_learning.data.errors import StoreError, StoreFullError
    from robot_learning.specs import SpecDict, SpecError

    out = Path(args.out)
    is_sim = args.robot.startswith(SIM_PREFIX)
    try:
        check_target(out, args.resume)
    except StoreError as exc:
        raise CLIError(str(exc)) from exc
    check_teleop_name(args.teleop)
    check_image_options(args)
    started = time.monotonic()
    robot = build_robot(args)
    with contextlib.ExitStack() as stack:
        stack.enter_context(signals_interrupt())  # SIGTERM: discard the open episode, exit 130
        connect(robot, stack, "robot", args.robot)
        teleop = build_teleop(args, robot)
        connect(teleop, stack, "teleop", args.teleop)
        try:
            teleop.check_robot(robot)
        except SpecError as exc:
            raise CLIError(
                f"teleop {args.teleop!r} does not fit robot {args.robot!r}: {exc}"
            ) from exc
        act_spec = robot.action_spec()
        features = SpecDict({**robot.observation_spec().features, **act_spec.features})
        fps = control_rate(args, robot, is_sim)
        config = SessionConfig(
            episodes=args.episodes,
            max_steps=max_steps(args, robot, is_sim, fps),
            fps=fps,
            realtime=not args.no_realtime,
            task=args.task if args.task is not None else default_task(args.robot, is_sim),
            operator=args.operator if args.operator is not None else os.environ.get("USER", ""),
            source=f"teleop:{args.teleop}",
            seed=args.seed,
            auto_save=not args.review,
            successes_only=args.successes_only,
            reset_time_s=reset_time(args, is_sim),
        )
        events = key_events(args, teleop, stack)
        has_keys = bool(events) or bool(getattr(teleop, "uses_terminal", False))
        if args.review and not has_keys:
            raise CLIError("--review needs operator keys (a terminal on stdin, no --no-keys)")
        view = live_view(args, features, stack)
        store = open_store(args, out, features, tuple(act_spec.names()), fps)
        stack.callback(store.close)
        stack.callback(store_statistics, store)
        session = CollectSession(robot, teleop, store, config, events=events, view=view)
        reporter = StatusReporter(
            session.stats,
            out,
            sys.stderr,
            enabled=not args.quiet,
            help_line=session_key_help() if has_keys else "",
        )
        session.on_event = reporter.event
        _announce(reporter, store, config, args)
        interrupted = False
        reporter.start()
        try:
            session.run()
        except KeyboardInterrupt:
            interrupted = True
        except StoreFullError as exc:
            raise CLIError(str(exc), exit_code=1) from exc
        except (SpecError, RuntimeError, OSError) as exc:  # a device failed mid-session
            raise CLIError(
                f"recording stopped after {session.stats.episodes_saved} saved episode(s) (the "
                f"episode in progress was discarded): {type(exc).__name__}: {exc}",
                exit_code=1,
            ) from exc
        finally:
            reporter.stop()
        summary = _summary(session, store, time.monotonic() - started, interrupted)
    _report(summary, args)
    return EXIT_INTERRUPTED if interrupted else 0


def _announce(reporter: Any, store: EpisodeStore, config: Any, args: argparse.Namespace) -> None:
    """One line saying what is about to happen (the store logs its own repair report)."""
    verb = "resuming" if args.resume else "created"
    rate = (
        f"at {config.fps:g} Hz"
        if config.realtime
        else f"as fast as possible ({config.fps:g} Hz sim time)"
    )
    reporter.event(
        f"{verb} {store.root}: {store.n_episodes} episode(s) stored; recording {config.episodes} "
        f"more from {args.teleop} on {args.robot} {rate}, up to {config.max_steps} steps each"
    )


def _summary(session: Any, store: EpisodeStore, wall_s: float, interrupted: bool) -> dict[str, Any]:
    from robot_learning.data.disk import disk_usage

    stats = session.stats
    return {
        "store": str(store.root),
        "episodes_saved": stats.episodes_saved,
        "episodes_discarded": stats.episodes_discarded,
        "episodes_rerecorded": stats.episodes_rerecorded,
        "episodes_in_store": store.n_episodes,
        "steps": stats.steps_saved,
        "successes": stats.successes,
        "loop_rate_hz": round(stats.achieved_rate_hz(), 3),
        "target_hz": session.config.fps if session.config.realtime else 0.0,
        "overruns": stats.overruns,
        "max_late_ms": round(stats.max_late_ms, 3),
        "dropped_frames": stats.dropped_frames,
        "backpressure_waits": stats.backpressure_waits,
        "bytes": disk_usage(store.root),
        "repair": store.repair_report.to_json(),
        "stopped": stats.stopped,
        "interrupted": interrupted,
        "wall_s": round(wall_s, 3),
    }


def _report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print_json(summary)
        return
    from robot_learning.data.collect_status import human_bytes

    how = "interrupted: " if summary["interrupted"] else ""
    print(
        f"{how}saved {summary['episodes_saved']} episode(s), {summary['steps']} steps "
        f"({summary['successes']} successful); discarded {summary['episodes_discarded']}, "
        f"re-recorded {summary['episodes_rerecorded']}; loop {summary['loop_rate_hz']:.1f} Hz, "
        f"{summary['overruns']} overrun(s); {summary['store']} holds "
        f"{summary['episodes_in_store']} episode(s), {human_bytes(summary['bytes'])}"
    )
    PROGRESS.debug("collect summary: %s", summary)
