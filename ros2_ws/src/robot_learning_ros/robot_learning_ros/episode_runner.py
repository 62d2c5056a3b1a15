"""Runs N seeded sim episodes through the ROS 2 closed loop and reports the success rate.

For each episode: ``/policy_client/hold`` (no command of the old episode may reach the new one),
``/sim/reset`` (the sim uses seed ``seed + k``, as ``robot-learning eval`` does), then
``/policy_client/reset``, then wait for ``/sim/episode`` to report the episode done.
The summary (JSON, one line on stdout, and ``out`` if given) has the same keys as the
evaluator's: ``success_rate``, ``success_ci95_low``/``high``, ``episodes``, ``per_episode``.
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
from rclpy.client import Client
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from robot_learning.eval.stats import wilson_interval
from robot_learning_ros import topics
from robot_learning_ros.dds_profile import use_robot_learning_transports
from robot_learning_ros.qos import STATUS_QOS


class EpisodeRunner(Node):
    def __init__(self, sim: str = "/sim", client: str = "/policy_client") -> None:
        super().__init__("episode_runner")
        self.sim_reset: Client = self.create_client(Trigger, f"{sim}/reset")
        self.client_reset: Client = self.create_client(Trigger, f"{client}/reset")
        self.client_hold: Client = self.create_client(Trigger, f"{client}/hold")
        self.status: dict[str, Any] = {}
        self._cond = threading.Condition()
        self.create_subscription(String, topics.EPISODE_STATUS, self._on_status, STATUS_QOS)

    def _on_status(self, msg: String) -> None:
        with self._cond:
            self.status = json.loads(msg.data)
            self._cond.notify_all()

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
        with self._cond:
            done = self._cond.wait_for(
                lambda: self.status.get("episode") == episode and self.status.get("done"),
                timeout=timeout_s,
            )
            status = dict(self.status)
        if not done:
            raise TimeoutError(f"episode {episode} did not finish within {timeout_s} s")
        return {
            "index": episode,
            "seed": reply["seed"],
            "success": bool(status["success"]),
            "length": int(status["steps"]),
            "late_commands": int(status.get("late_commands", 0)),
        }


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
    }
    text = json.dumps(summary)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text, flush=True)


if __name__ == "__main__":
    main()
