"""``flow_vla``: a VLM backbone as context encoder + a flow-matching action expert (pi0/SmolVLA).

Why an adapter: pi0 and SmolVLA predict a whole action chunk by integrating a learned velocity
field from Gaussian noise, conditioned on what the VLM makes of the camera images, the
instruction and the robot state. Here the prefix is ``[image tokens per camera][state token]
[instruction tokens]`` (state: normalised low-dim features projected to one token), encoded once
per call; the expert then runs ``num_steps`` Euler steps against it (pi0 uses 10). Actions are
un-normalised with the mean/std statistics in ``normalizer.safetensors``. Noise comes from a
seeded generator (reset at each episode), so a reloaded checkpoint reproduces its chunks.
``supports_prefix`` is false: committed actions are not inpainted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import LlavaModel, PreTrainedTokenizerBase

from robot_learning.policies.adapters.backbone import (
    ImagePreprocessor,
    encode_prompts,
    load_backbone,
    load_tokenizer,
    text_hidden_size,
    vision_size,
)
from robot_learning.policies.adapters.features import AdapterFeatures
from robot_learning.policies.adapters.flow_expert import FlowActionExpert, euler_sample
from robot_learning.policies.adapters.layout import AdapterCheckpoint, read_adapter_checkpoint
from robot_learning.policies.base import Policy
from robot_learning.policies.checkpoint import CheckpointError
from robot_learning.policies.normalizer import Normalizer
from robot_learning.specs import SpecDict, SpecError

POLICY_TYPE = "flow_vla"
ACTION_KEY = "action"  # normaliser entry of the concatenated action vector
MAX_IMAGES = 3


@dataclass(frozen=True)
class FlowVLASettings:
    """The ``adapter`` section of a ``flow_vla`` config.json."""

    chunk_len: int
    num_steps: int = 10
    n_action_steps: int = 0  # 0: execute the whole chunk
    prompt_template: str = "{instruction}"
    seed: int = 0
    expert_width: int = 64
    expert_depth: int = 2
    expert_heads: int = 4

    def __post_init__(self) -> None:
        if self.chunk_len < 1 or self.num_steps < 1 or self.n_action_steps < 0:
            raise CheckpointError(
                f"{POLICY_TYPE}: chunk_len and num_steps must be >= 1 and n_action_steps >= 0, "
                f"got {self.chunk_len}, {self.num_steps}, {self.n_action_steps}"
            )
        if self.n_action_steps > self.chunk_len:
            raise CheckpointError(
                f"{POLICY_TYPE}: n_action_steps {self.n_action_steps} > chunk_len {self.chunk_len}"
            )
        if "{instruction}" not in self.prompt_template:
            raise CheckpointError(f"{POLICY_TYPE}: prompt_template lacks '{{instruction}}'")

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @staticmethod
    def from_checkpoint(ckpt: AdapterCheckpoint) -> FlowVLASettings:
        return FlowVLASettings(
            chunk_len=ckpt.setting("chunk_len", int),
            num_steps=ckpt.setting("num_steps", int, 10),
            n_action_steps=ckpt.setting("n_action_steps", int, 0),
            prompt_template=ckpt.setting("prompt_template", str, "{instruction}"),
            seed=ckpt.setting("seed", int, 0),
            expert_width=ckpt.setting("expert_width", int, 64),
            expert_depth=ckpt.setting("expert_depth", int, 2),
            expert_heads=ckpt.setting("expert_heads", int, 4),
        )


class FlowVLAPolicy(nn.Module, Policy):
    """Backbone prefix encoding + Euler-integrated flow expert behind :class:`Policy`."""

    def __init__(
        self,
        backbone: LlavaModel,
        tokenizer: PreTrainedTokenizerBase,
        preprocessor: ImagePreprocessor,
        settings: FlowVLASettings,
        observation_spec: SpecDict,
        action_spec: SpecDict,
        normalizer: Normalizer,
        control_hz: float = 10.0,
    ) -> None:
        nn.Module.__init__(self)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.settings = settings
        self.observation_spec = observation_spec
        self.action_spec = action_spec
        self.features = AdapterFeatures.from_spec(
            observation_spec, policy=POLICY_TYPE, max_images=MAX_IMAGES, allow_state=True
        )
        self.normalizer = normalizer
        self.n_obs_steps = 1
        self.chunk_len = settings.chunk_len
        self.n_action_steps = settings.n_action_steps or settings.chunk_len
        self.control_hz = float(control_hz)
        self.supports_prefix = False
        hidden = text_hidden_size(backbone.config)
        state_dim = self.features.state_dim(observation_spec)
        self.state_proj = nn.Linear(state_dim, hidden) if state_dim else None
        self.expert = FlowActionExpert(
            self.action_dim,
            settings.chunk_len,
            hidden,
            settings.expert_width,
            settings.expert_depth,
            settings.expert_heads,
        )
        self._check_normalizer()
        self.generator = torch.Generator().manual_seed(settings.seed)

    def _check_normalizer(self) -> None:
        want: dict[str, tuple[int, ...]] = {ACTION_KEY: (self.action_dim,)}
        want.update({name: self.observation_spec[name].shape for name in self.features.state})
        for key, shape in want.items():
            if key not in self.normalizer.params:
                raise CheckpointError(
                    f"{POLICY_TYPE}: the normalizer lacks {key!r}; it has {self.normalizer.keys()}"
                )
            scale = self.normalizer.params[key][0]
            if tuple(scale.shape) != shape:
                raise CheckpointError(
                    f"{POLICY_TYPE}: normalizer {key!r} has shape {tuple(scale.shape)}, the spec "
                    f"needs {shape} (action dim {self.action_dim})"
                )

    # ---- weights outside the backbone ----------------------------------------------------------
    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """The expert and state projection: what ``model.safetensors`` holds."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_head_state(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = set(self.head_state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise CheckpointError(
                f"{POLICY_TYPE}: model.safetensors does not fit the config: missing {missing}, "
                f"unexpected {unexpected}"
            )
        try:
            self.load_state_dict(dict(state), strict=False)
        except RuntimeError as exc:
            raise CheckpointError(f"{POLICY_TYPE}: model.safetensors does not fit: {exc}") from None

    # ---- inference -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.generator = torch.Generator().manual_seed(self.settings.seed)

    def encode_prefix(self, obs: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone final hidden states ``[B, L, H]`` and their validity mask ``[B, L]``."""
        device = next(self.parameters()).device
        config = self.backbone.config
        parts: list[torch.Tensor] = []
        for name in self.features.images:
            pixels = self.preprocessor(np.asarray(obs[name])[:, -1], device)
            out = self.backbone.get_image_features(
                pixel_values=pixels.to(self.backbone.dtype),
                vision_feature_layer=config.vision_feature_layer,
                vision_feature_select_strategy=config.vision_feature_select_strategy,
            )
            parts.append(torch.stack(list(out.pooler_output)))
        if self.state_proj is not None:
            state = [
                self.normalizer.normalize(
                    name, torch.as_tensor(np.array(obs[name], np.float32)[:, -1], device=device)
                )
                for name in self.features.state
            ]
            flat = torch.cat([s.float().flatten(1) for s in state], dim=1)
            parts.append(self.state_proj(flat)[:, None, :].to(parts[0].dtype))
        fixed = torch.cat(parts, dim=1)
        text, text_mask = self._text_embeddings(list(obs[self.features.language]), device)
        embeds = torch.cat([fixed, text.to(fixed.dtype)], dim=1)
        mask = torch.cat(
            [torch.ones_like(text_mask[:, :1]).expand(-1, fixed.shape[1]), text_mask], 1
        )
        hidden = self.backbone.language_model(inputs_embeds=embeds, attention_mask=mask)
        return hidden.last_hidden_state, mask.bool()

    def _text_embeddings(
        self, instructions: list[str], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """BOS + prompt tokens, right-padded (the causal prefix never sees the padding)."""
        bos = int(self.tokenizer.bos_token_id)
        prompts = [self.settings.prompt_template.format(instruction=t) for t in instructions]
        rows = [[bos, *ids] for ids in encode_prompts(self.tokenizer, prompts)]
        length = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), length), dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return self.backbone.get_input_embeddings()(ids), mask

    @torch.no_grad()
    def predict_chunk(
        self,
        obs: Mapping[str, Any],
        prefix: np.ndarray | None = None,
        *,
        noise: np.ndarray | None = None,
    ) -> np.ndarray:
        """Actions ``[B, chunk_len, A]``; ``noise`` (normalised units) replaces the generator's."""
        batch = self.check_batch(obs)
        context, mask = self.encode_prefix(obs)
        shape = (batch, self.chunk_len, self.action_dim)
        if noise is None:
            x = torch.randn(shape, generator=self.generator).to(context.device)
        elif tuple(np.shape(noise)) != shape:
            raise SpecError(f"noise has shape {tuple(np.shape(noise))}, expected {shape}")
        else:
            x = torch.as_tensor(np.asarray(noise, dtype=np.float32), device=context.device)
        x = euler_sample(
            lambda xt, t: self.expert(xt, t, context, mask), x, self.settings.num_steps
        )
        actions = self.normalizer.unnormalize(ACTION_KEY, x.float())
        return actions.cpu().numpy().astype(np.float32)


def load_flow_vla(directory: str | Path, device: str = "cpu", **overrides: Any) -> FlowVLAPolicy:
    """Load a ``flow_vla`` checkpoint directory (local files only; see docs/vla_adapters.md).

    Overrides: ``num_steps`` (alias ``inference_steps``), ``seed``, ``verify_hashes``.
    """
    verify = bool(overrides.pop("verify_hashes", False))
    steps = overrides.pop("inference_steps", None)
    steps = overrides.pop("num_steps", steps)
    seed = overrides.pop("seed", None)
    if overrides:
        raise CheckpointError(
            f"{directory}: unknown {POLICY_TYPE} overrides {sorted(overrides)}; valid: "
            "num_steps, inference_steps, seed, verify_hashes"
        )
    ckpt = read_adapter_checkpoint(directory, POLICY_TYPE, verify_hashes=verify)
    settings = FlowVLASettings.from_checkpoint(ckpt)
    if steps is not None or seed is not None:
        fields = settings.to_json()
        fields.update(
            {k: int(v) for k, v in (("num_steps", steps), ("seed", seed)) if v is not None}
        )
        settings = FlowVLASettings(**fields)
    backbone = load_backbone(ckpt.backbone_dir, LlavaModel)
    preprocessor = ImagePreprocessor.from_backbone(ckpt.backbone_dir, vision_size(backbone.config))
    policy = FlowVLAPolicy(
        backbone,
        load_tokenizer(ckpt.backbone_dir),
        preprocessor,
        settings,
        ckpt.observation_spec,
        ckpt.action_spec,
        ckpt.normalizer,
        ckpt.control_hz,
    )
    policy.load_head_state(ckpt.head_state)
    return policy.to(device).eval()
