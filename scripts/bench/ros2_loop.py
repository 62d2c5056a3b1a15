#!/usr/bin/env python
"""ROS 2 loop figures: loop latency overhead, action-stream jitter at 30 Hz, camera node rate.

Why: the ROS 2 nodes sit between the robot's sensors and the policy server; they must add little
latency next to the model, keep the command stream on the control clock, and carry camera
streams at full rate. All three are measured here in one run, with real processes talking over
rclpy / Fast DDS on this machine, in a dedicated ``ROS_DOMAIN_ID``.

1. Loop latency. A policy server (``robot-learning serve``) with a weightless
   ``ScriptedLiftPolicy`` (one RGB camera it requires but does not look at, chunks of 4) and a
   ``policy_client_node`` process. This process plays the robot: every tick it publishes
   ``/tcp_pose``, ``/sim/state/object_pos``, ``/sim/state/object_quat``, an rgb8 image on
   ``/camera/scene/color/image_raw`` and ``/joint_states`` last (the client's trigger), all with
   the same stamp (the ROS clock when the tick starts), at ``--rate-hz``. The client answers each
   observation with a ``JointTrajectory`` stamped with that observation's stamp. Latency to
   "published" is the command's DDS source timestamp (when the client published it, on the
   same system clock) minus its stamp: publishing the image, DDS to the client, decoding and
   checking every message, waiting for all topics of the tick, the executor step, the safety
   layer, tcp-delta -> joint IK, and the command's publication. Latency to "received" is the
   command's arrival here and adds DDS back. Model time is the policy's ``predict_chunk`` timed
   in this process on the same observation (and the server's own ``inference_seconds`` from
   ``/metrics``); overhead = latency - model time p50 (goal <= 5 ms p50, camera stamp ->
   command published). The client requests chunks in the background (one chunk covers 4 ticks), so a
   tick normally waits for no model call at all: the raw latency is already nearly all overhead.
2. Action-stream jitter at 30 Hz: the intervals between consecutive commands' arrivals while the
   stand-in publishes at 30 Hz: mean, std, p99 and max of |interval - 33.3 ms|, and missed ticks
   (observations of the window that got no command). With ``--rate-hz 30`` (the default) this
   is the same run as 1.
3. Camera node sustained rate: two ``camera_node`` processes (``opencv`` driver, a 30 fps MJPG
   .avi of ``--image-size`` written here, ``loop: true``, ``max_rate_hz: 30``), ``cam0`` and
   ``cam1``, for ``--seconds``: frames received per stream here vs 30 Hz x duration, frames
   missing from the sequence (the stamps are the file's media time, so a gap in them is a frame
   published but not received), and the nodes' own counters from ``/diagnostics``.

Usage:
  .venv/bin/python scripts/bench/ros2_loop.py [--seconds 20] [--rate-hz 30]
      [--image-size 640x480] [--phases loop,camera] [--json]
A default run takes about 1.5-2 minutes. Node logs go to a temporary directory (kept with
``--keep-logs``). Every process started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ros_support import Listener, Processes

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG = logging.getLogger("bench.ros2_loop")
ARM_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
COMMANDS = "/joint_trajectory_controller/joint_trajectory"
JITTER_HZ = 30.0
CAMERA_FPS = 30.0
CHUNK_LEN = 4
LATENCY_GOAL_MS = 5.0


def _support() -> None:
    """Make ``tests/ros_support.py`` (and through it the ROS 2 package) importable."""
    tests = str(REPO_ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


# ---- small helpers ------------------------------------------------------------------------------
def stats(values: list[float] | np.ndarray) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan"), "max": float("nan")}
    p50, p99 = np.percentile(arr, [50, 99])
    return {
        "p50": float(p50),
        "p99": float(p99),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


def wait_for(
    predicate: Any,
    timeout_s: float,
    what: str,
    procs: Processes | None = None,
    names: tuple[str, ...] = (),
) -> None:
    """Poll ``predicate``; fail early when one of the processes ``names`` has exited."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if procs is not None:
            for name in names:
                proc = procs.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with status {proc.returncode} while waiting for {what}:\n"
                        + procs.output(name)[-3000:]
                    )
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def http_get(url: str, timeout_s: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            return str(reply.read().decode())
    except OSError:
        return None


def server_metrics(port: int) -> dict[str, float]:
    """``<metric>_sum`` / ``_count`` of the server's histograms (names without the common
    prefix), summed over label sets."""
    from robot_learning.serving.metrics import PREFIX

    text = http_get(f"http://127.0.0.1:{port}/metrics") or ""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0].removeprefix(PREFIX)
        if base.endswith(("_sum", "_count")):
            out[base] = out.get(base, 0.0) + float(value)
    return out


