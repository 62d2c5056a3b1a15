"""``robot-learning rl``: residual RL on top of a frozen policy checkpoint, in the MuJoCo sim.

Why a command: the recipe (base, task, algorithm, budget) must be reproducible from one line,
resumable after Ctrl-C or a crash (``--resume``), and leave a servable checkpoint plus a
learning curve behind. The result under ``OUT/policy`` serves and evaluates like any policy.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    positive_float,
    positive_int,
    print_json,
    signals_interrupt,
)
from robot_learning.cli.eval import non_negative_int
from robot_learning.sim.rewards import REWARDS

LOG = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "rl",
        help="residual RL (PPO or SAC) on a frozen base policy in simulation",
        description=(
            "Train a bounded per-step residual on top of a frozen base policy checkpoint with "
            "PPO (ResiP) or SAC with demonstrations (ResFiT/RLPD) in the MuJoCo sim, with "
            "domain randomization. Writes OUT/policy (servable), OUT/curve.png, and resume "
            "state; evaluates on the training variant and on real-proxy at the end."
        ),
    )
    p.add_argument("--base", required=True, help="frozen base policy checkpoint directory")
    p.add_argument("--task", required=True, help="sim task (see 'sim list')")
    p.add_argument("--algo", required=True, choices=("ppo", "sac"))
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--demos",
        help="demonstration store mixed into SAC batches (required for sac unless "
        "--set sac.demo_fraction=0)",
    )
    p.add_argument(
        "--variant", default="train", help="training domain randomization (default: train)"
    )
    p.add_argument(
        "--reward",
        default="sparse",
        choices=REWARDS,
        help="sparse (default), shaped (dense, pays for loitering) or progress (potential-based "
        "shaping: pays only for moving toward the goal)",
    )
    p.add_argument("--num-envs", type=positive_int, default=8)
    p.add_argument(
        "--episode-steps",
        type=positive_int,
        metavar="STEPS",
        help="time limit of training episodes (default: the task's); evaluations keep the "
        "task's limit. A limit near the expert's episode length stops failed attempts early, "
        "so more episodes fit in the budget",
    )
    p.add_argument("--minutes", type=positive_float, default=60.0, help="wall-clock budget")
    p.add_argument("--env-steps", type=positive_int, default=2_000_000, help="env step budget")
    p.add_argument(
        "--residual-scale",
        type=positive_float,
        default=0.1,
        help="bound per action element as a fraction of half its range",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--eval-every",
        type=non_negative_int,
        default=0,
        metavar="STEPS",
        help="evaluate every STEPS env steps (0: only at the end)",
    )
    p.add_argument("--eval-episodes", type=positive_int, default=50)
    p.add_argument(
        "--base-steps",
        type=positive_int,
        default=4,
        help="denoising steps of the base during RL and in the saved policy (default: 4; the "
        "base runs every control step)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a setting, repeatable: e.g. ppo.lr_actor=1e-4, sac.updates_per_step=1, "
        "residual.init_log_std=-2 (fields: docs/rl.md)",
    )
    p.add_argument(
        "--torch-threads",
        type=positive_int,
        default=1,
        help="torch threads (default 1: small networks run fastest on one thread, and the "
        "env workers use the other cores)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(handler=cmd_rl)


def cmd_rl(args: argparse.Namespace) -> int:
    from robot_learning.cli.eval import check_policy_dir, load_checkpoint
    from robot_learning.cli.sim import check_task, check_variant

    task = check_task(args.task)
    variant = check_variant(args.variant)
    base_dir = check_policy_dir(args.base)
    if args.demos and not Path(args.demos).is_dir():
        raise CLIError(f"--demos {args.demos}: no such store")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a directory")

    from robot_learning.rl.config import RLConfig
    from robot_learning.rl.residual_policy import ResidualConfig, ResidualPolicy
    from robot_learning.rl.trainer import summarize, train

    config = RLConfig(
        task=task,
        algo=args.algo,
        variant=variant,
        reward=args.reward,
        num_envs=args.num_envs,
        episode_steps=args.episode_steps,
        total_env_steps=args.env_steps,
        budget_minutes=args.minutes,
        seed=args.seed,
        eval_every_steps=args.eval_every,
        eval_episodes=args.eval_episodes,
        demos=str(Path(args.demos).resolve()) if args.demos else None,
        residual=ResidualConfig(
            residual_scale=args.residual_scale,
            squash="clip" if args.algo == "ppo" else "tanh",
            state_std=args.algo == "sac",
            base_inference_steps=args.base_steps,
        ),
    )
    try:
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE")
            config.override(key.strip(), value.strip())
        config.apply_task_defaults()
        config.validate()
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    import torch

    torch.set_num_threads(args.torch_threads)
    base = load_checkpoint(base_dir, None)
    try:
        policy = ResidualPolicy(base, config.residual, base_dir=base_dir)
    except ValueError as exc:
        raise CLIError(f"--base {base_dir}: {exc}") from exc
    PROGRESS.info(
        "%s residual on %s (%s), base %s: %d envs, %.0f min / %d env steps",
        args.algo,
        task,
        variant,
        base_dir,
        args.num_envs,
        args.minutes,
        args.env_steps,
    )
    try:
        with signals_interrupt():
            summary = train(config, policy, out, resume=args.resume)
    except (FileExistsError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    except KeyboardInterrupt:
        PROGRESS.warning(
            "interrupted; the last checkpoint is in %s (continue with the same command and "
            "--resume)",
            out,
        )
        return 130
    if args.json:
        print_json(summary)
    else:
        print(summarize(summary))
    return 0
