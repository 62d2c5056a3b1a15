"""The critic ``Q(observation window, action chunk)``: an ensemble of LayerNorm MLPs.

Why this shape (V-GPS, Nakamoto et al. 2024): the critic only re-ranks chunks a base policy
already proposes, so it sees what the base sees (low-dim observation windows, optionally the
instruction) plus the part of the chunk that will be executed (``action_horizon`` steps).
LayerNorm after every hidden layer keeps offline Q estimates from blowing up on actions the data
never showed; an ensemble of heads with the minimum taken at selection time is a pessimistic
estimate, so a chunk wins only when every head agrees it is good. Inputs are normalised with
statistics fitted on the training store and saved beside the weights (``q_normalizer``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robot_learning.policies.checkpoint import CheckpointError, cpu_tensors
from robot_learning.policies.normalizer import Normalizer
from robot_learning.policies.value.language import TextEmbedder, make_embedder

Q_FILE = "q.safetensors"
Q_NORMALIZER_FILE = "q_normalizer.safetensors"


@dataclass
class QConfig:
    """What the critic reads and how big it is; stored in the checkpoint's ``config.json``."""

    obs_keys: list[str]
    obs_dims: list[int]  # flat size of each obs key's feature
    action_dim: int
    n_obs_steps: int = 1  # newest observations of the window the critic reads
    action_horizon: int = 1  # first actions of a chunk the critic scores (the executed ones)
    action_key: str = "action"
    language_key: str | None = None  # a feature of kind "language": its instruction is embedded
    language_embedder: str = "hashed_bow"
    language_dim: int = 32
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    ensemble: int = 2

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if len(self.obs_keys) != len(self.obs_dims):
            raise ValueError(f"obs_keys {self.obs_keys} and obs_dims {self.obs_dims} differ")
        if not self.obs_keys and self.language_key is None:
            raise ValueError("the critic needs at least one low-dim observation key or language")
        for name in ("action_dim", "n_obs_steps", "action_horizon", "ensemble", "language_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(
                f"hidden must be a non-empty list of positive sizes, got {self.hidden}"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> QConfig:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - valid)
        if unknown:
            raise ValueError(f"unknown q config keys {unknown}; valid: {sorted(valid)}")
        return cls(**dict(obj))


def mlp(in_dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """``[Linear -> LayerNorm -> ReLU] * len(hidden) -> Linear(1)``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.LayerNorm(width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


class QFunction(nn.Module):
    """``ensemble`` Q heads over ``[state features, action features]`` plus a state value head.

    The value head ``V(s)`` is what IQL trains the Q heads towards; selection uses only
    :meth:`score` (the minimum over the Q heads).
    """

    def __init__(self, config: QConfig, normalizer: Normalizer) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.normalizer = normalizer
        missing = [k for k in [*config.obs_keys, config.action_key] if k not in normalizer.params]
        if missing:
            raise ValueError(f"the q normalizer lacks {missing}; it has {normalizer.keys()}")
        self.embedder: TextEmbedder | None = None
        lang_dim = 0
        if config.language_key is not None:
            self.embedder = make_embedder(config.language_embedder, config.language_dim)
            lang_dim = config.language_dim
        self.state_dim = config.n_obs_steps * sum(config.obs_dims) + lang_dim
        self.action_in = config.action_horizon * config.action_dim
        self.heads = nn.ModuleList(
            mlp(self.state_dim + self.action_in, config.hidden) for _ in range(config.ensemble)
        )
        self.value = mlp(self.state_dim, config.hidden)

    # ---- features ------------------------------------------------------------------------------
    def state_features(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """``[N, state_dim]`` from windows ``obs[key]: [N, T >= n_obs_steps, *shape]`` (newest
        last) and, with language, ``obs[language_key]``: ``N`` strings."""
        cfg = self.config
        parts: list[torch.Tensor] = []
        for key, dim in zip(cfg.obs_keys, cfg.obs_dims):
            value = torch.as_tensor(np.asarray(obs[key]), dtype=torch.float32)
            if value.ndim < 2 or value.shape[1] < cfg.n_obs_steps:
                raise ValueError(
                    f"observation {key!r} has shape {tuple(value.shape)}; the critic needs "
                    f"(N, >= {cfg.n_obs_steps} steps, ...)"
                )
            value = value[:, -cfg.n_obs_steps :].reshape(value.shape[0], cfg.n_obs_steps, dim)
            parts.append(self.normalizer.normalize(key, value).reshape(value.shape[0], -1))
        if self.embedder is not None and cfg.language_key is not None:
            texts = [str(t) for t in obs[cfg.language_key]]
            parts.append(torch.from_numpy(self.embedder(texts)))
        return torch.cat(parts, dim=-1)

    def action_features(self, chunks: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``[N, action_horizon * A]`` from chunks ``[N, T >= action_horizon, A]``."""
        cfg = self.config
        value = torch.as_tensor(chunks, dtype=torch.float32)
        if (
            value.ndim != 3
            or value.shape[1] < cfg.action_horizon
            or value.shape[2] != cfg.action_dim
        ):
            raise ValueError(
                f"action chunks have shape {tuple(value.shape)}; the critic needs "
                f"(N, >= {cfg.action_horizon}, {cfg.action_dim})"
            )
        value = value[:, : cfg.action_horizon]
        return self.normalizer.normalize(cfg.action_key, value).reshape(value.shape[0], -1)

    # ---- heads ---------------------------------------------------------------------------------
    def q_all(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Every head's estimate, ``[ensemble, N]``."""
        x = torch.cat([state, action], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])

    def v(self, state: torch.Tensor) -> torch.Tensor:
        return self.value(state).squeeze(-1)

    @torch.no_grad()
    def score(self, obs: Mapping[str, Any], chunks: np.ndarray) -> np.ndarray:
        """Pessimistic value (min over heads) of each ``(window, chunk)`` row: float32 ``[N]``."""
        q = self.q_all(self.state_features(obs), self.action_features(chunks))
        return q.min(dim=0).values.numpy().astype(np.float32)


# ---- files ---------------------------------------------------------------------------------------
def save_q(q: QFunction, directory: str | Path) -> None:
    """Write ``q.safetensors`` (all heads) and ``q_normalizer.safetensors`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file(cpu_tensors(q.state_dict()), str(out / Q_FILE))
    q.normalizer.save(out / Q_NORMALIZER_FILE)


def load_q(directory: str | Path, config: QConfig) -> QFunction:
    """Rebuild the critic from ``config`` and load its weights (strict) and statistics."""
    path = Path(directory)
    missing = [f for f in (Q_FILE, Q_NORMALIZER_FILE) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"{path}: missing {', '.join(missing)} (the critic's files)")
    try:
        state = load_file(str(path / Q_FILE))
        normalizer = Normalizer.load(path / Q_NORMALIZER_FILE)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: cannot read the critic: {exc}") from None
    try:
        q = QFunction(config, normalizer)
        q.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the critic's files do not fit its config: {exc}") from None
    return q.eval()
