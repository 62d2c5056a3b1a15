"""``openvla_tokens``: a Llava VLM whose last 256 vocabulary ids are action bins (OpenVLA style).

Why an adapter: OpenVLA-style models are language models that "say" an action, one token per
action dimension. Serving one through :class:`Policy` means building its prompt, showing it the
newest camera image, decoding ``action_dim`` tokens greedily with the logits restricted to the
action tokens, and mapping tokens to robot units (:mod:`.action_bins`). It predicts one action
per call (``chunk_len = 1``), as OpenVLA does. Batches are left-padded and decoded together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerBase

from robot_learning.policies.adapters.action_bins import (
    N_BINS,
    ActionNormStats,
    action_token_range,
    tokens_to_normalized,
)
from robot_learning.policies.adapters.backbone import (
    ImagePreprocessor,
    encode_prompts,
    load_backbone,
    load_tokenizer,
    num_image_tokens,
    vision_size,
)
from robot_learning.policies.adapters.features import AdapterFeatures
from robot_learning.policies.adapters.layout import AdapterCheckpoint, read_adapter_checkpoint
from robot_learning.policies.base import Policy
from robot_learning.policies.checkpoint import CheckpointError
from robot_learning.specs import SpecDict

LOG = logging.getLogger(__name__)
POLICY_TYPE = "openvla_tokens"
OPENVLA_PROMPT = "In: What action should the robot take to {instruction}?\nOut:"


@dataclass(frozen=True)
class OpenVLASettings:
    """The ``adapter`` section of an ``openvla_tokens`` config.json."""

    norm_stats: ActionNormStats
    action_vocab_end: int
    n_bins: int = N_BINS
    prompt_template: str = OPENVLA_PROMPT
    append_token_ids: tuple[int, ...] = ()
    lowercase_instruction: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_template": self.prompt_template,
            "action_vocab_end": self.action_vocab_end,
            "n_bins": self.n_bins,
            "append_token_ids": list(self.append_token_ids),
            "lowercase_instruction": self.lowercase_instruction,
            "action_norm_stats": self.norm_stats.to_json(),
        }

    @staticmethod
    def from_checkpoint(ckpt: AdapterCheckpoint) -> OpenVLASettings:
        stats = ckpt.setting("action_norm_stats", dict)
        try:
            norm_stats = ActionNormStats.from_json(stats)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{ckpt.path}: bad action_norm_stats: {exc}") from None
        template = ckpt.setting("prompt_template", str, OPENVLA_PROMPT)
        if "{instruction}" not in template:
            raise CheckpointError(f"{ckpt.path}: prompt_template lacks '{{instruction}}'")
        append = ckpt.setting("append_token_ids", list, [])
        return OpenVLASettings(
            norm_stats=norm_stats,
            action_vocab_end=ckpt.setting("action_vocab_end", int),
            n_bins=ckpt.setting("n_bins", int, N_BINS),
            prompt_template=template,
            append_token_ids=tuple(int(i) for i in append),
            lowercase_instruction=ckpt.setting("lowercase_instruction", bool, False),
        )


class OpenVLATokenPolicy(nn.Module, Policy):
    """Greedy action-token decoding behind the :class:`Policy` interface."""

    def __init__(
        self,
        model: LlavaForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        preprocessor: ImagePreprocessor,
        settings: OpenVLASettings,
        observation_spec: SpecDict,
        action_spec: SpecDict,
        control_hz: float = 5.0,
    ) -> None:
        nn.Module.__init__(self)
        self.model = model
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.settings = settings
        self.observation_spec = observation_spec
        self.action_spec = action_spec
        self.features = AdapterFeatures.from_spec(
            observation_spec, policy=POLICY_TYPE, max_images=1, allow_state=False
        )
        self.n_obs_steps = 1
        self.chunk_len = 1
        self.n_action_steps = 1
        self.control_hz = float(control_hz)
        self.supports_prefix = False
        self._check_fit()

    def _check_fit(self) -> None:
        """Refuse settings that do not fit the specs or the model's vocabulary."""
        stats_dim = self.settings.norm_stats.dim
        if stats_dim != self.action_dim:
            raise CheckpointError(
                f"{POLICY_TYPE}: the action spec has {self.action_dim} dims, the action norm "
                f"stats have {stats_dim}"
            )
        first, end = action_token_range(self.settings.action_vocab_end, self.settings.n_bins)
        config: Any = self.model.config
        vocab = int(config.text_config.vocab_size)
        if first < 0 or end > vocab:
            raise CheckpointError(
                f"{POLICY_TYPE}: action tokens [{first}, {end}) do not fit the model's "
                f"vocabulary of {vocab}"
            )
        image_id = int(self.model.config.image_token_id)
        if first <= image_id < end:
            raise CheckpointError(f"{POLICY_TYPE}: the image token {image_id} is an action token")

    # ---- prompt --------------------------------------------------------------------------------
    def prompts(self, instructions: Sequence[str]) -> list[str]:
        lower = self.settings.lowercase_instruction
        return [
            self.settings.prompt_template.format(instruction=text.lower() if lower else text)
            for text in instructions
        ]

    def prompt_ids(self, instructions: Sequence[str]) -> list[list[int]]:
        """``BOS, <image> x N, prompt tokens, append_token_ids`` for each instruction."""
        bos = int(self.tokenizer.bos_token_id)
        image = [int(self.model.config.image_token_id)] * num_image_tokens(self.model.config)
        tail = list(self.settings.append_token_ids)
        return [
            [bos, *image, *ids, *tail]
            for ids in encode_prompts(self.tokenizer, self.prompts(instructions))
        ]

    # ---- decoding ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_tokens(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Greedy action token ids ``[B, action_dim]`` for a batch of observation windows."""
        self.check_batch(obs)
        device = next(self.parameters()).device
        images = np.asarray(obs[self.features.images[0]])[:, -1]
        pixels = self.preprocessor(images, device).to(self.model.dtype)
        ids, mask = left_pad(self.prompt_ids(list(obs[self.features.language])), self._pad_id())
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        first, end = action_token_range(self.settings.action_vocab_end, self.settings.n_bins)
        out = self.model(
            input_ids=ids,
            pixel_values=pixels,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        chosen: list[torch.Tensor] = []
        for step in range(self.action_dim):
            token = out.logits[:, -1, first:end].argmax(dim=-1) + first
            chosen.append(token)
            if step + 1 == self.action_dim:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=positions,
                past_key_values=out.past_key_values,
                use_cache=True,
            )
        return torch.stack(chosen, dim=1).cpu().numpy()

    def decode_actions(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids ``[..., A]`` -> actions in robot units (float32)."""
        normalized = tokens_to_normalized(
            tokens, self.settings.action_vocab_end, self.settings.n_bins
        )
        return self.settings.norm_stats.unnormalize(normalized).astype(np.float32)

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        """One action per observation: ``[B, 1, A]`` (``prefix`` is not used)."""
        return self.decode_actions(self.predict_tokens(obs))[:, None, :]

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.bos_token_id)


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, L]`` ids and attention mask, padded on the left so every row ends together."""
    length = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, length - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, length - len(seq) :] = 1
    return ids, mask


