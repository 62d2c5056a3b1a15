"""Feature specs: the one description of every stream that flows robot -> dataset -> policy.

A spec maps a feature name to its shape, dtype and kind. The same mapping is produced by a robot
or env, stored by the recorder, checked by the sampler, the policy and the server, so a mismatch
fails early with a message that names the feature instead of deep inside a model.
"""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

FeatureKind = Literal["rgb", "depth", "lowdim", "tactile", "language"]
FEATURE_KINDS: tuple[str, ...] = get_args(FeatureKind)


class SpecError(ValueError):
    """A value or spec does not match what a feature spec declares."""


@dataclass(frozen=True)
class FeatureSpec:
    """Shape, dtype and kind of one feature; optional bounds for low-dim features.

    ``low``/``high`` are per-element bounds (broadcast to ``shape``) used for clamping actions and
    building observation spaces; ``names`` optionally labels the elements (e.g. joint names), so
    consumers can map by name, never by index.
    """

    shape: tuple[int, ...]
    dtype: str
    kind: FeatureKind
    low: float | tuple[float, ...] | None = None
    high: float | tuple[float, ...] | None = None
    names: tuple[str, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise SpecError(f"unknown feature kind {self.kind!r}; valid kinds: {FEATURE_KINDS}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.kind == "language":
            if self.dtype != "str" or self.shape != ():
                raise SpecError("language features are scalar strings: shape () and dtype 'str'")
        else:
            np.dtype(self.dtype)  # raises TypeError on an invalid dtype name
        if self.kind == "rgb" and (len(self.shape) != 3 or self.shape[-1] != 3):
            raise SpecError(f"rgb features are (H, W, 3), got {self.shape}")
        if self.kind == "depth" and len(self.shape) != 2:
            raise SpecError(f"depth features are (H, W), got {self.shape}")
        if self.names is not None and len(self.names) != math.prod(self.shape):
            raise SpecError(f"{len(self.names)} names given for a feature of shape {self.shape}")

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-element (low, high) arrays; +-inf where unbounded."""

        def full(value: float | tuple[float, ...] | None, default: float) -> np.ndarray:
            if value is None:
                return np.full(self.shape, default)
            return np.broadcast_to(np.asarray(value, dtype=np.float64), self.shape).copy()

        return full(self.low, -np.inf), full(self.high, np.inf)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype, "kind": self.kind}
        for key in ("low", "high", "names"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        if self.description:
            out["description"] = self.description
        return out

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> FeatureSpec:
        def tup(v: Any) -> Any:
            return tuple(v) if isinstance(v, list) else v

        return FeatureSpec(
            shape=tuple(obj["shape"]),
            dtype=str(obj["dtype"]),
            kind=obj["kind"],
            low=tup(obj.get("low")),
            high=tup(obj.get("high")),
            names=tup(obj.get("names")),
            description=str(obj.get("description", "")),
        )


@dataclass(frozen=True)
class SpecDict:
    """An ordered ``name -> FeatureSpec`` mapping with validation helpers."""

    features: dict[str, FeatureSpec] = field(default_factory=dict)

    def __getitem__(self, name: str) -> FeatureSpec:
        try:
            return self.features[name]
        except KeyError:
            valid = sorted(self.features)
            raise SpecError(f"unknown feature {name!r}; valid features: {valid}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.features

    def __iter__(self) -> Iterator[str]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def items(self) -> ItemsView[str, FeatureSpec]:
        return self.features.items()

    def names(self) -> list[str]:
        return list(self.features)

    def of_kind(self, *kinds: str) -> dict[str, FeatureSpec]:
        return {k: v for k, v in self.features.items() if v.kind in kinds}

    def to_json(self) -> dict[str, Any]:
        return {name: spec.to_json() for name, spec in self.features.items()}

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> SpecDict:
        return SpecDict({name: FeatureSpec.from_json(v) for name, v in obj.items()})

    def validate(
        self, values: Mapping[str, Any], *, what: str = "observation", allow_extra: bool = False
    ) -> None:
        """Raise ``SpecError`` naming the first feature whose value is missing or malformed."""
        missing = [n for n in self.features if n not in values]
        if missing:
            raise SpecError(f"{what} is missing features {missing}; expected {self.names()}")
        if not allow_extra:
            extra = [n for n in values if n not in self.features]
            if extra:
                raise SpecError(f"{what} has unknown features {extra}; expected {self.names()}")
        for name, spec in self.features.items():
            check_value(name, spec, values[name], what=what)

    def check_compatible(self, other: SpecDict, *, what: str = "spec") -> None:
        """Raise if ``other`` lacks a feature of ``self`` or declares it differently."""
        for name, spec in self.features.items():
            if name not in other.features:
                raise SpecError(f"{what}: feature {name!r} is missing; have {other.names()}")
            theirs = other.features[name]
            if (spec.shape, spec.dtype, spec.kind) != (theirs.shape, theirs.dtype, theirs.kind):
                raise SpecError(
                    f"{what}: feature {name!r} is {theirs.shape}/{theirs.dtype}/{theirs.kind}, "
                    f"expected {spec.shape}/{spec.dtype}/{spec.kind}"
                )


def check_value(name: str, spec: FeatureSpec, value: Any, *, what: str = "value") -> None:
    """Check one value against its spec: type, shape, dtype kind, and finiteness for floats."""
    if spec.kind == "language":
        if not isinstance(value, str):
            raise SpecError(f"{what} feature {name!r} must be a str, got {type(value).__name__}")
        return
    arr = np.asarray(value)
    if arr.shape != spec.shape:
        raise SpecError(f"{what} feature {name!r} has shape {arr.shape}, expected {spec.shape}")
    if arr.dtype.kind not in "biuf":
        raise SpecError(f"{what} feature {name!r} has non-numeric dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise SpecError(f"{what} feature {name!r} contains NaN or Inf")
