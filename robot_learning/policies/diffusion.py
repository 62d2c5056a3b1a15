"""DiffusionPolicy: observation window -> denoised action chunk (Chi et al., 2023), CPU-sized.

Why it looks like this: encoders turn the window into one conditioning vector, a denoiser (1D
UNet or transformer) iteratively refines a noisy normalized action chunk, and the normalizer
maps it back to robot units. The module's ``forward`` is the training loss, so
``DistributedDataParallel`` wraps it unchanged. Inference is deterministic after ``reset()``
(a seeded generator), so a saved and reloaded checkpoint reproduces its actions exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_learning.policies.base import Policy
from robot_learning.policies.denoisers import make_denoiser
from robot_learning.policies.diffusion_config import DiffusionConfig
from robot_learning.policies.encoders.observation import ObservationEncoder
from robot_learning.policies.noise import NoiseObjective
from robot_learning.policies.normalizer import Normalizer, NormMode
from robot_learning.specs import SpecDict, SpecError

INFERENCE_SEED = 0


def normalization_modes(spec: SpecDict, config: DiffusionConfig) -> dict[str, NormMode]:
    """Which features get normalized and how: min-max for actions/low-dim, z-score for tactile."""
    modes: dict[str, NormMode] = {config.action_key: "limits"}
    for key in config.obs_keys:
        kind = spec[key].kind
        if kind == "lowdim":
            modes[key] = "limits"
        elif kind == "tactile":
            modes[key] = "gaussian"
    return modes


class DiffusionPolicy(nn.Module, Policy):
    """A diffusion (or flow-matching) policy over action chunks."""

    def __init__(
        self,
        config: DiffusionConfig,
        observation_spec: SpecDict,
        action_spec: SpecDict,
        normalizer: Normalizer,
        control_hz: float = 20.0,
    ) -> None:
        nn.Module.__init__(self)
        self.config = config
        self.observation_spec = SpecDict({k: observation_spec[k] for k in config.obs_keys})
        if config.action_key not in action_spec:
            raise SpecError(
                f"action feature {config.action_key!r} not in the data; have {list(action_spec)}"
            )
        self.action_spec = SpecDict({config.action_key: action_spec[config.action_key]})
        for key in normalization_modes(self.observation_spec, config):
            if key not in normalizer.params:
                raise SpecError(f"the normalizer lacks feature {key!r}; it has {normalizer.keys()}")
        self.normalizer = normalizer
        self.n_obs_steps = config.n_obs_steps
        self.chunk_len = config.horizon - config.n_obs_steps + 1
        self.n_action_steps = config.n_action_steps
        self.control_hz = float(control_hz)
        self.supports_prefix = True
        self.encoder = ObservationEncoder(self.observation_spec, config)
        self.denoiser = make_denoiser(config, self.action_dim, self.encoder.out_dim)
        self.objective = NoiseObjective(config)
        self.generator = torch.Generator().manual_seed(INFERENCE_SEED)

    # ---- training ------------------------------------------------------------------------------
    def _normalized_obs(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Tensors on the policy's device, normalized; instructions stay strings."""
        out: dict[str, Any] = {}
        device = self._device()
        for key in self.config.obs_keys:
            if key in self.encoder.language_keys:  # embedded, then centred if fitted with it
                text = obs[key]
                out[key] = (
                    self.normalizer.normalize(key, self.encoder.embed(text).to(device))
                    if key in self.normalizer.params
                    else text
                )
                continue
            value = torch.as_tensor(obs[key], device=device)
            if key in self.normalizer.params:
                value = self.normalizer.normalize(key, value.float())
            out[key] = value
        return out

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self,
        batch: Mapping[str, Any],
        noise: torch.Tensor | None = None,
        times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Training loss of a batch of windows (``WindowDataset`` layout); see NoiseObjective."""
        n_obs = self.n_obs_steps
        language = self.encoder.language_keys
        obs = self._normalized_obs(
            {k: batch[k] if k in language else batch[k][:, :n_obs] for k in self.config.obs_keys}
        )
        actions = torch.as_tensor(batch[self.config.action_key], device=self._device()).float()
        actions = self.normalizer.normalize(self.config.action_key, actions)
        if actions.shape[1] != self.config.horizon:
            raise SpecError(
                f"action windows have {actions.shape[1]} steps; the policy's horizon is "
                f"{self.config.horizon}"
            )
        cond = self.encoder(obs)
        return self.objective.loss(
            lambda x, t: self.denoiser(x, t, cond), actions, noise=noise, times=times
        )

    # ---- inference -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.generator = torch.Generator().manual_seed(INFERENCE_SEED)

    @property
    def inference_steps(self) -> int:
        return self.config.inference_steps

    @inference_steps.setter
    def inference_steps(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"inference_steps must be >= 1, got {steps}")
        self.config.inference_steps = steps

    @torch.no_grad()
    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        batch = self.check_batch(obs)
        was_training = self.training
        self.eval()
        try:
            cond = self.encoder(self._normalized_obs(obs))
            device = cond.device
            shape = (batch, self.config.horizon, self.action_dim)
            noise_gen = self.generator if device.type == "cpu" else None
            known, known_mask = self._known_prefix(prefix, shape, device)
            x = self.objective.sample(
                lambda x, t: self.denoiser(x, t, cond),
                shape,
                self.config.inference_steps,
                device,
                generator=noise_gen,
                known=known,
                known_mask=known_mask,
            )
            actions = self.normalizer.unnormalize(self.config.action_key, x)
        finally:
            self.train(was_training)
        start = self.n_obs_steps - 1
        return actions[:, start:].float().cpu().numpy()

    def _known_prefix(
        self, prefix: np.ndarray | None, shape: tuple[int, int, int], device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Committed actions placed on the horizon (normalized) and the mask of where they are.

        Chunk step ``j`` is horizon step ``n_obs_steps - 1 + j``; NaN rows are not committed.
        """
        if prefix is None:
            return None, None
        arr = np.asarray(prefix, dtype=np.float32)
        batch, horizon, dim = shape
        if arr.ndim != 3 or arr.shape[0] != batch or arr.shape[2] != dim:
            raise SpecError(
                f"prefix has shape {arr.shape}, expected ({batch}, P, {dim}) with P <= "
                f"{self.chunk_len}"
            )
        if arr.shape[1] > self.chunk_len:
            raise SpecError(f"prefix has {arr.shape[1]} steps; the chunk has {self.chunk_len}")
        start = self.n_obs_steps - 1
        committed = np.asarray(np.isfinite(arr).all(axis=-1))
        known = np.zeros(shape, dtype=np.float32)
        mask = np.zeros((batch, horizon), dtype=bool)
        known[:, start : start + arr.shape[1]] = np.where(committed[..., None], arr, 0.0)
        mask[:, start : start + arr.shape[1]] = committed
        known_t = self.normalizer.normalize(
            self.config.action_key, torch.from_numpy(known).to(device)
        ).clamp(-1.0, 1.0)
        return known_t, torch.from_numpy(mask).to(device)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
