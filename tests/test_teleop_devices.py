"""Teleop devices: pure mappings, the terminal key reader, and devices on real components.

The keyboard reads a real pipe / pty; the leader arm talks through the real dynamixel_sdk to the
protocol-level emulator; SpaceMouse and gamepad are checked through their pure mappings and their
real "no device" paths (no HID device or joystick exists here).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import termios
import time
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.interfaces import DeviceNotConnectedError, TeleopEvent
from drivers.registry import TELEOPS, DriverUnavailableError, make_robot, make_teleop
from drivers.robots.sim import SimRobot
from drivers.teleop.keyboard import MOTION_KEYS, KeyboardTeleop, map_keys
from drivers.teleop.mapping import (
    AxisBinding,
    GamepadConfig,
    SpaceMouseConfig,
    apply_deadband,
    ee_delta_layout,
    joint_target_layout,
    map_gamepad,
    map_spacemouse,
)
from drivers.teleop.session_keys import SESSION_KEYS, event_for_key
from drivers.teleop.terminal import TerminalKeys, split_keys
from robot_learning.sim.control import MAX_POS_STEP, MAX_ROT_STEP, ArmLimits, action_spec
from robot_learning.sim.robot_model import ARM_JOINTS
from robot_learning.specs import FeatureSpec, SpecDict, SpecError
from robot_learning.types import Observation

LIMITS = ArmLimits(np.full(6, -2 * math.pi), np.full(6, 2 * math.pi))
EE_SPEC = SpecDict({"action": action_spec("ee_delta", LIMITS)})
JOINT_SPEC = SpecDict({"action": action_spec("joint", LIMITS)})
OBS = Observation(values={"joint_pos": np.zeros(6)}, timestamps={"joint_pos": 12.5})
STEP = np.array([MAX_POS_STEP] * 3 + [MAX_ROT_STEP] * 3)


# ---- shared mapping -----------------------------------------------------------------------------
def test_deadband_zeroes_rest_noise_and_stays_continuous() -> None:
    out = apply_deadband([0.05, -0.1, 0.55, -1.0, 1.5, 0.1], 0.1)
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, -1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="deadband"):
        apply_deadband([0.0], 1.0)


def test_ee_layout_scales_to_the_spec_bounds_by_name() -> None:
    # a spec whose elements are in a different order: the layout must follow the names
    names = ("gripper", "drz", "dry", "drx", "dz", "dy", "dx")
    feature = FeatureSpec(
        (7,), "float32", "lowdim", low=(0, -3, -3, -3, -1, -1, -2), high=(1, 3, 3, 3, 1, 1, 2),
        names=names,
    )  # fmt: skip
    layout = ee_delta_layout(SpecDict({"cmd": feature}), "test")
    values = layout.values(np.array([0.5, -1.0, 0.0, 0.0, 0.0, 2.0]), gripper=1.0)["cmd"]
    assert values.dtype == np.float32
    by_name = dict(zip(names, values.tolist()))
    assert by_name == {"dx": 1.0, "dy": -1.0, "dz": 0.0, "drx": 0.0, "dry": 0.0, "drz": 3.0,
                       "gripper": 1.0}  # fmt: skip


def test_ee_devices_reject_a_joint_mode_robot_naming_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        ee_delta_layout(JOINT_SPEC, "KeyboardTeleop")
    message = str(info.value)
    assert "KeyboardTeleop" in message and "shoulder_pan_joint" in message
    assert "control_mode='ee_delta'" in message


def test_joint_layout_maps_by_name_and_reports_mismatches() -> None:
    layout = joint_target_layout(JOINT_SPEC, [*reversed(ARM_JOINTS), "gripper"], "leader")
    targets = {name: float(i) / 10 for i, name in enumerate(ARM_JOINTS)} | {"gripper": 0.25}
    np.testing.assert_allclose(
        layout.values(targets)["action"], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.25], rtol=1e-6
    )
    with pytest.raises(SpecError, match="control_mode='joint'"):
        joint_target_layout(EE_SPEC, [*ARM_JOINTS, "gripper"], "leader")
    with pytest.raises(SpecError) as info:  # a 5-joint leader with a misspelt gripper
        joint_target_layout(JOINT_SPEC, [*ARM_JOINTS[:5], "grip"], "leader")
    message = str(info.value)
    assert "missing from the leader calibration: ['wrist_3_joint', 'gripper']" in message
    assert "robot does not have: ['grip']" in message


# ---- SpaceMouse and gamepad mappings ------------------------------------------------------------
def test_spacemouse_mapping_axes_deadband_buttons() -> None:
    config = SpaceMouseConfig(deadband=0.1, signs=(1, -1, 1, 1, 1, -1))
    step = map_spacemouse([1.0, 0.55, 0.05, 0, 0, 1.0], [0, 0], [0, 0], 0.0, 0.5, config)
    np.testing.assert_allclose(step.command, [1.0, -0.5, 0.0, 0.0, 0.0, -1.0])
    assert step.gripper == 0.0 and not step.events
    layout = ee_delta_layout(EE_SPEC, "spacemouse")
    values = layout.values(step.command * step.speed, step.gripper)["action"]
    np.testing.assert_allclose(values[:6], [0.025, -0.0125, 0, 0, 0, -0.15], rtol=1e-6)
    # left button: toggles the gripper once per press, not while held
    pressed = map_spacemouse([0] * 6, [1, 0], [0, 0], 0.0, 0.5, config)
    assert pressed.gripper == 1.0
    held = map_spacemouse([0] * 6, [1, 0], [1, 0], pressed.gripper, 0.5, config)
    assert held.gripper == 1.0
    again = map_spacemouse([0] * 6, [1, 0], [0, 0], held.gripper, 0.5, config)
    assert again.gripper == 0.0
    # right button: save
    assert map_spacemouse([0] * 6, [0, 1], [0, 0], 0.0, 0.5, config).events == {TeleopEvent.SAVE}
    with pytest.raises(ValueError, match="6 axes"):
        map_spacemouse([0.0] * 3, [], [], 0.0, 0.5, config)


def test_spacemouse_axis_remap() -> None:
    # swap x and y (a SpaceMouse turned 90 degrees on the desk) and drop rotations
    config = SpaceMouseConfig(deadband=0.0, axis_source=(1, 0, 2, -1, -1, -1))
    step = map_spacemouse([0.2, -0.7, 0.3, 1, 1, 1], [], [], 0.0, 1.0, config)
    np.testing.assert_allclose(step.command, [-0.7, 0.2, 0.3, 0, 0, 0])


def test_gamepad_mapping_sticks_hat_buttons_and_analog_gripper() -> None:
    config = GamepadConfig(deadband=0.0)
    axes = [0.0, -1.0, -1.0, 0.5, 0.0, -1.0]  # left stick up, right stick right, LT, RT at rest
    step = map_gamepad(axes, [0] * 8, [(1, -1)], [0] * 8, 0.0, 0.5, config)
    np.testing.assert_allclose(step.command, [1.0, 0.0, 0.0, 1.0, -1.0, -0.5])
    buttons = [1, 0, 0, 0, 0, 1, 0, 1]  # A, RB, Start
    step = map_gamepad([0.0] * 6, buttons, [(0, 0)], [0] * 8, 0.0, 0.5, config)
    assert step.gripper == 1.0 and step.speed == pytest.approx(0.75)
    assert step.events == {TeleopEvent.SAVE}
    analog = GamepadConfig(gripper_axis=5)
    step = map_gamepad([0, 0, 0, 0, 0, 0.0], [1] + [0] * 7, [], [0] * 8, 0.0, 0.5, analog)
    assert step.gripper == pytest.approx(0.5)  # half-pulled trigger; A no longer toggles
    # a pad with fewer axes than the layout uses reads the missing ones as zero
    sparse = GamepadConfig(bindings=(AxisBinding("axis", 9),) + (None,) * 5, deadband=0.0)
    assert map_gamepad([1.0], [], [], [], 0.0, 0.5, sparse).command[0] == 0.0


# ---- keyboard -----------------------------------------------------------------------------------
def test_keyboard_keys_never_clash_with_session_keys() -> None:
    session = {k for key in SESSION_KEYS for k in (key, key.upper())}
    assert not session & set(MOTION_KEYS)
    assert all(event_for_key(k) is None for k in [*MOTION_KEYS, " ", "+", "-"])


def test_keyboard_key_mapping() -> None:
    step = map_keys(list("iiJ +S"), gripper=0.0, speed=0.2)
    np.testing.assert_allclose(step.command, [2, 0, 0, 0, 1, 0])
    assert step.gripper == 1.0 and step.speed == pytest.approx(0.3)
    assert step.events == {TeleopEvent.SAVE}
    assert map_keys(["\x1b[D"], 0.0, 0.2).events == frozenset()  # left arrow is not 'D'iscard


# ---- terminal key reader ------------------------------------------------------------------------
def test_split_keys_keeps_escape_sequences_whole() -> None:
    assert split_keys("a\x1b[Db\x1bOPc") == (["a", "\x1b[D", "b", "\x1bOP", "c"], "")
    assert split_keys("x\x1b[1;", final=False) == (["x"], "\x1b[1;")
    assert split_keys("\x1b", final=True) == (["\x1b"], "")


def test_terminal_keys_from_a_pipe_without_blocking() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with TerminalKeys(read_fd) as keys:
            assert not keys.is_tty
            start = time.monotonic()
            assert keys.poll() == []
            assert time.monotonic() - start < 0.1
            os.write(write_fd, b"ik\x1b[")
            assert keys.poll() == ["i", "k"]  # the cut-off arrow key waits for its tail
            os.write(write_fd, "Aé".encode())
            assert keys.poll() == ["\x1b[A", "é"]
            os.close(write_fd)
            write_fd = -1
            assert keys.poll() == [] and keys.eof
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def test_terminal_keys_cbreak_on_a_pty_is_restored_even_on_error() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ICANON
        with pytest.raises(KeyboardInterrupt), TerminalKeys(slave) as keys:
            assert keys.is_tty
            mode = termios.tcgetattr(slave)
            assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO
            os.write(master, b"uq")  # no Enter needed
            deadline = time.monotonic() + 2.0
            got: list[str] = []
            while len(got) < 2 and time.monotonic() < deadline:
                got += keys.poll()
            assert got == ["u", "q"]
            raise KeyboardInterrupt
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_terminal_keys_without_a_file_descriptor() -> None:
    class NoFd:
        def fileno(self) -> int:
            raise OSError("captured")

    with pytest.raises(RuntimeError, match="pass stream="):
        TerminalKeys(NoFd()).open()  # type: ignore[arg-type]


# ---- keyboard device ----------------------------------------------------------------------------
@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_keyboard_teleop_actions_and_events(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    teleop = KeyboardTeleop(action_spec=EE_SPEC, stream=read_fd, speed=0.2)
    with teleop:
        os.write(write_fd, b"ii U")
        action = teleop.get_action(OBS)
        np.testing.assert_allclose(
            action.values["action"], [0.02, 0, 0, 0, 0, 0.06, 1.0], rtol=1e-6
        )
        assert action.t_exec == 12.5  # the robot's clock, from the observation
        os.write(write_fd, b"k")
        np.testing.assert_allclose(teleop.get_action(OBS).values["action"][:3], [-0.01, 0, 0])
        os.write(write_fd, b"sq")  # session keys are seen by events() without a get_action
        assert teleop.events() == {TeleopEvent.SAVE, TeleopEvent.STOP}
        assert teleop.events() == set()  # drained
        os.write(write_fd, b"iii")  # typed between episodes
        teleop.reset(seed=1)
        reset_action = teleop.get_action(OBS).values["action"]
        np.testing.assert_allclose(reset_action, np.zeros(7))  # no motion, gripper open
    assert not teleop.is_connected


def test_keyboard_teleop_drives_the_sim_robot(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    robot = make_robot("sim:lift", seed=0)
    assert isinstance(robot, SimRobot)
    teleop = make_teleop("keyboard", robot=robot, stream=read_fd, speed=0.4)
    with pytest.raises(DeviceNotConnectedError, match="connect SimRobot"):
        teleop.connect()  # the action spec comes from the connected robot
    with robot, teleop:
        teleop.check_robot(robot)
        start, _ = robot.env.tcp_pose()
        for _ in range(15):
            os.write(write_fd, b"u")  # up
            executed = robot.send_action(teleop.get_action(robot.get_observation()))
        assert executed.values["action"][2] == pytest.approx(0.4 * MAX_POS_STEP)
        end, _ = robot.env.tcp_pose()
    assert end[2] - start[2] > 0.1  # 15 steps of 2 cm, less tracking lag


def test_registry_lists_devices_and_names_missing_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {"keyboard", "spacemouse", "gamepad", "leader", "scripted"} <= set(TELEOPS.names())
    monkeypatch.delitem(sys.modules, "drivers.teleop.gamepad", raising=False)
    monkeypatch.setitem(sys.modules, "pygame", None)  # as if pygame were not installed
    with pytest.raises(DriverUnavailableError, match=r"pip install pygame"):
        make_teleop("gamepad", action_spec=EE_SPEC)


# ---- SpaceMouse and gamepad devices: the real "no device here" paths ----------------------------
def test_spacemouse_without_a_device_fails_clearly() -> None:
    pytest.importorskip("pyspacemouse")
    teleop = make_teleop("spacemouse", action_spec=EE_SPEC)
    with pytest.raises(DeviceNotConnectedError) as info:
        teleop.connect()
    message = str(info.value)
    assert "no SpaceMouse found" in message
    assert "udev rule" in message or "libhidapi" in message  # no device / no hidapi library
    assert not teleop.is_connected


def test_gamepad_without_a_pad_fails_clearly() -> None:
    pytest.importorskip("pygame")
    teleop = make_teleop("gamepad", action_spec=EE_SPEC)
    with pytest.raises(DeviceNotConnectedError, match="no gamepad found"):
        teleop.connect()
    assert not teleop.is_connected
    with pytest.raises(SpecError, match="end-effector deltas"):
        make_teleop("gamepad", action_spec=JOINT_SPEC)
