"""``robot-learning value``: train an offline critic on a store and wrap a policy with it (V-GPS).

Why a command: value-guided selection needs a critic trained on the same features, rate and
chunking as the base policy; building it from ``--base`` and ``--data`` in one step checks all of
that before training and leaves one servable checkpoint (``--out``) holding the critic and a copy
of the base. Everything is checked before the first training step, so a wrong store or base fails
in seconds with a message naming the feature. See ``docs/value_guided.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robot_learning.cli import (
    PROGRESS,
    CLIError,
    positive_float,
    positive_int,
    print_json,
    signals_interrupt,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "value",
        help="train an offline critic and wrap a policy with value-guided chunk selection",
        description=(
            "Train an offline Q-function (IQL, sparse success rewards) on an episode store with "
            "success labels, then write a 'value_guided' checkpoint: the base policy samples "
            "K chunks per observation and the critic picks the best. Serve and evaluate it like "
            "any policy. Costs K times the base's inference."
        ),
    )
    p.add_argument(
        "--data", required=True, metavar="STORE", help="episode store with success labels"
    )
    p.add_argument("--base", required=True, metavar="POLICY_DIR", help="base policy checkpoint")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write the checkpoint")
    p.add_argument(
        "--samples", type=positive_int, default=8, metavar="K", help="chunks sampled per call (8)"
    )
    p.add_argument("--steps", type=positive_int, default=5000, help="critic updates (5000)")
    p.add_argument(
        "--minutes", type=positive_float, default=10.0, help="wall-clock budget for training (10)"
    )
    p.add_argument(
        "--gamma", type=positive_float, default=0.95, help="discount per chunk step (0.95)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(handler=cmd_value)


def _check_base(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise CLIError(f"--base {text}: no such directory (expected a policy checkpoint directory)")
    if not (path / "config.json").is_file():
        raise CLIError(
            f"--base {text}: not a policy checkpoint (no config.json); checkpoints are written "
            "by 'robot-learning train'"
        )
    return path


def cmd_value(args: argparse.Namespace) -> int:
    from robot_learning.cli.eval import load_checkpoint
    from robot_learning.data.errors import StoreError
    from robot_learning.data.store import EpisodeStore
    from robot_learning.specs import SpecError

    base_dir = _check_base(args.base)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a directory")
    if out.resolve() == base_dir.resolve():
        raise CLIError("--out must differ from --base: the base checkpoint is copied under it")
    if not 0 < args.gamma < 1:
        raise CLIError(f"--gamma must be in (0, 1), got {args.gamma}")

    from robot_learning.policies.value import (
        CriticDataError,
        IQLConfig,
        check_base_matches_store,
        load_transitions,
        q_config_for,
        train_q,
    )
    from robot_learning.policies.value_guided import ValueGuidedPolicy, save_value_guided

    base = load_checkpoint(base_dir, None)
    try:
        with EpisodeStore.open(args.data, "r") as store:
            check_base_matches_store(base, store)
            q_config = q_config_for(base, store)
        data = load_transitions(args.data, q_config)
    except (CriticDataError, SpecError, StoreError) as exc:
        raise CLIError(f"--data {args.data}: {exc}") from exc
    PROGRESS.info(
        "critic reads %s over %d step(s) and %d action(s) of each chunk; %d transitions",
        ", ".join(q_config.obs_keys + ([q_config.language_key] if q_config.language_key else [])),
        q_config.n_obs_steps,
        q_config.action_horizon,
        len(data),
    )
    iql = IQLConfig(steps=args.steps, minutes=args.minutes, gamma=args.gamma, seed=args.seed)
    with signals_interrupt():
        q, summary = train_q(data, q_config, iql)
    policy = ValueGuidedPolicy(base, q, num_samples=args.samples, base_dir=base_dir)
    extra: dict[str, Any] = {
        "critic_training": {
            "data": str(Path(args.data).resolve()),
            "algorithm": "iql",
            "iql": asdict(iql),
            **summary.to_json(),
        }
    }
    save_value_guided(policy, out, extra=extra)
    result = {
        "out": str(out),
        "num_samples": args.samples,
        "critic_steps": summary.steps,
        "critic_seconds": summary.seconds,
        "transitions": summary.transitions,
        "episodes": summary.episodes,
        "successful_episodes": summary.successful_episodes,
        "q_mean_success": summary.q_mean_success,
        "q_mean_failure": summary.q_mean_failure,
    }
    if args.json:
        print_json(result)
    else:
        print(
            f"wrote {out} (value_guided, K={args.samples}): critic trained {summary.steps} steps "
            f"in {summary.seconds:.1f} s on {summary.transitions} transitions from "
            f"{summary.episodes} episodes ({summary.successful_episodes} successful); mean Q "
            f"{summary.q_mean_success:.3f} on successes, {summary.q_mean_failure:.3f} on failures"
        )
    return 0
