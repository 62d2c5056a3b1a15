"""``robot-learning train``: fit a policy recipe to an episode store.

Writes the EMA policy checkpoint (``config.json``, ``model.safetensors``,
``normalizer.safetensors``) into ``--out`` as it goes, plus ``train_state/`` for ``--resume``,
``metrics.jsonl``, ``evals.jsonl`` and ``curves.png``. Under ``torchrun`` it trains data-parallel.
"""

from __future__ import annotations

import argparse
from typing import Any

from robot_learning.cli import CLIError, positive_int, print_json


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a policy from a recipe on an episode store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--recipe", required=True, help="recipe YAML, e.g. policies/diffusion_state.yaml"
    )
    p.add_argument("--data", required=True, metavar="STORE", help="episode store to train on")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (checkpoint, curves)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out (step count, optimizer)"
    )
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="train at most N more steps in this call",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="final summary as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from robot_learning.specs import SpecError
    from robot_learning.train.loop import TrainError, train
    from robot_learning.train.recipe import Recipe

    try:
        recipe = Recipe.load(args.recipe)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    try:
        result = train(
            recipe,
            args.data,
            args.out,
            resume=args.resume,
            max_steps=args.max_steps,
            device=args.device,
        )
    except (TrainError, SpecError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    summary = {
        "out": str(result.out),
        "recipe": recipe.name,
        "steps": result.steps,
        "wall_s": round(result.wall_s, 1),
        "samples_per_s": round(result.samples_per_s, 1),
        "final_loss": result.final_loss,
        "stopped_by_budget": result.stopped_by_budget,
        "evals": result.evals,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"trained {recipe.name}: {result.steps} steps in {result.wall_s / 60:.1f} min "
            f"({result.samples_per_s:.0f} samples/s), final loss {result.final_loss:.4f} "
            f"-> {result.out}"
        )
    return 0
