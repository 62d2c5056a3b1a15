"""DynamixelArm through the real dynamixel_sdk against the emulated protocol 2.0 bus."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

dxl = pytest.importorskip("dynamixel_sdk")

from drivers.arms.dynamixel import (  # noqa: E402
    DynamixelArm,
    DynamixelArmCalibration,
    DynamixelJoint,
    record_calibration,
)
from drivers.arms.dynamixel_bus import DynamixelBus, DynamixelBusError  # noqa: E402
from drivers.emulators.dynamixel_bus import DynamixelBusEmulator  # noqa: E402
from drivers.interfaces import DeviceNotConnectedError  # noqa: E402
from drivers.registry import make_arm  # noqa: E402

NAMES = ("waist", "shoulder", "elbow", "wrist_flex", "wrist_roll", "gripper")
IDS = (11, 12, 13, 14, 15, 16)
SIGNS = (1.0, -1.0, 1.0, -1.0, 1.0, 1.0)
ZEROS = (2048, 1500, 2600, 2048, 1024, 3000)
TICK = 2 * math.pi / 4096


@pytest.fixture(autouse=True)
def generous_latency_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status packets may be delayed by tens of ms on a loaded 2-core box (see the emulator)."""
    monkeypatch.setattr(dxl.port_handler, "LATENCY_TIMER", 100)


@pytest.fixture
def bus() -> Iterator[DynamixelBusEmulator]:
    with DynamixelBusEmulator.with_servos(list(IDS)) as emulator:
        yield emulator


def calibration(port: str | None = None) -> DynamixelArmCalibration:
    """Joints listed in reverse id order: the mapping must go by name."""
    joints = [
        DynamixelJoint(name, i, zero, sign, low=-1.5, high=1.5)
        for name, i, sign, zero in zip(NAMES, IDS, SIGNS, ZEROS)
    ]
    return DynamixelArmCalibration(tuple(reversed(joints)), port=port)


def delivered(arm: DynamixelArm) -> None:
    """Sync write has no reply; a read after it is served after it, so the write has landed."""
    arm.read_joint_state()


def expected_rad(ticks: dict[int, int]) -> dict[str, float]:
    return {n: s * (ticks[i] - z) * TICK for n, i, s, z in zip(NAMES, IDS, SIGNS, ZEROS)}


def test_connect_maps_joints_by_name_reads_radians_and_toggles_torque(
    bus: DynamixelBusEmulator,
) -> None:
    ticks = {11: 2048 + 512, 12: 1500 + 1024, 13: 2600 - 300, 14: 2000, 15: 1024, 16: 3100}
    bus.set_positions(ticks)
    arm = make_arm("dynamixel", calibration=calibration(), port=bus.port)
    assert isinstance(arm, DynamixelArm)
    assert arm.joint_names == tuple(reversed(NAMES))
    with arm:
        assert all(bus.servo(i).torque_enabled for i in IDS)
        state = arm.read_joint_state()
        want = expected_rad(ticks)
        got = dict(zip(state.names, state.position))
        for name in NAMES:
            assert got[name] == pytest.approx(want[name], abs=1e-9)
        assert got["waist"] == pytest.approx(math.pi / 4)
        assert got["shoulder"] == pytest.approx(-math.pi / 2)  # sign -1
        assert state.velocity is not None and state.velocity.shape == (6,)
        assert abs(state.timestamp - time.monotonic()) < 1.0
        arm.set_torque(False)
        assert not any(bus.servo(i).torque_enabled for i in IDS)
        arm.set_torque(True)
    assert not any(bus.servo(i).torque_enabled for i in IDS)  # released on disconnect
    with pytest.raises(DeviceNotConnectedError, match="read_joint_state"):
        arm.read_joint_state()


def test_sync_write_moves_the_servos_and_reads_back_through_the_calibration(
    bus: DynamixelBusEmulator,
) -> None:
    with DynamixelArm(calibration(), port=bus.port) as arm:
        targets = {"waist": 0.3, "shoulder": -0.5, "elbow": 1.0, "wrist_flex": 0.2,
                   "wrist_roll": -1.2, "gripper": 0.05}  # fmt: skip
        sent = arm.send_joint_targets_by_name(targets)
        delivered(arm)
        for name, i, s, z in zip(NAMES, IDS, SIGNS, ZEROS):
            goal = z + round(s * targets[name] / TICK)
            assert bus.servo(i).get("goal_position") == goal
            assert bus.servo(i).position == goal  # the emulated servo follows its goal
        state = arm.read_joint_state()
        np.testing.assert_allclose(sent, state.position, atol=1e-12)
        for name, value in zip(state.names, state.position):
            assert value == pytest.approx(targets[name], abs=TICK)
        arm.send_joint_targets(np.zeros(6))  # by position, in joint_names order
        delivered(arm)
        assert bus.servo(IDS[NAMES.index("shoulder")]).position == ZEROS[1]


