#!/usr/bin/env python
"""Message delivery delay through rclpy's executors, measured across two real processes.

Why: every robot_learning node spins one executor that hands messages to the node's own
threads. A publisher process sends ``--topics`` ``std_msgs/Float64`` topics (each message holds
its send time) at ``--rate-hz``, as a robot's sensor set would; a subscriber process spins one
executor kind and records, per message, the delay from send to callback and how many arrived.
Run for each executor in turn, in one dedicated ``ROS_DOMAIN_ID``, with the nodes' Fast DDS
profile.

Usage:
  .venv/bin/python scripts/bench/ros2_executor.py [--seconds 8] [--rate-hz 10] [--topics 7]
      [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "ros2_ws" / "src" / "robot_learning_ros"
EXECUTORS = ("single_threaded", "multi_threaded", "events")


def publisher(seconds: float, rate_hz: float, topics: int) -> None:
    import rclpy
    from rclpy.node import Node
    from std_msgs.msg import Float64

    rclpy.init()
    node = Node("executor_bench_pub")
    pubs = [node.create_publisher(Float64, f"/executor_bench/t{i}", 10) for i in range(topics)]
    end = time.time() + seconds
    while time.time() < end:
        for pub in pubs:
            pub.publish(Float64(data=time.time()))
        time.sleep(1.0 / rate_hz)
    node.destroy_node()
    rclpy.try_shutdown()


def subscriber(kind: str, seconds: float, topics: int) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import Float64

    rclpy.init()
    node = Node("executor_bench_sub")
    delays: list[float] = []
    for i in range(topics):
        node.create_subscription(
            Float64, f"/executor_bench/t{i}", lambda m: delays.append(time.time() - m.data), 10
        )
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        executor = EventsExecutor()
    else:
        executor = (
            SingleThreadedExecutor() if kind == "single_threaded" else MultiThreadedExecutor(2)
        )
    executor.add_node(node)
    end = time.time() + seconds
    while time.time() < end:  # as robot_learning_ros.node_utils.run_node spins
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()
    d = np.asarray(delays) * 1e3
    return {
        "executor": kind,
        "received": int(d.size),
        "delay_ms_p50": float(np.median(d)) if d.size else None,
        "delay_ms_p90": float(np.percentile(d, 90)) if d.size else None,
        "delay_ms_max": float(d.max()) if d.size else None,
    }


def run_pair(kind: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Start a subscriber and a publisher process; return the subscriber's figures."""
    me = [sys.executable, __file__, "--seconds", str(args.seconds), "--topics", str(args.topics)]
    sub = subprocess.Popen(
        [*me, "--role", "sub", "--executor", kind], env=env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # the subscriber exists before the first message
    pub_seconds = args.seconds - 1.5  # stops before the subscriber does: every message counts
    pub = subprocess.Popen(
        [*me, "--role", "pub", "--rate-hz", str(args.rate_hz)]
        + ["--pub-seconds", str(pub_seconds)],
        env=env,
    )
    pub.wait(timeout=args.seconds + 30)
    out, _ = sub.communicate(timeout=args.seconds + 30)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["sent"] = round(pub_seconds * args.rate_hz) * args.topics
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="subscriber run time")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="publisher rate per topic")
    parser.add_argument("--topics", type=int, default=7, help="topics published per tick")
    parser.add_argument("--domain", type=int, default=220 + os.getpid() % 10)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--role", choices=("pub", "sub"), help=argparse.SUPPRESS)
    parser.add_argument("--executor", choices=EXECUTORS, help=argparse.SUPPRESS)
    parser.add_argument("--pub-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 2 or args.rate_hz <= 0 or args.topics < 1:
        parser.error("--seconds must be > 2, --rate-hz > 0, --topics >= 1")
    sys.path.insert(0, str(PACKAGE_DIR))
    from robot_learning_ros.dds_profile import use_robot_learning_transports

    use_robot_learning_transports()
    if args.role == "pub":
        publisher(args.pub_seconds, args.rate_hz, args.topics)
        return 0
    if args.role == "sub":
        print(json.dumps(subscriber(args.executor, args.seconds, args.topics)))
        return 0

    env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain))
    results = [run_pair(kind, args, env) for kind in EXECUTORS]
    if args.json:
        print(json.dumps({"command": " ".join(sys.argv), "results": results}))
        return 0
    print(
        f"{args.topics} topics at {args.rate_hz:g} Hz for {args.seconds - 1.5:g} s, spin_once(0.1)"
    )
    print(f"{'executor':<16} {'received/sent':>14} {'delay p50':>10} {'p90':>8} {'max':>8}  (ms)")
    for r in results:
        fig = [r[k] for k in ("delay_ms_p50", "delay_ms_p90", "delay_ms_max")]
        shown = " ".join(f"{v:>8.1f}" if v is not None else "       -" for v in fig)
        print(f"{r['executor']:<16} {r['received']:>6}/{r['sent']:<7} {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
