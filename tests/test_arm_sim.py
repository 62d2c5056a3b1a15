"""SimArm: the MuJoCo UR5e behind the Arm interface, in joint-position mode."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.arms.sim import SimArm
from drivers.interfaces import DeviceNotConnectedError
from drivers.registry import make_arm
from drivers.robots.sim import SimRobot
from robot_learning.sim.robot_model import ARM_JOINTS


@pytest.fixture(scope="module")
def arm():
    with SimArm(task="lift", seed=0) as sim_arm:
        yield sim_arm


def test_joint_names_specs_and_state_stamped_with_sim_time(arm: SimArm) -> None:
    assert arm.joint_names == ARM_JOINTS
    assert arm.joint_names[0] == "shoulder_pan_joint"
    spec = arm.action_spec()["joint_pos"]
    assert spec.names == ARM_JOINTS and spec.shape == (6,)
    low, high = arm.joint_limits
    np.testing.assert_allclose(spec.bounds()[0], low)
    assert np.all(low < high)
    assert set(arm.observation_spec().names()) == {"joint_pos", "joint_vel", "gripper_pos"}
    state = arm.read_joint_state()
    assert state.names == ARM_JOINTS and state.position.shape == (6,)
    assert state.timestamp == pytest.approx(arm.robot.sim_time)
    t_before = state.timestamp
    arm.send_joint_targets(state.position)
    after = arm.read_joint_state()
    # one control period of the default 20 Hz env
    assert after.timestamp - t_before == pytest.approx(0.05, abs=1e-9)


def test_targets_move_the_arm_and_are_clamped_to_limits(arm: SimArm) -> None:
    q0 = arm.read_joint_state().position.copy()
    target = q0.copy()
    target[ARM_JOINTS.index("wrist_3_joint")] += 0.1
    for _ in range(20):
        sent = arm.send_joint_targets(target)
    np.testing.assert_allclose(sent, target)
    reached = arm.read_joint_state().position
    assert reached[5] - q0[5] > 0.08
    low, high = arm.joint_limits
    wild = q0.copy()
    wild[0] = high[0] + 5.0
    wild[2] = low[2] - 5.0
    sent = arm.send_joint_targets(wild)
    assert sent[0] == high[0] and sent[2] == low[2]


def test_bad_targets_are_refused_before_stepping(arm: SimArm) -> None:
    t0 = arm.read_joint_state().timestamp
    q = arm.read_joint_state().position.copy()
    q[1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf for joints \['shoulder_lift_joint'\]"):
        arm.send_joint_targets(q)
    with pytest.raises(ValueError, match=r"expected \(6,\)"):
        arm.send_joint_targets(np.zeros(7))
    with pytest.raises(ValueError, match="finite"):
        arm.send_gripper(float("nan"))
    assert arm.read_joint_state().timestamp == t0  # nothing was executed


def test_gripper_extra_closes_the_fingers(arm: SimArm) -> None:
    assert arm.send_gripper(3.0) == 1.0  # clipped
    q = arm.read_joint_state().position
    for _ in range(15):
        arm.send_joint_targets(q)
    closure = arm.robot.get_observation().values["gripper_pos"][0]
    assert closure > 0.5
    arm.send_gripper(0.0)
    for _ in range(15):
        arm.hold()
    assert arm.robot.get_observation().values["gripper_pos"][0] < closure


def test_wrapping_an_existing_robot_and_registry() -> None:
    with pytest.raises(ValueError, match="control_mode='joint'"):
        SimArm(robot=SimRobot(task="lift"))
    robot = SimRobot(task="lift", control_mode="joint", tactile=False)
    arm = make_arm("sim", robot=robot)
    assert isinstance(arm, SimArm) and arm.robot is robot
    with pytest.raises(DeviceNotConnectedError, match="read_joint_state"):
        arm.read_joint_state()
    with arm:
        assert robot.is_connected
        assert arm.read_joint_state().position.shape == (6,)
    assert robot.is_connected  # not ours to close
    robot.disconnect()
