"""The transformers side of an adapter: tiny Llava configs, local loading, image preprocessing.

Why Llava: ``LlavaForConditionalGeneration`` (a CLIP/SigLIP vision tower, a projector and a Llama
text model) is the open architecture that OpenVLA-style ports use, and it is in transformers
itself, so no remote code runs. Images are preprocessed here in torch (resize, scale, normalise
with the mean/std in ``backbone/preprocessor_config.json``): the transformers image processors
would need torchvision, which this environment does not install.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.nn import functional as F
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlavaConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    SiglipVisionConfig,
)

from robot_learning.policies.checkpoint import CheckpointError

LOG = logging.getLogger(__name__)
PREPROCESSOR_FILE = "preprocessor_config.json"
SUPPORTED_MODEL_TYPES = ("llava",)
# SigLIP's processor statistics (OpenVLA's SigLIP tower and SmolVLM use them too)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
M = TypeVar("M", bound=PreTrainedModel)


def tiny_llava_config(
    vocab_size: int,
    *,
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    special_ids: dict[str, int],
) -> LlavaConfig:
    """A SigLIP + Llama Llava of ~0.3M parameters (vocabulary padded to a multiple of 64)."""
    vision = SiglipVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch_size,
    )
    text = LlamaConfig(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        vocab_size=-(-vocab_size // 64) * 64,
        max_position_embeddings=512,
        pad_token_id=special_ids["pad"],
        bos_token_id=special_ids["bos"],
        eos_token_id=special_ids["eos"],
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=special_ids["image"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_seq_length=(image_size // patch_size) ** 2,
    )


def vision_size(config: Any) -> int:
    """Input side length of the vision tower (``config`` typed loosely: transformers unions)."""
    return int(config.vision_config.image_size)


def text_hidden_size(config: Any) -> int:
    return int(config.text_config.hidden_size)


def num_image_tokens(config: Any) -> int:
    """Tokens one image becomes: patches, plus CLIP's class token under the "full" strategy."""
    vision = config.vision_config
    patches = (int(vision.image_size) // int(vision.patch_size)) ** 2
    has_cls = vision.model_type == "clip_vision_model"
    keeps_cls = has_cls and config.vision_feature_select_strategy == "full"
    return patches + int(keeps_cls)


def _offline() -> None:
    """No hub: loaders read only the local directory (``local_files_only`` as well)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Silence transformers' load/save progress bars (server and test logs stay readable)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_backbone(directory: Path, cls: type[M]) -> M:
    """``cls.from_pretrained`` from a local directory, with errors as CheckpointError."""
    _offline()
    try:
        model_type = json.loads((directory / "config.json").read_text()).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory}/config.json is unreadable: {exc}") from None
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{directory}: backbone model_type {model_type!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    try:
        with no_progress_bars():
            loaded: Any = cls.from_pretrained(
                str(directory), local_files_only=True, dtype=torch.float32, output_loading_info=True
            )
        model: M = loaded[0]
        info: dict[str, Any] = loaded[1]
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{directory}: cannot load the backbone: {exc}") from None
    # transformers initialises absent weights randomly and only warns: refuse instead
    absent = sorted(info.get("missing_keys", ())) + [
        str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys", ())
    ]
    if absent:
        shown = ", ".join(absent[:5]) + (f" (+{len(absent) - 5} more)" if len(absent) > 5 else "")
        raise CheckpointError(
            f"{directory}: the backbone weights do not fit its config.json: missing or "
            f"mis-shaped {shown}"
        )
    LOG.info("loaded %s backbone from %s", cls.__name__, directory)
    return model.eval()


def load_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    _offline()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{directory}: cannot load the tokenizer: {exc}") from None
    if tokenizer.bos_token_id is None:
        raise CheckpointError(f"{directory}: the tokenizer has no BOS token")
    return tokenizer


def write_preprocessor_config(
    directory: Path,
    size: int,
    mean: Sequence[float] = SIGLIP_MEAN,
    std: Sequence[float] = SIGLIP_STD,
) -> None:
    """Image statistics in the transformers ``preprocessor_config.json`` format."""
    config = {
        "image_processor_type": "SiglipImageProcessor",
        "do_resize": True,
        "size": {"height": size, "width": size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(mean),
        "image_std": list(std),
    }
    (directory / PREPROCESSOR_FILE).write_text(json.dumps(config, indent=2) + "\n")


class ImagePreprocessor:
    """uint8 ``[B, H, W, 3]`` -> float ``[B, 3, S, S]``: resize, scale to [0, 1], normalise."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    @staticmethod
    def from_backbone(directory: Path, vision_size: int) -> ImagePreprocessor:
        """Read the stats; the processor's size must be the vision tower's input size."""
        path = directory / PREPROCESSOR_FILE
        try:
            config = json.loads(path.read_text())
            size = config.get("size", {})
            height = int(size.get("height", size.get("shortest_edge", vision_size)))
            width = int(size.get("width", height))
            mean = [float(v) for v in config["image_mean"]]
            std = [float(v) for v in config["image_std"]]
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a usable image processor config: {exc}") from None
        if (height, width) != (vision_size, vision_size):
            raise CheckpointError(
                f"{path}: images are resized to {height}x{width}, but the vision tower takes "
                f"{vision_size}x{vision_size}"
            )
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise CheckpointError(f"{path}: image_mean/image_std need 3 entries, std > 0")
        return ImagePreprocessor(vision_size, mean, std)

    def __call__(self, images: np.ndarray, device: torch.device) -> torch.Tensor:
        array = np.ascontiguousarray(images)
        if not array.flags.writeable:  # e.g. decoded from a message buffer
            array = array.copy()
        x = torch.as_tensor(array, device=device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )
        return (x - self.mean.to(device)) / self.std.to(device)


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt, no special tokens (the caller places BOS and image tokens)."""
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    return [list(map(int, ids)) for ids in encoded]
