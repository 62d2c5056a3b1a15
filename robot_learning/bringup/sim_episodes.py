"""Seeded sim episodes through the whole ROS 2 loop: ``bringup/sim_robot.yaml`` + episode runner.

Why: a policy's success through the real-time ROS 2 loop (policy server, MuJoCo sim node and
policy client node as separate processes, Fast DDS between them) is the figure that predicts a
robot run; ``robot-learning eval`` measures it in simulated time without middleware. This runs
the sim closed loop of the bringup config and the package's episode runner on the same seeds
``eval`` uses (episode ``k`` gets seed ``seed + k``), and returns the runner's summary: success
rate with its Wilson interval, per-episode results, command latency and the client's safety
counts. The bringup runs in its own session and is stopped (SIGINT, then SIGKILL) however the
call ends, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_learning.bringup.config import default_workspace

PACKAGE = "robot_learning_ros"
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SimLoopRun:
    """What to run: a checkpoint on a task, ``episodes`` seeded episodes, in one ROS domain.

    ``domain_id`` keeps the run off the default domain 0, where a lab's robots may be talking.
    """

    policy: Path
    task: str = "lift"
    episodes: int = 20
    seed: int = 0
    variant: str = "default"
    execution: str = "rtc"
    domain_id: int = 77
    episode_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if not 0 <= self.domain_id <= 232:
            raise ValueError(f"domain_id {self.domain_id}: a ROS_DOMAIN_ID must be 0-232")
        if not (Path(self.policy) / "config.json").is_file():
            raise ValueError(f"{self.policy} is not a checkpoint directory (no config.json)")


class SimLoopError(RuntimeError):
    """The loop did not complete its episodes; the message ends with the logs' location."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ros_environment(domain_id: int) -> dict[str, str]:
    """This process's environment for the run's processes: the ROS 2 package importable, the
    run's domain, the nodes' Fast DDS profile, one math thread per process (three processes
    share the machine's cores)."""
    package_dir = default_workspace() / PACKAGE
    if str(package_dir) not in sys.path:
        sys.path.insert(0, str(package_dir))
    from robot_learning_ros.dds_profile import use_robot_learning_transports

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(package_dir), env.get("PYTHONPATH")) if p)
    env.setdefault("MUJOCO_GL", "egl")
    use_robot_learning_transports(env)
    return env


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def policy_cameras(policy: Path) -> tuple[list[str], tuple[int, int]]:
    """The sim cameras (and their size) a checkpoint's ``<cam>_rgb`` features need."""
    from robot_learning.sim.env import CAMERA_NAMES
    from robot_learning.specs import SpecDict

    config = json.loads((policy / "config.json").read_text())
    spec = SpecDict.from_json(config.get("observation_spec", {}))
    cameras, size = [], (96, 96)
    for name, feature in spec.items():
        cam = name.removesuffix("_rgb")
        if feature.kind == "rgb" and name.endswith("_rgb") and cam in CAMERA_NAMES:
            cameras.append(cam)
            size = (int(feature.shape[0]), int(feature.shape[1]))
    return cameras, size


@contextlib.contextmanager
def sim_bringup(run: SimLoopRun, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[Any]]:
    """``robot-learning bringup sim_robot.yaml`` for ``run``, output to ``log``."""
    config = default_workspace() / PACKAGE / "bringup" / "sim_robot.yaml"
    cmd = [sys.executable, "-m", "robot_learning.cli", "bringup", str(config)]
    cameras, image_size = policy_cameras(Path(run.policy))
    for key, value in (
        ("policy", Path(run.policy).resolve()),
        ("port", free_port()),
        ("task", run.task),
        ("variant", run.variant),
        ("seed", run.seed),
        ("execution", run.execution),
        ("cameras", "[" + ",".join(cameras) + "]" if cameras else "['']"),
        ("image_size", f"[{image_size[0]},{image_size[1]}]"),
    ):
        cmd += ["--arg", f"{key}={value}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            _stop(proc)


def run_sim_episodes(
    run: SimLoopRun, logs: Path, on_line: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run ``run`` and return the episode runner's summary (see ``episode_runner``).

    ``on_line`` receives each progress line of the episode runner (one per episode) as it comes.
    Logs (``bringup.log``, ``episode_runner.log``, ``episodes.json``) go to ``logs``.
    """
    logs.mkdir(parents=True, exist_ok=True)
    env = ros_environment(run.domain_id)
    out = logs / "episodes.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", f"{PACKAGE}.episode_runner", "--episodes", str(run.episodes)]
    cmd += ["--out", str(out), "--episode-timeout-s", str(run.episode_timeout_s)]
    lines: list[str] = []
    with sim_bringup(run, env, logs / "bringup.log") as bringup:
        runner = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert runner.stderr is not None
            for line in runner.stderr:
                lines.append(line)
                if on_line is not None and line.startswith("episode "):
                    on_line(line.rstrip())
            runner.wait()
        finally:
            _stop(runner)
            (logs / "episode_runner.log").write_text("".join(lines))
        bringup_died = bringup.poll() is not None
    if runner.returncode != 0 or not out.is_file():
        why = "the bringup exited early" if bringup_died else "the episode runner failed"
        tail = "".join(lines[-20:])
        raise SimLoopError(f"{why} (exit {runner.returncode}):\n{tail}\nlogs in {logs}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result
