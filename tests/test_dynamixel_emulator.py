"""The protocol 2.0 Dynamixel emulator driven by the real dynamixel_sdk over a pty, and the
leader-arm teleop on top of it (calibration, joint targets by name, faults)."""

from __future__ import annotations

import math
import random
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

dxl = pytest.importorskip("dynamixel_sdk")

from drivers.emulators.dynamixel_bus import (  # noqa: E402
    DynamixelBusEmulator,
    EmulatedServo,
    ErrorCode,
    Instruction,
    PacketParser,
    add_stuffing,
    build_packet,
    crc16,
)
from drivers.interfaces import DeviceNotConnectedError  # noqa: E402
from drivers.registry import make_robot, make_teleop  # noqa: E402
from drivers.robots.sim import SimRobot  # noqa: E402
from drivers.teleop.leader import (  # noqa: E402
    DynamixelBus,
    LeaderArmError,
    LeaderArmTeleop,
    LeaderCalibration,
    rad_to_ticks,
    record_calibration,
)
from robot_learning.sim.control import ArmLimits, action_spec  # noqa: E402
from robot_learning.sim.robot_model import ARM_JOINTS  # noqa: E402
from robot_learning.specs import FeatureSpec, SpecDict, SpecError  # noqa: E402
from robot_learning.types import Observation  # noqa: E402

ADDR_TORQUE = 64
ADDR_GOAL = 116
ADDR_PRESENT = 132
ADDR_ID = 7
LIMITS = ArmLimits(np.full(6, -2 * math.pi), np.full(6, 2 * math.pi))
EE_SPEC = SpecDict({"action": action_spec("ee_delta", LIMITS)})
JOINT_SPEC = SpecDict({"action": action_spec("joint", LIMITS)})
OBS = Observation(values={"joint_pos": np.zeros(6)}, timestamps={"joint_pos": 12.5})


