"""Peer benchmark: robosuite 1.5.2 Lift (Panda) throughput, for comparison with our simulator.

Why: our own simulator benchmark calls this script as a subprocess so that both stacks are
measured in the same run on the same machine. robosuite pins an older MuJoCo than our main
venv, so it runs inside its own venv, ``.venv-robosuite`` at the repo root (git-ignored).

How to run (from the repo root)::

    bash scripts/bench/setup_robosuite_venv.sh
    .venv-robosuite/bin/python scripts/bench/robosuite_lift.py --seconds 3

Stdout is exactly one JSON object; all logging (and anything robosuite/MuJoCo prints) goes to
stderr. Everything not listed below uses robosuite's defaults (Panda, default controller,
control_freq=20, horizon=1000, hard_reset=True, lite_physics=True). Measured figures:

* ``state_steps_per_s``: ``env.step`` throughput without any renderer or camera observation.
* ``camera_steps_per_s``: same with a ``camera_size`` x ``camera_size`` "agentview" RGB
  observation rendered offscreen every step (shadows on, as robosuite ships them).
* ``camera_noshadow_steps_per_s``: same as camera, with ``mjRND_SHADOW`` disabled on the
  offscreen ``MjvScene`` (re-applied after every hard reset; the effect is verified by rendering
  one frame with and without shadows and comparing pixels).
* ``raw_mj_step_per_s``: bare ``mujoco.mj_step`` on Lift's compiled model, same process.

Random uniform actions are used and the env is reset when ``done`` (horizon). The headline
``*_steps_per_s`` figures count only time spent inside ``env.step``; the ``*_incl_reset``
variants divide by total wall time including resets (hard resets rebuild the model and, with a
camera, the GL context).

``MUJOCO_GL`` defaults to ``egl``. If it was not set explicitly and a GL probe (run in a
subprocess, so a crashing driver cannot kill the benchmark) fails, ``osmesa`` is tried instead.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

LOG = logging.getLogger("robosuite_lift_bench")
DEFAULT_MUJOCO_GL = "egl"
FALLBACK_MUJOCO_GLS = ("osmesa",)
WARMUP_STEPS = 20
PROBE_TIMEOUT_S = 120.0


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="wall time per measurement (default: 5)"
    )
    parser.add_argument(
        "--camera-size", type=int, default=96, help="camera height and width (default: 96)"
    )
    parser.add_argument("--seed", type=int, default=0, help="env and action seed (default: 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # Internal: only check that a GL context can be created with the current MUJOCO_GL.
    parser.add_argument("--probe-gl", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _redirect_stdout_to_stderr() -> int:
    """Point fd 1 at stderr (so stray prints from C or Python can't pollute the JSON).

    Returns a duplicate of the original stdout fd for writing the final result.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    return saved


def _probe_gl() -> None:
    """Create a robosuite GL context and a MuJoCo render context; raise on failure."""
    import mujoco
    import robosuite.utils.binding_utils  # noqa: F401  (may rewrite MUJOCO_GL, as in a real run)

    gl = os.environ.get("MUJOCO_GL", "")
    if gl == "osmesa":
        from robosuite.renderers.context.osmesa_context import OSMesaGLContext as GLContext
    elif gl == "egl":
        from robosuite.renderers.context.egl_context import EGLGLContext as GLContext
    else:
        from robosuite.renderers.context.glfw_context import GLFWGLContext as GLContext

    ctx = GLContext(max_width=64, max_height=64, device_id=-1)
    ctx.make_current()
    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><light pos='0 0 1'/><geom type='sphere' size='0.1'/></worldbody>"
        "</mujoco>"
    )
    con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
    mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
    con.free()
    ctx.free()


def _gl_works(gl: str) -> bool:
    """Run ``--probe-gl`` in a subprocess with ``MUJOCO_GL=gl``; True if it succeeded."""
    env = dict(os.environ, MUJOCO_GL=gl)
    if gl != "egl":
        env.pop("PYOPENGL_PLATFORM", None)  # robosuite's EGL context sets it; others must not
    cmd = [sys.executable, os.path.abspath(__file__), "--probe-gl"]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        LOG.warning("MUJOCO_GL=%s probe timed out", gl)
        return False
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-5:])
        LOG.warning("MUJOCO_GL=%s probe failed (rc=%d):\n%s", gl, proc.returncode, tail)
        return False
    LOG.info("MUJOCO_GL=%s probe ok", gl)
    return True


