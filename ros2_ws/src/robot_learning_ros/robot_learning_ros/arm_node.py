"""A joint-position arm driver (``sim``, ``ur``, ``dynamixel``) as a ros2_control-style node.

Publishes ``/joint_states`` (the driver's joint names, by name) at ``rate_hz`` and executes
``trajectory_msgs/JointTrajectory`` from ``/<controller>/joint_trajectory`` like a
``joint_trajectory_controller``: joints are matched by name, and a message with unknown or
missing joints, NaN or ragged points is rejected with a warning naming the problem.

Each point is due at ``header.stamp`` (now when zero) ``+ time_from_start``. How points reach the
driver depends on what the driver does with a target:

* ``ur`` interpolates timed waypoints itself: every point is sent on arrival with its due time
  converted to the driver's clock (``time.monotonic``).
* ``sim`` steps the simulation one control period per target, so the node sends the target it is
  heading for on every ``rate_hz`` tick (holding the last one) and the sim advances in real time
  when its ``control_hz`` equals ``rate_hz`` (the node sets it so unless ``driver_args`` does).
* other drivers (``dynamixel``) move to a target at once: the point being approached is sent on
  the tick where it becomes current.

``~/hold`` stops executing trajectories and keeps the arm where it is; ``~/resume`` accepts them
again. A driver error while running is logged and the node exits with status 1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from drivers.interfaces import Arm
from drivers.registry import make_arm
from robot_learning_ros import topics
from robot_learning_ros.conversions import (
    MessageError,
    from_stamp,
    joint_state_msg,
    trajectory_points,
)
from robot_learning_ros.node_utils import declare, paced_loop, parse_driver_args, run_node
from robot_learning_ros.qos import COMMAND_QOS, SENSOR_QOS

TIMED_DRIVERS = frozenset({"ur"})  # take (target, t_exec) waypoints and interpolate
STEPPED_DRIVERS = frozenset({"sim"})  # advance one control period per target sent


@dataclass
class _Plan:
    """A validated trajectory: targets ``[T, n]`` due at ``times`` (ROS clock, s)."""

    positions: np.ndarray
    times: np.ndarray
    gripper: np.ndarray | None = None

    def current(self, now: float) -> int:
        """Index of the point being approached at ``now`` (the last one once all are due)."""
        ahead = np.nonzero(self.times >= now)[0]
        return int(ahead[0]) if ahead.size else len(self.times) - 1


class ArmNode(Node):
    """Owns one :class:`Arm` driver and a thread that commands it and publishes its state."""

    def __init__(self) -> None:
        super().__init__("arm")
        p = declare(
            self,
            driver="sim",
            driver_args="{}",
            controller=topics.DEFAULT_CONTROLLER,
            rate_hz=100.0,
            gripper_joint=topics.GRIPPER_JOINT,
        )
        self.driver = str(p["driver"])
        rate = float(p["rate_hz"])
        if rate <= 0:
            self._fail(f"rate_hz must be positive, got {rate}")
        self.period = 1.0 / rate
        self.arm = self._start_driver(str(p["driver_args"]), rate)
        self.joints = tuple(self.arm.joint_names)
        self.gripper_joint = str(p["gripper_joint"])
        gripper = getattr(self.arm, "send_gripper", None)  # an extra only some drivers have
        self._send_gripper: Callable[[float], Any] | None = gripper if callable(gripper) else None
        self.has_gripper = self._send_gripper is not None
        self.timed = self.driver in TIMED_DRIVERS
        self.stepped = self.driver in STEPPED_DRIVERS
        self.rejected = 0
        self.received = 0
        self.failed = False
        self._lock = threading.Lock()
        self._plan: _Plan | None = None
        self._sent: tuple[int, int] | None = None  # (plan id, point index) last sent
        self._plan_id = 0
        self._held = False
        self._hold_target: np.ndarray | None = None
        self.pub_joints = self.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        command_topic = topics.trajectory_topic(str(p["controller"]))
        self.create_subscription(JointTrajectory, command_topic, self._on_trajectory, COMMAND_QOS)
        self.create_service(Trigger, "~/hold", self._on_hold)
        self.create_service(Trigger, "~/resume", self._on_resume)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="arm", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"{self.arm.device_name}: joints {list(self.joints)}"
            + (f" + {self.gripper_joint}" if self.has_gripper else "")
            + f", /joint_states at {rate:g} Hz, trajectories on {command_topic}"
        )

    def _fail(self, message: str) -> NoReturn:
        """Log why the node cannot start and exit with status 1 (no traceback to dig through)."""
        self.get_logger().error(message)
        raise SystemExit(1)

    def _start_driver(self, driver_args: str, rate: float) -> Arm:
        try:
            kwargs = parse_driver_args(driver_args, "{host: 192.168.1.10}")
        except ValueError as exc:
            self._fail(str(exc))
        if self.driver in STEPPED_DRIVERS:
            kwargs.setdefault("control_hz", rate)  # one sim control period per tick: real time
        try:
            arm = make_arm(self.driver, **kwargs)
            arm.connect()
        except Exception as exc:
            self._fail(
                f"arm driver {self.driver!r} failed to start with driver_args {kwargs}: {exc}"
            )
        return arm

    # ---- commands ------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        self.received += 1
        with_gripper = self.has_gripper and self.gripper_joint in msg.joint_names
        names = (*self.joints, self.gripper_joint) if with_gripper else self.joints
        try:
            positions, offsets = trajectory_points(msg, names)
        except MessageError as exc:
            self.rejected += 1
            self.get_logger().warning(
                f"rejected joint trajectory ({self.rejected} so far): {exc}"
                + (
                    f"; the gripper joint {self.gripper_joint!r} is optional"
                    if self.has_gripper
                    else ""
                )
            )
            return
        stamp = from_stamp(msg.header.stamp)
        start = stamp if stamp > 0 else self._now()
        plan = _Plan(
            positions=positions[:, : len(self.joints)],
            times=start + offsets,
            gripper=positions[:, -1] if with_gripper else None,
        )
        with self._lock:
            if self._held:
                self.get_logger().warning(
                    "joint trajectory ignored: the arm is held (call ~/resume to execute again)"
                )
                return
            self._plan = plan
            self._plan_id += 1
            if self.timed:
                self._send_timed(plan)

    def _send_timed(self, plan: _Plan) -> None:
        """Hand every waypoint to an interpolating driver, due times in its clock."""
        try:
            for k in range(len(plan.times)):
                self._send_point(plan, k)
        except Exception as exc:  # the driver refused (limits, protective stop): say why
            self.rejected += 1
            self.get_logger().error(f"{self.arm.device_name} refused the trajectory: {exc}")

    def _send_point(self, plan: _Plan, k: int) -> None:
        """Send point ``k`` with its due time moved from the ROS clock to the driver's."""
        t_exec = float(plan.times[k]) + time.monotonic() - self._now()
        if plan.gripper is not None and self._send_gripper is not None:
            self._send_gripper(float(plan.gripper[k]))
        self.arm.send_joint_targets(plan.positions[k], t_exec)

    def _on_hold(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            position = self.arm.read_joint_state().position
            self._held = True
            self._plan = None
            self._hold_target = np.asarray(position, dtype=np.float64)
            if not self.stepped:
                self.arm.send_joint_targets(self._hold_target, None)
        self.get_logger().info("holding the current position; trajectories are ignored")
        response.success = True
        response.message = f"holding at {np.round(position, 4).tolist()}"
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            was_held, self._held = self._held, False
        self.get_logger().info("resumed: executing joint trajectories again")
        response.success = True
        response.message = "resumed" if was_held else "was not held"
        return response

    # ---- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            paced_loop(self.period, self._tick, self._stop)
        except Exception as exc:
            if self._stop.is_set():
                return
            self.failed = True
            self.get_logger().error(f"{self.arm.device_name} failed: {exc}; stopping the node")
            rclpy.try_shutdown(context=self.context)

    def _tick(self) -> None:
        with self._lock:  # one thread at a time talks to the driver
            self._command()
            state = self.arm.read_joint_state()
        by_name = dict(zip(state.names, state.position))
        position = np.array([by_name[n] for n in self.joints])
        velocity = None
        if state.velocity is not None:
            vel_by_name = dict(zip(state.names, state.velocity))
            velocity = np.array([vel_by_name[n] for n in self.joints])
        self.pub_joints.publish(joint_state_msg(self.joints, position, self._now(), velocity))

    def _command(self) -> None:
        """Send this tick's target (caller holds the lock); the sim is stepped every tick."""
        if self._held:
            if self.stepped and self._hold_target is not None:
                self.arm.send_joint_targets(self._hold_target, None)
            return
        plan = self._plan
        if plan is None:
            if self.stepped:
                hold = getattr(self.arm, "hold", None)
                if callable(hold):
                    hold()
            return
        if self.timed:
            return
        k = plan.current(self._now())
        if self.stepped or self._sent != (self._plan_id, k):
            self._send_point(plan, k)
            self._sent = (self._plan_id, k)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self.get_logger().info(f"trajectories received {self.received}, rejected {self.rejected}")
        self.arm.disconnect()


def main(args: list[str] | None = None) -> None:
    run_node(ArmNode, args)


if __name__ == "__main__":
    main()