@pytest.fixture(autouse=True)
def generous_latency_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give status packets more than the SDK's default 34 ms on a loaded 2-core box.

    The emulator answers from another process in well under 1 ms when the machine is idle, but
    under CPU contention (other test runs) the scheduler can delay it by tens of ms. The SDK's
    latency-timer constant (the USB adapter's buffering delay on real hardware) sets that wait.
    """
    monkeypatch.setattr(dxl.port_handler, "LATENCY_TIMER", 100)


@pytest.fixture
def bus() -> Iterator[DynamixelBusEmulator]:
    with DynamixelBusEmulator.with_servos([1, 2, 3, 4, 5, 6, 7]) as emulator:
        yield emulator


@pytest.fixture
def sdk(bus: DynamixelBusEmulator) -> Iterator[tuple[object, object]]:
    port = dxl.PortHandler(bus.port)
    assert port.openPort()
    assert port.setBaudRate(57600)  # accepted by the pty and ignored
    yield port, dxl.PacketHandler(2.0)
    port.closePort()


# ---- framing, against the spec and the SDK's own implementation ---------------------------------
def test_crc_matches_the_manual_example_and_the_sdk() -> None:
    # e-manual protocol 2.0 ping example: FF FF FD 00 01 03 00 01 | CRC 19 4E
    ping = bytes.fromhex("fffffd0001030001")
    assert crc16(ping) == 0x4E19
    assert build_packet(1, Instruction.PING) == ping + bytes([0x19, 0x4E])
    # e-manual read example: present position (132, 4 bytes) of id 1 -> CRC 1D 15
    read = bytes.fromhex("fffffd000107000284000400")
    assert build_packet(1, Instruction.READ, bytes.fromhex("84000400")) == read + b"\x1d\x15"
    sdk_crc = dxl.Protocol2PacketHandler().updateCRC
    rng = random.Random(0)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        assert crc16(data) == sdk_crc(0, list(data), len(data))


def test_byte_stuffing_matches_the_sdk_and_round_trips() -> None:
    params = bytes.fromhex("7400") + bytes.fromhex("fffffd00") + bytes.fromhex("fffffdfd")
    raw = b"\xff\xff\xfd\x00\x01" + (len(params) + 3).to_bytes(2, "little") + b"\x03" + params
    ours = add_stuffing(raw)
    theirs = dxl.Protocol2PacketHandler().addStuffing(list(raw) + [0, 0])
    assert ours == bytes(theirs[:-2])
    assert len(ours) == len(raw) + 2  # two FF FF FD runs, one FD added after each
    (packet,) = PacketParser().feed(build_packet(1, Instruction.WRITE, params))
    assert packet.crc_ok and packet.instruction == Instruction.WRITE and packet.params == params


def test_parser_skips_noise_and_drops_a_stale_partial_packet() -> None:
    parser = PacketParser()
    good = build_packet(3, Instruction.PING)
    assert [p.id for p in parser.feed(b"\x00\x13\xff" + good + b"\xff", now=0.0)] == [3]
    assert parser.feed(good[:6], now=1.0) == []  # a packet cut off mid-way
    (packet,) = parser.feed(good, now=2.0)  # long silence: the half packet is forgotten
    assert packet.id == 3 and packet.crc_ok


# ---- instructions through the real SDK ----------------------------------------------------------
def test_ping_reports_model_and_missing_servos_time_out(bus, sdk) -> None:
    port, ph = sdk
    model, result, error = ph.ping(port, 4)
    assert (model, result, error) == (1200, dxl.COMM_SUCCESS, 0)  # XL330-M288
    start = time.monotonic()
    _, result, _ = ph.ping(port, 42)
    assert result == dxl.COMM_RX_TIMEOUT
    assert time.monotonic() - start < 2.0  # bounded by the SDK's packet timeout
    found, result = ph.broadcastPing(port)
    assert result == dxl.COMM_SUCCESS and sorted(found) == bus.ids
    assert found[7] == [1200, 52]


def test_read_write_and_control_table_rules(bus, sdk) -> None:
    port, ph = sdk
    bus.servo(2).position = -1234  # multi-turn positions are signed
    value, result, error = ph.read4ByteTxRx(port, 2, ADDR_PRESENT)
    assert result == dxl.COMM_SUCCESS and error == 0
    assert value - (1 << 32) == -1234
    # goal position moves the horn only with torque on
    assert ph.write4ByteTxRx(port, 2, ADDR_GOAL, 3000) == (dxl.COMM_SUCCESS, 0)
    assert bus.servo(2).position == -1234
    assert ph.write1ByteTxRx(port, 2, ADDR_TORQUE, 1) == (dxl.COMM_SUCCESS, 0)
    assert ph.write4ByteTxRx(port, 2, ADDR_GOAL, 3000) == (dxl.COMM_SUCCESS, 0)
    assert bus.servo(2).position == 3000
    # the servo reports protocol errors in the status packet's error byte
    result, error = ph.write4ByteTxRx(port, 2, ADDR_GOAL, 5000)  # beyond max position limit
    assert (result, error) == (dxl.COMM_SUCCESS, ErrorCode.DATA_LIMIT)
    result, error = ph.write1ByteTxRx(port, 2, ADDR_ID, 9)  # EEPROM is locked with torque on
    assert error == ErrorCode.ACCESS
    assert "not available" in ph.getRxPacketError(error)
    result, error = ph.write4ByteTxRx(port, 3, ADDR_PRESENT, 5)  # read-only field
    assert error == ErrorCode.ACCESS and bus.servo(3).position == 2048
    _, _, error = ph.readTxRx(port, 3, 146, 8)  # past the end of the table
    assert error == ErrorCode.ACCESS
    # with torque off the id may change, and the servo then answers to it
    assert ph.write1ByteTxRx(port, 3, ADDR_ID, 30) == (dxl.COMM_SUCCESS, 0)
    assert ph.ping(port, 30)[1] == dxl.COMM_SUCCESS


def test_sync_read_of_all_servos_with_stuffed_values(bus, sdk) -> None:
    port, ph = sdk
    ticks = {1: 0, 2: 4095, 3: 0x00FDFFFF, 4: 1024, 5: 2048, 6: 77, 7: 3000}  # 3 needs stuffing
    bus.set_positions(ticks)
    group = dxl.GroupSyncRead(port, ph, ADDR_PRESENT, 4)
    for dxl_id in ticks:
        assert group.addParam(dxl_id)
    assert group.txRxPacket() == dxl.COMM_SUCCESS
    assert {i: group.getData(i, ADDR_PRESENT, 4) for i in ticks} == ticks


def test_sync_write_and_bulk_read(bus, sdk) -> None:
    port, ph = sdk
    for dxl_id in (1, 2, 3):
        assert ph.write1ByteTxRx(port, dxl_id, ADDR_TORQUE, 1) == (dxl.COMM_SUCCESS, 0)
    writer = dxl.GroupSyncWrite(port, ph, ADDR_GOAL, 4)
    bus.servo(2).set("operating_mode", 4)  # extended position: any goal, here one to stuff
    goals = {1: 100, 2: 0x00FDFFFF, 3: 4000}
    for dxl_id, goal in goals.items():
        assert writer.addParam(dxl_id, list(goal.to_bytes(4, "little")))
    assert writer.txPacket() == dxl.COMM_SUCCESS
    deadline = time.monotonic() + 1.0
    while any(bus.servo(i).position != g for i, g in goals.items()):
        assert time.monotonic() < deadline, "sync write never reached the servos"
        time.sleep(0.002)
    reader = dxl.GroupBulkRead(port, ph)
    assert reader.addParam(1, ADDR_PRESENT, 4)
    assert reader.addParam(3, ADDR_TORQUE, 1)
    assert reader.txRxPacket() == dxl.COMM_SUCCESS
    assert reader.getData(1, ADDR_PRESENT, 4) == 100
    assert reader.getData(3, ADDR_TORQUE, 1) == 1


# ---- faults -------------------------------------------------------------------------------------
def test_corrupted_status_crc_is_detected_by_the_sdk(bus, sdk) -> None:
    port, ph = sdk
    bus.corrupt_next_status(1)
    _, result, _ = ph.ping(port, 1)
    assert result == dxl.COMM_RX_CORRUPT
    assert ph.getTxRxResult(result) == "[TxRxResult] Incorrect status packet!"
    assert ph.ping(port, 1)[1] == dxl.COMM_SUCCESS  # the next exchange is clean again


def test_corrupted_instruction_gets_a_crc_error_status(bus, sdk) -> None:
    port, ph = sdk
    packet = bytearray(build_packet(5, Instruction.WRITE, bytes([ADDR_TORQUE, 0, 1])))
    packet[-1] ^= 0xFF
    port.clearPort()
    assert port.writePort(bytes(packet)) == len(packet)
    port.setPacketTimeout(11)
    status, result = ph.rxPacket(port, False)
    assert result == dxl.COMM_SUCCESS
    assert status[8] == ErrorCode.CRC
    assert ph.getRxPacketError(status[8]) == "[RxPacketError] CRC doesn't match!"
    assert bus.crc_errors == 1 and not bus.servo(5).torque_enabled  # not executed


def test_silent_servo_and_unplugged_adapter(bus, sdk) -> None:
    port, ph = sdk
    bus.servo(6).responsive = False
    group = dxl.GroupSyncRead(port, ph, ADDR_PRESENT, 4)
    for dxl_id in (5, 6, 7):
        group.addParam(dxl_id)
    assert group.txRxPacket() == dxl.COMM_RX_TIMEOUT
    bus.unplug()
    with pytest.raises((OSError, termios.error)) as info:  # SerialException is an OSError
        for _ in range(3):
            ph.ping(port, 1)
    assert "Input/output error" in str(info.value) or "returned no data" in str(info.value)


def test_emulated_servo_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        EmulatedServo(1, model="MX-28")
    with pytest.raises(ValueError, match="already on the bus"):
        DynamixelBusEmulator([EmulatedServo(1), EmulatedServo(1)])
    with pytest.raises(KeyError, match=r"ids: \[1\]"):
        DynamixelBusEmulator([EmulatedServo(1)]).servo(2)


# ---- leader arm on the emulated Dynamixel bus ---------------------------------------------------
IDS = [1, 2, 3, 4, 5, 6]
GRIPPER_ID = 7
SIGNS = [1, -1, 1, 1, -1, 1]
OFFSETS = [0.0, 0.5, -0.25, 0.0, 1.0, 0.0]


@pytest.fixture
def calibration_file(tmp_path: Path) -> Path:
    """Joints listed in reverse of the robot's order: mapping must go by name."""
    joints = [
        {"name": name, "id": i, "sign": s, "offset": o}
        for name, i, s, o in zip(ARM_JOINTS, IDS, SIGNS, OFFSETS)
    ][::-1]
    path = tmp_path / "leader.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "baudrate": 1000000,
                "joints": joints,
                "gripper": {"id": GRIPPER_ID, "open_ticks": 2000, "closed_ticks": 2400},
            }
        )
    )
    return path


