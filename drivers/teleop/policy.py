"""``PolicyTeleop``: a trained policy presented as a teleoperation device.

Why: recording a policy's rollouts through the collection loop gives the same episode store a
human operator would (every camera, state stream and timestamp), which is what distilling a
state-based teacher into an image-based student needs (``collect --teleop policy
--teleop-opt path=DIR --successes-only``, then ``train`` on the store). It keeps the policy's
observation window and executes ``n_action_steps`` of each chunk, as the evaluator does; the
robot's own limits and the collection loop apply to every action.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from drivers.interfaces import Robot, TeleopDevice
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy


class PolicyTeleop(TeleopDevice):
    """Actions from the checkpoint in ``path`` (any policy type ``load_policy`` knows)."""

    def __init__(self, robot: Robot, path: str, inference_steps: int | None = None) -> None:
        super().__init__()
        self.robot = robot
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ValueError(f"path={path}: not a policy checkpoint directory (no config.json)")
        self.inference_steps = None if inference_steps is None else int(inference_steps)
        self._policy: Policy | None = None
        self._window: deque[dict[str, Any]] = deque()
        self._queue: deque[np.ndarray] = deque()

    @property
    def device_name(self) -> str:
        return f"PolicyTeleop({self.path})"

    def _connect(self) -> None:
        from robot_learning.policies import load_policy

        overrides: dict[str, Any] = {}
        if self.inference_steps is not None:
            overrides["inference_steps"] = self.inference_steps
        policy = load_policy(self.path, **overrides)
        policy.check_compatible(self.robot.observation_spec(), self.robot.action_spec())
        self._policy = policy
        self._window = deque(maxlen=policy.n_obs_steps)

    def _disconnect(self) -> None:
        self._policy = None

    @property
    def policy(self) -> Policy:
        self.require_connected("policy")
        assert self._policy is not None
        return self._policy

    def action_spec(self) -> SpecDict:
        return self.policy.action_spec

    def reset(self, seed: int | None = None) -> None:
        self.policy.reset()
        self._window.clear()
        self._queue.clear()

    def get_action(self, observation: Observation) -> Action:
        policy = self.policy
        current = {
            name: str(observation.values[name])
            if spec.kind == "language"
            else np.asarray(observation.values[name], dtype=spec.dtype)
            for name, spec in policy.observation_spec.items()
        }
        if not self._window:  # an episode starts with the window padded by its first frame
            self._window.extend([current] * policy.n_obs_steps)
        else:
            self._window.append(current)
        if not self._queue:
            batch = {
                name: [w[name] for w in self._window]
                if spec.kind == "language"
                else np.stack([w[name] for w in self._window])[None]
                for name, spec in policy.observation_spec.items()
            }
            chunk = policy.predict_chunk(batch)[0]
            self._queue.extend(chunk[: policy.n_action_steps])
        values = self._queue.popleft()
        (key,) = list(policy.action_spec)
        return Action(
            values={key: np.asarray(values, np.float32)},
            t_exec=max(observation.timestamps.values(), default=0.0),
            info={"policy": str(self.path)},
        )
