"""``UR5eRobot``: the UR5e over RTDE as a :class:`Robot` with the sim's joint-mode specs.

Why: a policy trained on ``sim:<task>`` with ``control_mode='joint'`` must drive the real arm
unchanged, so actions use the same ``action`` feature (six joint targets + gripper closure,
by the same names) and observations the same ``joint_pos`` / ``joint_vel``. Streaming,
interpolation and stop handling live in :class:`~drivers.arms.ur.URArm`.

No gripper driver is attached: the gripper element is accepted so sim-trained policies fit,
reported back as sent, and flagged ``info["gripper_driven"] = False``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from drivers.arms.ur import UR_JOINTS, URArm, URTransport
from drivers.interfaces import Robot
from robot_learning.specs import FeatureSpec, SpecDict
from robot_learning.types import Action, Observation

LOG = logging.getLogger(__name__)
GRIPPER = "gripper"


class UR5eRobot(Robot):
    """A UR5e at ``host`` (or over ``transport``); ``arm_kwargs`` go to :class:`URArm`."""

    def __init__(
        self, host: str = "", *, transport: URTransport | None = None, **arm_kwargs: Any
    ) -> None:
        super().__init__()
        self.arm = URArm(host=host, transport=transport, **arm_kwargs)
        self._warned_gripper = False

    @property
    def device_name(self) -> str:
        return f"UR5eRobot({self.arm.host or 'transport'})"

    def _connect(self) -> None:
        self.arm.connect()

    def _disconnect(self) -> None:
        self.arm.disconnect()

    def observation_spec(self) -> SpecDict:
        n = len(UR_JOINTS)
        return SpecDict(
            {
                "joint_pos": FeatureSpec((n,), "float32", "lowdim", description="arm joints, rad"),
                "joint_vel": FeatureSpec(
                    (n,), "float32", "lowdim", description="arm joints, rad/s"
                ),
            }
        )

    def action_spec(self) -> SpecDict:
        low, high = self.arm.config.limits(len(UR_JOINTS))
        return SpecDict(
            {
                "action": FeatureSpec(
                    shape=(7,),
                    dtype="float32",
                    kind="lowdim",
                    low=(*low.tolist(), 0.0),
                    high=(*high.tolist(), 1.0),
                    names=(*UR_JOINTS, GRIPPER),
                    description="absolute joint position targets (rad) and gripper closure 0..1",
                )
            }
        )

    def get_observation(self) -> Observation:
        self.require_connected("get_observation")
        state = self.arm.read_joint_state()
        assert state.velocity is not None
        values = {
            "joint_pos": state.position.astype(np.float32),
            "joint_vel": state.velocity.astype(np.float32),
        }
        return Observation(values=values, timestamps=dict.fromkeys(values, state.timestamp))

    def send_action(self, action: Action) -> Action:
        """Queue the joint targets for ``action.t_exec`` (arm clock; 0 or less: at once)."""
        self.require_connected("send_action")
        spec = self.action_spec()
        spec.validate(action.values, what="action")
        requested = np.asarray(action.values["action"], dtype=np.float64)
        t_exec = action.t_exec if action.t_exec > 0 else None
        sent = self.arm.send_joint_targets(requested[:6], t_exec=t_exec)
        gripper = float(np.clip(requested[6], 0.0, 1.0))
        if not self._warned_gripper:
            LOG.warning(
                "%s: no gripper driver attached; gripper commands are ignored", self.device_name
            )
            self._warned_gripper = True
        executed = np.array([*sent, gripper], dtype=np.float32)
        return Action(
            values={"action": executed},
            t_exec=action.t_exec,
            info={
                "clipped": bool(np.any(executed != requested.astype(np.float32))),
                "gripper_driven": False,
            },
        )


__all__ = ["UR5eRobot"]
