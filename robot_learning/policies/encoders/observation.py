"""All observation features of a window -> one conditioning vector for the denoiser.

Every camera gets its own image encoder (cameras see different things; sharing weights costs
accuracy in Diffusion Policy's ablations), tactile grids a tactile encoder, and low-dim features
are concatenated (optionally through an MLP). Features of the ``n_obs_steps`` steps are
concatenated in time order, Diffusion Policy's "global conditioning". An instruction (kind
``language``, one string per window) is embedded by a frozen sentence encoder, projected and
appended once; with ``language_film`` it also FiLM-modulates every camera's feature map, and
the denoiser's own FiLM layers see it through the conditioning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robot_learning.policies.diffusion_config import DiffusionConfig
from robot_learning.policies.encoders.language import EMBEDDING_DIM, sentence_embedder
from robot_learning.policies.encoders.tactile import TactileEncoder
from robot_learning.policies.encoders.vision import ImageEncoder
from robot_learning.specs import SpecDict, SpecError


class ObservationEncoder(nn.Module):
    """``{key: [B, T, *shape]}`` (images uint8, others normalised, language: ``B`` strings) ->
    ``[B, T * step_dim + language dims]``."""

    def __init__(self, spec: SpecDict, config: DiffusionConfig) -> None:
        super().__init__()
        self.image_keys: list[str] = []
        self.tactile_keys: list[str] = []
        self.lowdim_keys: list[str] = []
        self.language_keys = [k for k in config.obs_keys if spec[k].kind == "language"]
        self.language_encoder = config.language_encoder
        film_dim = EMBEDDING_DIM * len(self.language_keys) if config.language_film else 0
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
                    film_dim=film_dim,
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
            elif feature.kind != "language":
                raise SpecError(
                    f"observation {key!r} has kind {feature.kind!r}, which the diffusion policy "
                    "cannot encode (it takes rgb, tactile, lowdim and language features)"
                )
        if self.language_keys and len(self.language_keys) == len(config.obs_keys):
            raise SpecError("an instruction alone cannot condition a policy: add observations")
        self.encoders = nn.ModuleDict(encoders)
        self.lowdim_mlp: nn.Module = nn.Identity()
        if lowdim_size and config.lowdim_feature_dim > 0:
            self.lowdim_mlp = nn.Sequential(
                nn.Linear(lowdim_size, config.lowdim_feature_dim), nn.Mish()
            )
            lowdim_size = config.lowdim_feature_dim
        self.language_proj = nn.ModuleDict(
            {
                k: nn.Sequential(nn.Linear(EMBEDDING_DIM, config.language_feature_dim), nn.Mish())
                for k in self.language_keys
            }
        )
        self.step_dim = step_dim + lowdim_size
        self.n_obs_steps = config.n_obs_steps
        language_dim = config.language_feature_dim * len(self.language_keys)
        self.out_dim = self.step_dim * config.n_obs_steps + language_dim

    def embed(self, texts: Any) -> torch.Tensor:
        """``[B, 384]`` frozen sentence embeddings of a batch's instructions."""
        return torch.from_numpy(sentence_embedder(self.language_encoder).embed(_texts(texts)))

    def _language(self, obs: Mapping[str, Any], device: torch.device) -> torch.Tensor | None:
        """Language features as ``[B, 384 * n]``: strings are embedded here; tensors were
        embedded (and normalized) by the policy already."""
        if not self.language_keys:
            return None
        parts = [
            v if isinstance(v, torch.Tensor) else self.embed(v)
            for v in (obs[k] for k in self.language_keys)
        ]
        return torch.cat(parts, dim=-1).to(device)

    def forward(self, obs: Mapping[str, Any]) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        first = next(k for k in obs if k not in self.language_keys)
        batch, steps = obs[first].shape[:2]
        language = self._language(obs, obs[first].device)
        film = None if language is None else language.repeat_interleave(steps, dim=0)
        for key in self.image_keys:
            x = obs[key]
            flat = x.reshape(batch * steps, *x.shape[2:])
            parts.append(self.encoders[key](flat, film).reshape(batch, steps, -1))
        for key in self.tactile_keys:
            x = obs[key]
            flat = x.reshape(batch * steps, *x.shape[2:])
            parts.append(self.encoders[key](flat).reshape(batch, steps, -1))
        if self.lowdim_keys:
            low = torch.cat([obs[k].reshape(batch, steps, -1) for k in self.lowdim_keys], dim=-1)
            parts.append(self.lowdim_mlp(low))
        out = torch.cat(parts, dim=-1).reshape(batch, -1)
        if language is None:
            return out
        chunks = language.split(EMBEDDING_DIM, dim=-1)
        projected = [self.language_proj[k](c) for k, c in zip(self.language_keys, chunks)]
        return torch.cat([out, *projected], dim=-1)


def _texts(value: Any) -> Sequence[str]:
    """A batch's instructions as strings (lists, tuples or numpy string arrays arrive)."""
    return [str(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