def _select_mujoco_gl() -> tuple[str, bool]:
    """Set MUJOCO_GL before mujoco/robosuite are imported.

    Returns (requested MUJOCO_GL, whether it was set explicitly by the caller).
    """
    explicit = os.environ.get("MUJOCO_GL")
    if explicit:
        LOG.info("using MUJOCO_GL=%s from the environment (no fallback)", explicit)
        return explicit, True
    for gl in (DEFAULT_MUJOCO_GL, *FALLBACK_MUJOCO_GLS):
        if _gl_works(gl):
            os.environ["MUJOCO_GL"] = gl
            if gl == "osmesa":
                os.environ.pop("PYOPENGL_PLATFORM", None)
            return gl, False
    raise RuntimeError("no working headless MUJOCO_GL backend (tried egl, osmesa)")


def _route_mujoco_warnings() -> None:
    """Send MuJoCo warnings to our logger instead of MUJOCO_LOG.TXT in the cwd."""
    import mujoco

    mujoco.set_mju_user_warning(lambda msg: LOG.warning("MuJoCo: %s", msg.strip()))


def _make_env(camera: bool, camera_size: int, seed: int) -> Any:
    """Create a robosuite Lift/Panda env, with or without an offscreen camera observation."""
    import robosuite

    kwargs: dict[str, Any] = {
        "has_renderer": False,
        "has_offscreen_renderer": camera,
        "use_camera_obs": camera,
        "seed": seed,
    }
    if camera:
        kwargs.update(
            camera_names="agentview", camera_heights=camera_size, camera_widths=camera_size
        )
    return robosuite.make("Lift", robots="Panda", **kwargs)


def _set_shadows(env: Any, enabled: bool) -> None:
    """Set mjRND_SHADOW on the env's offscreen scene and check it reads back."""
    import mujoco

    scn = env.sim._render_context_offscreen.scn
    scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(enabled)
    if bool(scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW]) != enabled:
        raise RuntimeError("mjRND_SHADOW flag did not take effect")


def _shadow_pixel_diff(env: Any, camera_size: int) -> float:
    """Render agentview with and without shadows from the same state; mean |diff| in 0..255."""
    import numpy as np

    ctx = env.sim._render_context_offscreen
    cam_id = env.sim.model.camera_name2id("agentview")
    images = []
    for enabled in (True, False):
        _set_shadows(env, enabled)
        ctx.render(camera_size, camera_size, camera_id=cam_id)
        images.append(ctx.read_pixels(camera_size, camera_size).astype(np.int16))
    return float(np.abs(images[0] - images[1]).mean())


def _measure_env(env: Any, seconds: float, seed: int, no_shadow: bool = False) -> dict[str, Any]:
    """Step ``env`` with random actions for ``seconds`` of wall time and return timings."""
    import numpy as np

    rng = np.random.default_rng(seed)
    low, high = env.action_spec

    def reset() -> None:
        env.reset()
        if no_shadow:
            _set_shadows(env, False)  # hard reset rebuilds the render context

    reset()
    for _ in range(WARMUP_STEPS):  # numba JIT / caches, first renders
        if env.step(rng.uniform(low, high))[2]:
            reset()

    steps = resets = 0
    step_time = reset_time = 0.0
    perf = time.perf_counter
    start = perf()
    while perf() - start < seconds:
        action = rng.uniform(low, high)
        t0 = perf()
        done = env.step(action)[2]
        t1 = perf()
        step_time += t1 - t0
        steps += 1
        if done:
            reset()
            reset_time += perf() - t1
            resets += 1
    wall = perf() - start
    return {
        "steps": steps,
        "resets": resets,
        "steps_per_s": steps / step_time,
        "steps_per_s_incl_reset": steps / wall,
        "mean_reset_s": reset_time / resets if resets else None,
    }


def _measure_raw_mj_step(env: Any, seconds: float) -> dict[str, Any]:
    """Time bare ``mujoco.mj_step`` on the env's compiled model, on a copy of its data.

    The data is restored to a post-reset snapshot every horizon's worth of physics steps so the
    scene stays comparable to an episode (restore time excluded).
    """
    import mujoco

    model = env.sim.model._model
    env.reset()
    snapshot = copy.copy(env.sim.data._data)
    data = copy.copy(snapshot)
    episode_steps = env.horizon * round(env.control_timestep / model.opt.timestep)

    mj_step = mujoco.mj_step
    for _ in range(100):
        mj_step(model, data)
    data = copy.copy(snapshot)

    steps = since_restore = 0
    elapsed = 0.0
    chunk = 100
    perf = time.perf_counter
    while elapsed < seconds:
        t0 = perf()
        for _ in range(chunk):
            mj_step(model, data)
        elapsed += perf() - t0
        steps += chunk
        since_restore += chunk
        if since_restore >= episode_steps:
            data = copy.copy(snapshot)
            since_restore = 0
    return {"steps": steps, "steps_per_s": steps / elapsed}


