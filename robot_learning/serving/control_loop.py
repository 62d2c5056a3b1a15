"""The robot-side closed loop: observe, keep the window, get this tick's action, filter, send.

Why one loop: the CLI's real-time runs, the tests that kill the server, and the ROS 2 policy
node all need the same order of operations at a fixed rate, with the safety layer as the last
step before the arm. Each tick:

1. read the robot's observation and push it into the ``n_obs_steps`` window (edge-padded at
   the start of an episode, as in training);
2. ask the :class:`AsyncChunkRunner` for the action stamped for this tick (it requests chunks
   in the background);
3. pass it, or None when there is none, through the :class:`SafetyLayer` (None -> hold);
4. send the result to the robot.

Pacing uses absolute deadlines (``t0 + k * period``) so one slow tick does not shift the rest;
overruns are counted.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.interfaces import Robot
from robot_learning.serving.runner import AsyncChunkRunner
from robot_learning.serving.safety import ArmState, SafetyLayer
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickRecord:
    """What happened on one tick: the command sent and whether it came from a chunk."""

    tick: int
    time_s: float
    command: np.ndarray
    chunk: int | None  # the chunk the action came from; None when the safety layer held
    server_ok: bool


class PolicyControlLoop:
    """Runs a remote (or local) chunked policy on a robot at a fixed control rate."""

    def __init__(
        self,
        robot: Robot,
        runner: AsyncChunkRunner,
        safety: SafetyLayer,
        observation_spec: SpecDict,
        n_obs_steps: int,
        *,
        robot_time: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.robot = robot
        self.runner = runner
        self.safety = safety
        self.observation_spec = observation_spec
        self.n_obs_steps = n_obs_steps
        self.robot_time = robot_time or clock
        self.clock = clock
        self.sleep = sleep
        self.period_s = runner.executor.config.period_s
        self.tick = 0
        self.overruns = 0
        self._window: deque[dict[str, Any]] = deque(maxlen=n_obs_steps)
        self._last_obs: Observation | None = None

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: reset the robot, the window, the executor and the safety state."""
        obs = self.robot.reset(seed=seed)
        self._window.clear()
        self._push(obs)
        self.runner.reset()
        self.safety.reset()
        self.tick = 0

    def prime(self, timeout_s: float) -> bool:
        """Request the episode's first chunk and wait for it, so tick 0 acts instead of holding.

        A robot at rest can afford the wait, and evaluation in sim time has its first chunk at
        tick 0 too. Returns False when nothing arrived in ``timeout_s`` (the loop then holds).
        """
        deadline = self.clock() + timeout_s
        while self.clock() < deadline:
            if self.runner.ready(self.tick, self.window):
                return True  # tick 0's action stays planned for the first step()
            self.sleep(0.002)
        return False

    def _push(self, obs: Observation) -> None:
        picked = {}
        for name, spec in self.observation_spec.items():
            value = obs.values[name]
            picked[name] = str(value) if spec.kind == "language" else np.asarray(value, spec.dtype)
        if not self._window:
            self._window.extend([picked] * self.n_obs_steps)
        else:
            self._window.append(picked)
        self._last_obs = obs

    def window(self) -> dict[str, Any]:
        """The observation window ``[n_obs_steps, ...]`` per feature (oldest first)."""
        out: dict[str, Any] = {}
        for name, spec in self.observation_spec.items():
            if spec.kind == "language":
                out[name] = self._window[-1][name]
            else:
                out[name] = np.stack([o[name] for o in self._window])
        return out

    def arm_state(self) -> ArmState:
        """What the safety layer needs of the latest observation (call ``reset`` first)."""
        if self._last_obs is None:
            raise RuntimeError("PolicyControlLoop: call reset() before stepping")
        values = self._last_obs.values
        tcp = values.get("ee_pos")
        joints = values.get("joint_pos")
        grip = values.get("gripper_pos")
        return ArmState(
            time=self.robot_time(),
            joint_pos=None if joints is None else np.asarray(joints, np.float64),
            tcp_pos=None if tcp is None else np.asarray(tcp, np.float64),
            obs_timestamps=self._last_obs.timestamps,
            gripper_pos=None if grip is None else float(np.asarray(grip).reshape(-1)[0]),
        )

    def step(self, hold: bool = False) -> TickRecord:
        """One control tick (no pacing); returns what was sent.

        ``hold`` (an operator's hold) sends the safety layer's hold instead of the policy's action.
        """
        timed = None if hold else self.runner.step(self.tick, self.window, defer_request=True)
        command = self.safety.filter(None if timed is None else timed.value, self.arm_state())
        now = self.clock()
        self.robot.send_action(Action(values={"action": command}, t_exec=now))
        self.runner.dispatch()  # the next chunk's request goes out once the command is sent
        self._push(self.robot.get_observation())
        record = TickRecord(
            self.tick, now, command, None if timed is None else timed.chunk, self.runner.server_ok
        )
        self.tick += 1
        return record

    def run(
        self,
        ticks: int,
        on_tick: Callable[[TickRecord], bool | None] | None = None,
    ) -> list[TickRecord]:
        """``ticks`` paced ticks; ``on_tick`` returning True stops early."""
        records: list[TickRecord] = []
        start = self.clock()
        for k in range(ticks):
            deadline = start + k * self.period_s
            delay = deadline - self.clock()
            if delay > 0:
                self.sleep(delay)
            elif delay < -self.period_s:
                self.overruns += 1
            record = self.step()
            records.append(record)
            if on_tick is not None and on_tick(record):
                break
        return records
