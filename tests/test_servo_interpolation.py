"""ServoInterpolator: sparse timestamped waypoints to a smooth, limited servo stream."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.arms.servo_interpolation import InterpolationConfig, Method, ServoInterpolator

NAMES = ("a", "b", "c")
DT = 0.002  # 500 Hz


def run(interp: ServoInterpolator, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    times = np.arange(t0 + DT, t1 + DT / 2, DT)
    return times, np.array([interp.step(float(t)) for t in times])


@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_reaches_each_waypoint_on_time_and_holds_when_dry(method: Method) -> None:
    config = InterpolationConfig(method=method, max_velocity=10.0, max_acceleration=1000.0)
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0, config)
    interp.add_waypoint([0.1, -0.2, 0.05], 0.1, now=0.0)
    interp.add_waypoint([0.2, -0.1, 0.05], 0.2, now=0.0)
    times, q = run(interp, 0.0, 0.5)
    at = {round(t, 3): row for t, row in zip(times, q)}
    np.testing.assert_allclose(at[0.1], [0.1, -0.2, 0.05], atol=2e-3)
    np.testing.assert_allclose(at[0.2], [0.2, -0.1, 0.05], atol=2e-3)
    # dry stream: hold the last waypoint exactly, no extrapolation past it
    assert interp.is_dry(0.5)
    np.testing.assert_allclose(q[times > 0.25], np.tile([0.2, -0.1, 0.05], (125, 1)), atol=1e-9)
    assert q[:, 0].max() <= 0.2 + 1e-9
    if method == "linear":  # midpoint of the first segment
        np.testing.assert_allclose(at[0.05], [0.05, -0.1, 0.025], atol=1e-3)


def test_cubic_tracks_a_10hz_stream_with_bounded_velocity_jumps() -> None:
    config = InterpolationConfig(method="cubic", max_velocity=3.0, max_acceleration=15.0)
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0, config)
    outputs, errors = [], []
    for k in range(1, 21):  # 10 Hz waypoints, each sent 0.2 s before it is due
        now = (k - 1) * 0.1
        t = now + 0.2
        interp.add_waypoint(0.4 * np.sin(2 * np.pi * 0.5 * t) * np.ones(3), t, now=now)
        _, q = run(interp, now, now + 0.1)
        outputs.append(q)
        if k > 3:
            errors.append(abs(q[-1, 0] - 0.4 * np.sin(2 * np.pi * 0.5 * (now + 0.1))))
    q = np.concatenate(outputs)
    v = np.diff(q[:, 0]) / DT
    dv = np.abs(np.diff(v))
    assert dv.max() <= 15.0 * DT + 1e-9  # acceleration limit holds on every step
    assert np.abs(v).max() <= 3.0 + 1e-9
    assert max(errors) < 0.03  # follows the waypoints closely
    assert np.abs(v).max() > 0.5  # and really moved


def test_limits_clamp_far_and_late_waypoints_without_overshoot() -> None:
    config = InterpolationConfig(
        max_velocity=1.0, max_acceleration=5.0, joint_low=-1.0, joint_high=(1.0, 1.0, 0.5)
    )
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0, config)
    sent = interp.add_waypoint([3.0, 0.8, 3.0], 0.0, now=0.0)  # late and beyond the limits
    np.testing.assert_allclose(sent, [1.0, 0.8, 0.5])
    _, q = run(interp, 0.0, 3.0)
    v = np.diff(q, axis=0) / DT
    assert np.abs(v).max() <= 1.0 + 1e-9
    assert np.abs(np.diff(v, axis=0)).max() <= 5.0 * DT + 1e-9
    assert np.all(q <= [1.0, 0.8, 0.5]) and np.all(q >= -1.0)  # never past the target
    np.testing.assert_allclose(q[-1], [1.0, 0.8, 0.5], atol=1e-6)


def test_newer_plan_replaces_later_waypoints_and_stays_continuous() -> None:
    config = InterpolationConfig(max_velocity=10.0, max_acceleration=100.0)
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0, config)
    interp.add_waypoint([1.0, 1.0, 1.0], 0.5, now=0.0)
    _, q1 = run(interp, 0.0, 0.2)
    interp.add_waypoint([-0.5, 0.0, 0.0], 0.4, now=0.2)  # replaces the 0.5 s waypoint
    assert interp.last_waypoint_time == pytest.approx(0.4)
    _, q2 = run(interp, 0.2, 0.6)
    assert abs(q2[0, 0] - q1[-1, 0]) < 10.0 * DT + 1e-9  # no jump at the re-plan
    np.testing.assert_allclose(q2[-1], [-0.5, 0.0, 0.0], atol=1e-6)


def test_resync_after_a_stall_replans_without_a_jump() -> None:
    config = InterpolationConfig(method="linear", max_velocity=1.0, max_acceleration=10.0)
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0, config)
    interp.add_waypoint([0.2, 0.0, 0.0], 0.2, now=0.0)
    _, q1 = run(interp, 0.0, 0.1)
    interp.resync(0.5)  # the loop slept through the waypoint's time
    assert interp.position[0] == q1[-1, 0]  # the output did not move
    _, q2 = run(interp, 0.5, 1.0)
    assert abs(q2[0, 0] - q1[-1, 0]) <= 1.0 * DT + 1e-9  # one limited step, not a jump
    assert q2[-1, 0] == pytest.approx(0.2)  # and the missed waypoint is still reached


def test_joint_mapping_by_name() -> None:
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0)
    sent = interp.add_waypoint({"c": 0.3, "a": 0.1, "b": 0.2}, 0.5, now=0.0)
    np.testing.assert_allclose(sent, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"unknown \['d'\], missing \['c'\]"):
        interp.add_waypoint({"a": 0.1, "b": 0.2, "d": 0.3}, 0.5, now=0.0)


def test_bad_waypoints_and_configs_are_refused() -> None:
    interp = ServoInterpolator(NAMES, np.zeros(3), 0.0)
    with pytest.raises(ValueError, match=r"NaN or Inf for joints \['b'\]"):
        interp.add_waypoint([0.0, np.nan, 0.0], 0.1, now=0.0)
    with pytest.raises(ValueError, match=r"expected \(3,\) for joints \['a', 'b', 'c'\]"):
        interp.add_waypoint([0.0, 0.0], 0.1, now=0.0)
    with pytest.raises(ValueError, match="max_lead_s"):
        interp.add_waypoint([0.0, 0.0, 0.0], 100.0, now=0.0)
    with pytest.raises(ValueError, match="must be finite"):
        interp.add_waypoint([0.0, 0.0, 0.0], float("nan"), now=0.0)
    assert interp.last_waypoint_time == 0.0  # nothing refused was queued
    with pytest.raises(ValueError, match="unknown interpolation 'spline'; valid: linear, cubic"):
        ServoInterpolator(NAMES, np.zeros(3), 0.0, InterpolationConfig(method="spline"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_velocity"):
        ServoInterpolator(NAMES, np.zeros(3), 0.0, InterpolationConfig(max_velocity=0.0))
    with pytest.raises(ValueError, match="duplicate"):
        ServoInterpolator(("a", "a", "c"), np.zeros(3), 0.0)
