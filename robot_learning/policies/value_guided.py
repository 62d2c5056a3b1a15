"""``ValueGuidedPolicy``: sample K chunks from any policy, execute the one a critic likes best.

Why (V-GPS, Nakamoto et al. 2024): a generalist policy trained by imitation proposes good and
bad chunks alike; an offline critic ``Q(window, chunk)`` trained on success-labelled episodes
can pick among its proposals without touching the policy's weights. Each observation is repeated
K times so the base runs ONE batched call of ``B*K`` (its sampling noise makes the rows differ),
every proposal is scored, and the argmax chunk per row is returned. ``num_samples=1`` returns
the base's own chunk untouched. Cost: K times the base's inference per call, plus a small MLP.

The wrapper keeps the base's specs, window, chunking and control rate, and passes the committed
prefix through to the base, so the server, the chunk executor and the evaluator treat it like the
base. Checkpoint: ``config.json`` (policy ``value_guided``), the critic's ``q.safetensors`` and
``q_normalizer.safetensors``, and a copy of the base checkpoint under ``base/``. The standard
``model.safetensors``/``normalizer.safetensors`` are empty placeholders (every checkpoint has
them); ``config.json`` records the critic's sha256, so a server's model hash covers it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from safetensors.numpy import save_file

from robot_learning.policies.base import Policy
from robot_learning.policies.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    CheckpointError,
    read_config,
    write_json_atomic,
)
from robot_learning.policies.value.q_network import (
    Q_FILE,
    Q_NORMALIZER_FILE,
    QConfig,
    QFunction,
    load_q,
    save_q,
)
from robot_learning.specs import SpecError

POLICY_TYPE = "value_guided"
BASE_DIR = "base"
COPIED_SUFFIXES = (".safetensors", ".json", ".yaml")


class ChunkScorer(Protocol):
    """Anything that scores ``(window, chunk)`` rows: float ``[N]``, higher is better."""

    def score(self, obs: Mapping[str, Any], chunks: np.ndarray) -> np.ndarray: ...


class ValueGuidedPolicy(Policy):
    """``base`` proposes ``num_samples`` chunks per observation; ``q`` picks one."""

    def __init__(
        self,
        base: Policy,
        q: ChunkScorer,
        num_samples: int = 8,
        base_dir: str | Path | None = None,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if isinstance(q, QFunction):
            check_critic_fits(q.config, base)
        self.base = base
        self.q = q
        self.num_samples = int(num_samples)
        self.base_dir = None if base_dir is None else Path(base_dir)
        self.observation_spec = base.observation_spec
        self.action_spec = base.action_spec
        self.n_obs_steps = base.n_obs_steps
        self.chunk_len = base.chunk_len
        self.n_action_steps = base.n_action_steps
        self.control_hz = base.control_hz
        self.supports_prefix = base.supports_prefix
        self.last_scores: np.ndarray | None = None  # [B, K] of the latest call (diagnostics)

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        if self.num_samples == 1:
            return self.base.predict_chunk(obs, prefix)
        batch = self.check_batch(obs)
        k = self.num_samples
        repeated = repeat_rows(obs, self.observation_spec.names(), k)
        rep_prefix = None if prefix is None else np.repeat(np.asarray(prefix), k, axis=0)
        chunks = np.asarray(self.base.predict_chunk(repeated, rep_prefix), np.float32)
        if chunks.shape[0] != batch * k:
            raise SpecError(
                f"the base returned {chunks.shape[0]} chunks for {batch * k} repeated windows"
            )
        scores = np.asarray(self.q.score(repeated, chunks), np.float64).reshape(batch, k)
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        best = scores.argmax(axis=1)
        self.last_scores = scores
        return chunks.reshape(batch, k, *chunks.shape[1:])[np.arange(batch), best]

    def reset(self) -> None:
        self.base.reset()


def repeat_rows(obs: Mapping[str, Any], keys: list[str], k: int) -> dict[str, Any]:
    """Each row of each ``keys`` entry ``k`` times in a row (row ``b`` -> rows ``b*k..b*k+k-1``)."""
    out: dict[str, Any] = {}
    for key in keys:
        value = obs[key]
        if isinstance(value, (list, tuple)):
            out[key] = [item for item in value for _ in range(k)]
        else:
            out[key] = np.repeat(np.asarray(value), k, axis=0)
    return out


def check_critic_fits(config: QConfig, base: Policy) -> None:
    """The critic must read only what the base is given and score what the base produces."""
    for key, dim in zip(config.obs_keys, config.obs_dims):
        if key not in base.observation_spec or base.observation_spec[key].size != dim:
            raise SpecError(
                f"the critic reads observation {key!r} ({dim} values), which the base policy "
                f"does not take; the base's observations: {', '.join(base.observation_spec)}"
            )
    if config.language_key is not None and config.language_key not in base.observation_spec:
        raise SpecError(f"the critic reads {config.language_key!r}; the base does not take it")
    if config.n_obs_steps > base.n_obs_steps or config.action_horizon > base.chunk_len:
        raise SpecError(
            f"the critic reads {config.n_obs_steps} observation(s) and {config.action_horizon} "
            f"action(s); the base gives {base.n_obs_steps} and chunks of {base.chunk_len}"
        )
    if config.action_dim != base.action_dim:
        raise SpecError(
            f"the critic scores {config.action_dim}-d actions; the base's are {base.action_dim}-d"
        )


# ---- checkpoint ---------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_checkpoint(source: Path, target: Path) -> None:
    """Copy a checkpoint's own files (not training state), and its ``base/`` if it wraps one."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    config = json.loads((source / CONFIG_FILE).read_text())
    nested = config.get("base")
    if isinstance(nested, str) and (source / nested).is_dir():
        copy_checkpoint(source / nested, target / nested)
    files = [p for p in source.iterdir() if p.is_file() and p.suffix in COPIED_SUFFIXES]
    for path in sorted(files, key=lambda p: p.name == CONFIG_FILE):  # config last: marks it whole
        shutil.copy2(path, target / path.name)