def expected_joints(ticks: dict[int, int]) -> list[float]:
    return [
        s * ((ticks[i] - 2048) * 2 * math.pi / 4096 - o) for i, s, o in zip(IDS, SIGNS, OFFSETS)
    ]


def test_leader_produces_joint_targets_by_name(
    bus: DynamixelBusEmulator, calibration_file: Path
) -> None:
    bus.servo(3).set("torque_enable", 1)  # left on by a previous program
    ticks = {1: 2048, 2: 3072, 3: 1024, 4: 2100, 5: 2048 + 652, 6: 0, GRIPPER_ID: 2300}
    bus.set_positions(ticks)
    teleop = make_teleop(
        "leader", action_spec=JOINT_SPEC, calibration=str(calibration_file), port=bus.port
    )
    assert isinstance(teleop, LeaderArmTeleop) and teleop.baudrate == 1000000
    with teleop:
        assert not any(bus.servo(i).torque_enabled for i in bus.ids)  # moved by hand
        action = teleop.get_action(OBS)
        expected = [*expected_joints(ticks), 0.75]
        np.testing.assert_allclose(action.values["action"], expected, rtol=1e-5, atol=1e-6)
        assert action.t_exec == 12.5
        bus.set_positions({2: 2048, GRIPPER_ID: 1000})  # the operator moves joint 2, opens
        after = teleop.get_action(OBS).values["action"]
        assert after[1] == pytest.approx(-1 * (0.0 - 0.5))
        assert after[6] == 0.0  # clipped to fully open
        assert teleop.events() == set()


