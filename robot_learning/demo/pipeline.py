"""Runs the demo's stages in order, each once: a re-run resumes from what exists.

A finished stage leaves ``stages/<stage>.json``: its result, the settings it depends on and
when it finished. On a re-run a stage is skipped when that file exists with the same settings
and the same upstream results; an interrupted stage starts again from what it left on disk
(saved demonstrations, training checkpoints). Changing the data or training settings of a run
that already has data or a policy is refused rather than silently mixed: use another
``--out`` or ``--fresh``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robot_learning.demo import stages
from robot_learning.demo.commands import DemoError
from robot_learning.demo.config import STAGES, DemoConfig
from robot_learning.demo.report import build_report

PROGRESS = logging.getLogger("robot_learning.demo")

StageFn = Callable[[DemoConfig, dict[str, Any]], dict[str, Any]]


STAGE_FUNCTIONS: dict[str, StageFn] = {
    "collect": stages.collect,
    "train": stages.train,
    "eval": stages.evaluate,
    "ros2": stages.ros2_loop,
    "report": build_report,
}


def describe(stage: str, cfg: DemoConfig) -> str:
    """What ``stage`` does and roughly how long it takes on a 2-core CPU."""
    return {
        "collect": f"{cfg.demos} scripted-expert demonstrations of {cfg.task} in MuJoCo at "
        f"{cfg.fps:g} Hz into a Zarr store (about a minute)",
        "train": f"diffusion policy from {Path(cfg.recipe).name} (up to "
        f"{_train_minutes(cfg):g} min)",
        "eval": f"robot-learning eval, {cfg.eval_episodes} episodes on "
        f"{' and '.join(cfg.variants)} (about a minute each)",
        "ros2": f"{cfg.ros_episodes} episodes through ROS 2: policy server + sim node + policy "
        f"client node, real time (about 2 minutes)",
        "report": "HTML report with figures and rollout videos",
    }[stage]


def _train_minutes(cfg: DemoConfig) -> float:
    if cfg.train_minutes is not None:
        return cfg.train_minutes
    import yaml

    recipe = yaml.safe_load(Path(cfg.recipe).read_text())
    return float(recipe.get("train", {}).get("budget_minutes", 0.0)) or float("inf")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _upstream(stage: str, results: dict[str, Any]) -> list[Any]:
    """When each stage before ``stage`` finished: a stage re-run upstream invalidates it."""
    before = STAGES[: STAGES.index(stage)]
    return [results.get(s, {}).get("finished_at") for s in before]


def _check_reusable(stage: str, cfg: DemoConfig, saved: dict[str, Any] | None) -> None:
    """Refuse to top up a store or resume a training made with other settings."""
    if saved is None or saved.get("settings") == cfg.settings(stage):
        return
    if stage == "collect" and cfg.store.exists():
        raise DemoError(
            f"{cfg.store} was collected with other settings ({stages_diff(saved, cfg, stage)}); "
            "use another --out, or --fresh to start over"
        )
    if stage == "train" and cfg.policy_dir.exists():
        raise DemoError(
            f"{cfg.policy_dir} was trained with other settings "
            f"({stages_diff(saved, cfg, stage)}); use another --out, or --fresh to start over"
        )


def stages_diff(saved: dict[str, Any], cfg: DemoConfig, stage: str) -> str:
    old, new = saved.get("settings", {}), cfg.settings(stage)
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if k != "recipe"]
    if "recipe" in keys:
        shown.append("recipe file changed")
    return "; ".join(shown)


def run_demo(cfg: DemoConfig, fresh: bool = False) -> dict[str, Any]:
    """Run every stage not done yet; return each stage's result."""
    if fresh and cfg.out_dir.exists():
        PROGRESS.info("--fresh: removing %s", cfg.out_dir)
        shutil.rmtree(cfg.out_dir)
    cfg.stage_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    start = time.monotonic()
    for number, stage in enumerate(STAGES, 1):
        path = cfg.stage_dir / f"{stage}.json"
        saved = _read(path)
        settings, upstream = cfg.settings(stage), _upstream(stage, results)
        label = f"[{number}/{len(STAGES)}] {stage}"
        if (
            stage != "report"
            and saved is not None
            and saved.get("settings") == settings
            and saved.get("upstream") == upstream
        ):
            PROGRESS.info("%s: done in an earlier run, kept (%s)", label, path)
            results[stage] = saved["result"]
            continue
        _check_reusable(stage, cfg, saved)
        PROGRESS.info("%s: %s", label, describe(stage, cfg))
        t0 = time.monotonic()
        result = STAGE_FUNCTIONS[stage](cfg, results)
        result["finished_at"] = time.time()
        result["stage_wall_s"] = round(time.monotonic() - t0, 1)
        path.write_text(
            json.dumps({"settings": settings, "upstream": upstream, "result": result}) + "\n"
        )
        results[stage] = result
        PROGRESS.info("%s: done in %.1f min", label, result["stage_wall_s"] / 60)
    results["wall_s"] = round(time.monotonic() - start, 1)
    return results
