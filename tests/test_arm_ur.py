"""URArm: servo thread + interpolation + stop handling, run against the MuJoCo arm.

The RTDE transport needs a UR controller (there is no emulator); only its connection error is
checked here. Everything above the transport runs unmodified over ``SimURTransport``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.arms.sim import SimArm
from drivers.arms.sim_transport import SimURTransport
from drivers.arms.ur import ProtectiveStopError, URArm
from drivers.interfaces import DeviceNotConnectedError
from drivers.registry import make_arm, make_robot
from drivers.robots.ur5e_rtde import UR5eRobot
from robot_learning.sim.robot_model import ARM_JOINTS
from robot_learning.specs import SpecError
from robot_learning.types import Action


@pytest.fixture(scope="module")
def sim_arm() -> Iterator[SimArm]:
    with SimArm(task="lift", seed=0, control_hz=500.0) as arm:
        yield arm


@pytest.fixture
def transport(sim_arm: SimArm) -> SimURTransport:
    sim_arm.robot.reset(seed=0)
    return SimURTransport(arm=sim_arm)


def wait_for(condition, timeout: float = 2.0) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(0.001)
    return time.monotonic() - start


@pytest.mark.parametrize("frequency", [125.0, 500.0])
def test_streams_servo_j_at_the_configured_rate(transport: SimURTransport, frequency) -> None:
    with URArm(transport=transport, frequency_hz=frequency) as arm:
        time.sleep(0.1)  # let the thread settle
        calls0, t0, stalls0 = transport.servo_calls, time.monotonic(), len(arm.stalls)
        time.sleep(1.0)
        calls, window = transport.servo_calls - calls0, time.monotonic() - t0
    # a loaded 2-core box can deschedule the thread; the loop reports those stalls
    stalled = sum(seconds for _, seconds in list(arm.stalls)[stalls0:])
    assert 0.9 * frequency * (window - stalled) <= calls <= 1.02 * frequency * window, (
        calls,
        window,
        stalled,
    )
    assert stalled < 0.5 * window
    assert not arm.is_connected
    count = transport.servo_calls
    time.sleep(0.05)
    assert transport.servo_calls == count  # the thread is gone after disconnect


def test_follows_10hz_waypoints_smoothly(transport: SimURTransport) -> None:
    wrist = ARM_JOINTS.index("wrist_1_joint")
    with URArm(transport=transport, frequency_hz=250.0) as arm:
        q0 = arm.read_joint_state().position
        start = time.monotonic()
        targets = []
        for k in range(1, 16):  # 1.5 s of 10 Hz waypoints, each due 0.2 s after it is sent
            t_due = start + k * 0.1 + 0.1
            q = q0.copy()
            q[wrist] += 0.3 * np.sin(np.pi * (t_due - start))
            targets.append((t_due, q[wrist]))
            arm.send_joint_targets(q, t_exec=t_due)
            time.sleep(max(0.0, start + k * 0.1 - time.monotonic()))
        final = targets[-1][1]
        # the sim arm follows (sim time advances one step per command, so allow for stalls)
        wait_for(lambda: abs(arm.read_joint_state().position[wrist] - final) < 0.02, 3.0)
        reached = arm.read_joint_state().position
    hist = [(t, q[wrist]) for t, q in transport.history if t >= start]
    t_cmd = np.array([t for t, _ in hist])
    q_cmd = np.array([q for _, q in hist])
    v = np.diff(q_cmd) * 250.0  # each command covers one servo period of the plan
    assert np.abs(v).max() > 0.3  # it really moved
    # no velocity jumps, even when the loop is delayed: the acceleration limit holds per command
    assert np.abs(np.diff(v)).max() <= 15.0 / 250.0 + 1e-6

    # the stream passes through the waypoints on time, except right after the servo thread was
    # descheduled for longer than it may lag (a loaded 2-core box); it then re-plans
    def after_stall(t: float) -> bool:
        return any(end - seconds - 0.01 <= t <= end + 0.3 for end, seconds in arm.stalls)

    errors = [
        abs(np.interp(t_due, t_cmd, q_cmd) - want)
        for t_due, want in targets[2:]
        if not after_stall(t_due)
    ]
    assert len(errors) >= 5 and max(errors) < 0.04, (errors, list(arm.stalls))
    others = [i for i in range(6) if i != wrist]
    np.testing.assert_allclose(reached[others], q0[others], atol=0.02)


def test_holds_the_last_waypoint_when_the_stream_runs_dry(transport: SimURTransport) -> None:
    with URArm(transport=transport, frequency_hz=250.0, interpolation="linear") as arm:
        q = arm.read_joint_state().position
        q[0] += 0.05
        sent = arm.send_joint_targets(q, t_exec=time.monotonic() + 0.1)
        time.sleep(0.4)
        calls = transport.servo_calls
        time.sleep(0.2)
        late = [cmd for t, cmd in transport.history if t > time.monotonic() - 0.2]
        np.testing.assert_array_equal(arm.commanded, sent)
    assert transport.servo_calls - calls > 25  # still streaming
    assert late and all(np.array_equal(cmd, sent) for cmd in late)


@pytest.mark.parametrize("kind", ["protective", "emergency"])
def test_stop_is_detected_within_one_servo_period(
    transport: SimURTransport, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    with URArm(transport=transport, frequency_hz=500.0) as arm:
        q = arm.read_joint_state().position
        arm.send_joint_targets(q + 0.01, t_exec=time.monotonic() + 0.5)
        time.sleep(0.05)
        if kind == "protective":
            transport.trigger_protective_stop()
        else:
            transport.trigger_emergency_stop()
        wait_for(lambda: arm.fault is not None)
        assert transport.refused_calls <= 1  # at most one servoJ went out after the stop
        assert transport.stop_calls >= 1
        assert arm.fault == f"{kind} stop"
        assert f"{kind} stop; servo streaming stopped" in caplog.text
        calls = transport.servo_calls + transport.refused_calls
        with pytest.raises(ProtectiveStopError, match=f"{kind} stop.*reset_fault"):
            arm.send_joint_targets(q)
        time.sleep(0.02)
        assert transport.servo_calls + transport.refused_calls == calls  # streaming ended
        assert arm.read_joint_state().position.shape == (6,)  # still readable
        with pytest.raises(ProtectiveStopError, match="still reports"):
            arm.reset_fault()
        transport.clear_stops()
        arm.reset_fault()
        wait_for(lambda: transport.servo_calls > calls + 10)
        arm.send_joint_targets(arm.read_joint_state().position)


def test_bad_parameters_and_targets_are_refused(transport: SimURTransport) -> None:
    with pytest.raises(ValueError, match=r"frequency_hz must be in \[125.0, 500.0\], got 1000"):
        URArm(host="10.0.0.2", frequency_hz=1000.0)
    with pytest.raises(ValueError, match="frequency_hz"):
        URArm(host="10.0.0.2", frequency_hz=100.0)
    with pytest.raises(ValueError, match="lookahead_time"):
        URArm(host="10.0.0.2", lookahead_time=0.5)
    with pytest.raises(ValueError, match="gain"):
        URArm(host="10.0.0.2", gain=50.0)
    with pytest.raises(ValueError, match="host="):
        URArm()
    arm = make_arm("ur", transport=transport, frequency_hz=250.0)
    assert isinstance(arm, URArm)
    with pytest.raises(DeviceNotConnectedError, match="send_joint_targets"):
        arm.send_joint_targets(np.zeros(6))
    with arm:
        q = arm.read_joint_state().position
        bad = q.copy()
        bad[3] = np.nan
        with pytest.raises(ValueError, match=r"NaN or Inf for joints \['wrist_1_joint'\]"):
            arm.send_joint_targets(bad)
        with pytest.raises(ValueError, match=r"expected \(6,\)"):
            arm.send_joint_targets(q[:5])
        names = dict(zip(ARM_JOINTS, q.tolist()))
        names["wrist_4_joint"] = names.pop("wrist_3_joint")
        with pytest.raises(ValueError, match=r"unknown \['wrist_4_joint'\].*valid joints"):
            arm.send_joint_targets_by_name(names)
        time.sleep(0.05)
        np.testing.assert_allclose(arm.commanded, q, atol=1e-6)  # nothing refused moved it
        high = arm.action_spec()["joint_pos"].bounds()[1]
        sent = arm.send_joint_targets_by_name(
            {**dict(zip(ARM_JOINTS, q.tolist())), "elbow_joint": 10.0}, t_exec=time.monotonic()
        )
        assert sent[2] == high[2] == pytest.approx(np.pi)


def test_rtde_transport_reports_an_unreachable_controller() -> None:
    arm = URArm(host="127.0.0.1")  # nothing listens on the RTDE port here
    with pytest.raises(DeviceNotConnectedError, match="cannot reach the UR controller"):
        arm.connect()
    assert not arm.is_connected


def test_ur5e_robot_matches_the_sim_joint_mode_specs(transport: SimURTransport) -> None:
    sim_spec = transport.arm.robot.action_spec()
    robot = make_robot("ur5e", transport=transport, frequency_hz=250.0)
    assert isinstance(robot, UR5eRobot)
    assert robot.action_spec()["action"].names == sim_spec["action"].names
    with robot:
        obs = robot.get_observation()
        assert set(obs.values) == {"joint_pos", "joint_vel"}
        assert obs.values["joint_pos"].shape == (6,)
        q = obs.values["joint_pos"].astype(np.float64)
        target = np.array([*q, 0.7], dtype=np.float32)
        target[0] += 0.05
        executed = robot.send_action(Action({"action": target}, t_exec=time.monotonic() + 0.1))
        np.testing.assert_allclose(executed.values["action"], target, atol=1e-6)
        assert executed.info["gripper_driven"] is False
        wait_for(lambda: robot.get_observation().values["joint_pos"][0] - q[0] > 0.04)
        with pytest.raises(SpecError, match="action"):
            robot.send_action(Action({"action": np.full(7, np.nan, dtype=np.float32)}))
        with pytest.raises(SpecError, match="missing"):
            robot.send_action(Action({"joints": target}))
