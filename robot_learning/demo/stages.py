"""The demo's stages: collect -> train -> eval -> ROS 2 loop (the report is :mod:`.report`).

Each stage takes the config and the results of the stages before it and returns a JSON-able
result. Collection and training pick up where an interrupted run stopped (the store keeps every
saved episode; training keeps checkpoints for ``--resume``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from robot_learning.demo.commands import DemoError, run_cli
from robot_learning.demo.config import DemoConfig

PROGRESS = logging.getLogger("robot_learning.demo")


def store_size(store: Path) -> tuple[int, int]:
    """``(episodes, steps)`` saved in ``store`` (zeros when there is none yet)."""
    if not store.exists():
        return 0, 0
    from robot_learning.data.store import EpisodeStore

    with EpisodeStore.open(store) as s:
        return s.n_episodes, s.n_steps


def collect(cfg: DemoConfig, results: dict[str, Any]) -> dict[str, Any]:
    have, _ = store_size(cfg.store)
    missing = cfg.demos - have
    if missing > 0:
        if have:
            PROGRESS.info(
                "  %d of %d demonstrations already saved: recording %d more",
                have,
                cfg.demos,
                missing,
            )
        args = [
            "collect",
            "--robot",
            f"sim:{cfg.task}",
            "--teleop",
            "scripted",
            "--episodes",
            str(missing),
            "--out",
            str(cfg.store),
            "--no-realtime",
            "--no-keys",
            "--cameras",
            "none",
            "--fps",
            f"{cfg.fps:g}",
            "--variant",
            "train",
            "--seed",
            str(cfg.collect_seed + have),
        ]
        if have:
            args.append("--resume")
        run_cli(args, "collecting demonstrations")
    episodes, steps = store_size(cfg.store)
    return {"store": str(cfg.store), "episodes": episodes, "steps": steps}


def training_recipe(cfg: DemoConfig) -> Path:
    """The recipe as trained: ``cfg.recipe`` with the demo's step and budget overrides, written
    next to the policy so the run can be repeated by hand."""
    recipe = yaml.safe_load(Path(cfg.recipe).read_text())
    train = recipe.setdefault("train", {})
    if cfg.train_steps is not None:
        train["steps"] = cfg.train_steps
    if cfg.train_minutes is not None:
        train["budget_minutes"] = cfg.train_minutes
    path = cfg.out_dir / f"{Path(cfg.recipe).stem}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def train(cfg: DemoConfig, results: dict[str, Any]) -> dict[str, Any]:
    recipe = training_recipe(cfg)
    args = [
        "train",
        "--recipe",
        str(recipe),
        "--data",
        str(cfg.store),
        "--out",
        str(cfg.policy_dir),
    ]
    from robot_learning.train.state import has_train_state

    if has_train_state(cfg.policy_dir):
        PROGRESS.info("  resuming the training in %s", cfg.policy_dir)
        args.append("--resume")
    elif cfg.policy_dir.exists():
        # stopped before its first checkpoint: nothing to resume, and the demo owns this folder
        PROGRESS.info("  the last training stopped before its first checkpoint: starting over")
        shutil.rmtree(cfg.policy_dir)
    summary = run_cli(args, "training")
    summary["recipe_file"] = str(recipe)
    return summary


def evaluate(cfg: DemoConfig, results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in cfg.variants:
        PROGRESS.info("  %d episodes on the %s variant ...", cfg.eval_episodes, variant)
        out[variant] = run_cli(
            [
                "eval",
                "--policy",
                str(cfg.policy_dir),
                "--task",
                cfg.task,
                "--episodes",
                str(cfg.eval_episodes),
                "--variant",
                variant,
                "--seed",
                str(cfg.eval_seed),
                "--videos",
                str(cfg.videos),
                "--execution",
                cfg.execution,
                "--out",
                str(cfg.eval_dir(variant)),
            ],
            f"evaluation on {variant}",
        )
        r = out[variant]
        PROGRESS.info(
            "  %s: %d/%d = %.0f%%", variant, r["successes"], r["episodes"], 100 * r["success_rate"]
        )
    return {"variants": out}


def ros2_loop(cfg: DemoConfig, results: dict[str, Any]) -> dict[str, Any]:
    from robot_learning.bringup.sim_episodes import SimLoopError, SimLoopRun, run_sim_episodes

    run = SimLoopRun(
        policy=cfg.policy_dir,
        task=cfg.task,
        episodes=cfg.ros_episodes,
        seed=cfg.eval_seed,
        variant=cfg.ros_variant,
        execution=cfg.execution,
        domain_id=cfg.ros_domain_id,
    )
    try:
        return run_sim_episodes(run, cfg.ros_dir, on_line=lambda line: PROGRESS.info("  %s", line))
    except SimLoopError as exc:
        raise DemoError(f"the ROS 2 loop failed: {exc}") from None
