"""The adapter checkpoint directory: our ``config.json`` beside a transformers ``backbone/``.

Layout (``robot_learning.policies.checkpoint`` reads the first three for every policy type)::

    config.json              format, policy type, specs, control rate, "adapter" settings,
                             "backbone" manifest (every file's size and sha256)
    model.safetensors        weights outside the backbone (the flow action expert); may be empty
    normalizer.safetensors   affine statistics (flow: mean/std); may be empty
    backbone/                a ``save_pretrained`` transformers directory: config.json, weights,
                             tokenizer files, preprocessor_config.json (image mean/std/size)

Why a manifest: the server's model hash covers ``config.json``, so recording the backbone files'
hashes there makes the hash change when the backbone does, and lets the loader name a missing or
truncated backbone file before transformers fails on it with a less useful message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from robot_learning.policies.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    read_config,
    read_tensors,
    save_policy_files,
    specs_from_config,
)
from robot_learning.policies.normalizer import Normalizer
from robot_learning.specs import SpecDict

BACKBONE_DIR = "backbone"
REQUIRED_BACKBONE_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json")
T = TypeVar("T")


def file_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"bytes", "sha256"}}`` for every file under ``directory``."""
    return {
        path.relative_to(directory).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        for path in sorted(p for p in directory.rglob("*") if p.is_file())
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_adapter_checkpoint(
    directory: str | Path,
    policy_type: str,
    *,
    observation_spec: SpecDict,
    action_spec: SpecDict,
    control_hz: float,
    adapter: Mapping[str, Any],
    head_state: Mapping[str, torch.Tensor] | None = None,
    normalizer: Normalizer | None = None,
) -> Path:
    """Finish a checkpoint whose ``backbone/`` is already written: tensors, then config.json."""
    out = Path(directory)
    backbone = out / BACKBONE_DIR
    missing = [name for name in REQUIRED_BACKBONE_FILES if not (backbone / name).is_file()]
    if missing:
        raise CheckpointError(f"{backbone}: missing {', '.join(missing)}; write the backbone first")
    config = {
        "observation_spec": observation_spec.to_json(),
        "action_spec": action_spec.to_json(),
        "control_hz": float(control_hz),
        "adapter": dict(adapter),
        "backbone": {"dir": BACKBONE_DIR, "files": file_manifest(backbone)},
    }
    return save_policy_files(
        out, policy_type, dict(head_state or {}), normalizer or Normalizer(), config
    )


@dataclass
class AdapterCheckpoint:
    """A checked adapter checkpoint directory, ready for a loader to build the policy."""

    path: Path
    observation_spec: SpecDict
    action_spec: SpecDict
    control_hz: float
    adapter: dict[str, Any]
    backbone_dir: Path
    head_state: dict[str, torch.Tensor]
    normalizer: Normalizer

    def setting(self, key: str, kind: type[T], default: T | None = None) -> T:
        """``adapter[key]`` as ``kind``; a missing or mistyped entry is a CheckpointError."""
        if key not in self.adapter:
            if default is not None:
                return default
            raise CheckpointError(f"{self.path}/config.json: 'adapter' lacks {key!r}")
        value = self.adapter[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(
                f"{self.path}/config.json: adapter {key!r} is {value!r}, expected a {kind.__name__}"
            )
        return value


def _check_backbone(path: Path, entry: Any, verify_hashes: bool) -> Path:
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise CheckpointError(f"{path}/config.json: 'backbone' must name its 'dir' and 'files'")
    files: dict[str, Any] = entry["files"]
    for name in [str(entry.get("dir", BACKBONE_DIR)), *files]:
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise CheckpointError(
                f"{path}/config.json: backbone path {name!r} leaves the checkpoint"
            )
    backbone = path / str(entry.get("dir", BACKBONE_DIR))
    if not backbone.is_dir():
        raise CheckpointError(f"{path}: the backbone directory {backbone.name}/ is missing")
    names = sorted(set(files) | set(REQUIRED_BACKBONE_FILES))
    missing = [name for name in names if not (backbone / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{path}: the backbone lacks {', '.join(f'{backbone.name}/{m}' for m in missing)}"
        )
    for name, info in files.items():
        if not isinstance(info, dict):
            raise CheckpointError(f"{path}/config.json: manifest entry {name!r} is not an object")
        size = (backbone / name).stat().st_size
        if size != info.get("bytes"):
            raise CheckpointError(
                f"{path}: {backbone.name}/{name} has {size} bytes, the manifest says "
                f"{info.get('bytes')} (truncated or replaced)"
            )
        if verify_hashes and sha256_file(backbone / name) != info.get("sha256"):
            raise CheckpointError(f"{path}: {backbone.name}/{name} does not match its sha256")
    return backbone


def read_adapter_checkpoint(
    directory: str | Path, policy_type: str, *, verify_hashes: bool = False
) -> AdapterCheckpoint:
    """Read and check everything but the backbone weights (the loader builds the model)."""
    path = Path(directory)
    config = read_config(path)
    if config.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}/config.json: format {config.get('format')!r}, this code reads {FORMAT_VERSION}"
        )
    if config["policy"] != policy_type:
        raise CheckpointError(
            f"{path}: config.json names policy {config['policy']!r}, not {policy_type!r}"
        )
    observation_spec, action_spec = specs_from_config(config)
    adapter = config.get("adapter")
    if not isinstance(adapter, dict):
        raise CheckpointError(f"{path}/config.json lacks the 'adapter' settings")
    backbone = _check_backbone(path, config.get("backbone"), verify_hashes)
    state, normalizer = read_tensors(path)
    return AdapterCheckpoint(
        path=path,
        observation_spec=observation_spec,
        action_spec=action_spec,
        control_hz=float(config.get("control_hz", 20.0)),
        adapter=adapter,
        backbone_dir=backbone,
        head_state=state,
        normalizer=normalizer,
    )
