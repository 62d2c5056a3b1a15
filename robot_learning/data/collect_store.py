"""Opening the store a recording session writes to: create it, or resume it after checks.

Why its own module: every refusal (store exists without resume, store missing with resume,
features or rate differ from what the robot records) must happen before a single file is
written, and a failed create must not leave an empty directory behind that the next attempt
would then refuse.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robot_learning.data.errors import StoreError, StoreNotFoundError
from robot_learning.data.store import EpisodeStore
from robot_learning.specs import SpecDict, SpecError

LOG = logging.getLogger(__name__)


def check_target(path: Path, resume: bool) -> None:
    """Refuse early: a store to resume must exist; a new store must not overwrite anything."""
    holds_store = (path / "zarr.json").is_file()
    if resume and not holds_store:
        hint = "the directory holds no zarr.json" if path.is_dir() else "it does not exist"
        raise StoreNotFoundError(
            f"--resume: no episode store at {path} ({hint}); drop --resume to create a new one"
        )
    if not resume and path.exists():
        if holds_store:
            raise StoreError(
                f"{path} already holds an episode store: pass --resume to append episodes to it, "
                "or choose another --out"
            )
        if not path.is_dir() or any(path.iterdir()):
            raise StoreError(f"{path} exists and is not an empty directory; choose another --out")


def feature_mismatch(stored: SpecDict, wanted: SpecDict) -> str | None:
    """A message naming the first feature that differs between a store and a robot, or None."""
    for name, spec in wanted.items():
        if name not in stored:
            return (
                f"feature {name!r} ({_describe(spec.to_json())}) is recorded by this robot/teleop "
                f"but not in the store (store features: {', '.join(stored.names())})"
            )
        if stored[name].to_json() != spec.to_json():
            return (
                f"feature {name!r} differs: the store has {_describe(stored[name].to_json())}, "
                f"this robot/teleop records {_describe(spec.to_json())}"
            )
    for name in stored:
        if name not in wanted:
            return (
                f"feature {name!r} is in the store but this robot/teleop does not record it "
                "(check --robot, --cameras, --image-size)"
            )
    return None


def _describe(spec: Mapping[str, Any]) -> str:
    text = f"{tuple(spec['shape'])} {spec['dtype']} {spec['kind']}"
    extra = {k: v for k, v in spec.items() if k in ("low", "high", "names")}
    return f"{text} {extra}" if extra else text


def open_for_resume(
    path: Path, features: SpecDict, *, actions: tuple[str, ...], fps: float
) -> EpisodeStore:
    """Open ``path`` for appending after checking it records exactly ``features`` at ``fps``.

    The checks read the store without the writer lock, so a refusal writes nothing; only then is
    it opened for appending (which takes the lock and repairs a killed writer's tail).
    """
    with EpisodeStore.open(path, mode="r") as reader:
        problem = feature_mismatch(reader.features, features)
        if problem:
            raise SpecError(f"cannot resume {path}: {problem}")
        if abs(reader.fps - fps) > 1e-9:
            raise SpecError(
                f"cannot resume {path}: the store records at {reader.fps:g} Hz, this session "
                f"would record at {fps:g} Hz (pass --fps {reader.fps:g})"
            )
        stored_actions = sorted(k for k, role in reader.roles.items() if role == "action")
        if stored_actions != sorted(actions):
            raise SpecError(
                f"cannot resume {path}: the store's action features are {stored_actions}, this "
                f"robot's are {sorted(actions)}"
            )
    return EpisodeStore.open(path, mode="a")


def create_store(
    path: Path,
    features: SpecDict,
    *,
    actions: tuple[str, ...],
    fps: float,
    robot: str,
    image_format: str,
    image_quality: int,
    extra_attrs: Mapping[str, Any] | None = None,
) -> EpisodeStore:
    """Create a new store; on failure remove every directory this call created."""
    created = _first_missing(path)
    try:
        return EpisodeStore.create(
            path,
            features,
            actions=actions,
            fps=fps,
            robot=robot,
            image_format=image_format,
            image_quality=image_quality,
            extra_attrs=extra_attrs,
        )
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet (what create would add)."""
    missing = None
    for candidate in [path, *path.parents]:
        if candidate.exists():
            break
        missing = candidate
    return missing


__all__ = ["check_target", "create_store", "feature_mismatch", "open_for_resume"]
