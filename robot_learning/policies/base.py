"""The Policy interface: observation windows in, action chunks out.

Why one interface: the evaluator, the policy server and the ROS 2 client drive every policy
(diffusion, VLA, residual) the same way, so none of them special-cases a policy type. A policy
declares the features it consumes and produces as specs; :meth:`Policy.check_compatible` compares
them with a robot's or env's specs before the first step, naming the feature that differs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_learning.specs import FeatureSpec, SpecDict, SpecError


class Policy(ABC):
    """Maps a window of the last ``n_obs_steps`` observations to a chunk of future actions.

    ``predict_chunk`` takes ``obs[name]`` as arrays ``[B, n_obs_steps, *shape]`` in the spec's
    dtype (images uint8 HWC, low-dim float32; language features: a list of ``B`` strings), oldest
    first. At an episode's start the window is padded by repeating the first observation, as in
    training. It returns float32 ``[B, chunk_len, A]`` in the action's own units; index 0 is the
    action for the newest observation. Callers execute ``n_action_steps`` of them, then ask again.
    """

    observation_spec: SpecDict
    action_spec: SpecDict
    n_obs_steps: int = 1
    chunk_len: int = 1
    n_action_steps: int = 1
    control_hz: float = 20.0
    supports_prefix: bool = False

    @abstractmethod
    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        """Actions ``[B, chunk_len, A]`` for a batch of observation windows.

        ``prefix`` (float32 ``[B, P, A]``, ``P <= chunk_len``, robot units) holds actions already
        committed for the first ``P`` steps of each chunk, NaN where a row commits fewer: the
        robot executes them while this chunk is computed. Policies with ``supports_prefix``
        (diffusion and flow, by inpainting) hold them fixed and denoise the rest to continue them
        smoothly; others ignore it, and the chunk executor still executes the committed actions.
        """

    def reset(self) -> None:  # noqa: B027  (stateless policies need nothing)
        """Forget per-episode state (e.g. warm-start noise); called at every episode start."""

    @property
    def action_dim(self) -> int:
        return sum(spec.size for _, spec in self.action_spec.items())

    def check_compatible(self, obs_spec: SpecDict, action_spec: SpecDict) -> None:
        """Raise :class:`SpecError` naming the first feature the robot/env cannot provide."""
        for name, need in self.observation_spec.items():
            if name not in obs_spec:
                raise SpecError(
                    f"the policy needs observation {name!r}, which the robot/env does not "
                    f"provide; it provides: {', '.join(obs_spec)}"
                )
            _check_same(f"observation {name!r}", need, obs_spec[name])
        for name, need in self.action_spec.items():
            if name not in action_spec:
                raise SpecError(
                    f"the policy produces action {name!r}, which the robot/env does not accept; "
                    f"it accepts: {', '.join(action_spec)}"
                )
            _check_same(f"action {name!r}", need, action_spec[name])

    def check_batch(self, obs: Mapping[str, Any]) -> int:
        """Validate an observation batch against the spec; returns the batch size."""
        batch: int | None = None
        for name, spec in self.observation_spec.items():
            if name not in obs:
                raise SpecError(
                    f"observation batch lacks {name!r}; the policy needs: "
                    f"{', '.join(self.observation_spec)}"
                )
            value = obs[name]
            if spec.kind == "language":
                size = len(value)
            else:
                shape = tuple(np.shape(value))
                want = (self.n_obs_steps, *spec.shape)
                if shape[1:] != want:
                    raise SpecError(
                        f"observation {name!r} has shape {shape}, expected (B, "
                        f"{', '.join(map(str, want))}) = (batch, n_obs_steps, *feature shape)"
                    )
                size = shape[0]
            if batch is not None and size != batch:
                raise SpecError(f"observation {name!r} has batch size {size}, others have {batch}")
            batch = size
        if batch is None:
            raise SpecError("the policy has no observation features")
        return batch


def _check_same(what: str, need: FeatureSpec, have: FeatureSpec) -> None:
    if need.kind != have.kind or need.shape != have.shape:
        raise SpecError(
            f"{what}: the policy was trained on shape {need.shape} kind {need.kind!r}, but the "
            f"robot/env has shape {have.shape} kind {have.kind!r}"
        )
    if need.kind != "language" and np.dtype(need.dtype) != np.dtype(have.dtype):
        raise SpecError(
            f"{what}: the policy was trained on dtype {need.dtype}, the robot/env has {have.dtype}"
        )