def test_leader_record_calibration_reads_the_reference_pose(bus: DynamixelBusEmulator) -> None:
    reference = dict(zip(ARM_JOINTS, [-3.41, -1.57, 1.8, -1.8, -1.57, -0.27]))
    bus.set_positions({1: 100, 2: 2048, 3: 3000, 4: 4000, 5: 1500, 6: 2222})
    client = DynamixelBus(bus.port)
    client.open()
    try:
        calibration = record_calibration(client, list(zip(ARM_JOINTS, IDS, SIGNS)), reference)
    finally:
        client.close()
    arm_only = SpecDict({"action": FeatureSpec((6,), "float32", "lowdim", names=ARM_JOINTS)})
    teleop = LeaderArmTeleop(action_spec=arm_only, calibration=calibration, port=bus.port)
    with teleop:
        np.testing.assert_allclose(
            teleop.get_action(OBS).values["action"], list(reference.values()), atol=1e-5
        )
        bus.set_positions({1: 100 + 1024, 5: 1500 + 1024})  # a quarter turn of servos 1 and 5
        moved = teleop.get_action(OBS).values["action"]
    assert moved[0] == pytest.approx(-3.41 + math.pi / 2, abs=1e-5)
    assert moved[4] == pytest.approx(-1.57 - math.pi / 2, abs=1e-5)  # sign -1
    # a full turn past the reference wraps back near it (single-turn readings)
    assert calibration.targets({**dict.fromkeys(IDS, 0), 1: 100 + 4096})[
        "shoulder_pan_joint"
    ] == pytest.approx(-3.41, abs=1e-6)


