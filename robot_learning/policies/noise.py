"""Training objectives and samplers: DDPM (diffusers schedulers) and flow matching.

Why both: DDPM with epsilon or sample prediction is Diffusion Policy's objective and samples well
with DDIM or DPM-Solver in a handful of steps; flow matching (rectified flow, as in pi0) trains a
velocity field that a few Euler steps integrate, often the best quality per step. The denoiser
sees the same timestep range either way (flow time is scaled to ``train_timesteps``).
Samples live in normalized action space ([-1, 1]); the final sample is clamped to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from robot_learning.policies.diffusion_config import DiffusionConfig

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, t) -> prediction


def _ddpm_train_scheduler(config: DiffusionConfig) -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=config.train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        prediction_type=config.prediction_type,
    )


def _sampler(config: DiffusionConfig, train: Any) -> Any:
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if config.sampler == "ddpm":
        return train
    if config.sampler == "ddim":
        return DDIMScheduler.from_config(train.config)
    if config.sampler == "dpm":
        return DPMSolverMultistepScheduler.from_config(
            train.config, algorithm_type="dpmsolver++", solver_order=2
        )
    raise ValueError(f"sampler {config.sampler!r} is not a DDPM sampler")


class NoiseObjective:
    """Loss for a clean action chunk, and sampling a chunk from noise."""

    def __init__(self, config: DiffusionConfig) -> None:
        self.config = config
        self.train_scheduler = _ddpm_train_scheduler(config) if config.objective == "ddpm" else None
        self.sampler = (
            _sampler(config, self.train_scheduler) if self.train_scheduler is not None else None
        )

    def loss(
        self,
        denoise: DenoiseFn,
        x0: torch.Tensor,
        mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean squared error of the prediction; ``mask`` [B, T] drops padded steps.

        ``noise`` and ``times`` (integer timesteps for DDPM, flow time in [0, 1] for flow) are
        drawn when not given; passing them makes a step reproducible across process layouts.
        """
        noise = torch.randn_like(x0) if noise is None else noise
        batch = x0.shape[0]
        if self.train_scheduler is not None:
            t = (
                torch.randint(0, self.config.train_timesteps, (batch,), device=x0.device)
                if times is None
                else times
            )
            noisy = self.train_scheduler.add_noise(x0, noise, t)
            target = noise if self.config.prediction_type == "epsilon" else x0
            pred = denoise(noisy, t)
        else:
            tau = torch.rand(batch, device=x0.device) if times is None else times
            s = tau.view(-1, 1, 1)
            noisy = (1 - s) * x0 + s * noise
            target = noise - x0
            pred = denoise(noisy, tau * self.config.train_timesteps)
        err = F.mse_loss(pred, target, reduction="none").mean(dim=-1)
        if mask is None:
            return err.mean()
        return (err * mask).sum() / mask.sum().clamp(min=1)

    @torch.no_grad()
    def sample(
        self,
        denoise: DenoiseFn,
        shape: tuple[int, ...],
        steps: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample a chunk; with ``known`` (normalized, ``shape``) and ``known_mask`` ([B, T] bool)
        those entries are held fixed by inpainting: after every step they are replaced by the
        known values noised to the next step's level, and by the exact values at the end."""
        x = torch.randn(shape, device=device, generator=generator)
        hold: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # known, mask, noise
        if known is not None and known_mask is not None and bool(known_mask.any()):
            mask = known_mask[..., None].expand(shape)
            hold = (known, mask, torch.randn(shape, device=device, generator=generator))
        if self.sampler is None:  # flow matching: Euler from t=1 (noise) to t=0 (data)
            dt = 1.0 / steps
            for i in range(steps):
                tau = torch.full((shape[0],), 1.0 - i * dt, device=device)
                x = x - dt * denoise(x, tau * self.config.train_timesteps)
                if hold is not None:
                    s = 1.0 - (i + 1) * dt
                    x = torch.where(hold[1], (1 - s) * hold[0] + s * hold[2], x)
            return x.clamp(-1.0, 1.0)
        self.sampler.set_timesteps(steps, device=device)
        timesteps = list(self.sampler.timesteps)
        if hold is not None:
            x = torch.where(hold[1], self._noised(hold[0], hold[2], timesteps[0]), x)
        for i, t in enumerate(timesteps):
            pred = denoise(x, t.expand(shape[0]).to(device))
            x = self.sampler.step(pred, t, x, generator=generator).prev_sample
            if hold is not None:
                last = i + 1 == len(timesteps)
                target = hold[0] if last else self._noised(hold[0], hold[2], timesteps[i + 1])
                x = torch.where(hold[1], target, x)
        return x.clamp(-1.0, 1.0)

    def _noised(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x0`` diffused to timestep ``t`` (the forward process of the training scheduler)."""
        assert self.train_scheduler is not None, "only DDPM objectives diffuse with a scheduler"
        steps = t.reshape(1).expand(x0.shape[0]).to(x0.device)
        return self.train_scheduler.add_noise(x0, noise, steps)