def save_value_guided(
    policy: ValueGuidedPolicy, directory: str | Path, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write the wrapped policy; ``extra`` (e.g. the critic's training summary) goes in config."""
    out = Path(directory)
    if not isinstance(policy.q, QFunction):
        raise ValueError("only a QFunction critic can be saved (a custom scorer has no files)")
    if policy.base_dir is None:
        raise ValueError("the base policy has no checkpoint directory to copy under base/")
    if out.resolve() == policy.base_dir.resolve():
        raise ValueError(f"{out}: refusing to write the wrapper over its own base checkpoint")
    out.mkdir(parents=True, exist_ok=True)
    base_out = out / BASE_DIR
    if policy.base_dir.resolve() != base_out.resolve():
        copy_checkpoint(policy.base_dir, base_out)
    save_q(policy.q, out)
    for name in (MODEL_FILE, NORMALIZER_FILE):  # the critic's tensors are in q*.safetensors
        save_file({}, str(out / name), metadata={"policy": POLICY_TYPE, "weights": Q_FILE})
    config = {
        "format": 1,
        "policy": POLICY_TYPE,
        "num_samples": policy.num_samples,
        "q": policy.q.config.to_json(),
        "base": BASE_DIR,
        "observation_spec": policy.observation_spec.to_json(),
        "action_spec": policy.action_spec.to_json(),
        "control_hz": policy.control_hz,
        "q_sha256": _sha256(out / Q_FILE),
        "q_normalizer_sha256": _sha256(out / Q_NORMALIZER_FILE),
        "base_config_sha256": _sha256(base_out / CONFIG_FILE),
        "base_model_sha256": _sha256(base_out / MODEL_FILE),
        **dict(extra or {}),
    }
    write_json_atomic(out / CONFIG_FILE, config)
    return out


def load_value_guided(
    directory: str | Path, device: str = "cpu", num_samples: int | None = None, **overrides: Any
) -> ValueGuidedPolicy:
    """Load base (``overrides`` such as ``inference_steps`` go to it) and critic (CPU)."""
    from robot_learning.policies import load_policy

    path = Path(directory)
    config = read_config(path)
    try:
        q_config = QConfig.from_json(config["q"])
        saved_k = int(config["num_samples"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: config.json lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid critic config: {exc}") from None
    for name, key in ((Q_FILE, "q_sha256"), (Q_NORMALIZER_FILE, "q_normalizer_sha256")):
        if (path / name).is_file() and config.get(key) not in (None, _sha256(path / name)):
            raise CheckpointError(
                f"{path / name} is not the file this config.json was saved with (sha256 "
                "differs); the directory mixes files of different saves"
            )
    base_dir = path / str(config.get("base", BASE_DIR))
    base = load_policy(base_dir, device=device, **overrides)
    q = load_q(path, q_config)
    try:
        return ValueGuidedPolicy(base, q, num_samples or saved_k, base_dir=base_dir)
    except (SpecError, ValueError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
