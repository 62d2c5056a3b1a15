"""Denoisers: ``(noisy action chunk, timestep, conditioning) -> prediction`` of the same shape."""

from __future__ import annotations

from torch import nn

from robot_learning.policies.denoisers.transformer import TransformerDenoiser
from robot_learning.policies.denoisers.unet1d import ConditionalUnet1D
from robot_learning.policies.diffusion_config import DiffusionConfig


def make_denoiser(config: DiffusionConfig, action_dim: int, cond_dim: int) -> nn.Module:
    """The denoiser a config names (``unet`` or ``transformer``)."""
    if config.denoiser == "unet":
        return ConditionalUnet1D(
            action_dim,
            cond_dim,
            channels=config.unet_channels,
            kernel=config.unet_kernel,
            groups=config.unet_groups,
            step_embed_dim=config.step_embed_dim,
        )
    if config.denoiser == "transformer":
        return TransformerDenoiser(
            action_dim,
            cond_dim,
            horizon=config.horizon,
            n_obs_steps=config.n_obs_steps,
            dim=config.transformer_dim,
            layers=config.transformer_layers,
            heads=config.transformer_heads,
            dropout=config.dropout,
        )
    raise ValueError(f"unknown denoiser {config.denoiser!r}; valid: unet, transformer")
