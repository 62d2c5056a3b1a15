"""The supervised training loop for chunked policies (CleanRL-style: one readable function).

Steps: read the store's specs and statistics, build the policy from the recipe, then repeat
sample batch -> loss -> AdamW step -> EMA update, with progress lines (loss, samples/s, ETA),
periodic checkpoints (EMA weights as a loadable policy + resumable train state), periodic sim
evaluation, and a wall-clock budget. Runs as one process or under ``torchrun`` (DDP).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_learning.data.stats import dataset_stats
from robot_learning.data.store import EpisodeStore
from robot_learning.policies.checkpoint import NORMALIZER_FILE
from robot_learning.policies.diffusion import DiffusionPolicy, normalization_modes
from robot_learning.policies.diffusion_io import save_diffusion
from robot_learning.policies.normalizer import Normalizer
from robot_learning.specs import SpecError
from robot_learning.train import distributed as D
from robot_learning.train.batches import InMemoryWindows
from robot_learning.train.curves import plot_curves
from robot_learning.train.ema import EMA
from robot_learning.train.recipe import Recipe
from robot_learning.train.state import has_train_state, load_train_state, save_train_state

LOG = logging.getLogger(__name__)
PROGRESS = logging.getLogger("robot_learning.cli")


class TrainError(ValueError):
    """Training cannot start (bad data, recipe or output directory); the message says why."""


@dataclass
class TrainResult:
    out: Path
    steps: int
    wall_s: float
    samples_per_s: float
    final_loss: float
    stopped_by_budget: bool
    evals: list[dict[str, Any]] = field(default_factory=list)


def build_policy(recipe: Recipe, store: EpisodeStore) -> DiffusionPolicy:
    """A fresh policy for the store's features, normalized with the store's statistics."""
    cfg = recipe.policy
    spec = store.features
    if not cfg.obs_keys:
        cfg.obs_keys = [
            k
            for k in [*store.array_keys("observation"), *store.language_keys]
            if spec[k].kind in cfg.obs_kinds and k not in cfg.exclude_keys
        ]
        if not cfg.obs_keys:
            raise SpecError(
                f"{store.root} has no observation features of kinds {cfg.obs_kinds}; it has: "
                + ", ".join(f"{k} ({spec[k].kind})" for k in spec)
            )
    for key in [*cfg.obs_keys, cfg.action_key]:
        if key not in spec:
            raise SpecError(
                f"recipe {recipe.name!r} uses feature {key!r}, which {store.root} does not have; "
                f"it has: {', '.join(spec)}"
            )
    stats = dataset_stats(store, write=False)["features"]
    modes = normalization_modes(spec, cfg)
    normalizer = Normalizer.fit(stats, modes, {k: spec[k].shape for k in modes})
    for key in cfg.obs_keys:
        if spec[key].kind == "language":
            normalizer.set(key, *instruction_centring(store, key, cfg.language_encoder))
    return DiffusionPolicy(cfg, spec, spec, normalizer, control_hz=store.fps or 20.0)


def instruction_centring(
    store: EpisodeStore, key: str, encoder: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalization of language feature ``key`` from its episodes' instructions."""
    from robot_learning.policies.encoders.language import centring, sentence_embedder

    texts = [
        str(m.get("language", {}).get(key, m.get("instruction", ""))) for m in store.episodes_meta()
    ]
    return centring(sentence_embedder(encoder).embed(texts))


def lr_lambda(recipe: Recipe) -> Any:
    warm, total = recipe.train.warmup_steps, recipe.train.steps

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / max(1, warm)
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def split_episodes(n: int, val: int, seed: int) -> tuple[list[int], list[int]]:
    if val <= 0:
        return list(range(n)), []
    if val >= n:
        raise TrainError(f"val_episodes={val} leaves no training episodes (store has {n})")
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[val:].tolist()), sorted(order[:val].tolist())


