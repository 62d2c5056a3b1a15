"""Runs N seeded sim episodes through the ROS 2 closed loop and reports the success rate.

For each episode: ``/policy_client/hold`` (no command of the old episode may reach the new one),
``/sim/reset`` (the sim uses seed ``seed + k``, as ``robot-learning eval`` does), then
``/policy_client/reset``, then wait for ``/sim/episode`` to report the episode done.
The summary (JSON, one line on stdout, and ``out`` if given) has the same keys as the
evaluator's: ``success_rate``, ``success_ci95_low``/``high``, ``episodes``, ``per_episode``;
and what the loop looked like from outside: ``command_latency_ms`` (for every command heard
during the episodes, its arrival here minus the stamp of the observation it answers) and
``policy_client`` (the client's last ``/diagnostics`` values: ticks, commands sent, safety-layer
interventions by kind).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.client import Client
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from robot_learning.eval.stats import wilson_interval
from robot_learning_ros import topics
from robot_learning_ros.conversions import from_stamp
from robot_learning_ros.dds_profile import use_robot_learning_transports
from robot_learning_ros.qos import COMMAND_QOS, STATUS_QOS


class EpisodeRunner(Node):
    def __init__(
        self,
        sim: str = "/sim",
        client: str = "/policy_client",
        controller: str = topics.DEFAULT_CONTROLLER,
    ) -> None:
        super().__init__("episode_runner")
        self.sim_reset: Client = self.create_client(Trigger, f"{sim}/reset")
        self.client_reset: Client = self.create_client(Trigger, f"{client}/reset")
        self.client_hold: Client = self.create_client(Trigger, f"{client}/hold")
        self.client_name = client.strip("/").rsplit("/", 1)[-1]
        self.status: dict[str, Any] = {}
        self.command_latency_ms: list[float] = []
        self.client_diagnostics: dict[str, str] = {}
        self.recording = False
        self._cond = threading.Condition()
        self.create_subscription(String, topics.EPISODE_STATUS, self._on_status, STATUS_QOS)
        self.create_subscription(
            JointTrajectory, topics.trajectory_topic(controller), self._on_command, COMMAND_QOS
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_status(self, msg: String) -> None:
        with self._cond:
            self.status = json.loads(msg.data)
            self._cond.notify_all()

    def _on_command(self, msg: JointTrajectory) -> None:
        if self.recording:
            now = self.get_clock().now().nanoseconds * 1e-9
            self.command_latency_ms.append(1e3 * (now - from_stamp(msg.header.stamp)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == self.client_name:
                self.client_diagnostics = {kv.key: kv.value for kv in status.values}

    def call(self, client: Any, timeout_s: float = 30.0) -> str:
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {client.srv_name} not available within {timeout_s} s")
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {client.srv_name} did not answer in {timeout_s} s")
            time.sleep(0.01)
        result = future.result()
        if not result.success:
            raise RuntimeError(f"{client.srv_name} failed: {result.message}")
        return str(result.message)

    def run_episode(self, timeout_s: float) -> dict[str, Any]:
        self.call(self.client_hold)
        reply = json.loads(self.call(self.sim_reset))
        episode = reply["episode"]
        self.call(self.client_reset)
        self.recording = True
        with self._cond:
            done = self._cond.wait_for(
                lambda: self.status.get("episode") == episode and self.status.get("done"),
                timeout=timeout_s,
            )
            status = dict(self.status)
        self.recording = False
        if not done:
            raise TimeoutError(f"episode {episode} did not finish within {timeout_s} s")
        record = {
            "index": episode,
            "seed": reply["seed"],
            "success": bool(status["success"]),
            "length": int(status["steps"]),
            "late_commands": int(status.get("late_commands", 0)),
        }
        if "instruction" in status:  # language tasks: what the robot was asked to do
            record["instruction"] = str(status["instruction"])
        return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--episode-timeout-s", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args, ros_args = parser.parse_known_args(argv)
    use_robot_learning_transports()
    rclpy.init(args=ros_args)
    node = EpisodeRunner()
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        with contextlib.suppress(ExternalShutdownException):
            executor.spin()

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    records = []
    try:
        for k in range(args.episodes):
            record = node.run_episode(args.episode_timeout_s)
            records.append(record)
            outcome = "success" if record["success"] else "failure"
            print(
                f"episode {k + 1}/{args.episodes} (seed {record['seed']}): {outcome} "
                f"after {record['length']} steps",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(1.2)  # the client's diagnostics (once a second) after the last episode
    finally:
        rclpy.try_shutdown()  # makes spin() return
        spinner.join(timeout=5.0)
        executor.shutdown()
        node.destroy_node()
    successes = sum(r["success"] for r in records)
    low, high = wilson_interval(successes, len(records))
    summary = {
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / max(len(records), 1),
        "success_ci95_low": low,
        "success_ci95_high": high,
        "per_episode": records,
        "command_latency_ms": [round(v, 3) for v in node.command_latency_ms],
        "policy_client": node.client_diagnostics,
    }
    text = json.dumps(summary)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text, flush=True)


if __name__ == "__main__":
    main()
