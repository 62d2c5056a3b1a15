"""Teleop node: a teleop device (leader arm, SpaceMouse, gamepad, keyboard) -> JointTrajectory.

Why a node: the same devices the ``collect`` CLI uses then drive any ROS 2 arm (the sim node, the
arm node, a ros2_control ``joint_trajectory_controller``), and the recorder node records what
they command, so demonstrations can be recorded on a robot that is only reachable through ROS 2.

Every ``rate_hz`` tick the node builds an observation from the latest ``/joint_states`` (arm
joints by name + ``gripper``) and ``/tcp_pose``, asks the device for an action and publishes it
as a one-point ``JointTrajectory`` (arm joints + ``gripper``, due one period after its ROS-clock
stamp) on ``/<controller>/joint_trajectory``:

* joint-mode devices (the leader arm) produce the targets directly. The first command is sent
  only once the leader is within ``max_start_error`` rad of the measured arm, so a leader held
  in another pose cannot yank the robot across the workspace when teleop starts.
* tcp-delta devices (SpaceMouse, gamepad, keyboard) are turned into joint targets by
  :class:`~robot_learning.serving.joint_commands.JointCommandMapper` (the simulator's own
  controller on the UR5e model), reset from the first joint state.

Operator events (save, discard, stop) are logged and, when ``recorder`` is set, forwarded to the
recorder node's services. A device error (a silent servo, an unplugged adapter) is logged and
the node exits with status 1: it never keeps publishing stale targets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from drivers.interfaces import TeleopDevice, TeleopEvent
from drivers.registry import make_teleop
from robot_learning.serving.joint_commands import JointCommandMapper
from robot_learning.sim.control import action_spec as sim_action_spec
from robot_learning.sim.robot_model import ARM_JOINTS
from robot_learning.specs import FeatureSpec, SpecDict
from robot_learning.types import Observation
from robot_learning_ros import topics
from robot_learning_ros.conversions import (
    MessageError,
    from_stamp,
    joint_positions,
    pose_values,
    trajectory_msg,
)
from robot_learning_ros.node_utils import declare, paced_loop, parse_driver_args, run_node
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS

JOINT_DEVICES = frozenset({"leader"})  # devices that produce absolute joint targets
UNBOUNDED_JOINT = 2.0 * np.pi  # UR joints turn ±360°; joints the model does not know get this


def joint_action_spec(
    arm_joints: Sequence[str], model_limits: dict[str, tuple[float, float]]
) -> SpecDict:
    """The joint-mode action a leader arm fills by name: ``arm_joints`` + gripper 0..1."""
    low = [model_limits.get(n, (-UNBOUNDED_JOINT, UNBOUNDED_JOINT))[0] for n in arm_joints]
    high = [model_limits.get(n, (-UNBOUNDED_JOINT, UNBOUNDED_JOINT))[1] for n in arm_joints]
    feature = FeatureSpec(
        shape=(len(arm_joints) + 1,),
        dtype="float32",
        kind="lowdim",
        low=(*low, 0.0),
        high=(*high, 1.0),
        names=(*arm_joints, topics.GRIPPER_JOINT),
        description="absolute joint position targets (rad) and gripper closure 0..1",
    )
    return SpecDict({"action": feature})


class TeleopNode(Node):
    """Owns one :class:`TeleopDevice` and a thread that polls it and publishes its commands."""

    def __init__(self) -> None:
        super().__init__("teleop")
        p = declare(
            self,
            device="leader",
            device_args="{}",
            rate_hz=10.0,
            controller=topics.DEFAULT_CONTROLLER,
            arm_joints=list(ARM_JOINTS),
            max_start_error=0.2,
            gripper_joint=topics.GRIPPER_JOINT,
            recorder="/recorder",
            service_timeout_s=5.0,
        )
        self.failed = False
        rate = float(p["rate_hz"])
        if rate <= 0:
            self._fail(f"rate_hz must be positive, got {rate}")
        self.period = 1.0 / rate
        self.arm_joints = tuple(str(n) for n in p["arm_joints"])
        if len(self.arm_joints) != len(ARM_JOINTS):
            self._fail(
                f"arm_joints must name the arm's {len(ARM_JOINTS)} joints (in the order "
                f"{list(ARM_JOINTS)}), got {list(self.arm_joints)}"
            )
        self.device_kind = str(p["device"])
        self.joint_mode = self.device_kind in JOINT_DEVICES
        # the UR5e model: joint limits for the leader's spec, IK for tcp-delta devices
        self.mapper = JointCommandMapper("ee_delta")
        limits = self.mapper.controller.limits
        model_limits = {
            n: (float(lo), float(hi))
            for n, lo, hi in zip(ARM_JOINTS, limits.joint_low, limits.joint_high)
        }
        if self.joint_mode:
            spec = joint_action_spec(self.arm_joints, model_limits)
        else:
            spec = SpecDict({"action": sim_action_spec("ee_delta", limits)})
        self.device = self._start_device(str(p["device_args"]), spec)
        self.max_start_error = float(p["max_start_error"])
        # a joint_trajectory_controller rejects names it does not own: "" leaves the gripper out
        self.gripper_joint = str(p["gripper_joint"])
        self.command_names = [
            *self.arm_joints,
            *([self.gripper_joint] if self.gripper_joint else []),
        ]
        self.engaged = not self.joint_mode or self.max_start_error <= 0
        self.mapper_ready = False
        self.commands_sent = 0
        self._lock = threading.Lock()
        self._joints: JointState | None = None
        self._pose: PoseStamped | None = None
        self._last_warn = 0.0
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joints, SENSOR_QOS)
        self.create_subscription(PoseStamped, topics.TCP_POSE, self._on_pose, SENSOR_QOS)
        command_topic = topics.trajectory_topic(str(p["controller"]))
        self.pub_command = self.create_publisher(JointTrajectory, command_topic, COMMAND_QOS)
        self.recorder = str(p["recorder"]).rstrip("/")
        self.service_timeout = float(p["service_timeout_s"])
        self._recorder_clients: dict[str, Any] = {}
        if self.recorder:
            self._recorder_clients = {
                "start": self.create_client(Trigger, f"{self.recorder}/start"),
                "stop": self.create_client(SetBool, f"{self.recorder}/stop"),
                "discard": self.create_client(Trigger, f"{self.recorder}/discard"),
            }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="teleop", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"{self.device.device_name}: {'joint' if self.joint_mode else 'tcp-delta'} actions -> "
            f"{command_topic} at {rate:g} Hz"
            + (f", events -> {self.recorder}/{{start,stop,discard}}" if self.recorder else "")
        )

    def _fail(self, message: str) -> NoReturn:
        """Log why the node cannot start and exit with status 1 (no traceback to dig through)."""
        self.get_logger().error(message)
        raise SystemExit(1)

    def _start_device(self, device_args: str, spec: SpecDict) -> TeleopDevice:
        try:
            kwargs = parse_driver_args(
                device_args, "{port: /dev/ttyUSB0, calibration: leader.yaml}"
            )
        except ValueError as exc:
            self._fail(str(exc))
        kwargs.setdefault("action_spec", spec)
        try:
            device = make_teleop(self.device_kind, **kwargs)
            device.connect()
        except Exception as exc:
            shown = {k: v for k, v in kwargs.items() if k != "action_spec"}
            self._fail(
                f"teleop device {self.device_kind!r} failed to start with device_args {shown}: "
                f"{exc}"
            )
        return device

    # ---- inputs --------------------------------------------------------------------------------
    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self._joints = msg

    def _on_pose(self, msg: PoseStamped) -> None:
        with self._lock:
            self._pose = msg

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _observation(self) -> Observation:
        """The latest arm state as the device sees it (empty before the first joint state)."""
        with self._lock:
            joints, pose = self._joints, self._pose
        values: dict[str, Any] = {}
        stamps: dict[str, float] = {}
        if joints is not None:
            t = from_stamp(joints.header.stamp)
            try:
                values["joint_pos"] = joint_positions(joints, self.arm_joints)
                stamps["joint_pos"] = t
                if self.gripper_joint and self.gripper_joint in joints.name:
                    values["gripper_pos"] = joint_positions(joints, [self.gripper_joint])
                    stamps["gripper_pos"] = t
            except MessageError as exc:
                self._warn(f"ignoring /joint_states: {exc}")
                values, stamps = {}, {}
        if pose is not None:
            try:
                values["ee_pos"], values["ee_quat"] = pose_values(pose)
                stamps["ee_pos"] = stamps["ee_quat"] = from_stamp(pose.header.stamp)
            except MessageError as exc:
                self._warn(f"ignoring {topics.TCP_POSE}: {exc}")
        return Observation(values=values, timestamps=stamps)

    def _warn(self, message: str) -> None:
        """A warning at most once a second (the loop would repeat it every tick)."""
        if time.monotonic() - self._last_warn >= 1.0:
            self._last_warn = time.monotonic()
            self.get_logger().warning(message)

    # ---- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            paced_loop(self.period, self._tick, self._stop)
        except Exception as exc:
            if self._stop.is_set():
                return
            self.failed = True
            self.get_logger().error(
                f"{self.device.device_name} failed: {exc}; stopping the node (no more commands)"
            )
            rclpy.try_shutdown(context=self.context)

    def _tick(self) -> None:
        """Read the device every tick (so faults surface at once), publish once the arm is known."""
        obs = self._observation()
        action = np.asarray(self.device.get_action(obs).values["action"], dtype=np.float64)
        events = self.device.events()
        if events:
            self._handle_events(events)
        joints = obs.values.get("joint_pos")
        if joints is None:
            self._warn(f"waiting for {topics.JOINT_STATES}: no command sent")
            return
        if self.joint_mode:
            targets = action
            if not self.engaged:
                self.engaged = self._aligned(targets[: len(self.arm_joints)], joints)
                if not self.engaged:
                    return
        else:
            if not self.mapper_ready:
                self.mapper.reset(joints)
                self.mapper_ready = True
            targets = self.mapper.to_joint_targets(action, joints)
        row = targets[: len(self.command_names)]  # the gripper closure is the last target
        stamp = self._now()
        self.pub_command.publish(
            trajectory_msg(self.command_names, row[None], [self.period], stamp)
        )
        self.commands_sent += 1

    def _aligned(self, targets: np.ndarray, joints: np.ndarray) -> bool:
        """Whether the leader is close enough to the arm to start; says which joint is not."""
        error = np.abs(targets - joints)
        worst = int(np.argmax(error))
        if error[worst] <= self.max_start_error:
            self.get_logger().info(
                f"leader aligned with the arm (largest error {error[worst]:.3f} rad): teleop on"
            )
            return True
        self._warn(
            f"not sending commands: the leader's {self.arm_joints[worst]} is "
            f"{targets[worst] - joints[worst]:+.3f} rad from the arm's (limit "
            f"{self.max_start_error:g}); move the leader to the robot's pose"
        )
        return False

    # ---- operator events -----------------------------------------------------------------------
    def _handle_events(self, events: set[TeleopEvent]) -> None:
        order = [
            TeleopEvent.SAVE,
            TeleopEvent.SAVE_FAILURE,
            TeleopEvent.DISCARD,
            TeleopEvent.RERECORD,
            TeleopEvent.STOP,
        ]
        for event in (e for e in order if e in events):
            self.get_logger().info(f"operator event: {event.value}")
            if not self.recorder:
                continue
            if event in (TeleopEvent.SAVE, TeleopEvent.SAVE_FAILURE):
                self._call("stop", SetBool.Request(data=event is TeleopEvent.SAVE))
                self._call("start", Trigger.Request())
            elif event in (TeleopEvent.DISCARD, TeleopEvent.RERECORD):
                self._call("discard", Trigger.Request())
                self._call("start", Trigger.Request())
            else:
                self._call("stop", SetBool.Request(data=True))

    def _call(self, service: str, request: Any) -> None:
        """Call a recorder service from the teleop thread; log its answer (never raise)."""
        name = f"{self.recorder}/{service}"
        client = self._recorder_clients[service]
        if not client.wait_for_service(timeout_sec=self.service_timeout):
            self.get_logger().warning(f"{name} is not available: is the recorder node running?")
            return
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.service_timeout):
            self.get_logger().warning(f"{name} did not answer within {self.service_timeout:g} s")
            return
        response = future.result()
        log = self.get_logger().info if response.success else self.get_logger().warning
        log(f"{name}: {response.message}")

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self.get_logger().info(f"commands sent: {self.commands_sent}")
        try:
            self.device.disconnect()
        except Exception as exc:  # an unplugged adapter may fail to close: nothing left to do
            self.get_logger().warning(f"{self.device.device_name}: disconnect failed: {exc}")


def main(args: list[str] | None = None) -> None:
    run_node(TeleopNode, args)


if __name__ == "__main__":
    main()