def train(
    recipe: Recipe,
    data: str | Path,
    out: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    device: str | None = None,
) -> TrainResult:
    """Train ``recipe`` on the store at ``data``; everything is written under ``out``."""
    out = Path(out)
    ctx = D.init_distributed(device)
    tc = recipe.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    if out.exists() and any(out.iterdir()) and not resume:
        raise TrainError(f"{out} is not empty; pass --resume to continue it or choose a new --out")
    if resume and not has_train_state(out):
        raise TrainError(f"--resume: {out} holds no training state to continue")
    try:
        store = EpisodeStore.open(data, "r")
    except FileNotFoundError:
        raise TrainError(f"no episode store at {data}") from None
    with store:
        if store.n_episodes == 0:
            raise TrainError(f"{data} has no committed episodes to train on")
        n_episodes = store.n_episodes
        if not recipe.eval.task:
            robot = str(store.episodes_meta()[0].get("robot", ""))
            if robot.startswith("sim:"):
                recipe.eval.task = robot.removeprefix("sim:")  # evaluate where the data came from
        torch.manual_seed(tc.seed)
        policy = build_policy(recipe, store).to(ctx.device)
    train_eps, val_eps = split_episodes(n_episodes, tc.val_episodes, tc.seed)
    cfg = recipe.policy
    windows = InMemoryWindows(
        data, cfg.n_obs_steps, cfg.horizon, cfg.obs_keys, [cfg.action_key], train_eps
    )
    val_windows = (
        InMemoryWindows(data, cfg.n_obs_steps, cfg.horizon, cfg.obs_keys, [cfg.action_key], val_eps)
        if val_eps
        else None
    )
    model: torch.nn.Module = policy
    if ctx.enabled:
        model = torch.nn.parallel.DistributedDataParallel(policy)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    ema = EMA(policy, tc.ema_power, tc.ema_max_decay)
    rng = np.random.default_rng([tc.seed, ctx.rank])
    step, metrics, evals, elapsed_before = 0, [], [], 0.0
    if resume:
        info = load_train_state(out, policy, ema.model, optimizer, rng)
        # keep normalizing with the run's own statistics, even if the store has grown since
        assert isinstance(ema.model, DiffusionPolicy)
        policy.normalizer = ema.model.normalizer = Normalizer.load(out / NORMALIZER_FILE)
        step, elapsed_before = int(info["step"]), float(info.get("wall_s", 0.0))
        ema.step = int(info.get("ema_step", step))
        metrics, evals = _read_jsonl(out / "metrics.jsonl"), _read_jsonl(out / "evals.jsonl")
        PROGRESS.info("resuming %s at step %d", out, step)
    schedule = lr_lambda(recipe)
    total = tc.steps if max_steps is None else min(tc.steps, step + max_steps)
    per_rank = max(1, tc.batch_size // ctx.world_size)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        PROGRESS.info(
            "training %s: %d parameters, %d windows from %d episodes, batch %d, steps %d -> %d",
            recipe.name,
            policy.num_parameters(),
            len(windows),
            len(train_eps),
            tc.batch_size,
            step,
            total,
        )
    start = time.monotonic()
    window_start, window_losses, window_samples = time.monotonic(), [], 0
    budget_s = tc.budget_minutes * 60.0
    stopped_by_budget = False
    eval_s = 0.0  # time spent evaluating does not count against the training budget
    last_loss = float("nan")
    model.train()
    while step < total:
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * schedule(step)
        batch = windows.batch(rng.integers(0, len(windows), per_rank))
        loss = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), tc.grad_clip)
        optimizer.step()
        ema.update(policy)
        step += 1
        last_loss = float(loss.item())
        if not math.isfinite(last_loss):
            raise TrainError(
                f"the loss became {last_loss} at step {step}; lower train.lr (now {tc.lr})"
            )
        window_losses.append(last_loss)
        window_samples += per_rank * ctx.world_size
        elapsed = elapsed_before + time.monotonic() - start - eval_s
        if step % tc.log_every == 0 or step == total:
            rate = window_samples / max(1e-9, time.monotonic() - window_start)
            entry = {
                "step": step,
                "loss": float(np.mean(window_losses)),
                "lr": optimizer.param_groups[0]["lr"],
                "samples_per_s": rate,
                "wall_s": elapsed,
            }
            if val_windows is not None:
                entry["val_loss"] = validation_loss(ema.model, val_windows, tc.batch_size, tc.seed)
            if ctx.is_main:
                metrics.append(entry)
                _append_jsonl(out / "metrics.jsonl", entry)
                PROGRESS.info(_progress_line(entry, total, elapsed, budget_s))
            window_start, window_losses, window_samples = time.monotonic(), [], 0
        out_of_budget = budget_s > 0 and elapsed >= budget_s
        if ctx.enabled:  # ranks decide together, at the same steps, so none waits alone
            out_of_budget = step % tc.log_every == 0 and D.any_rank(out_of_budget, ctx)
        if ctx.is_main and (step % tc.checkpoint_every == 0 or step == total or out_of_budget):
            save_checkpoint(out, recipe, policy, ema, optimizer, rng, step, elapsed, data)
        if ctx.is_main and recipe.eval.every and recipe.eval.task and step % recipe.eval.every == 0:
            t_eval = time.monotonic()
            evals.append(run_eval(recipe, ema.model, step, recipe.eval.episodes))
            eval_s += time.monotonic() - t_eval
            _append_jsonl(out / "evals.jsonl", evals[-1])
        if out_of_budget and step < total:
            stopped_by_budget = True
            PROGRESS.info(
                "stopping at step %d: the %.0f-minute budget is spent", step, tc.budget_minutes
            )
            break
    wall = elapsed_before + time.monotonic() - start - eval_s
    if ctx.is_main:
        save_checkpoint(out, recipe, policy, ema, optimizer, rng, step, wall, data)
        plot_curves(metrics, evals, out / "curves.png")
    D.barrier(ctx)
    D.shutdown(ctx)
    rate = float(np.mean([m["samples_per_s"] for m in metrics[-5:]])) if metrics else 0.0
    return TrainResult(out, step, wall, rate, last_loss, stopped_by_budget, evals)


