"""Shared pieces of the ROS 2 tests: isolated domains, supervised subprocesses, a listener node.

Every test gets its own ROS_DOMAIN_ID, starts the real nodes as separate processes (Fast DDS
between them) and kills their process groups on the way out, pass or fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "ros2_ws" / "src" / "robot_learning_ros"
BRINGUP_DIR = PACKAGE_DIR / "bringup"
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))

from robot_learning_ros.dds_profile import use_robot_learning_transports  # noqa: E402

_DOMAIN_OFFSET = (os.getpid() % 10) * 4  # parallel pytest runs use different domains
_next_domain = 0


def fresh_domain() -> int:
    """A ROS_DOMAIN_ID in 100..149 that no other test in this run uses."""
    global _next_domain
    _next_domain += 1
    return 100 + (_DOMAIN_OFFSET + _next_domain) % 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ros_env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR), env.get("PYTHONPATH")) if p)
    env.setdefault("MUJOCO_GL", "egl")
    env["OMP_NUM_THREADS"] = "1"
    use_robot_learning_transports(env)  # as every node does for itself
    return env


class Processes:
    """Started subprocesses (own process groups), with their output captured to files."""

    def __init__(self, log_dir: Path, domain: int) -> None:
        self.log_dir = log_dir
        self.domain = domain
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the child)
        proc = subprocess.Popen(
            argv,
            env=ros_env(self.domain),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_node(self, name: str, module: str, *ros_args: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", f"from robot_learning_ros.{module} import main; main()"]
        return self.start(name, [*argv, "--ros-args", *ros_args])

    def output(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int:
        proc = self.procs[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                # a node that ignores the signal: its thread stacks go to its log, then it is killed
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(1.0)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return int(proc.returncode)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name, signal.SIGINT, timeout_s=5.0)


@contextlib.contextmanager
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path, fresh_domain())
    try:
        yield procs
    finally:
        procs.close()


class Listener:
    """An rclpy node in its own context and domain, spun in a background thread."""

    def __init__(self, domain: int, name: str = "test_listener") -> None:
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        use_robot_learning_transports()  # before this process's first participant
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def collect(self, msg_type: Any, topic: str, qos: Any) -> list[tuple[float, Any]]:
        """Every message on ``topic`` with its arrival time (monotonic)."""
        out: list[tuple[float, Any]] = []
        self.node.create_subscription(
            msg_type, topic, lambda m: out.append((time.monotonic(), m)), qos
        )
        return out

    def diagnostics(self, status_name: str) -> StatusLog:
        """Every ``/diagnostics`` status named ``status_name`` from now on."""
        return StatusLog(self, status_name)

    def graph(self) -> str:
        """What this node sees of the ROS graph: for a failure message."""
        nodes = sorted(n for n, _ in self.node.get_node_names_and_namespaces())
        topics = {
            t: self.node.count_publishers(t) for t, _ in self.node.get_topic_names_and_types()
        }
        return f"nodes {nodes}; publishers per topic {topics}"

    def call(self, srv_type: Any, name: str, request: Any = None, timeout_s: float = 30.0) -> Any:
        client: Any = self.node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {name} did not appear within {timeout_s} s")
        future = client.call_async(request if request is not None else srv_type.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {name} did not answer within {timeout_s} s")
            time.sleep(0.01)
        return future.result()

    def close(self) -> None:
        """Stop spinning before anything is destroyed: a spin thread still inside rclpy while
        its node, executor or context goes away can crash the interpreter at exit."""
        self.executor.shutdown(timeout_sec=5.0)  # wakes spin() and waits for running callbacks
        self._thread.join(timeout=5.0)
        self.node.destroy_node()  # the DDS participant goes with the node, before the context
        self.context.try_shutdown()


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class StatusLog:
    """``/diagnostics`` statuses of one name, each as ``{key: value}`` plus ``level`` and
    ``message``, newest last: tests wait on a node's own report, not on wall-clock windows."""

    def __init__(self, listener: Listener, status_name: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.listener = listener
        self.status_name = status_name
        self.statuses: list[dict[str, str]] = []
        listener.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_msg, 10)

    def _on_msg(self, msg: Any) -> None:
        for status in msg.status:
            if status.name == self.status_name:
                level = status.level
                level = int.from_bytes(level, "little") if isinstance(level, bytes) else level
                fields = {kv.key: kv.value for kv in status.values}
                self.statuses.append({**fields, "level": str(level), "message": status.message})

    def wait(
        self, predicate: Callable[[dict[str, str]], bool], timeout_s: float, what: str
    ) -> dict[str, str]:
        """The first status published after this call that satisfies ``predicate``."""
        start = len(self.statuses)
        found: list[dict[str, str]] = []

        def check() -> bool:
            found[:] = [s for s in self.statuses[start:] if predicate(s)][:1]
            return bool(found)

        try:
            wait_for(check, timeout_s, what)
        except TimeoutError as exc:
            last = self.statuses[-1] if self.statuses else f"no {self.status_name} status at all"
            raise TimeoutError(f"{exc}; last: {last}; {self.listener.graph()}") from None
        return found[0]