def machine_info() -> dict[str, Any]:
    import importlib.metadata

    from rclpy.utilities import get_rmw_implementation_identifier

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "rclpy": importlib.metadata.version("rclpy"),
        "rmw": get_rmw_implementation_identifier(),
        "fastdds_transports": fastdds_transports(),
        "loadavg_start": loadavg(),
    }


def fastdds_transports() -> str:
    """What the run's processes use: an explicit ``FASTDDS_BUILTIN_TRANSPORTS`` or profile,
    else the nodes' own profile (``robot_learning_ros.dds_profile``)."""
    builtin = os.environ.get("FASTDDS_BUILTIN_TRANSPORTS")
    if builtin:
        return f"FASTDDS_BUILTIN_TRANSPORTS={builtin}"
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    return f"profile {profile}" if profile else "robot_learning profile (8 MB shm segment + UDPv4)"


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` -> (width, height)."""
    width, height = (int(v) for v in text.lower().split("x"))
    if width <= 0 or height <= 0:
        raise ValueError(text)
    return width, height


# ---- the robot stand-in -------------------------------------------------------------------------
@dataclass
class CommandLog:
    """Commands as they arrive: (arrival ns on the ROS clock, header stamp ns, DDS source
    timestamp ns: when the client published the command, by the same system clock)."""

    rows: list[tuple[int, int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, arrival_ns: int, stamp_ns: int, source_ns: int) -> None:
        with self.lock:
            self.rows.append((arrival_ns, stamp_ns, source_ns))

    def snapshot(self) -> list[tuple[int, int, int]]:
        with self.lock:
            return list(self.rows)


class RobotStandIn:
    """Publishes one observation per tick on every topic the policy reads, one stamp for all.

    The messages are built once (constant state from the sim's first observation, one image)
    and only their stamps change per tick, as a driver filling preallocated buffers would.
    """

    def __init__(
        self, listener: Listener, state: dict[str, np.ndarray], width: int, height: int
    ) -> None:
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import Image, JointState

        from robot_learning_ros import topics
        from robot_learning_ros.conversions import image_msg, joint_state_msg, pose_msg
        from robot_learning_ros.qos import SENSOR_QOS

        node = listener.node
        self.clock = node.get_clock()
        joints = np.concatenate([state["joint_pos"], np.asarray(state["gripper_pos"]).reshape(1)])
        velocity = np.zeros_like(joints)
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        self.msgs: list[tuple[Any, Any]] = [
            (
                node.create_publisher(PoseStamped, topics.TCP_POSE, SENSOR_QOS),
                pose_msg(state["ee_pos"], state["ee_quat"], 0.0),
            )
        ]
        for name in ("object_pos", "object_quat"):
            value = np.asarray(state[name], dtype=np.float32).reshape(1, -1)
            self.msgs.append(
                (
                    node.create_publisher(Image, topics.sim_state_topic(name), SENSOR_QOS),
                    image_msg(value, 0.0, encoding="32FC1"),
                )
            )
        self.msgs.append(
            (
                node.create_publisher(Image, topics.color_topic("scene"), SENSOR_QOS),
                image_msg(image, 0.0, frame_id="scene_color_optical_frame"),
            )
        )
        # joint states last: the client's tick starts on them (as the sim node does)
        self.msgs.append(
            (
                node.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS),
                joint_state_msg((*ARM_JOINTS, topics.GRIPPER_JOINT), joints, 0.0, velocity),
            )
        )
        self.stamps: list[int] = []
        self.publish_ns: dict[int, int] = {}  # stamp -> time to publish every topic of the tick
        self.overruns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, rate_hz: float) -> None:
        self.stop()
        self.stamps = []
        self.publish_ns = {}
        self.overruns = 0
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(1.0 / rate_hz,), name="robot-stand-in", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self, period: float) -> None:
        from builtin_interfaces.msg import Time

        next_tick = time.monotonic()
        while not self._stop.is_set():
            ns = self.clock.now().nanoseconds
            stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
            for pub, msg in self.msgs:
                msg.header.stamp = stamp
                pub.publish(msg)
            self.publish_ns[ns] = self.clock.now().nanoseconds - ns
            self.stamps.append(ns)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -period:
                self.overruns += 1
                next_tick = time.monotonic()


# ---- phase 1 and 2: the policy loop -------------------------------------------------------------
def initial_state() -> dict[str, np.ndarray]:
    """The lift task's first observation (joints, tcp, cube) from the simulator, state only."""
    from drivers.robots.sim import SimRobot

    robot = SimRobot(task="lift", control_mode="joint", cameras=(), seed=0)
    robot.connect()
    try:
        values = robot.get_observation().values
        return {k: np.asarray(v) for k, v in values.items()}
    finally:
        robot.disconnect()


def model_time(
    state: dict[str, np.ndarray], width: int, height: int, rate_hz: float, repeats: int = 300
) -> dict[str, float]:
    """``predict_chunk`` of the served policy on the observation the stand-in publishes (ms)."""
    from robot_learning.policies.scripted import ScriptedLiftPolicy

    policy = ScriptedLiftPolicy(
        control_hz=rate_hz, chunk_len=CHUNK_LEN, cameras=("scene",), image_size=(height, width)
    )
    image = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    obs: dict[str, Any] = {
        name: np.asarray(state[name], spec.dtype).reshape(1, 1, *spec.shape)
        for name, spec in policy.observation_spec.items()
        if name != "scene_rgb"
    }
    obs["scene_rgb"] = image[None, None]
    times = []
    for i in range(repeats + 20):
        start = time.perf_counter()
        policy.predict_chunk(obs)
        if i >= 20:
            times.append((time.perf_counter() - start) * 1e3)
    return stats(times)


@dataclass
class LoopRun:
    rate_hz: float
    stamps: list[int]  # observations published in the window (ns)
    commands: list[tuple[int, int, int]]  # (arrival, stamp, client publish) ns, every command
    window_ns: tuple[int, int]
    publish_ns: dict[int, int]  # stamp -> the stand-in's time to publish that tick's topics
    standin_overruns: int
    server: dict[str, float]  # deltas of the server's histogram sums and counts over the window
    diagnostics_start: dict[str, str]
    diagnostics_end: dict[str, str]


class Diagnostics:
    """The latest ``/diagnostics`` values per status name."""

    def __init__(self, listener: Listener) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.latest: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        listener.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_msg, 50)

    def _on_msg(self, msg: Any) -> None:
        with self.lock:
            for status in msg.status:
                self.latest[status.name] = {kv.key: kv.value for kv in status.values}

    def get(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self.latest.get(name, {}))


def run_loop(
    procs: Processes,
    port: int,
    standin: RobotStandIn,
    commands: CommandLog,
    diags: Diagnostics,
    rate_hz: float,
    seconds: float,
    warmup_s: float,
) -> LoopRun:
    """Start a policy client at ``rate_hz``, drive it from the stand-in, record one window."""
    name = f"policy_client_{rate_hz:g}hz"
    procs.start_node(
        name,
        "policy_client_node",
        "-p",
        f"server_url:=ws://127.0.0.1:{port}",
        "-p",
        "autostart:=true",
        "-p",
        f"control_hz:={float(rate_hz)}",
    )
    try:
        LOG.info("  driving the client at %g Hz; waiting for its first command ...", rate_hz)
        before = len(commands.snapshot())
        standin.start(rate_hz)
        wait_for(
            lambda: len(commands.snapshot()) > before,
            90,
            "the first command",
            procs,
            ("server", name),
        )
        LOG.info("  warm-up %g s, then %g s measured ...", warmup_s, seconds)
        time.sleep(warmup_s)
        metrics_start = server_metrics(port)
        diag_start = diags.get("policy_client")
        clock = standin.clock
        t0 = clock.now().nanoseconds
        time.sleep(seconds)
        t1 = clock.now().nanoseconds
        time.sleep(1.0)  # answers to the window's last observations
        metrics_end = server_metrics(port)
        time.sleep(1.1)  # one more diagnostics message
        diag_end = diags.get("policy_client")
        standin.stop()
        stamps = [s for s in standin.stamps if t0 <= s <= t1]
        server = {k: metrics_end.get(k, 0.0) - v for k, v in metrics_start.items()}
        return LoopRun(
            rate_hz,
            stamps,
            commands.snapshot()[before:],
            (t0, t1),
            {s: standin.publish_ns[s] for s in stamps if s in standin.publish_ns},
            standin.overruns,
            server,
            diag_start,
            diag_end,
        )
    finally:
        standin.stop()
        procs.stop(name)


def loop_figures(run: LoopRun, model: dict[str, float]) -> dict[str, Any]:
    """Latency, overhead and command-stream jitter of one window."""
    period_ms = 1e3 / run.rate_hz
    published = np.asarray(run.stamps, dtype=np.int64)
    answered: dict[int, int] = {}  # published stamp -> first arrival
    sent: dict[int, int] = {}  # published stamp -> when the client published its command
    duplicates = 0
    for arrival, stamp, source in run.commands:
        if published.size == 0:
            break
        i = int(np.searchsorted(published, stamp))
        near = [j for j in (i - 1, i) if 0 <= j < published.size]
        j = min(near, key=lambda k: abs(int(published[k]) - stamp))
        if abs(int(published[j]) - stamp) > 50_000:  # float round trip of the stamp: < 1 us
            continue
        key = int(published[j])
        if key in answered:
            duplicates += 1
            continue
        answered[key] = arrival
        sent[key] = source
    latency = [(arrival - stamp) / 1e6 for stamp, arrival in answered.items()]
    to_publish = stats([(sent[stamp] - stamp) / 1e6 for stamp in answered])
    delivery = stats([(arrival - sent[stamp]) / 1e6 for stamp, arrival in answered.items()])
    # the stand-in publishes five topics from one Python thread, the trigger last; a robot's
    # nodes publish theirs in parallel: what the stack adds after the trigger is sent
    after_trigger = [
        (arrival - stamp - run.publish_ns[stamp]) / 1e6
        for stamp, arrival in answered.items()
        if stamp in run.publish_ns
    ]
    publishing = stats([v / 1e6 for v in run.publish_ns.values()])
    after = stats(after_trigger)
    arrivals = np.sort(np.asarray(list(answered.values()), dtype=np.int64))
    intervals = np.diff(arrivals) / 1e6
    deviation = np.abs(intervals - period_ms)
    gaps = int(np.sum(np.maximum(np.rint(intervals / period_ms) - 1, 0))) if intervals.size else 0
    pub_intervals = np.diff(published) / 1e6
    lat = stats(latency)
    dev = stats(deviation)
    server = run.server
    n_infer = server.get("inference_seconds_count", 0.0)
    n_req = server.get("request_seconds_count", 0.0)

    def diag_delta(key: str) -> int | None:
        try:
            return int(run.diagnostics_end[key]) - int(run.diagnostics_start[key])
        except (KeyError, ValueError):
            return None

    return {
        "rate_hz": run.rate_hz,
        "seconds": (run.window_ns[1] - run.window_ns[0]) / 1e9,
        "observations": int(published.size),
        "commands": len(answered),
        "duplicate_commands": duplicates,
        "missed_ticks": int(published.size) - len(answered),
        "latency_ms_p50": lat["p50"],
        "latency_ms_p99": lat["p99"],
        "latency_ms_mean": lat["mean"],
        "latency_ms_max": lat["max"],
        "model_ms_p50": model["p50"],
        "model_ms_p99": model["p99"],
        "overhead_ms_p50": lat["p50"] - model["p50"],
        "overhead_ms_p99": lat["p99"] - model["p50"],
        "published_ms_p50": to_publish["p50"],
        "published_ms_p99": to_publish["p99"],
        "published_overhead_ms_p50": to_publish["p50"] - model["p50"],
        "command_delivery_ms_p50": delivery["p50"],
        "command_delivery_ms_p99": delivery["p99"],
        "standin_publish_ms_p50": publishing["p50"],
        "standin_publish_ms_p99": publishing["p99"],
        "after_trigger_ms_p50": after["p50"],
        "after_trigger_ms_p99": after["p99"],
        "server_inference_ms_mean": 1e3 * server.get("inference_seconds_sum", 0.0) / n_infer
        if n_infer
        else None,
        "server_request_ms_mean": 1e3 * server.get("request_seconds_sum", 0.0) / n_req
        if n_req
        else None,
        "chunks_requested": int(n_req),
        "interval_ms_mean": float(intervals.mean()) if intervals.size else float("nan"),
        "interval_ms_std": float(intervals.std()) if intervals.size else float("nan"),
        "abs_dev_ms_mean": dev["mean"],
        "abs_dev_ms_p99": dev["p99"],
        "abs_dev_ms_max": dev["max"],
        "interval_gaps": gaps,
        "standin_abs_dev_ms_p99": stats(np.abs(pub_intervals - period_ms))["p99"],
        "standin_overruns": run.standin_overruns,
        "client_ticks": diag_delta("ticks"),
        "client_commands_sent": diag_delta("commands_sent"),
        "client_holds_no_action": diag_delta("safety_no_action"),
        "client_holds_stale_obs": diag_delta("safety_stale_obs"),
        "client_rejected_messages": diag_delta("rejected_messages"),
    }


def write_policy(directory: Path, rate_hz: float, width: int, height: int) -> Path:
    from robot_learning.policies.scripted import ScriptedLiftPolicy

    policy = ScriptedLiftPolicy(
        control_hz=rate_hz, chunk_len=CHUNK_LEN, cameras=("scene",), image_size=(height, width)
    )
    return policy.save(directory / "scripted_lift")


def bench_loop(
    args: argparse.Namespace, procs: Processes, listener: Listener, tmp: Path
) -> dict[str, Any]:
    from ros_support import free_port
    from trajectory_msgs.msg import JointTrajectory

    from robot_learning_ros.qos import COMMAND_QOS

    width, height = args.image_size
    LOG.info("policy loop: sim state, in-process model timing ...")
    state = initial_state()
    model = model_time(state, width, height, args.rate_hz)
    LOG.info("  predict_chunk p50 %.3f ms, p99 %.3f ms", model["p50"], model["p99"])
    checkpoint = write_policy(tmp, args.rate_hz, width, height)
    port = free_port()
    procs.start(
        "server",
        [sys.executable, "-m", "robot_learning.cli", "serve", "--policy", str(checkpoint)]
        + ["--port", str(port)],
    )
    LOG.info("  waiting for the policy server on port %d ...", port)
    wait_for(
        lambda: http_get(f"http://127.0.0.1:{port}/healthz", 1.0) is not None,
        120,
        "the policy server",
        procs,
        ("server",),
    )
    commands = CommandLog()
    clock = listener.node.get_clock()

    def on_command(msg: Any, info: Any) -> None:
        stamp = msg.header.stamp
        commands.add(
            clock.now().nanoseconds,
            stamp.sec * 1_000_000_000 + stamp.nanosec,
            int(info["source_timestamp"]),
        )

    listener.node.create_subscription(JointTrajectory, COMMANDS, on_command, COMMAND_QOS)
    diags = Diagnostics(listener)
    standin = RobotStandIn(listener, state, width, height)
    rates = [args.rate_hz] if args.rate_hz == JITTER_HZ else [args.rate_hz, JITTER_HZ]
    runs = {}
    for rate in rates:
        runs[rate] = loop_figures(
            run_loop(procs, port, standin, commands, diags, rate, args.seconds, args.warmup),
            model,
        )
        row = runs[rate]
        LOG.info(
            "  %g Hz: latency p50 %.2f ms p99 %.2f ms, |interval - period| p99 %.2f ms, "
            "%d missed of %d",
            rate,
            row["latency_ms_p50"],
            row["latency_ms_p99"],
            row["abs_dev_ms_p99"],
            row["missed_ticks"],
            row["observations"],
        )
    procs.stop("server")
    return {
        "model": "ScriptedLiftPolicy (weightless), chunk_len 4, n_action_steps 4, "
        f"1 camera rgb8 {width}x{height}",
        "model_ms": model,
        "latency": runs[args.rate_hz],
        "jitter": runs[JITTER_HZ],
        "same_run": args.rate_hz == JITTER_HZ,
    }


# ---- phase 3: camera nodes ----------------------------------------------------------------------
def write_video(path: Path, width: int, height: int, frames: int) -> Path:
    """A 30 fps MJPG .avi: a gradient with a moving square and light noise (JPEG-realistic)."""
    import cv2

    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), CAMERA_FPS, (width, height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter could not open {path} for MJPG")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], axis=-1
    ).astype(np.uint8)
    side = max(min(width, height) // 6, 4)
    for k in range(frames):
        frame = base.copy()
        x = (k * 7) % max(width - side, 1)
        y = (k * 5) % max(height - side, 1)
        frame[y : y + side, x : x + side] = (255, 255, 255)
        frame = cv2.add(frame, rng.integers(0, 12, size=frame.shape, dtype=np.uint8))
        writer.write(frame)
    writer.release()
    return path


def bench_cameras(
    args: argparse.Namespace, procs: Processes, listener: Listener, tmp: Path
) -> dict[str, Any]:
    from sensor_msgs.msg import Image

    from robot_learning_ros import topics
    from robot_learning_ros.qos import SENSOR_QOS

    width, height = args.image_size
    video = write_video(tmp / "camera.avi", width, height, frames=int(3 * CAMERA_FPS))
    LOG.info("camera nodes: %s (%dx%d, 30 fps MJPG, looped)", video, width, height)
    names = ("cam0", "cam1")
    frames: dict[str, list[tuple[int, int]]] = {name: [] for name in names}
    clock = listener.node.get_clock()
    for name in names:

        def on_image(msg: Any, out: list[tuple[int, int]] = frames[name]) -> None:
            stamp = msg.header.stamp
            out.append((clock.now().nanoseconds, stamp.sec * 1_000_000_000 + stamp.nanosec))

        listener.node.create_subscription(Image, topics.color_topic(name), on_image, SENSOR_QOS)
    diags = Diagnostics(listener)
    driver_args = "{source: " + json.dumps(str(video)) + ", loop: true}"
    for name in names:
        procs.start_node(
            name,
            "camera_node",
            "-r",
            f"__node:=camera_{name}",
            "-p",
            "driver:=opencv",
            "-p",
            "driver_args:='" + driver_args.replace("'", "''") + "'",
            "-p",
            f"camera_name:={name}",
            "-p",
            f"max_rate_hz:={CAMERA_FPS}",
        )
    try:
        wait_for(
            lambda: all(frames[n] for n in names), 90, "frames from both cameras", procs, names
        )
        LOG.info("  streaming; warm-up %g s, then %g s measured ...", args.warmup, args.seconds)
        time.sleep(args.warmup)
        diag_start = {n: diags.get(f"camera_node: {n}") for n in names}
        t0 = clock.now().nanoseconds
        time.sleep(args.seconds)
        t1 = clock.now().nanoseconds
        time.sleep(1.1)
        diag_end = {n: diags.get(f"camera_node: {n}") for n in names}
        for name in names:
            if procs.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{procs.output(name)[-3000:]}")
    finally:
        for name in names:
            procs.stop(name)
    seconds = (t1 - t0) / 1e9
    expected = CAMERA_FPS * seconds
    streams = []
    for name in names:
        rows = [(a, s) for a, s in frames[name] if t0 <= a <= t1]
        index = np.rint(np.asarray([s for _, s in rows], dtype=np.float64) / 1e9 * CAMERA_FPS)
        steps = np.diff(np.sort(index))
        start, end = diag_start[name], diag_end[name]

        def delta(key: str, start: dict[str, str] = start, end: dict[str, str] = end) -> int | None:
            try:
                return int(end[key]) - int(start[key])
            except (KeyError, ValueError):
                return None

        arrivals = np.asarray([a for a, _ in rows], dtype=np.int64)
        intervals = np.diff(arrivals) / 1e6
        streams.append(
            {
                "camera": name,
                "topic": topics.color_topic(name),
                "received": len(rows),
                "expected": round(expected),
                "drops": max(0, round(expected) - len(rows)),
                "rate_hz": len(rows) / seconds if seconds else float("nan"),
                "sequence_gaps": int(np.sum(np.maximum(steps - 1, 0))) if steps.size else 0,
                "interval_ms_p99": stats(intervals)["p99"],
                "interval_ms_max": stats(intervals)["max"],
                "node_published_in_window": delta("frames_published"),
                "node_frames_published_total": _int_or_none(end.get("frames_published")),
                "node_frames_dropped_total": _int_or_none(end.get("frames_dropped")),
            }
        )
        LOG.info(
            "  %s: %d received, %d expected, %d sequence gaps, node dropped %s",
            name,
            len(rows),
            round(expected),
            streams[-1]["sequence_gaps"],
            end.get("frames_dropped", "n/a"),
        )
    return {
        "video": f"{width}x{height} MJPG .avi, 30 fps, {int(3 * CAMERA_FPS)} frames, looped",
        "seconds": seconds,
        "streams": streams,
    }


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


# ---- report -------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    m = result["machine"]
    out(
        f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), Python "
        f"{m['python']}, rclpy {m['rclpy']} ({m['rmw']}, "
        f"{m['fastdds_transports']}), load average {m['loadavg_start']} at "
        f"start, {m['loadavg_end']} at end\n"
    )
    out(f"command: {result['command']}\n\n")
    loop = result.get("loop")
    if loop:
        lat = loop["latency"]
        out(f"1. Loop latency at {lat['rate_hz']:g} Hz ({loop['model']})\n")
        out(
            "   camera stamp -> command published by the client (the command's DDS source "
            "timestamp), ms (p50 / p99)\n"
            f"   published       {_fmt(lat['published_ms_p50'])} / {_fmt(lat['published_ms_p99'])}"
            f"   overhead {_fmt(lat['published_overhead_ms_p50'])} p50 (goal <= "
            f"{LATENCY_GOAL_MS:g} ms)\n"
            f"   then delivery to this process {_fmt(lat['command_delivery_ms_p50'])} / "
            f"{_fmt(lat['command_delivery_ms_p99'])}\n"
        )
        out("   camera stamp -> command received here, ms (p50 / p99 / max)\n")
        out(
            f"   raw latency     {_fmt(lat['latency_ms_p50'])} / {_fmt(lat['latency_ms_p99'])} / "
            f"{_fmt(lat['latency_ms_max'])}\n"
            f"   model (predict_chunk, in-process) {_fmt(lat['model_ms_p50'], 3)} / "
            f"{_fmt(lat['model_ms_p99'], 3)}; server inference mean "
            f"{_fmt(lat['server_inference_ms_mean'], 3)}, server request mean "
            f"{_fmt(lat['server_request_ms_mean'], 3)} ({lat['chunks_requested']} chunks)\n"
            f"   overhead        {_fmt(lat['overhead_ms_p50'])} / {_fmt(lat['overhead_ms_p99'])}\n"
            f"   of which the stand-in publishing its topics (trigger last) "
            f"{_fmt(lat['standin_publish_ms_p50'])} / {_fmt(lat['standin_publish_ms_p99'])}; "
            f"trigger sent -> command received {_fmt(lat['after_trigger_ms_p50'])} / "
            f"{_fmt(lat['after_trigger_ms_p99'])}\n"
            f"   {lat['commands']} commands for {lat['observations']} observations, "
            f"{lat['missed_ticks']} missed; client holds: no action "
            f"{_fmt(lat['client_holds_no_action'])}, stale obs "
            f"{_fmt(lat['client_holds_stale_obs'])}\n\n"
        )
        jit = loop["jitter"]
        same = " (same run as 1)" if loop["same_run"] else ""
        out(f"2. Action-stream jitter at {jit['rate_hz']:g} Hz{same}\n")
        out(
            f"   interval mean {_fmt(jit['interval_ms_mean'])} ms, std "
            f"{_fmt(jit['interval_ms_std'])} ms; |interval - {1e3 / jit['rate_hz']:.1f} ms| mean "
            f"{_fmt(jit['abs_dev_ms_mean'])}, p99 {_fmt(jit['abs_dev_ms_p99'])}, max "
            f"{_fmt(jit['abs_dev_ms_max'])} ms\n"
            f"   missed ticks {jit['missed_ticks']} of {jit['observations']} "
            f"(interval gaps {jit['interval_gaps']}); stand-in's own |interval - period| p99 "
            f"{_fmt(jit['standin_abs_dev_ms_p99'])} ms\n\n"
        )
    cams = result.get("camera")
    if cams:
        out(f"3. Camera nodes, {cams['video']}, {cams['seconds']:.1f} s\n")
        head = (
            f"   {'camera':<6} {'received':>8} {'expected':>8} {'drops':>6} {'seq gaps':>8} "
            f"{'rate Hz':>8} {'gap p99 ms':>10} {'node dropped':>12}"
        )
        out(head + "\n   " + "-" * (len(head) - 3) + "\n")
        for s in cams["streams"]:
            out(
                f"   {s['camera']:<6} {s['received']:>8} {s['expected']:>8} {s['drops']:>6} "
                f"{s['sequence_gaps']:>8} {s['rate_hz']:>8.2f} {s['interval_ms_p99']:>10.1f} "
                f"{_fmt(s['node_frames_dropped_total']):>12}\n"
            )
        out("\n")
    out("\n".join(f"- {note}" for note in result["notes"]) + "\n")
    for goal, met in result["goals"].items():
        out(f"goal {goal}: {'met' if met else 'NOT met'}\n")


def assemble(
    args: argparse.Namespace,
    machine: dict[str, Any],
    loop: dict[str, Any] | None,
    camera: dict[str, Any] | None,
) -> dict[str, Any]:
    machine["loadavg_end"] = loadavg()
    goals: dict[str, bool] = {}
    notes = [
        "Latency is measured per tick: the client requests chunks in the background (a chunk of "
        "4 actions covers 4 ticks, requested ahead of need), so a tick does not wait for the "
        "model; overhead = latency - model p50 subtracts a model call the tick never made and "
        "is therefore a conservative (low) estimate of the stack's cost; raw latency is the "
        "upper bound. A chunk arriving late would show as 'no action' holds, not as latency.",
        "Latency to 'published' includes publishing the image from this process "
        "(serialisation), Fast DDS to the client, message checks, the wait for all topics of "
        "the tick, the safety layer, tcp-delta -> joint IK and the command's publication; it "
        "ends at the command's DDS source timestamp (the client's publish call, same system "
        "clock), which is what the goal is set on. 'Received here' adds Fast DDS back to this "
        "process and this process's executor.",
    ]
    if loop:
        goals[f"loop_overhead_p50_le_{LATENCY_GOAL_MS:g}ms"] = (
            loop["latency"]["published_overhead_ms_p50"] <= LATENCY_GOAL_MS
        )
        goals["no_missed_ticks_30hz"] = loop["jitter"]["missed_ticks"] == 0
    if camera:
        goals["camera_no_drops"] = all(
            s["drops"] == 0 and s["sequence_gaps"] == 0 for s in camera["streams"]
        )
        notes.append(
            "Camera drops = 30 Hz x window - frames received (arrival time in the window); "
            "sequence gaps = frames missing between received ones (from the media-time stamps): "
            "lost in transport. The window edges can cost +-1 frame."
        )
    if machine["fastdds_transports"] == "FASTDDS_BUILTIN_TRANSPORTS=DEFAULT":
        notes.append(
            "Fast DDS ran with its default transports (shared memory with 512 KB segments, UDP): "
            "best-effort messages of ~1 MB (640x480 rgb8) can be lost between processes; "
            "without --fastdds-transports the nodes' profile (8 MB segments) is measured."
        )
    start = machine.get("loadavg_start") or [0.0]
    if start[0] > 0.5 * (machine.get("cores") or 1):
        notes.append(f"The machine was busy (load average {start} at start).")
    argv = " ".join(sys.argv[1:])
    return {
        "command": f".venv/bin/python scripts/bench/ros2_loop.py {argv}".strip(),
        "machine": machine,
        "config": {
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "rate_hz": args.rate_hz,
            "image_size": f"{args.image_size[0]}x{args.image_size[1]}",
            "ros_domain_id": args.domain,
        },
        "loop": loop,
        "camera": camera,
        "goals": goals,
        "notes": notes,
    }


# ---- main ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: through the ``finally`` that stops the processes."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each window")
    parser.add_argument(
        "--rate-hz", type=float, default=30.0, help="control rate of the latency run (1)"
    )
    parser.add_argument(
        "--image-size", type=parse_size, default=(640, 480), help="WxH of the camera images"
    )
    parser.add_argument(
        "--phases", default="loop,camera", help="comma list of: loop (1 and 2), camera (3)"
    )
    parser.add_argument(
        "--domain",
        type=int,
        default=210 + os.getpid() % 10,
        help="ROS_DOMAIN_ID for every process of the run (default 210-219)",
    )
    parser.add_argument(
        "--fastdds-transports",
        default=None,
        help="set FASTDDS_BUILTIN_TRANSPORTS for every process of the run (DEFAULT, LARGE_DATA; "
        "default: the environment's, else the nodes' own Fast DDS profile)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the node logs directory")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not phases or phases - {"loop", "camera"}:
        parser.error("--phases takes loop and/or camera")
    if args.seconds <= 0 or args.rate_hz <= 0 or args.warmup < 0:
        parser.error("--seconds and --rate-hz must be > 0, --warmup >= 0")
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.fastdds_transports:
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = args.fastdds_transports  # children inherit
    logging.getLogger("robot_learning").setLevel(logging.WARNING)
    _support()
    from ros_support import Listener, Processes

    tmp = Path(tempfile.mkdtemp(prefix="ros2_loop_"))
    LOG.info("ROS_DOMAIN_ID %d, logs in %s", args.domain, tmp)
    machine = machine_info()
    procs = Processes(tmp, args.domain)
    listener: Listener | None = None
    loop = camera = None
    try:
        with sigterm_as_interrupt():
            listener = Listener(args.domain, name="ros2_loop_bench")
            if "loop" in phases:
                loop = bench_loop(args, procs, listener, tmp)
            if "camera" in phases:
                camera = bench_cameras(args, procs, listener, tmp)
    except KeyboardInterrupt:
        LOG.info("interrupted: stopping the nodes")
        return 130
    finally:
        procs.close()
        if listener is not None:
            listener.close()
        if args.keep_logs:
            LOG.info("node logs kept in %s", tmp)
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    result = assemble(args, machine, loop, camera)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
