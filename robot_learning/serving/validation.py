"""Checks an ``infer`` request against the policy's specs before it is queued.

Why before queueing: one malformed request must never reach ``predict_chunk``, where it would fail
the whole batch (other robots' requests included) or, worse, produce actions from garbage. Every
violation becomes an error reply whose message names the feature and says what is valid, and the
connection stays usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_learning.serving.protocol import short_repr

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy


class RequestError(Exception):
    """A request that gets an error reply with ``code``; the connection stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PolicyLayout:
    """What a policy accepts, precomputed once so validation does no spec lookups per request."""

    name: str
    features: tuple[tuple[str, str, tuple[int, ...], np.dtype[Any] | None], ...]
    names: frozenset[str]
    action_dim: int
    chunk_len: int

    @staticmethod
    def of(name: str, policy: Policy) -> PolicyLayout:
        features: list[tuple[str, str, tuple[int, ...], np.dtype[Any] | None]] = []
        for key, spec in policy.observation_spec.items():
            if spec.kind == "language":
                features.append((key, spec.kind, (), None))
            else:
                shape = (int(policy.n_obs_steps), *spec.shape)
                features.append((key, spec.kind, shape, np.dtype(spec.dtype)))
        return PolicyLayout(
            name=name,
            features=tuple(features),
            names=frozenset(k for k, *_ in features),
            action_dim=int(policy.action_dim),
            chunk_len=int(policy.chunk_len),
        )


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def check_obs(layout: PolicyLayout, obs: Any) -> dict[str, Any]:
    """The observation map, checked feature by feature against ``layout``."""
    if not isinstance(obs, Mapping):
        raise RequestError(
            "bad_request",
            f"'obs' must be a map of feature name -> array, got {_describe(obs)}",
        )
    expected = ", ".join(sorted(layout.names))
    extra = [k for k in obs if k not in layout.names]
    if extra:
        raise RequestError(
            "spec_mismatch",
            f"observation has unknown features {short_repr(sorted(map(str, extra)))} for policy "
            f"{layout.name!r}; expected exactly: {expected}",
        )
    for key, kind, shape, dtype in layout.features:
        if key not in obs:
            raise RequestError(
                "spec_mismatch",
                f"observation lacks feature {key!r} for policy {layout.name!r}; expected "
                f"exactly: {expected}",
            )
        value = obs[key]
        if dtype is None:  # language
            if not isinstance(value, str):
                raise RequestError(
                    "spec_mismatch",
                    f"feature {key!r} ({kind}) must be a str, got {_describe(value)}",
                )
            continue
        if not isinstance(value, np.ndarray):
            raise RequestError(
                "spec_mismatch",
                f"feature {key!r} must be an array of shape {shape} and dtype {dtype}, got "
                f"{_describe(value)}",
            )
        if value.shape != shape:
            raise RequestError(
                "spec_mismatch",
                f"feature {key!r} has shape {value.shape}, expected {shape} = (n_obs_steps, "
                "*feature shape) for one robot, no batch dimension",
            )
        if value.dtype != dtype:
            raise RequestError(
                "spec_mismatch", f"feature {key!r} has dtype {value.dtype}, expected {dtype}"
            )
        if dtype.kind == "f" and not np.isfinite(value).all():
            raise RequestError("spec_mismatch", f"feature {key!r} contains NaN or Inf")
    return dict(obs)


def check_prefix(layout: PolicyLayout, prefix: Any) -> np.ndarray | None:
    """The committed-action prefix as float32 ``[P, A]``, or None when absent or empty."""
    if prefix is None:
        return None
    want = f"float array [P, {layout.action_dim}] with 0 <= P <= chunk_len ({layout.chunk_len})"
    if not isinstance(prefix, np.ndarray) or prefix.dtype.kind != "f":
        raise RequestError("bad_request", f"'prefix' must be a {want}, got {_describe(prefix)}")
    if prefix.ndim != 2 or prefix.shape[1] != layout.action_dim:
        raise RequestError("bad_request", f"'prefix' has shape {prefix.shape}; expected a {want}")
    if prefix.shape[0] > layout.chunk_len:
        raise RequestError(
            "bad_request",
            f"'prefix' has {prefix.shape[0]} steps, more than chunk_len ({layout.chunk_len})",
        )
    if prefix.shape[0] == 0:
        return None
    if not np.isfinite(prefix).all():
        raise RequestError("bad_request", "'prefix' contains NaN or Inf")
    return prefix.astype(np.float32, copy=False)


def check_request_id(message: Mapping[str, Any]) -> int:
    request_id = message.get("id")
    if type(request_id) is not int:
        raise RequestError("bad_request", f"'id' must be an integer, got {short_repr(request_id)}")
    return request_id


def resolve_policy(message: Mapping[str, Any], names: Mapping[str, Any], default: str) -> str:
    name = message.get("policy")
    if name is None:
        return default
    if not isinstance(name, str) or name not in names:
        raise RequestError(
            "unknown_policy",
            f"unknown policy {short_repr(name)}; this server serves: {', '.join(sorted(names))}",
        )
    return name
