"""SimTactile: a SimRobot's fingertip grids change when the gripper closes on an object."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from drivers.interfaces import DeviceNotConnectedError
from drivers.robots.sim import SimRobot
from drivers.tactile.sim import SimTactile
from drivers.teleop.scripted import ScriptedTeleop


@pytest.fixture
def robot() -> Iterator[SimRobot]:
    with SimRobot("lift", seed=3) as r:
        yield r


def normal_force(grid: np.ndarray) -> float:
    return float(grid[..., 0].sum())


def test_grids_change_when_the_gripper_closes_on_the_object(robot: SimRobot) -> None:
    with SimTactile(robot, name="fingers") as tactile:
        spec = tactile.observation_spec()
        assert spec.names() == ["fingers_left", "fingers_right"]
        assert spec["fingers_left"].shape == (8, 6, 3) and spec["fingers_left"].kind == "tactile"
        free = tactile.read()
        spec.validate(free.values)
        assert all(normal_force(g) == 0.0 for g in free.values.values())  # open, in the air

        with ScriptedTeleop(robot, seed=0) as expert:
            expert.reset(seed=3)
            obs = robot.get_observation()
            held_steps = 0
            for _ in range(robot.env.max_episode_steps):
                robot.send_action(expert.get_action(obs))
                obs = robot.get_observation()
                reading = tactile.read()
                if min(normal_force(g) for g in reading.values.values()) > 0.5:
                    held_steps += 1
                    if held_steps >= 5:
                        phase = expert.expert.phase
                        break
            else:
                pytest.fail(f"no grasp contact on both pads; expert phase {expert.expert.phase}")

        assert phase >= 3  # contact came from closing the gripper, not the approach
        for side in ("left", "right"):
            grid = reading.values[f"fingers_{side}"]
            assert grid.dtype == np.float32 and np.all(np.isfinite(grid))
            assert np.count_nonzero(grid[..., 0]) >= 1
            np.testing.assert_array_equal(grid, robot.get_observation().values[f"tactile_{side}"])
        assert reading.timestamps["fingers_left"] == pytest.approx(robot.sim_time)
        assert reading.timestamps["fingers_left"] > free.timestamps["fingers_left"]

        # the reading is a copy: changing it does not touch the robot's observation
        reading.values["fingers_left"][:] = -1.0
        assert np.all(robot.get_observation().values["tactile_left"][..., 0] >= 0.0)

        robot.reset(seed=3)  # new episode: the gripper is open again
        assert all(normal_force(g) == 0.0 for g in tactile.read().values.values())
    assert robot.is_connected  # the sensor does not own the robot


def test_needs_a_connected_sim_robot_with_tactile() -> None:
    robot = SimRobot("lift")
    tactile = SimTactile(robot)
    with pytest.raises(DeviceNotConnectedError, match="connect the robot before"):
        tactile.connect()
    with pytest.raises(DeviceNotConnectedError, match=r"read\(\)"):
        tactile.read()
    with SimRobot("lift", tactile=False) as bare, pytest.raises(ValueError, match="tactile=True"):
        SimTactile(bare).connect()


def test_refuses_non_sim_robots() -> None:
    class NotARobot:
        device_name = "UR5e"

    with pytest.raises(TypeError, match=r"needs a sim robot.*UR5e"):
        SimTactile(NotARobot())  # type: ignore[arg-type]
