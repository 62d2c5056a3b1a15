"""Driver interfaces, the robot/teleop registry, SimRobot and ScriptedTeleop on real MuJoCo."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from drivers.interfaces import (
    DeviceNotConnectedError,
    Robot,
    TeleopDevice,
    clamp_action,
)
from drivers.registry import (
    ROBOTS,
    TELEOPS,
    make_robot,
    make_teleop,
)
from drivers.robots.sim import SimRobot
from drivers.teleop.scripted import ScriptedTeleop
from robot_learning.registry import UnknownNameError
from robot_learning.specs import FeatureSpec, SpecDict, SpecError
from robot_learning.types import Action, Observation

TASK_NAMES = ("lift", "push", "insert", "pick_language")


@pytest.fixture(scope="module")
def robot() -> Iterator[SimRobot]:
    """One connected lift robot shared by the tests that only step it (env builds cost ~1 s)."""
    r = make_robot("sim:lift", seed=0)
    assert isinstance(r, SimRobot)
    with r:
        yield r


def zero_action(robot: SimRobot) -> Action:
    return Action({"action": np.zeros(7, dtype=np.float32)})


# ---- registry ----------------------------------------------------------------------------------
def test_registry_lists_sim_tasks_and_hardware() -> None:
    names = ROBOTS.names()
    for task in TASK_NAMES:
        assert f"sim:{task}" in names
    assert "ur5e" in names
    assert "scripted" in TELEOPS.names()


def test_unknown_robot_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        make_robot("franka")
    message = str(info.value)
    assert "'franka'" in message
    assert "sim:lift" in message and "sim:push" in message and "ur5e" in message


def test_unknown_sim_task_lists_valid_sim_robots() -> None:
    with pytest.raises(UnknownNameError) as info:
        make_robot("sim:stack")
    message = str(info.value)
    assert "'stack'" in message
    assert all(f"sim:{task}" in message for task in TASK_NAMES)


def test_missing_vendor_package_is_a_clear_driver_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UR driver imports ur-rtde only when it connects; without it the error says what to
    install instead of an import traceback from deep inside the driver."""
    import sys

    monkeypatch.setitem(sys.modules, "rtde_control", None)  # as if ur-rtde were not installed
    monkeypatch.setitem(sys.modules, "rtde_receive", None)
    robot = make_robot("ur5e", host="127.0.0.1")
    with pytest.raises(ImportError, match=r"needs the 'ur-rtde' package \(pip install ur-rtde\)"):
        robot.connect()
    assert not robot.is_connected


def test_unknown_teleop_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="scripted"):
        make_teleop("joystick")


def test_sim_robot_config_errors_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="valid variants: default, train, real-proxy"):
        make_robot("sim:lift", variant="sunny")
    with pytest.raises(ValueError, match="valid cameras"):
        SimRobot("lift", cameras=("top",))


# ---- SimRobot lifecycle ------------------------------------------------------------------------
def test_use_before_connect_and_after_disconnect_errors() -> None:
    r = make_robot("sim:lift")
    assert not r.is_connected
    for call in (r.get_observation, r.observation_spec, r.action_spec, r.reset):
        with pytest.raises(DeviceNotConnectedError, match=r"call connect\(\) first"):
            call()
    with pytest.raises(DeviceNotConnectedError, match="send_action"):
        r.send_action(Action({"action": np.zeros(7)}))
    with r as connected:
        assert connected is r and r.is_connected
        r.connect()  # idempotent
        assert r.get_observation().values
    assert not r.is_connected
    r.disconnect()  # idempotent
    with pytest.raises(DeviceNotConnectedError):
        r.get_observation()


def test_observation_matches_spec_and_is_stamped_with_sim_time(robot: SimRobot) -> None:
    obs = robot.reset(seed=1)
    spec = robot.observation_spec()
    spec.validate(obs.values)
    assert set(obs.timestamps) == set(obs.values) == set(spec.names())
    t0 = robot.env.data.time
    assert all(t == pytest.approx(t0) for t in obs.timestamps.values())
    executed = robot.send_action(zero_action(robot))
    assert executed.t_exec == pytest.approx(t0)
    obs2 = robot.get_observation()
    assert all(t == pytest.approx(t0 + robot.env.control_dt) for t in obs2.timestamps.values())
    assert robot.episode_steps == 1