def test_leader_drives_the_sim_robot_in_joint_mode(
    bus: DynamixelBusEmulator, calibration_file: Path
) -> None:
    robot = make_robot("sim:lift", seed=0, control_mode="joint")
    with robot:
        assert isinstance(robot, SimRobot)
        q = robot.get_observation().values["joint_pos"]
        calibration = LeaderCalibration.load(calibration_file)
        by_name = {j.name: j for j in calibration.joints}
        # put the leader where the robot is, then nudge the elbow by 0.1 rad
        target = dict(zip(ARM_JOINTS, q.tolist()))
        target["elbow_joint"] += 0.1
        for name, value in target.items():
            joint = by_name[name]
            bus.servo(joint.id).position = rad_to_ticks(value * joint.sign + joint.offset)
        teleop = make_teleop("leader", robot=robot, calibration=calibration_file, port=bus.port)
        with teleop:
            teleop.check_robot(robot)
            for _ in range(10):
                executed = robot.send_action(teleop.get_action(robot.get_observation()))
        reached = robot.get_observation().values["joint_pos"]
    elbow = ARM_JOINTS.index("elbow_joint")
    assert executed.values["action"][elbow] == pytest.approx(target["elbow_joint"], abs=2e-3)
    assert reached[elbow] - q[elbow] > 0.05


def test_leader_rejects_an_ee_delta_robot_and_bad_calibrations(
    tmp_path: Path, calibration_file: Path
) -> None:
    with pytest.raises(SpecError, match="control_mode='joint'"):
        LeaderArmTeleop(action_spec=EE_SPEC, calibration=calibration_file)
    with pytest.raises(ValueError, match="calibrate"):
        LeaderArmTeleop(action_spec=JOINT_SPEC)
    with pytest.raises(FileNotFoundError, match="calibrate"):
        LeaderArmTeleop(action_spec=JOINT_SPEC, calibration=tmp_path / "nope.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text('{"joints": [{"name": "a", "id": 1}, {"name": "b", "id": 1}]}')
    with pytest.raises(ValueError, match=r"duplicate servo ids: \['1'\]"):
        LeaderCalibration.load(bad)
    bad.write_text('{"joints": [{"name": "a"}]}')
    with pytest.raises(ValueError, match="'id'"):
        LeaderCalibration.load(bad)
    roundtrip = tmp_path / "copy.json"
    LeaderCalibration.load(calibration_file).save(roundtrip)
    assert LeaderCalibration.load(roundtrip) == LeaderCalibration.load(calibration_file)


def test_leader_missing_servo_fails_at_connect(
    bus: DynamixelBusEmulator, calibration_file: Path
) -> None:
    bus.servo(4).responsive = False
    teleop = LeaderArmTeleop(action_spec=JOINT_SPEC, calibration=calibration_file, port=bus.port)
    with pytest.raises(LeaderArmError, match=r"servo id\(s\) \[4\] do not answer"):
        teleop.connect()
    assert not teleop.is_connected
    with pytest.raises(DeviceNotConnectedError, match="cannot open"):
        LeaderArmTeleop(
            action_spec=JOINT_SPEC, calibration=calibration_file, port="/dev/nonexistent-tty"
        ).connect()


def test_leader_survives_line_noise_but_reports_a_corrupt_bus(
    bus: DynamixelBusEmulator, calibration_file: Path
) -> None:
    teleop = LeaderArmTeleop(action_spec=JOINT_SPEC, calibration=calibration_file, port=bus.port)
    with teleop:
        bus.corrupt_next_status(1)
        teleop.get_action(OBS)  # one bad CRC: retried
        bus.corrupt_next_status(10_000)
        with pytest.raises(LeaderArmError, match="Incorrect status packet"):
            teleop.get_action(OBS)


def test_leader_servo_silent_or_adapter_unplugged_is_an_error_not_a_hang(
    bus: DynamixelBusEmulator, calibration_file: Path
) -> None:
    teleop = LeaderArmTeleop(action_spec=JOINT_SPEC, calibration=calibration_file, port=bus.port)
    with teleop:
        bus.servo(5).responsive = False
        start = time.monotonic()
        with pytest.raises(LeaderArmError, match=r"no answer from servo id\(s\) \[5\]"):
            teleop.get_action(OBS)
        bus.servo(5).responsive = True
        teleop.get_action(OBS)
        bus.unplug()
        with pytest.raises(DeviceNotConnectedError, match="unplugged"):
            teleop.get_action(OBS)
        assert time.monotonic() - start < 10.0
