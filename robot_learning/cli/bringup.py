"""``robot-learning bringup CONFIG.yaml``: start a launch file's processes without ``ros2 launch``.

Starts the same executables with the same parameters as the config's launch file (see
``ros2_ws/src/robot_learning_ros/bringup/``), in order, each ROS 2 node through its package's
entry point. Output lines are prefixed with the process name. Ctrl-C (or SIGTERM) stops every
process cleanly; if any process exits, the rest are stopped and the exit status says which.
Docs: docs/ros2.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from typing import Any

from robot_learning.bringup.config import BringupConfigError, load_config
from robot_learning.bringup.supervisor import Supervisor, process_command
from robot_learning.cli import CLIError, key_values

LOG = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bringup",
        help="start a ROS 2 launch file's nodes as supervised subprocesses",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config", help="bringup YAML, e.g. ros2_ws/src/robot_learning_ros/bringup/sim_robot.yaml"
    )
    p.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the config's arguments (repeatable), e.g. --arg policy=runs/lift",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the commands (JSON) and start nothing"
    )
    p.add_argument(
        "--ready-timeout-s",
        type=float,
        default=120.0,
        help="how long a process with a ready URL may take to answer (default: 120)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, key_values(args.arg, "--arg", "policy=runs/lift"))
        commands = [
            {"name": spec.name, "argv": process_command(config, spec)[0]}
            for spec in config.processes
        ]
    except BringupConfigError as exc:
        raise CLIError(str(exc)) from None
    if args.dry_run:
        print(json.dumps({"config": str(config.path), "processes": commands}, indent=2))
        return 0
    supervisor = Supervisor(config, ready_timeout_s=args.ready_timeout_s)
    stopped_by_signal = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        LOG.info("received %s: stopping every process", signal.Signals(signum).name)
        stopped_by_signal.set()
        supervisor.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        LOG.info("bringup %s: %d processes", config.path.name, len(config.processes))
        try:
            supervisor.start()
        except (RuntimeError, BringupConfigError) as exc:
            raise CLIError(str(exc)) from None
        code = supervisor.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by_signal.is_set():
        LOG.info("all processes stopped")
        return 130 if code == 0 else code
    return code