def test_targets_outside_limits_are_clamped_and_bad_targets_refused(
    bus: DynamixelBusEmulator,
) -> None:
    elbow = IDS[NAMES.index("elbow")]
    bus.servo(elbow).set("max_position_limit", 2600 + 200)  # the servo's own limit is tighter
    with DynamixelArm(calibration(), port=bus.port) as arm:
        names = arm.joint_names
        q = np.zeros(6)
        q[names.index("waist")] = 3.0  # beyond the calibration's 1.5 rad
        q[names.index("elbow")] = 1.0  # within 1.5 rad but beyond the servo's limit
        sent = dict(zip(names, arm.send_joint_targets(q)))
        delivered(arm)
        assert sent["waist"] == pytest.approx(1.5, abs=TICK)
        assert bus.servo(11).position == 2048 + round(1.5 / TICK)
        assert bus.servo(elbow).position == 2800
        assert sent["elbow"] == pytest.approx(200 * TICK)
        before = {i: bus.servo(i).get("goal_position") for i in IDS}
        bad = np.zeros(6)
        bad[2] = np.nan
        with pytest.raises(ValueError, match=rf"NaN or Inf for joints \['{names[2]}'\]"):
            arm.send_joint_targets(bad)
        with pytest.raises(ValueError, match=r"expected \(6,\)"):
            arm.send_joint_targets(np.zeros(5))
        with pytest.raises(ValueError, match=r"unknown \['hand'\], missing \['gripper'\]"):
            arm.send_joint_targets_by_name({**dict.fromkeys(NAMES[:5], 0.0), "hand": 0.0})
        delivered(arm)
        assert {i: bus.servo(i).get("goal_position") for i in IDS} == before  # nothing sent


def test_silent_servo_is_named_at_connect_and_while_reading(bus: DynamixelBusEmulator) -> None:
    bus.servo(14).responsive = False
    arm = DynamixelArm(calibration(), port=bus.port, retries=0)
    with pytest.raises(DynamixelBusError, match=r"servo id\(s\) \[14\] do not answer"):
        arm.connect()
    assert not arm.is_connected
    bus.servo(14).responsive = True
    with arm:
        bus.servo(15).responsive = False
        with pytest.raises(DynamixelBusError, match=r"no answer from servo id\(s\) \[15\]"):
            arm.read_joint_state()
        bus.servo(15).responsive = True
        arm.read_joint_state()
    with pytest.raises(DeviceNotConnectedError, match="cannot open"):
        DynamixelArm(calibration(), port="/dev/nonexistent-tty").connect()


def test_calibration_recorded_from_a_reference_pose_round_trips(
    bus: DynamixelBusEmulator, tmp_path: Path
) -> None:
    reference = dict(zip(NAMES, [0.1, -0.7, 1.2, 0.0, -0.4, 0.3]))
    ticks = {11: 100, 12: 2048, 13: 3000, 14: 4000, 15: 1500, 16: 2222}
    bus.set_positions(ticks)
    layout = [
        DynamixelJoint(n, i, sign=s, low=-2.0, high=2.0) for n, i, s in zip(NAMES, IDS, SIGNS)
    ]
    client = DynamixelBus(bus.port)
    client.open()
    try:
        recorded = record_calibration(client, layout, reference)
    finally:
        client.close()
    path = tmp_path / "follower.json"
    recorded.save(path)
    loaded = DynamixelArmCalibration.load(path)
    assert loaded == recorded and loaded.port == bus.port
    with DynamixelArm(path) as arm:  # the port comes from the file
        state = dict(zip(arm.joint_names, arm.read_joint_state().position))
        for name, value in reference.items():
            assert state[name] == pytest.approx(value, abs=TICK)
        bus.servo(15).position = ticks[15] + 1024  # a quarter turn of wrist_roll's horn
        moved = dict(zip(arm.joint_names, arm.read_joint_state().position))
    assert moved["wrist_roll"] == pytest.approx(-0.4 + math.pi / 2, abs=TICK)


def test_bad_calibrations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calibration="):
        DynamixelArm()
    with pytest.raises(FileNotFoundError, match="record_calibration"):
        DynamixelArm(tmp_path / "missing.json")
    with pytest.raises(ValueError, match=r"duplicate servo ids: \['1'\]"):
        DynamixelArmCalibration((DynamixelJoint("a", 1), DynamixelJoint("b", 1)))
    with pytest.raises(ValueError, match="sign must be 1 or -1"):
        DynamixelArmCalibration((DynamixelJoint("a", 1, sign=2.0),))
    bad = tmp_path / "bad.json"
    bad.write_text('{"joints": [{"name": "a"}]}')
    with pytest.raises(ValueError, match="'id'"):
        DynamixelArmCalibration.load(bad)
