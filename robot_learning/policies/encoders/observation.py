"""All observation features of a window -> one conditioning vector for the denoiser.

Every camera gets its own image encoder (cameras see different things; sharing weights costs
accuracy in Diffusion Policy's ablations), tactile grids a tactile encoder, and low-dim features
are concatenated (optionally through an MLP). Features of the ``n_obs_steps`` steps are
concatenated in time order, Diffusion Policy's "global conditioning".
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from robot_learning.policies.diffusion_config import DiffusionConfig
from robot_learning.policies.encoders.tactile import TactileEncoder
from robot_learning.policies.encoders.vision import ImageEncoder
from robot_learning.specs import SpecDict, SpecError


class ObservationEncoder(nn.Module):
    """``{key: [B, T, *shape]}`` (images uint8, others normalised) -> ``[B, T * step_dim]``."""

    def __init__(self, spec: SpecDict, config: DiffusionConfig) -> None:
        super().__init__()
        self.image_keys: list[str] = []
        self.tactile_keys: list[str] = []
        self.lowdim_keys: list[str] = []
        encoders: dict[str, nn.Module] = {}
        step_dim = 0
        lowdim_size = 0
        for key in config.obs_keys:
            feature = spec[key]
            if feature.kind == "rgb":
                encoders[key] = ImageEncoder(
                    (feature.shape[0], feature.shape[1]),
                    config.image_feature_dim,
                    config.spatial_keypoints,
                    config.crop_fraction,
                    backbone=config.image_backbone,
                    cnn_channels=config.cnn_channels,
                    pretrained=config.pretrained_backbone,
                    downsample=config.image_downsample,
                )
                self.image_keys.append(key)
                step_dim += config.image_feature_dim
            elif feature.kind == "tactile":
                encoders[key] = TactileEncoder(feature.shape, config.tactile_feature_dim)
                self.tactile_keys.append(key)
                step_dim += config.tactile_feature_dim
            elif feature.kind == "lowdim":
                self.lowdim_keys.append(key)
                lowdim_size += feature.size
            else:
                raise SpecError(
                    f"observation {key!r} has kind {feature.kind!r}, which the diffusion policy "
                    "cannot encode (it takes rgb, tactile and lowdim features)"
                )
        self.encoders = nn.ModuleDict(encoders)
        self.lowdim_mlp: nn.Module = nn.Identity()
        if lowdim_size and config.lowdim_feature_dim > 0:
            self.lowdim_mlp = nn.Sequential(
                nn.Linear(lowdim_size, config.lowdim_feature_dim), nn.Mish()
            )
            lowdim_size = config.lowdim_feature_dim
        self.step_dim = step_dim + lowdim_size
        self.n_obs_steps = config.n_obs_steps
        self.out_dim = self.step_dim * config.n_obs_steps

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        batch, steps = next(iter(obs.values())).shape[:2]
        for key in [*self.image_keys, *self.tactile_keys]:
            x = obs[key]
            flat = x.reshape(batch * steps, *x.shape[2:])
            parts.append(self.encoders[key](flat).reshape(batch, steps, -1))
        if self.lowdim_keys:
            low = torch.cat([obs[k].reshape(batch, steps, -1) for k in self.lowdim_keys], dim=-1)
            parts.append(self.lowdim_mlp(low))
        return torch.cat(parts, dim=-1).reshape(batch, -1)
