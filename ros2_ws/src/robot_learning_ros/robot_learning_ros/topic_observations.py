"""A policy's observation assembled from ROS 2 topics, checked against its feature spec.

Why: the policy client must feed the server exactly the features the policy was trained on. Each
feature comes from a topic found from its name (``joint_pos`` -> ``/joint_states`` by joint name,
``ee_pos``/``ee_quat`` -> ``/tcp_pose``, ``<cam>_rgb`` -> realsense-ros colour topic,
``tactile_<side>`` -> ``/tactile/<side>``, ``object_*`` -> ``/sim/object_pose``), or from an
override ``feature=/topic``. Every message is decoded and checked (encoding, size, joint names,
NaN); a bad one is rejected with a log line and counted, and its feature keeps its older stamp, so
the safety layer's stale-stream guard holds the arm instead of the policy seeing garbage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from robot_learning.specs import FeatureSpec, SpecDict
from robot_learning_ros import topics
from robot_learning_ros.conversions import (
    MessageError,
    from_stamp,
    image_array,
    joint_positions,
    joint_velocities,
    pose_values,
)
from robot_learning_ros.qos import SENSOR_QOS, STATUS_QOS

Decoder = Callable[[Any], "np.ndarray | str"]  # str: language features


@dataclass(frozen=True)
class Source:
    """Where one feature comes from: a topic, its message type and how to decode it."""

    feature: str
    topic: str
    msg_type: type
    decode: Decoder


def _check_shape(value: np.ndarray, spec: FeatureSpec, feature: str) -> np.ndarray:
    if tuple(value.shape) != tuple(spec.shape):
        raise MessageError(
            f"{feature}: got shape {tuple(value.shape)}, expected {tuple(spec.shape)}"
        )
    return value.astype(spec.dtype, copy=False)


def source_for(
    feature: str,
    spec: FeatureSpec,
    arm_joints: Sequence[str],
    overrides: Mapping[str, str],
    camera_namespace: str = "camera",
) -> Source:
    """The topic and decoder for ``feature``; unknown features fail naming the valid forms."""
    topic = overrides.get(feature)
    if feature == "joint_pos":
        return Source(
            feature,
            topic or topics.JOINT_STATES,
            JointState,
            lambda m: joint_positions(m, arm_joints),
        )
    if feature == "gripper_pos":
        return Source(
            feature,
            topic or topics.JOINT_STATES,
            JointState,
            lambda m: joint_positions(m, [topics.GRIPPER_JOINT]),
        )
    if feature == "joint_vel":
        return Source(
            feature,
            topic or topics.JOINT_STATES,
            JointState,
            lambda m: joint_velocities(m, arm_joints),
        )
    if feature in ("ee_pos", "ee_quat"):
        index = 0 if feature == "ee_pos" else 1
        return Source(
            feature, topic or topics.TCP_POSE, PoseStamped, lambda m: pose_values(m)[index]
        )
    if spec.kind in ("rgb", "depth") or feature.endswith(("_rgb", "_depth")):
        cam = feature.rsplit("_", 1)[0]
        if spec.kind == "depth":
            default = topics.depth_topic(cam, camera_namespace)
            encodings: tuple[str, ...] = ("16UC1",)
        else:
            default = topics.color_topic(cam, camera_namespace)
            encodings = ("rgb8", "bgr8")
        shape = spec.shape
        return Source(
            feature,
            topic or default,
            Image,
            lambda m: image_array(m, shape=shape, encodings=encodings),
        )
    if spec.kind == "tactile":
        side = feature.removeprefix("tactile_")
        return Source(
            feature,
            topic or topics.tactile_topic(side),
            Image,
            lambda m: image_array(m, encodings=("32FC1", "32FC3")),
        )
    if spec.kind == "lowdim":  # privileged sim state, or a topic given by an override
        return Source(
            feature,
            topic or topics.sim_state_topic(feature),
            Image,
            lambda m: image_array(m, encodings=("32FC1",)).reshape(spec.shape),
        )
    if spec.kind == "language":
        return Source(feature, topic or topics.INSTRUCTION, String, lambda m: str(m.data))
    raise MessageError(
        f"no topic known for feature {feature!r} ({spec.kind}); give one with "
        f"topic_overrides: ['{feature}=/some/topic']"
    )


class TopicObservations:
    """Subscribes to every feature's topic and keeps the latest checked value and stamp."""

    def __init__(
        self,
        node: Node,
        spec: SpecDict,
        arm_joints: Sequence[str],
        overrides: Mapping[str, str],
        trigger_topic: str = topics.JOINT_STATES,
        camera_namespace: str = "camera",
    ) -> None:
        self.node = node
        self.spec = spec
        self.values: dict[str, Any] = {}
        self.stamps: dict[str, float] = {}
        self.rejected: dict[str, int] = {}
        self._last_warn: dict[str, float] = {}
        self._cond = threading.Condition()
        self.trigger_topic = trigger_topic
        self.trigger_stamp = -1.0
        self.arm_joints = tuple(arm_joints)
        # measured arm joints from the trigger's joint states, kept even when the policy does
        # not consume them: mapping tcp actions to joint targets needs them
        self.arm_joint_pos: np.ndarray | None = None
        by_topic: dict[str, list[Source]] = {}
        for name, feature in spec.items():
            src = source_for(name, feature, arm_joints, overrides, camera_namespace)
            by_topic.setdefault(src.topic, []).append(src)
        self.sources = by_topic
        for topic, sources in by_topic.items():
            types = {s.msg_type for s in sources}
            if len(types) != 1:
                raise MessageError(f"topic {topic} is mapped to features of different types")
            # an instruction is state, not a sample stream: latched, so one published before
            # this node started (or once by an operator) is still received
            latched = all(spec[src.feature].kind == "language" for src in sources)
            node.create_subscription(
                sources[0].msg_type,
                topic,
                lambda msg, t=topic: self._on_message(t, msg),
                STATUS_QOS if latched else SENSOR_QOS,
            )
        if trigger_topic not in by_topic:
            self.sources[trigger_topic] = []
            node.create_subscription(
                JointState,
                trigger_topic,
                lambda msg: self._on_message(trigger_topic, msg),
                SENSOR_QOS,
            )

    def _warn(self, topic: str, text: str) -> None:
        now = time.monotonic()
        key = f"{topic}: {text[:32]}"  # one line a second per topic and kind of problem
        if now - self._last_warn.get(key, -1e9) >= 1.0:
            self._last_warn[key] = now
            self.node.get_logger().warning(f"rejected message on {topic}: {text}")

    def _on_message(self, topic: str, msg: Any) -> None:
        stamp = from_stamp(msg.header.stamp) if hasattr(msg, "header") else self._now()
        decoded: dict[str, Any] = {}
        try:
            for src in self.sources[topic]:
                value = src.decode(msg)
                spec = self.spec[src.feature]
                decoded[src.feature] = (
                    value
                    if spec.kind == "language"
                    else _check_shape(np.asarray(value), spec, src.feature)
                )
        except (MessageError, ValueError) as exc:
            self.rejected[topic] = self.rejected.get(topic, 0) + 1
            self._warn(topic, str(exc))
            return
        joints = None
        if topic == self.trigger_topic and isinstance(msg, JointState):
            try:
                joints = joint_positions(msg, self.arm_joints)
            except MessageError as exc:
                self.rejected[topic] = self.rejected.get(topic, 0) + 1
                self._warn(topic, str(exc))
                return
        with self._cond:
            for name, value in decoded.items():
                self.values[name] = value
                self.stamps[name] = stamp
            if topic == self.trigger_topic:
                self.trigger_stamp = stamp
                if joints is not None:
                    self.arm_joint_pos = joints
            self._cond.notify_all()

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def complete(self) -> bool:
        return all(name in self.values for name in self.spec.names())

    def missing(self) -> list[str]:
        """``feature (topic)`` for every feature with no accepted message yet."""
        with self._cond:
            seen = set(self.values)
        return [
            f"{src.feature} ({topic})"
            for topic, sources in self.sources.items()
            for src in sources
            if src.feature not in seen
        ]

    def synced(self, tolerance_s: float) -> bool:
        """Every feature has a message at most ``tolerance_s`` older than the trigger's."""
        floor = self.trigger_stamp - tolerance_s
        return all(
            self.stamps.get(name, -1.0) >= floor
            for name, spec in self.spec.items()
            if spec.kind != "language"  # the instruction holds until a new one is published
        )

    def wait_newer(
        self, after: float, timeout_s: float, tolerance_s: float = 0.0, sync_wait_s: float = 0.0
    ) -> bool:
        """Wait for a trigger message stamped after ``after`` with every feature seen once, then
        up to ``sync_wait_s`` more for the other topics to catch up with it (messages published
        together arrive on separate topics in any order). Returns False on timeout."""
        with self._cond:
            if not self._cond.wait_for(
                lambda: self.trigger_stamp > after and self.complete(), timeout=timeout_s
            ):
                return False
            if sync_wait_s > 0:
                self._cond.wait_for(lambda: self.synced(tolerance_s), timeout=sync_wait_s)
            return True

    def snapshot(self) -> tuple[dict[str, Any], dict[str, float], float]:
        """``(values, stamps, trigger_stamp)`` copied under the lock."""
        with self._cond:
            return dict(self.values), dict(self.stamps), self.trigger_stamp