def _progress_line(entry: dict[str, Any], total: int, elapsed: float, budget_s: float) -> str:
    step = entry["step"]
    eta = elapsed / step * (total - step) if step else 0.0
    if budget_s > 0:
        eta = min(eta, max(0.0, budget_s - elapsed))
    val = f" val {entry['val_loss']:.4f}" if entry.get("val_loss") is not None else ""
    return (
        f"step {step}/{total} ({100 * step / total:.0f}%) loss {entry['loss']:.4f}{val} "
        f"{entry['samples_per_s']:.0f} samples/s lr {entry['lr']:.2e} "
        f"elapsed {elapsed / 60:.1f} min eta {eta / 60:.1f} min"
    )


@torch.no_grad()
def validation_loss(
    model: torch.nn.Module, windows: InMemoryWindows, batch_size: int, seed: int
) -> float:
    """Loss of held-out windows with fixed noise draws, so values are comparable across steps."""
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    idx = np.random.default_rng(seed).integers(0, len(windows), min(len(windows), 4 * batch_size))
    losses = [
        float(model(windows.batch(idx[i : i + batch_size])).item())
        for i in range(0, len(idx), batch_size)
    ]
    torch.set_rng_state(state)
    return float(np.mean(losses))


def save_checkpoint(
    out: Path,
    recipe: Recipe,
    policy: DiffusionPolicy,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    step: int,
    wall_s: float,
    data: str | Path,
) -> None:
    """The EMA policy as a loadable checkpoint in ``out`` plus the resumable train state."""
    assert isinstance(ema.model, DiffusionPolicy)
    extra = {
        "recipe": recipe.to_json(),
        "train": {"step": step, "wall_s": wall_s, "data": str(data)},
    }
    save_diffusion(ema.model, out, extra=extra)
    save_train_state(
        out,
        policy,
        ema.model,
        optimizer,
        {"step": step, "ema_step": ema.step, "wall_s": wall_s},
        rng,
    )


def run_eval(recipe: Recipe, policy: torch.nn.Module, step: int, episodes: int) -> dict[str, Any]:
    from robot_learning.eval.rollout import evaluate

    assert isinstance(policy, DiffusionPolicy)
    ec = recipe.eval
    result = evaluate(
        policy,
        ec.task,
        episodes,
        variant=ec.variant,
        num_envs=ec.num_envs,
        seed=10_000,
        execution=ec.execution,  # type: ignore[arg-type]
    )
    entry = {
        "step": step,
        "task": ec.task,
        "variant": ec.variant,
        "episodes": episodes,
        "success_rate": result.success_rate,
        "success_ci95_low": result.ci95_low,
        "success_ci95_high": result.ci95_high,
        "latency_ms_p50": result.latency_ms_p50,
    }
    PROGRESS.info(
        "eval at step %d: %s success %.0f%% (95%% CI %.0f-%.0f%%) over %d episodes",
        step,
        ec.task,
        100 * result.success_rate,
        100 * result.ci95_low,
        100 * result.ci95_high,
        episodes,
    )
    policy.train()
    return entry


def _append_jsonl(path: Path, entry: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