def run_benchmark(args: argparse.Namespace, mujoco_gl: str, fallback: bool) -> dict[str, Any]:
    """Run all measurements and return the JSON-ready result."""
    import mujoco
    import robosuite

    effective_gl = os.environ.get("MUJOCO_GL", "")
    if effective_gl != mujoco_gl:
        LOG.warning("robosuite changed MUJOCO_GL from %s to %s", mujoco_gl, effective_gl)
    _route_mujoco_warnings()
    result: dict[str, Any] = {
        "benchmark": "robosuite_lift_panda",
        "robosuite_version": robosuite.__version__,
        "mujoco_version": mujoco.__version__,
        "mujoco_gl": effective_gl,
        "mujoco_gl_fallback_used": fallback,
        "seconds_per_measurement": args.seconds,
        "camera_size_px": args.camera_size,
        "seed": args.seed,
    }

    LOG.info("state-only env: measuring env.step for %.1f s", args.seconds)
    env = _make_env(camera=False, camera_size=args.camera_size, seed=args.seed)
    timestep = float(env.sim.model.opt.timestep)
    result.update(
        control_freq_hz=float(env.control_freq),
        physics_timestep_s=timestep,
        substeps_per_control_step=round(1.0 / (env.control_freq * timestep)),
        horizon_steps=int(env.horizon),
        action_dim=int(env.action_spec[0].shape[0]),
        controller=_controller_name(env),
    )
    state = _measure_env(env, args.seconds, args.seed)
    result.update(
        state_steps_per_s=state["steps_per_s"],
        state_steps_per_s_incl_reset=state["steps_per_s_incl_reset"],
        state_steps=state["steps"],
        state_resets=state["resets"],
        state_mean_reset_s=state["mean_reset_s"],
    )
    LOG.info("raw mujoco.mj_step on Lift's model for %.1f s", args.seconds)
    raw = _measure_raw_mj_step(env, args.seconds)
    result.update(raw_mj_step_per_s=raw["steps_per_s"], raw_mj_steps=raw["steps"])
    result["raw_mj_equiv_control_steps_per_s"] = (
        raw["steps_per_s"] / result["substeps_per_control_step"]
    )
    env.close()

    for no_shadow, prefix in ((False, "camera"), (True, "camera_noshadow")):
        LOG.info("%s env: measuring env.step for %.1f s", prefix, args.seconds)
        env = _make_env(camera=True, camera_size=args.camera_size, seed=args.seed)
        if no_shadow:
            casting = int(env.sim.model._model.light_castshadow.sum())
            diff = _shadow_pixel_diff(env, args.camera_size)
            LOG.info(
                "shadow on/off mean |pixel diff| = %.3f (%d shadow-casting lights)", diff, casting
            )
            if diff == 0.0:
                LOG.log(
                    logging.INFO if casting == 0 else logging.WARNING,
                    "disabling shadows did not change the image%s",
                    ": no light in the scene casts shadows" if casting == 0 else "",
                )
            result["shadow_casting_lights"] = casting
            result["shadow_toggle_mean_abs_pixel_diff"] = diff
        cam = _measure_env(env, args.seconds, args.seed, no_shadow=no_shadow)
        result.update(
            {
                f"{prefix}_steps_per_s": cam["steps_per_s"],
                f"{prefix}_steps_per_s_incl_reset": cam["steps_per_s_incl_reset"],
                f"{prefix}_steps": cam["steps"],
                f"{prefix}_resets": cam["resets"],
                f"{prefix}_mean_reset_s": cam["mean_reset_s"],
            }
        )
        env.close()
    return result


def _controller_name(env: Any) -> str:
    """Best-effort description of the Panda's controller (composite type and arm part type)."""
    try:
        robot = env.robots[0]
        arm = robot.part_controllers[robot.arms[0]]
        return f"{type(robot.composite_controller).__name__}/{type(arm).__name__}"
    except (AttributeError, IndexError, KeyError):
        return "unknown"


def _setup_logging(verbose: bool) -> None:
    """Log to stderr from this module only (robosuite keeps its own stderr handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[robosuite_lift %(levelname)s] %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG if verbose else logging.INFO)
    LOG.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one JSON object with the measured figures on stdout."""
    args = _parse_args(argv)
    _setup_logging(args.verbose)
    if args.probe_gl:
        _probe_gl()
        return 0

    out_fd = _redirect_stdout_to_stderr()
    mujoco_gl, explicit = _select_mujoco_gl()
    fallback = not explicit and mujoco_gl != DEFAULT_MUJOCO_GL
    result = run_benchmark(args, mujoco_gl, fallback)
    with os.fdopen(out_fd, "w") as out:
        out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
