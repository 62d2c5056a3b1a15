"""``ResidualPolicy``: a frozen base policy plus a learned, bounded per-step correction.

Why it is built this way:
- The policy server is stateless and batches many robots into one call, so the combined policy
  cannot remember which step of a base chunk a robot is on. It therefore asks the base for a
  fresh chunk every control step (``chunk_len = n_action_steps = 1``): the base's first action
  is the action to correct, and the next ``intent_steps`` actions tell the residual where the
  base is heading. RL rollouts use this very function, so what was trained is what is served.
- Millimetre errors are invisible in features standardised over a whole workspace (1 mm of a
  peg's offset is 0.01 standard deviations once the peg travels 10 cm), so keys named in
  ``fine_scales`` are also fed as ``tanh(value / scale)``: steep near zero, saturated far
  away, which resolves the error a precise task is judged on and gates itself by distance.
- The correction is ``bound * squash(actor(features))`` with ``bound = residual_scale`` times
  half the action range, added to the (clipped) base action and clipped to the action limits:
  ``|combined - clip(base)| <= bound`` always holds, whatever the network outputs.
- One checkpoint directory: the residual's ``config.json``/``model.safetensors``/
  ``normalizer.safetensors`` and a full copy of the base checkpoint under ``base/``, so
  ``robot-learning serve`` and ``eval`` load it like any other policy.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_learning.policies.base import Policy
from robot_learning.policies.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    CheckpointError,
    read_config,
    read_tensors,
    save_policy_files,
)
from robot_learning.policies.normalizer import Normalizer
from robot_learning.rl.feature_norm import RunningMeanStd
from robot_learning.rl.networks import GaussianActor
from robot_learning.specs import SpecError

POLICY_TYPE = "residual"
BASE_DIR = "base"
FEATURES_KEY = "residual_features"


@dataclass
class ResidualConfig:
    """How the residual sees the world and how far it may move the base action."""

    residual_scale: float = 0.1  # bound per action element, as a fraction of half its range
    intent_steps: int = 4  # base chunk actions (from the first) the residual sees
    hidden: tuple[int, ...] = (256, 256)
    squash: str = "clip"  # clip (PPO) | tanh (SAC)
    state_std: bool = False
    init_log_std: float = -1.0  # initial exploration noise (log std, in bound units)
    residual_keys: tuple[str, ...] = field(default_factory=tuple)  # default: base's low-dim keys
    base_inference_steps: int | None = None  # the base's denoising steps (None: its own)
    # low-dim keys also fed as tanh(value / scale); None: the task's precision scales
    fine_scales: dict[str, float] | None = None

    def validate(self) -> None:
        if not 0 < self.residual_scale <= 1:
            raise ValueError(f"residual_scale must be in (0, 1], got {self.residual_scale}")
        if self.base_inference_steps is not None and self.base_inference_steps < 1:
            raise ValueError(f"base_inference_steps must be >= 1, got {self.base_inference_steps}")
        if self.intent_steps < 1:
            raise ValueError(f"intent_steps must be >= 1, got {self.intent_steps}")
        bad = {k: v for k, v in (self.fine_scales or {}).items() if not (v > 0 and v < np.inf)}
        if bad:
            raise ValueError(f"fine_scales must be positive and finite, got {bad}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        out["residual_keys"] = list(self.residual_keys)
        out["fine_scales"] = dict(self.fine_scales or {})
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ResidualConfig:
        values = dict(data)
        values["hidden"] = tuple(values.get("hidden", (256, 256)))
        values["residual_keys"] = tuple(values.get("residual_keys", ()))
        values["fine_scales"] = {str(k): float(v) for k, v in values.get("fine_scales", {}).items()}
        cfg = ResidualConfig(**values)
        cfg.validate()
        return cfg


class ResidualPolicy(nn.Module, Policy):
    """``base`` (frozen) + ``actor`` (the residual); serves as an ordinary chunk-of-one policy."""

    def __init__(
        self,
        base: Policy,
        config: ResidualConfig,
        base_dir: str | Path | None = None,
        feature_stats: RunningMeanStd | None = None,
    ) -> None:
        nn.Module.__init__(self)
        config.validate()
        if config.base_inference_steps is not None:
            if not hasattr(base, "inference_steps"):
                raise ValueError("base_inference_steps is set but the base has no denoising steps")
            base.inference_steps = config.base_inference_steps
        self.base = base
        self.base_dir = None if base_dir is None else Path(base_dir)
        (self.action_key,) = list(base.action_spec)
        spec = base.action_spec[self.action_key]
        low, high = spec.bounds()
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise SpecError(
                f"the base's action {self.action_key!r} has no finite bounds; a residual needs "
                "them to bound its correction"
            )
        self.low = np.asarray(low, np.float32)
        self.high = np.asarray(high, np.float32)
        self.bound = (config.residual_scale * (self.high - self.low) / 2).astype(np.float32)
        keys = config.residual_keys or tuple(
            k for k, s in base.observation_spec.items() if s.kind == "lowdim"
        )
        missing = [k for k in keys if k not in base.observation_spec]
        if missing or not keys:
            raise SpecError(
                f"residual keys {missing or '[]'} are not low-dim observations of the base; it "
                f"has: {', '.join(base.observation_spec)}"
            )
        config.residual_keys = tuple(keys)
        fine = dict(config.fine_scales or {})
        lowdim = base.observation_spec.of_kind("lowdim")
        if any(k not in lowdim for k in fine):
            raise SpecError(
                f"fine_scales keys {[k for k in fine if k not in lowdim]} are not low-dim "
                f"observations of the base; it has: {', '.join(lowdim)}"
            )
        config.fine_scales = fine
        self.config = config
        self.intent_steps = min(config.intent_steps, base.chunk_len)
        self.observation_spec = base.observation_spec
        self.action_spec = base.action_spec
        self.n_obs_steps = base.n_obs_steps
        self.chunk_len = 1
        self.n_action_steps = 1
        self.control_hz = base.control_hz
        self.supports_prefix = False
        self.feature_dim = (
            sum(base.observation_spec[k].size for k in keys)
            + sum(base.observation_spec[k].size for k in fine)
            + self.intent_steps * self.action_dim
        )
        self.feature_stats = feature_stats or RunningMeanStd((self.feature_dim,))
        self.actor = GaussianActor(
            self.feature_dim,
            self.action_dim,
            config.hidden,
            squash=config.squash,
            state_std=config.state_std,
            init_log_std=config.init_log_std,
        )
        self._base_norm = getattr(base, "normalizer", None)

    # ---- the parts RL uses ---------------------------------------------------------------------
    def base_chunk(self, obs: Mapping[str, Any]) -> np.ndarray:
        """The base's chunk for a batch of windows (float32 ``[B, chunk_len, A]``)."""
        return np.asarray(self.base.predict_chunk(obs), np.float32)

    def raw_features(self, obs: Mapping[str, Any], chunk: np.ndarray) -> np.ndarray:
        """Residual inputs before standardisation: newest low-dim obs, their fine copies, and
        the base's intent.

        Where the base has a fitted normalizer for a feature, its scaling is applied first, so
        metres and radians arrive at comparable magnitudes.
        """
        parts: list[torch.Tensor] = []
        for key in self.config.residual_keys:
            value = torch.as_tensor(np.asarray(obs[key])[:, -1], dtype=torch.float32)
            parts.append(self._scaled(key, value).reshape(value.shape[0], -1))
        for key, scale in (self.config.fine_scales or {}).items():
            value = torch.as_tensor(np.asarray(obs[key])[:, -1], dtype=torch.float32)
            parts.append(torch.tanh(value / scale).reshape(value.shape[0], -1))
        intent = torch.as_tensor(chunk[:, : self.intent_steps], dtype=torch.float32)
        parts.append(self._scaled(self.action_key, intent).reshape(intent.shape[0], -1))
        return torch.cat(parts, dim=-1).numpy()

    def _scaled(self, key: str, value: torch.Tensor) -> torch.Tensor:
        if self._base_norm is not None and key in self._base_norm.params:
            return self._base_norm.normalize(key, value)
        return value

    def features(self, raw: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.feature_stats.normalize(torch.as_tensor(raw, dtype=torch.float32))

    def combine(self, base_action: np.ndarray, residual_unit: np.ndarray) -> np.ndarray:
        """``clip(clip(base) + bound * r)`` for ``r`` in [-1, 1] (clipped here too)."""
        base = np.clip(np.asarray(base_action, np.float32), self.low, self.high)
        r = np.asarray(residual_unit, np.float32)
        if not (np.all(np.isfinite(base)) and np.all(np.isfinite(r))):
            raise ValueError(
                "the base action or the residual contains NaN/Inf; refusing to combine them"
            )
        r = np.clip(r, -1.0, 1.0)
        return np.clip(base + r * self.bound, self.low, self.high).astype(np.float32)

    # ---- the Policy interface ------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        self.check_batch(obs)
        chunk = self.base_chunk(obs)
        residual = self.actor.deterministic(self.features(self.raw_features(obs, chunk)))
        action = self.combine(chunk[:, 0], residual.numpy())
        return action[:, None, :]

    def reset(self) -> None:
        self.base.reset()


# ---- checkpoint --------------------------------------------------------------------------------
def save_residual(
    policy: ResidualPolicy, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write the combined policy: residual files plus a copy of the base under ``base/``."""
    out = Path(directory)
    if policy.base_dir is None:
        raise ValueError("the residual policy's base has no checkpoint directory to copy")
    base_out = out / BASE_DIR
    if policy.base_dir.resolve() != base_out.resolve():
        base_out.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, NORMALIZER_FILE, CONFIG_FILE):  # config last: marks it whole
            shutil.copy2(policy.base_dir / name, base_out / name)
    norm = Normalizer()
    norm.set(FEATURES_KEY, *policy.feature_stats.scale_offset())
    config = {
        "residual": policy.config.to_json(),
        "base": BASE_DIR,
        "observation_spec": policy.observation_spec.to_json(),
        "action_spec": policy.action_spec.to_json(),
        "control_hz": policy.control_hz,
        "parameters": sum(p.numel() for p in policy.actor.parameters()),
        **(extra or {}),
    }
    state = {f"actor.{k}": v for k, v in policy.actor.state_dict().items()}
    return save_policy_files(out, POLICY_TYPE, state, norm, config)


def load_residual(directory: str | Path, device: str = "cpu", **overrides: Any) -> ResidualPolicy:
    """Load the base from ``base/`` on ``device`` (``overrides`` such as ``inference_steps``
    go to it); the residual MLP runs on the CPU."""
    from robot_learning.policies import load_policy

    path = Path(directory)
    config = read_config(path)
    try:
        cfg = ResidualConfig.from_json(config["residual"])
    except KeyError:
        raise CheckpointError(f"{path}: config.json lacks the 'residual' config") from None
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid residual config: {exc}") from None
    if overrides.get("inference_steps") is not None:  # an explicit request wins
        cfg.base_inference_steps = int(overrides.pop("inference_steps"))
    base_dir = path / str(config.get("base", BASE_DIR))
    base = load_policy(base_dir, device=device, **overrides)
    state, norm = read_tensors(path)
    policy = ResidualPolicy(base, cfg, base_dir=base_dir)
    if FEATURES_KEY not in norm.params:
        raise CheckpointError(f"{path}: {NORMALIZER_FILE} lacks {FEATURES_KEY!r}")
    scale, offset = norm.params[FEATURES_KEY]
    if scale.shape != (policy.feature_dim,):
        raise CheckpointError(
            f"{path}: the feature normalizer has {tuple(scale.shape)} elements, the residual "
            f"expects {policy.feature_dim}"
        )
    policy.feature_stats.set_scale_offset(scale, offset)
    actor_state = {k.removeprefix("actor."): v for k, v in state.items()}
    try:
        policy.actor.load_state_dict(actor_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the config: {exc}") from None
    return policy.eval()