def test_executed_action_is_clipped_to_the_spec(robot: SimRobot) -> None:
    robot.reset(seed=2)
    low, high = robot.action_spec()["action"].bounds()
    executed = robot.send_action(Action({"action": (high * 10).astype(np.float32)}))
    np.testing.assert_allclose(executed.values["action"], high.astype(np.float32))
    assert executed.info["clipped"] is True
    inside = ((low + high) / 2).astype(np.float32)
    executed = robot.send_action(Action({"action": inside}))
    np.testing.assert_allclose(executed.values["action"], inside)
    assert executed.info["clipped"] is False
    assert set(executed.info) >= {"reward", "is_success", "terminated", "truncated"}


def test_nan_action_is_rejected_and_not_executed(robot: SimRobot) -> None:
    robot.reset(seed=3)
    t0 = robot.sim_time
    bad = np.zeros(7, dtype=np.float32)
    bad[2] = np.nan
    with pytest.raises(SpecError, match=r"action feature 'action' contains NaN or Inf"):
        robot.send_action(Action({"action": bad}))
    assert robot.sim_time == t0 and robot.episode_steps == 0


def test_spec_errors_name_the_feature(robot: SimRobot) -> None:
    with pytest.raises(SpecError, match=r"'action' has shape \(6,\), expected \(7,\)"):
        robot.send_action(Action({"action": np.zeros(6)}))
    with pytest.raises(SpecError, match=r"missing features \['action'\]"):
        robot.send_action(Action({"joint_targets": np.zeros(7)}))
    with pytest.raises(SpecError, match=r"unknown features \['extra'\]"):
        robot.send_action(Action({"action": np.zeros(7), "extra": np.zeros(1)}))


def test_reset_with_seed_is_reproducible(robot: SimRobot) -> None:
    a = robot.reset(seed=7).values["object_pos"].copy()
    robot.send_action(zero_action(robot))
    b = robot.reset(seed=7).values["object_pos"]
    np.testing.assert_array_equal(a, b)
    assert not robot.done and robot.episode_steps == 0


# ---- ScriptedTeleop ----------------------------------------------------------------------------
def test_scripted_teleop_drives_sim_robot_to_success(robot: SimRobot) -> None:
    teleop = make_teleop("scripted", robot=robot, seed=0)
    assert isinstance(teleop, ScriptedTeleop)
    with pytest.raises(DeviceNotConnectedError):
        teleop.get_action(robot.get_observation())
    with teleop:
        teleop.check_robot(robot)
        obs = robot.reset(seed=11)
        teleop.reset(seed=11)
        spec = robot.action_spec()
        while not robot.done:
            action = teleop.get_action(obs)
            spec.validate(action.values, what="action")
            robot.send_action(action)
            obs = robot.get_observation()
        assert robot.is_success, f"lift not solved in {robot.episode_steps} steps"
        assert robot.terminated and robot.episode_steps < robot.env.max_episode_steps
        assert teleop.events() == set()


class EchoRobot(Robot):
    """A minimal hardware-like robot: exercises the ABC defaults and stands in for non-sim."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = SpecDict({"joints": FeatureSpec((2,), "float32", "lowdim", low=-1, high=1)})
        self.last = np.zeros(2, dtype=np.float32)

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def observation_spec(self) -> SpecDict:
        return self.spec

    def action_spec(self) -> SpecDict:
        return self.spec

    def get_observation(self) -> Observation:
        self.require_connected("get_observation")
        return Observation({"joints": self.last.copy()}, {"joints": 0.0})

    def send_action(self, action: Action) -> Action:
        self.require_connected("send_action")
        executed = clamp_action(self.spec, action)
        self.last = executed.values["joints"]
        return executed


def test_scripted_teleop_refuses_non_sim_robots() -> None:
    with pytest.raises(TypeError, match=r"only drives sim robots \(--robot sim:<task>\)"):
        ScriptedTeleop(EchoRobot())


def test_robot_abc_defaults_and_clamping() -> None:
    with pytest.raises(TypeError):
        Robot()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        TeleopDevice()  # type: ignore[abstract]
    r = EchoRobot()
    with pytest.raises(DeviceNotConnectedError, match=r"EchoRobot.reset\(\)"):
        r.reset()
    with r:
        executed = r.send_action(Action({"joints": np.array([3.0, -0.5])}, t_exec=1.5))
        np.testing.assert_allclose(executed.values["joints"], [1.0, -0.5])
        assert executed.t_exec == 1.5 and executed.values["joints"].dtype == np.float32
        np.testing.assert_allclose(r.reset(seed=0).values["joints"], [1.0, -0.5])
