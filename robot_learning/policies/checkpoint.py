"""Policy checkpoints: ``model.safetensors`` + ``config.json`` + ``normalizer.safetensors``.

Why this format: safetensors holds only tensors (loading cannot run code, unlike pickle/dill
checkpoints), and ``config.json`` is readable by people and other tools: the policy type, its
typed config, the feature specs it was trained on, the control rate and the training recipe.
Loading rebuilds the policy from the config and refuses weights that do not fit it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from robot_learning.policies.normalizer import Normalizer
from robot_learning.specs import SpecDict

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
NORMALIZER_FILE = "normalizer.safetensors"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A directory is not a loadable policy checkpoint; the message says what is wrong."""


def cpu_tensors(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies: the form ``safetensors.save_file`` accepts."""
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and rename, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty directory to fill; on success it replaces ``target`` by renames.

    Why: a resume state is several files that only make sense together. Overwriting them in
    place means a kill mid-save leaves half-new, half-old (or truncated) files. Here ``target``
    always holds a whole save: the new one, or the one before it (see :func:`whole_dir`).
    """
    staging = target.with_name(target.name + ".partial")
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
    os.replace(staging, target)
    shutil.rmtree(previous, ignore_errors=True)


def whole_dir(target: Path) -> Path | None:
    """The last whole save written by :func:`staged_dir`, or ``None`` if there is none.

    A kill between the two renames leaves only ``<target>.previous``; it is still whole.
    """
    for candidate in (target, target.with_name(target.name + ".previous")):
        if candidate.is_dir():
            return candidate
    return None


def save_policy_files(
    directory: str | Path,
    policy_type: str,
    state: dict[str, Any],
    normalizer: Normalizer,
    config: dict[str, Any],
) -> Path:
    """Write the three files (tensors first, ``config.json`` last: its presence marks it whole)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file(cpu_tensors(state), str(out / (MODEL_FILE + ".tmp")))
    os.replace(out / (MODEL_FILE + ".tmp"), out / MODEL_FILE)
    normalizer.save(out / (NORMALIZER_FILE + ".tmp"))
    os.replace(out / (NORMALIZER_FILE + ".tmp"), out / NORMALIZER_FILE)
    write_json_atomic(
        out / CONFIG_FILE, {"format": FORMAT_VERSION, "policy": policy_type, **config}
    )
    return out


def read_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    missing = [f for f in (CONFIG_FILE, MODEL_FILE, NORMALIZER_FILE) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{path} is not a policy checkpoint: missing {', '.join(missing)} (a checkpoint "
            f"holds {CONFIG_FILE}, {MODEL_FILE} and {NORMALIZER_FILE})"
        )
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / CONFIG_FILE} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "policy" not in config:
        raise CheckpointError(f"{path / CONFIG_FILE} does not name a policy type")
    return config


def read_tensors(directory: str | Path) -> tuple[dict[str, Any], Normalizer]:
    path = Path(directory)
    try:
        state = load_file(str(path / MODEL_FILE))
        normalizer = Normalizer.load(path / NORMALIZER_FILE)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: cannot read the weights: {exc}") from None
    return state, normalizer


def specs_from_config(config: dict[str, Any]) -> tuple[SpecDict, SpecDict]:
    try:
        return SpecDict.from_json(config["observation_spec"]), SpecDict.from_json(
            config["action_spec"]
        )
    except KeyError as exc:
        raise CheckpointError(f"config.json lacks {exc.args[0]!r}") from None
