"""Shared pieces of the tiny random adapter checkpoints: default specs, the backbone writer.

Why tiny random models: no published VLA weights are reachable offline, and tests must run in
seconds on a CPU. A tiny Llava with a tokenizer trained in-process exercises every step a real
checkpoint goes through (``save_pretrained`` files, tokenizer files, processor statistics, our
config), so only the published weights themselves are untested.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
from transformers import PreTrainedModel

from robot_learning.policies.adapters.backbone import (
    no_progress_bars,
    tiny_llava_config,
    write_preprocessor_config,
)
from robot_learning.policies.adapters.layout import BACKBONE_DIR
from robot_learning.policies.adapters.tokenizer import IMAGE, build_tiny_tokenizer
from robot_learning.specs import FeatureSpec, SpecDict

M = TypeVar("M", bound=PreTrainedModel)


def tiny_specs(
    image_size: int = 64, action_dim: int = 7, state_dim: int = 0, cameras: int = 1
) -> tuple[SpecDict, SpecDict]:
    """Camera image(s), an instruction, optional state; one ``action`` feature."""
    features: dict[str, FeatureSpec] = {
        ("image" if cameras == 1 else f"image_{i}"): FeatureSpec(
            (image_size, image_size, 3), "uint8", "rgb"
        )
        for i in range(cameras)
    }
    features["task"] = FeatureSpec((), "str", "language", description="instruction")
    if state_dim:
        features["state"] = FeatureSpec((state_dim,), "float32", "lowdim")
    action = FeatureSpec((action_dim,), "float32", "lowdim")
    return SpecDict(features), SpecDict({"action": action})


def prepare_directory(directory: str | Path) -> Path:
    """An empty directory to build into; refuses to overwrite anything."""
    out = Path(directory)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; build tiny checkpoints into a new directory")
    (out / BACKBONE_DIR).mkdir(parents=True, exist_ok=True)
    return out


def write_tiny_backbone(
    directory: Path,
    model_cls: type[M],
    *,
    n_action_tokens: int,
    image_size: int,
    hidden_size: int,
    layers: int,
    seed: int,
) -> tuple[M, int]:
    """Save a random tiny Llava and its tokenizer under ``directory/backbone``.

    Returns the model and the tokenizer's vocabulary size (its last ``n_action_tokens`` ids are
    the action tokens).
    """
    tokenizer = build_tiny_tokenizer(n_action_tokens)
    ids = {
        "pad": int(tokenizer.pad_token_id),
        "bos": int(tokenizer.bos_token_id),
        "eos": int(tokenizer.eos_token_id),
        "image": int(tokenizer.get_vocab()[IMAGE]),
    }
    config = tiny_llava_config(
        len(tokenizer),
        image_size=image_size,
        hidden_size=hidden_size,
        layers=layers,
        special_ids=ids,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config).eval()
    backbone = directory / BACKBONE_DIR
    with no_progress_bars():
        model.save_pretrained(str(backbone))
    tokenizer.save_pretrained(str(backbone))
    write_preprocessor_config(backbone, image_size)
    return model, len(tokenizer)
