"""Parameters with typed defaults and one way to run a node until Ctrl-C or SIGTERM."""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
import yaml
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from robot_learning_ros.dds_profile import use_robot_learning_transports

LOG = logging.getLogger(__name__)


def declare(node: Node, **defaults: Any) -> dict[str, Any]:
    """Declare every parameter with its default (which fixes its type); return the values.

    Why: a parameter file with a misspelt name or a wrong type then fails at start-up with
    rclpy's message naming the parameter, instead of being silently ignored.
    """
    values: dict[str, Any] = {}
    for name, default in defaults.items():
        node.declare_parameter(name, default)
        values[name] = node.get_parameter(name).value
    return values


def parse_driver_args(text: str, example: str = "{source: /dev/video0}") -> dict[str, Any]:
    """The ``driver_args`` parameter (a YAML mapping in a string) as keyword arguments."""
    try:
        value = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ValueError(
            f"driver_args {text!r} is not valid YAML ({exc}); expected a mapping such as "
            f"'{example}'"
        ) from exc
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(
            f"driver_args must be a YAML mapping of keyword arguments, got {text!r}; e.g. "
            f"'{example}'"
        )
    return value


def paced_loop(period: float, tick: Callable[[], None], stop: threading.Event) -> None:
    """Call ``tick`` every ``period`` seconds on absolute deadlines (a slow tick does not shift
    the rest; after an overrun the schedule restarts from now) until ``stop`` is set."""
    next_tick = time.monotonic()
    while not stop.is_set():
        tick()
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_tick = time.monotonic()


def make_executor() -> Executor:
    """rclpy's ``EventsExecutor`` where this rclpy has it, else the ``SingleThreadedExecutor``.

    Why: the executor thread holds the interpreter between callbacks while it rebuilds its wait
    set, and a node's worker thread woken by a callback waits for it. The events executor
    dispatches from C++: the policy client's control thread starts 0.1 ms after the last
    message of a tick instead of 1 ms, and a message reaches its callback in 0.6 ms instead of
    0.9 ms (p50). rclpy's ``MultiThreadedExecutor`` delivered messages 0.3 s late (p50) and
    dropped one in ten at 70 messages/s on this machine (``scripts/bench/ros2_executor.py``).
    """
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # rclpy before Jazzy
        return SingleThreadedExecutor()
    return EventsExecutor()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """Init rclpy, build the node, spin until Ctrl-C / SIGTERM, then clean up in order; exit
    with status 1 when the node sets ``failed`` (its device failed while running).

    rclpy's own signal handler would invalidate the context while worker threads still publish;
    here a signal only stops the spin, the node's ``shutdown()`` stops its threads, and only then
    is the context shut down. Callbacks only hand data to the node's own threads, so one
    executor thread suffices (:func:`make_executor`).
    """
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    use_robot_learning_transports()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # a node started from a background job inherits SIGINT ignored, and Python then leaves it
    # ignored: Ctrl-C (or a launcher's SIGINT) must still stop it
    signal.signal(signal.SIGINT, _raise_interrupt)
    # `kill -USR1 PID` prints every thread's stack to stderr: how to see where a node hangs
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    node: Node | None = None
    try:
        node = factory()
        executor = make_executor()
        executor.add_node(node)
        while rclpy.ok():  # short waits, so Ctrl-C / SIGTERM are handled at once
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            stop = getattr(node, "shutdown", None)
            if callable(stop):
                stop()
            node.destroy_node()
        rclpy.try_shutdown()
    if getattr(node, "failed", False):  # a driver failed while running: let supervisors know
        raise SystemExit(1)
