"""The safety layer: one test per rule, invariants over random command streams, and closed-loop
runs on the MuJoCo sim where the tcp must stay inside the workspace box."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivers.interfaces import JointState
from robot_learning.serving.safety import (
    CLAMP_RULES,
    RULES,
    ArmState,
    HoldUnavailableError,
    SafetyConfig,
    SafetyLayer,
)
from robot_learning.serving.safety_config import sim_fk
from robot_learning.specs import SpecError

DT = 0.01
LOGGER = "robot_learning.serving.safety"


def joint_config(**kw: Any) -> SafetyConfig:
    """3 joints + gripper at index 3, 100 Hz; only the rules a test names are on."""
    base: dict[str, Any] = {
        "mode": "joint",
        "control_period_s": DT,
        "joint_names": ("a", "b", "c"),
        "gripper_index": 3,
    }
    return SafetyConfig(**{**base, **kw})


def ee_config(**kw: Any) -> SafetyConfig:
    base: dict[str, Any] = {"mode": "ee_delta", "control_period_s": DT, "gripper_index": 6}
    return SafetyConfig(**{**base, **kw})


def ee(dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, grip: float = 0.0) -> np.ndarray:
    return np.array([dx, dy, dz, 0.0, 0.0, 0.0, grip])


Q0 = np.array([0.1, -0.2, 0.3])
BOX = {"workspace_low": (0.0, -0.5, 0.0), "workspace_high": (1.0, 0.5, 0.6)}


def only(layer: SafetyLayer, **expected: int) -> None:
    """The counts are exactly ``expected`` (all other rules zero)."""
    assert layer.counts == {r: expected.get(r, 0) for r in RULES}


# ---- hold rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_command_is_rejected_and_holds_last_command(bad: float) -> None:
    layer = SafetyLayer(joint_config())
    state = ArmState(0.0, joint_pos=Q0)
    first = layer.filter(np.array([0.2, -0.1, 0.3, 0.7]), state)
    out = layer.filter(np.array([0.5, bad, 0.0, 0.1]), ArmState(DT, joint_pos=Q0))
    assert np.array_equal(out, first)  # last sent targets, gripper at its last value
    only(layer, nan=1)
    assert layer.events[-1].rule == "nan" and "'b'" in layer.events[-1].detail


def test_inf_in_ee_delta_mode_holds_with_zero_motion() -> None:
    layer = SafetyLayer(ee_config())
    layer.filter(ee(dx=0.01, grip=0.4), ArmState(0.0))
    out = layer.filter(np.array([np.inf, 0, 0, 0, 0, 0, 1.0]), ArmState(DT))
    assert np.array_equal(out, ee(grip=0.4))
    only(layer, nan=1)


def test_non_finite_measurement_holds() -> None:
    layer = SafetyLayer(joint_config(max_joint_step=0.1))
    first = layer.filter(np.array([0.1, -0.2, 0.3, 0.0]), ArmState(0.0, joint_pos=Q0))
    out = layer.filter(Q0.tolist() + [1.0], ArmState(DT, joint_pos=np.array([0.1, np.nan, 0.3])))
    assert np.array_equal(out, first)
    only(layer, nan=1)


def test_stale_stream_is_named_and_holds() -> None:
    layer = SafetyLayer(ee_config(stale_obs_max_age_s={"wrist_rgb": 0.1, "joint_state": 0.02}))
    fresh = {"wrist_rgb": 0.95, "joint_state": 0.99}
    out = layer.filter(ee(dx=0.01), ArmState(1.0, obs_timestamps=fresh))
    assert out[0] == 0.01
    out = layer.filter(ee(dx=0.01), ArmState(1.0, obs_timestamps={**fresh, "wrist_rgb": 0.8}))
    assert np.array_equal(out, ee())
    only(layer, stale_obs=1)
    assert "'wrist_rgb'" in layer.events[-1].detail and "joint_state" not in layer.events[-1].detail
    out = layer.filter(ee(dx=0.01), ArmState(1.0, obs_timestamps={"wrist_rgb": 0.99}))
    assert np.array_equal(out, ee())  # a configured stream without a stamp is stale too
    assert layer.counts["stale_obs"] == 2 and "no timestamp" in layer.events[-1].detail


def test_no_action_holds_in_the_same_call() -> None:
    layer = SafetyLayer(joint_config())
    sent = layer.filter(np.array([0.2, 0.0, 0.1, 1.0]), ArmState(0.0, joint_pos=Q0))
    out = layer.filter(None, ArmState(DT, joint_pos=Q0))
    assert np.array_equal(out, sent)
    only(layer, no_action=1)
    fresh = SafetyLayer(joint_config())  # nothing sent yet: hold at the measured joints
    out = fresh.filter(None, ArmState(0.0, joint_pos=Q0, gripper_pos=0.3))
    assert np.array_equal(out, [*Q0, 0.3])
    with pytest.raises(HoldUnavailableError, match="joint_pos"):
        SafetyLayer(joint_config()).filter(None, ArmState(0.0))


def test_estop_latches_until_reset_estop(caplog: pytest.LogCaptureFixture) -> None:
    layer = SafetyLayer(ee_config())
    layer.filter(ee(grip=0.8), ArmState(0.0))
    trigger = threading.Thread(target=layer.estop, args=("operator button",))
    trigger.start()  # e-stops come from other threads (buttons, watchdogs)
    trigger.join()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for k in range(200):
            out = layer.filter(ee(dx=0.02, grip=0.0), ArmState(DT * (k + 1)))
            assert np.array_equal(out, ee(grip=0.8))
        layer.reset()  # a new episode does not release the e-stop
        assert layer.estopped
        assert np.array_equal(layer.filter(ee(dx=0.02), ArmState(3.0)), ee(grip=0.0))
        only(layer, estop=201)
        assert layer.summary()["estop_reason"] == "operator button"
        layer.reset_estop()
    assert not layer.estopped
    assert layer.filter(ee(dx=0.02), ArmState(3.1))[0] == 0.02
    assert "e-stop latched: operator button" in caplog.text
    assert "e-stop reset" in caplog.text


def test_safe_action_replaces_hold_and_is_itself_clamped() -> None:
    cfg = ee_config(safe_action=(0.0, 0.0, 0.05, 0.0, 0.0, 0.0, 0.0), max_tcp_step=0.01)
    layer = SafetyLayer(cfg)
    layer.filter(ee(grip=0.9), ArmState(0.0))
    out = layer.filter(None, ArmState(DT))
    # retreat upwards at the step limit; the gripper keeps its last value (no dropped object)
    assert np.allclose(out, [0, 0, 0.01, 0, 0, 0, 0.9])
    only(layer, no_action=1, tcp_step=1)
    layer.estop("test")  # an e-stop never moves the arm, even with a safe action configured
    assert np.array_equal(layer.filter(None, ArmState(2 * DT)), ee(grip=0.9))

    home = (0.0, 0.0, 0.0, 1.0)
    joint = SafetyLayer(joint_config(safe_action=home, joint_vel_max=1.0))
    joint.filter(np.array([0.1, -0.2, 0.3, 0.0]), ArmState(0.0, joint_pos=Q0))
    out = joint.filter(np.array([np.nan, 0, 0, 0]), ArmState(DT, joint_pos=Q0))
    assert np.allclose(out, [0.09, -0.19, 0.29, 0.0])  # toward home at 1 rad/s, gripper kept


def test_gripper_is_held_at_its_last_value_on_every_hold() -> None:
    layer = SafetyLayer(joint_config())
    layer.filter(np.array([0.1, -0.2, 0.3, 0.65]), ArmState(0.0, joint_pos=Q0))
    for k, bad in enumerate([None, [np.nan, 0, 0, 0.0], [0, 0, 0, np.inf]]):
        proposed = None if bad is None else np.array(bad)
        assert layer.filter(proposed, ArmState(DT * (k + 1), joint_pos=Q0))[3] == 0.65
    ee_layer = SafetyLayer(ee_config(gripper_range=(0.0, 1.0)))
    assert ee_layer.filter(None, ArmState(0.0, gripper_pos=1.4))[6] == 1.0  # measured, clipped
    ee_layer.filter(ee(grip=0.25), ArmState(DT))
    assert ee_layer.filter(None, ArmState(2 * DT, gripper_pos=1.0))[6] == 0.25


# ---- clamp rules ---------------------------------------------------------------------------------
def test_joint_position_limit() -> None:
    layer = SafetyLayer(joint_config(joint_pos_low=(-1, -1, -0.5), joint_pos_high=(1, 1, 0.5)))
    out = layer.filter(np.array([1.5, -0.3, -0.9, 0.5]), ArmState(0.0, joint_pos=Q0))
    assert np.array_equal(out, [1.0, -0.3, -0.5, 0.5])
    only(layer, joint_limit=1)


def test_joint_velocity_limit_against_previous_command() -> None:
    layer = SafetyLayer(joint_config(joint_vel_max=(1.0, 2.0, 1.0)))
    out = layer.filter(np.array([0.6, -0.2, 0.3, 0.0]), ArmState(0.0, joint_pos=Q0))
    assert np.allclose(out[:3], [0.11, -0.2, 0.3])  # 1 rad/s * 10 ms from the measured joints
    out = layer.filter(np.array([0.6, -0.5, 0.3, 0.0]), ArmState(DT, joint_pos=Q0))
    assert np.allclose(out[:3], [0.12, -0.22, 0.3])  # from the previous command, not measured
    only(layer, joint_velocity=2)
    with pytest.raises(ValueError, match="joint_pos"):  # the first tick needs a reference
        SafetyLayer(joint_config(joint_vel_max=1.0)).filter(np.zeros(4), ArmState(0.0))


def test_joint_acceleration_limit_ramps_up_and_never_refuses_a_stop() -> None:
    layer = SafetyLayer(joint_config(joint_acc_max=10.0))  # +0.1 rad/s per 10 ms tick
    q = Q0.copy()
    sent = []
    for k in range(3):
        sent.append(layer.filter(np.array([5.0, -0.2, 0.3, 0.0]), ArmState(k * DT, joint_pos=q)))
    steps = np.diff([Q0[0]] + [s[0] for s in sent])
    assert np.allclose(steps, [0.001, 0.002, 0.003])  # velocity 0.1, 0.2, 0.3 rad/s
    only(layer, joint_acceleration=3)
    out = layer.filter(sent[-1], ArmState(3 * DT, joint_pos=q))  # stop at once: allowed
    assert np.array_equal(out, sent[-1])
    reverse = layer.filter(np.array([-5.0, -0.2, 0.3, 0.0]), ArmState(4 * DT, joint_pos=q))
    assert np.isclose(reverse[0] - sent[-1][0], -0.001)  # from rest again, the other way
    assert layer.counts["joint_acceleration"] == 4


def test_max_step_against_measured_joints() -> None:
    layer = SafetyLayer(joint_config(max_joint_step=0.05))
    measured = np.array([0.0, 0.5, -0.5])
    out = layer.filter(np.array([0.2, 0.48, -0.9, 0.0]), ArmState(0.0, joint_pos=measured))
    assert np.allclose(out[:3], [0.05, 0.48, -0.55])
    only(layer, max_step=1)


def test_workspace_box_ee_delta_pushes_target_onto_the_face() -> None:
    layer = SafetyLayer(ee_config(**BOX))
    tcp = np.array([0.98, 0.0, 0.02])
    out = layer.filter(ee(dx=0.05, dy=0.01, dz=-0.05), ArmState(0.0, tcp_pos=tcp))
    target = tcp + out[:3]
    assert np.allclose(target, [1.0, 0.01, 0.0])  # on the x-high and z-low faces; y untouched
    only(layer, workspace=1)
    outside = np.array([1.1, 0.0, 0.3])  # already outside (overshoot): led back into the box
    out = layer.filter(ee(dx=0.02, dy=0.02), ArmState(DT, tcp_pos=outside))
    assert np.allclose(out[:3], [-0.1, 0.02, 0.0])
    capped = SafetyLayer(ee_config(max_tcp_step=0.01, **BOX))  # at most one step per tick
    out = capped.filter(ee(dx=0.02), ArmState(0.0, tcp_pos=outside))
    assert np.allclose(out[:3], [-0.01, 0.0, 0.0])
    assert layer.counts["workspace"] == 2
    with pytest.raises(ValueError, match="tcp_pos"):
        layer.filter(ee(), ArmState(3 * DT))


def planar_fk(q: np.ndarray) -> np.ndarray:
    """Two 0.5 m links in the xy plane; the third joint does not move the tcp."""
    return 0.5 * np.array(
        [np.cos(q[0]) + np.cos(q[0] + q[1]), np.sin(q[0]) + np.sin(q[0] + q[1]), 0]
    )


def test_workspace_box_joint_mode_through_fk() -> None:
    box = {"workspace_low": (-1.0, -1.0, -1.0), "workspace_high": (0.8, 1.0, 1.0)}
    with pytest.raises(ValueError, match="needs fk"):
        SafetyLayer(joint_config(**box))
    layer = SafetyLayer(joint_config(**box), fk=planar_fk)
    start = np.array([0.5, 1.0, 0.0])
    assert planar_fk(start)[0] < 0.8
    out = layer.filter(np.array([0.0, 0.0, 0.2, 1.0]), ArmState(0.0, joint_pos=start))
    tcp = planar_fk(out[:3])
    assert abs(tcp[0] - 0.8) < 1e-4  # backed off along the move until the tcp is on the face
    assert out[3] == 1.0
    only(layer, workspace=1)


def test_tcp_step_speed_and_rotation_in_ee_delta_mode() -> None:
    layer = SafetyLayer(ee_config(max_tcp_step=0.02, max_tcp_speed=1.0, max_rot_step=0.1))
    out = layer.filter(np.array([0.03, 0.04, 0.0, 0.0, 0.0, 0.3, 1.0]), ArmState(0.0))
    # step: 0.05 -> 0.02, then speed: 1 m/s * 10 ms = 0.01; direction kept
    assert np.allclose(out[:3], [0.006, 0.008, 0.0]) and np.isclose(out[5], 0.1)
    only(layer, tcp_step=1, tcp_speed=1, rot_step=1)
    out = layer.filter(ee(dz=0.015), ArmState(DT))
    assert np.isclose(out[2], 0.01)
    only(layer, tcp_step=1, tcp_speed=2, rot_step=1)


def test_tcp_step_in_joint_mode_through_fk() -> None:
    layer = SafetyLayer(joint_config(max_tcp_step=0.01), fk=planar_fk)
    start = np.array([0.5, 1.0, 0.0])
    out = layer.filter(np.array([0.7, 1.0, 0.0, 0.0]), ArmState(0.0, joint_pos=start))
    assert abs(np.linalg.norm(planar_fk(out[:3]) - planar_fk(start)) - 0.01) < 1e-5
    only(layer, tcp_step=1)


def test_gripper_range_is_clamped() -> None:
    layer = SafetyLayer(ee_config(gripper_range=(0.0, 1.0)))
    assert layer.filter(ee(grip=3.0), ArmState(0.0))[6] == 1.0
    only(layer, gripper_range=1)


# ---- contract details ----------------------------------------------------------------------------
def test_wrong_shape_is_a_programming_error_naming_the_expected_shape() -> None:
    layer = SafetyLayer(ee_config())
    with pytest.raises(SpecError, match=r"shape \(6,\), expected \(7,\).*'dx'.*'gripper'"):
        layer.filter(np.zeros(6), ArmState(0.0))
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        SafetyLayer(joint_config()).filter(np.zeros((2, 4)), ArmState(0.0, joint_pos=Q0))
    with pytest.raises(ValueError, match="joint_pos has shape"):
        SafetyLayer(joint_config()).filter(np.zeros(4), ArmState(0.0, joint_pos=np.zeros(5)))
    assert sum(layer.counts.values()) == 0


def test_joint_count_is_learnt_when_the_config_does_not_fix_it() -> None:
    layer = SafetyLayer(SafetyConfig(mode="joint", control_period_s=DT, max_joint_step=0.1))
    out = layer.filter(np.array([1.0, 0.0]), ArmState(0.0, joint_pos=np.zeros(2)))
    assert np.allclose(out, [0.1, 0.0])
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        layer.filter(np.zeros(3), ArmState(DT, joint_pos=np.zeros(2)))


def test_reset_forgets_the_previous_command_but_keeps_counts_and_latch() -> None:
    layer = SafetyLayer(joint_config(joint_vel_max=1.0))
    layer.filter(np.array([1.0, 0.0, 0.0, 0.5]), ArmState(0.0, joint_pos=np.zeros(3)))
    layer.reset()
    measured = np.array([0.5, 0.0, 0.0])
    out = layer.filter(None, ArmState(DT, joint_pos=measured, gripper_pos=0.2))
    assert np.array_equal(out, [0.5, 0.0, 0.0, 0.2])  # hold at the new episode's measurement
    assert layer.counts["joint_velocity"] == 1 and layer.counts["no_action"] == 1


def test_summary_is_json_ready_and_events_are_bounded() -> None:
    layer = SafetyLayer(ee_config(max_events=10))
    for k in range(25):
        layer.filter(None, ArmState(k * DT))
    summary = json.loads(json.dumps(layer.summary()))
    assert summary["counts"]["no_action"] == 25 and summary["interventions"] == 25
    assert summary["estopped"] is False
    assert len(layer.events) == 10 and layer.events[-1].time == pytest.approx(24 * DT)


def test_logging_is_rate_limited_per_rule(caplog: pytest.LogCaptureFixture) -> None:
    layer = SafetyLayer(ee_config())
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for k in range(501):  # 500 Hz for one second
            layer.filter(None, ArmState(k * 0.002))
    records = [r for r in caplog.records if r.name == LOGGER]
    assert layer.counts["no_action"] == 501
    assert len(records) == 2 and all(r.levelno == logging.WARNING for r in records)
    assert "+499 more" in records[1].getMessage()


def test_arm_state_from_joint_state_maps_by_name() -> None:
    js = JointState(names=("c", "a", "b"), position=np.array([3.0, 1.0, 2.0]), timestamp=4.5)
    state = ArmState.from_joint_state(5.0, js, ("a", "b", "c"))
    assert state.joint_pos is not None and np.array_equal(state.joint_pos, [1.0, 2.0, 3.0])
    assert state.obs_timestamps == {"joint_state": 4.5}
    with pytest.raises(ValueError, match=r"lacks joints \['d'\]"):
        ArmState.from_joint_state(5.0, js, ("a", "d"))


def test_config_from_dict_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown safety config keys \['max_speed'\].*valid"):
        SafetyConfig.from_dict({"mode": "ee_delta", "control_period_s": 0.01, "max_speed": 1})
    with pytest.raises(ValueError, match="missing required keys"):
        SafetyConfig.from_dict({"mode": "joint"})
    with pytest.raises(ValueError, match="apply to mode 'joint' only"):
        SafetyConfig.from_dict({"mode": "ee_delta", "control_period_s": 0.01, "max_joint_step": 1})
    with pytest.raises(ValueError, match="disagree on the number of joints"):
        joint_config(joint_pos_low=(-1, -1), joint_pos_high=(1, 1))
    with pytest.raises(ValueError, match="joint_vel_max must be finite and > 0"):
        joint_config(joint_vel_max=(1.0, 0.0, 1.0))
    path = tmp_path / "arm.yaml"
    path.write_text(
        "robot: ur5e\n"
        "safety:\n"
        "  mode: joint\n"
        "  control_period_s: 0.002\n"
        "  joint_names: [a, b]\n"
        "  joint_pos_low: [-1, -2]\n"
        "  joint_pos_high: [1, 2]\n"
        "  joint_vel_max: 1.5\n"
        "  stale_obs_max_age_s: {joint_state: 0.01}\n"
        "  gripper_index: 2\n"
    )
    cfg = SafetyConfig.from_yaml(path, key="safety")
    assert cfg.joint_pos_low == (-1.0, -2.0) and cfg.action_dim == 3
    assert SafetyConfig.from_dict(cfg.to_dict()) == cfg
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: joint\ncontrol_period_s: 0.01\njoint_pos_lo: [0]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*joint_pos_low"):
        SafetyConfig.from_yaml(bad)


def test_for_sim_reads_the_sim_limits() -> None:
    from robot_learning.sim import control
    from robot_learning.sim.kinematics import DifferentialIK
    from robot_learning.sim.robot_model import ARM_JOINTS, TCP_SITE, build_robot_spec

    joint = SafetyConfig.for_sim("joint", 20.0)
    ik = DifferentialIK(build_robot_spec().compile(), TCP_SITE, ARM_JOINTS)
    assert np.allclose(joint.joint_pos_low or (), ik.lower)
    assert np.allclose(joint.joint_pos_high or (), ik.upper)
    assert joint.max_joint_step == control.MAX_TRACKING_ERROR and joint.action_dim == 7
    assert joint.workspace_low is None  # needs fk in joint mode: opt in
    SafetyLayer(joint)
    ee_cfg = SafetyConfig.for_sim("ee_delta", 50.0)
    assert ee_cfg.control_period_s == pytest.approx(0.02)
    assert np.allclose(ee_cfg.workspace_low or (), control.WORKSPACE_LOW)
    # every action the sim accepts (per-axis bounds) passes the step limits unchanged
    assert ee_cfg.max_tcp_step == pytest.approx(control.MAX_POS_STEP * np.sqrt(3))
    assert ee_cfg.max_rot_step == pytest.approx(control.MAX_ROT_STEP * np.sqrt(3))
    assert ee_cfg.action_dim == 7


# ---- invariants over random streams --------------------------------------------------------------
def random_stream(rng: np.random.Generator, n: int, make: Any) -> list[np.ndarray | None]:
    """Commands from ``make(rng)`` with NaN/Inf bursts and gaps mixed in."""
    out: list[np.ndarray | None] = []
    while len(out) < n:
        kind = rng.random()
        if kind < 0.05:  # a burst of NaN/Inf
            for _ in range(int(rng.integers(3, 30))):
                cmd = make(rng)
                cmd[rng.integers(cmd.size)] = rng.choice([np.nan, np.inf, -np.inf])
                out.append(cmd)
        elif kind < 0.08:
            out.extend([None] * int(rng.integers(1, 10)))
        else:
            out.extend(make(rng) for _ in range(int(rng.integers(1, 40))))
    return out[:n]


def test_random_joint_stream_never_exceeds_a_limit() -> None:
    low, high = np.array([-1.0, -2.0, -0.5]), np.array([1.0, 2.0, 0.5])
    vmax, amax, step = np.array([1.0, 2.0, 1.5]), 20.0, 0.05
    cfg = joint_config(
        joint_pos_low=tuple(low),
        joint_pos_high=tuple(high),
        joint_vel_max=tuple(vmax),
        joint_acc_max=amax,
        max_joint_step=step,
        gripper_range=(0.0, 1.0),
        stale_obs_max_age_s={"cam": 0.05},
    )
    layer = SafetyLayer(cfg)
    rng = np.random.default_rng(0)
    target = np.zeros(3)

    def make(r: np.random.Generator) -> np.ndarray:
        nonlocal target
        target = target + r.normal(0, 0.3, 3) if r.random() > 0.05 else r.normal(0, 50, 3)
        return np.array([*target, r.uniform(-1, 2)])

    measured = np.zeros(3)
    prev = np.array([0.0, 0.0, 0.0, 0.0])
    prev_v = np.zeros(3)
    cam_stamp = stalled_until = 0.0
    eps = 1e-9
    for k, cmd in enumerate(random_stream(rng, 5000, make)):
        t = k * DT
        if rng.random() < 0.005:  # the camera sometimes stalls for 100 ms
            stalled_until = t + 0.1
        if t >= stalled_until:
            cam_stamp = t
        holds_before = sum(layer.counts[r] for r in ("nan", "no_action", "stale_obs"))
        state = ArmState(t, joint_pos=measured.copy(), obs_timestamps={"cam": cam_stamp})
        out = layer.filter(cmd, state)
        held = sum(layer.counts[r] for r in ("nan", "no_action", "stale_obs")) > holds_before
        assert np.all(np.isfinite(out))
        q = out[:3]
        assert np.all(q >= low - eps) and np.all(q <= high + eps)
        assert 0.0 <= out[3] <= 1.0
        v = (q - prev[:3]) / DT
        assert np.all(np.abs(v) <= vmax + 1e-6)
        if held:
            assert np.array_equal(out, prev)
        else:
            slowing = (v * prev_v >= 0) & (np.abs(v) <= np.abs(prev_v) + 1e-6)
            assert np.all((np.abs(v - prev_v) <= amax * DT + 1e-6) | slowing)
            assert np.all(np.abs(q - measured) <= step + eps)
        prev, prev_v = out, (np.zeros(3) if held else v)
        measured = measured + 0.2 * (q - measured)  # a lagging servo
    assert all(layer.counts[r] > 0 for r in ("joint_limit", "joint_velocity", "max_step"))
    assert all(layer.counts[r] > 0 for r in ("joint_acceleration", "nan", "no_action"))
    assert layer.counts["stale_obs"] > 0 and layer.counts["gripper_range"] > 0


def test_random_ee_delta_stream_keeps_the_tcp_in_the_box() -> None:
    period = 0.002  # 500 Hz
    low, high = np.array(BOX["workspace_low"]), np.array(BOX["workspace_high"])
    cfg = ee_config(
        control_period_s=period,
        max_tcp_step=0.01,
        max_tcp_speed=2.0,
        max_rot_step=0.05,
        gripper_range=(0.0, 1.0),
        **BOX,
    )
    layer = SafetyLayer(cfg)
    rng = np.random.default_rng(1)
    direction = np.zeros(3)

    def make(r: np.random.Generator) -> np.ndarray:
        nonlocal direction
        if r.random() < 0.02:
            direction = r.normal(0, 0.02, 3)
        return np.array([*(direction + r.normal(0, 0.005, 3)), *r.normal(0, 0.1, 3), r.random()])

    tcp = np.array([0.5, 0.0, 0.3])
    gripper = 0.0
    for k, cmd in enumerate(random_stream(rng, 5000, make)):
        out = layer.filter(cmd, ArmState(k * period, tcp_pos=tcp.copy()))
        assert np.all(np.isfinite(out))
        if cmd is None or not np.all(np.isfinite(cmd)):
            assert np.array_equal(out, [0, 0, 0, 0, 0, 0, gripper])
        assert np.linalg.norm(out[:3]) <= min(0.01, 2.0 * period) + 1e-12
        assert np.linalg.norm(out[3:6]) <= 0.05 + 1e-12
        tcp = tcp + out[:3]
        assert np.all(tcp >= low - 1e-12) and np.all(tcp <= high + 1e-12)
        gripper = out[6]
    assert all(layer.counts[r] > 0 for r in ("workspace", "tcp_step", "tcp_speed", "rot_step"))
    assert layer.counts["nan"] > 0 and layer.counts["no_action"] > 0


# ---- closed loop on the MuJoCo sim ---------------------------------------------------------------
def test_closed_loop_sim_ee_delta_stays_in_the_workspace() -> None:
    """Random large tcp deltas (and NaNs) through the sim defaults keep the tcp in the box.

    The box is the sim's default shrunk to where the UR5e is comfortably reachable: the
    default box's far corners stretch the elbow to its singularity, where the sim's own IK
    loses centimetres of tracking whatever the command. Inside this box the sim's own clip never
    acts, so the layer alone keeps the arm in.
    """
    import dataclasses

    from robot_learning.sim.env import ManipulationEnv

    low, high = np.array([0.3, -0.25, 0.05]), np.array([0.6, 0.25, 0.35])
    env = ManipulationEnv(task="lift", control_mode="ee_delta", tactile=False)
    config = dataclasses.replace(
        SafetyConfig.for_sim("ee_delta", env.config.control_hz),
        workspace_low=tuple(low),
        workspace_high=tuple(high),
    )
    layer = SafetyLayer(config)

    def excess(p: np.ndarray) -> float:
        return float(np.linalg.norm(p - np.clip(p, low, high)))

    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    direction = np.zeros(3)
    for k in range(300):
        if k % 20 == 0:  # push hard in a new direction: into faces, edges and corners
            direction = rng.normal(0, 1, 3)
            direction *= rng.uniform(0.1, 0.4) / np.linalg.norm(direction)
        action = np.array([*direction, 0.0, 0.0, 0.0, rng.uniform(-0.5, 1.5)])
        if rng.random() < 0.05:
            action[rng.integers(7)] = np.nan  # the env itself would raise on these
        commanded = env.controller.target_pos.copy()  # the sim applies deltas to this pose
        safe = layer.filter(action, ArmState(k / env.config.control_hz, tcp_pos=commanded))
        # the target is inside the box, or (when the sim dragged the commanded pose out with
        # the measured one) no further out than the commanded pose
        assert excess(commanded + safe[:3]) <= excess(commanded) + 1e-9
        obs, _, _, _, _ = env.step(safe)
        tcp = obs["ee_pos"]
        assert np.all(tcp >= low - 0.01) and np.all(tcp <= high + 0.01), (k, tcp)
    env.close()
    assert layer.counts["workspace"] > 0 and layer.counts["tcp_step"] > 0
    assert layer.counts["nan"] > 0 and layer.counts["gripper_range"] > 0


def test_closed_loop_sim_joint_mode_with_fk_stays_in_the_workspace() -> None:
    from robot_learning.sim.control import WORKSPACE_HIGH, WORKSPACE_LOW
    from robot_learning.sim.env import ManipulationEnv
    from robot_learning.sim.robot_model import HOME_QPOS

    env = ManipulationEnv(task="lift", control_mode="joint", tactile=False)
    config = SafetyConfig.for_sim("joint", env.config.control_hz, with_workspace=True)
    layer = SafetyLayer(config, fk=sim_fk())
    obs, _ = env.reset(seed=4)
    rng = np.random.default_rng(4)
    goal = HOME_QPOS.copy()
    tol = 0.01
    for k in range(200):
        if k % 25 == 0:
            goal = HOME_QPOS + rng.uniform(-1.5, 1.5, 6)
        action = np.array([*goal, rng.random()])
        state = ArmState(k / env.config.control_hz, joint_pos=obs["joint_pos"].astype(float))
        safe = layer.filter(action, state)
        obs, _, _, _, _ = env.step(safe)
        tcp = obs["ee_pos"]
        assert np.all(tcp >= WORKSPACE_LOW - tol) and np.all(tcp <= WORKSPACE_HIGH + tol), tcp
    env.close()
    assert layer.counts["workspace"] > 0
    assert sum(layer.counts[r] for r in CLAMP_RULES) > layer.counts["workspace"]