def load_openvla_tokens(
    directory: str | Path, device: str = "cpu", **overrides: Any
) -> OpenVLATokenPolicy:
    """Load an ``openvla_tokens`` checkpoint directory (local files only; see docs/vla_adapters.md).

    ``verify_hashes=True`` also checks every backbone file against its recorded sha256.
    """
    verify = bool(overrides.pop("verify_hashes", False))
    if overrides:
        raise CheckpointError(
            f"{directory}: {POLICY_TYPE} takes no overrides {sorted(overrides)} (it decodes "
            "tokens greedily: there are no inference steps); valid: verify_hashes"
        )
    ckpt = read_adapter_checkpoint(directory, POLICY_TYPE, verify_hashes=verify)
    settings = OpenVLASettings.from_checkpoint(ckpt)
    model = load_backbone(ckpt.backbone_dir, LlavaForConditionalGeneration)
    tokenizer = load_tokenizer(ckpt.backbone_dir)
    preprocessor = ImagePreprocessor.from_backbone(ckpt.backbone_dir, vision_size(model.config))
    policy = OpenVLATokenPolicy(
        model,
        tokenizer,
        preprocessor,
        settings,
        ckpt.observation_spec,
        ckpt.action_spec,
        ckpt.control_hz,
    )
    return policy.to(device).eval()
