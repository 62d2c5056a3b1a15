"""A :class:`Policy` whose model runs on a policy server.

Why: the evaluator, the chunk executor and the ROS 2 nodes drive every policy through
``predict_chunk``; wrapping the client in the same interface lets them use a remote GPU box
without special cases. Specs and timing come from the server's metadata, so they always match
the served checkpoint. A batch is split into one request per robot, pipelined on one connection
(the server batches them again), and the replies are stacked in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_learning.policies.base import Policy
from robot_learning.serving.client import PolicyClient
from robot_learning.specs import SpecDict


def _trim_prefix(rows: np.ndarray) -> np.ndarray | None:
    """One robot's ``[P, A]`` prefix without its trailing all-NaN rows (uncommitted steps)."""
    committed = ~np.isnan(rows).all(axis=1)
    if not committed.any():
        return None
    last = int(np.nonzero(committed)[0][-1]) + 1
    return np.ascontiguousarray(rows[:last], dtype=np.float32)


class RemotePolicy(Policy):
    """``predict_chunk`` through a :class:`PolicyClient` (connects if it is not connected)."""

    def __init__(self, client: PolicyClient, timeout_s: float | None = None) -> None:
        self.client = client
        self.timeout_s = timeout_s
        info = client.policy_info()
        self.info = info
        self.observation_spec = SpecDict.from_json(info["observation_spec"])
        self.action_spec = SpecDict.from_json(info["action_spec"])
        self.n_obs_steps = int(info["n_obs_steps"])
        self.chunk_len = int(info["chunk_len"])
        self.n_action_steps = int(info["n_action_steps"])
        self.control_hz = float(info["control_hz"])
        self.supports_prefix = bool(info["supports_prefix"])

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        batch = self.check_batch(obs)
        names = list(self.observation_spec)  # extra features of the robot/env are not sent
        windows = [{key: obs[key][i] for key in names} for i in range(batch)]
        prefixes = None
        if prefix is not None:
            rows = np.asarray(prefix, dtype=np.float32)
            if rows.ndim != 3 or rows.shape[0] != batch:
                raise ValueError(f"prefix has shape {rows.shape}, expected [{batch}, P, A]")
            prefixes = [_trim_prefix(rows[i]) for i in range(batch)]
        replies = self.client.infer_many(windows, prefixes, timeout_s=self.timeout_s)
        return np.stack([reply.actions for reply in replies]).astype(np.float32, copy=False)
