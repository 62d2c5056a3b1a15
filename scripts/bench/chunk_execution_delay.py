"""Chunk execution under inference latency: stalls, smoothness at chunk joins, success rate.

Why: a policy on a remote GPU answers late. This runs one trained policy on the same seeded sim
episodes four ways: no delay (the reference), and with every chunk delivered ``--delay-ms``
later in sim time, joined real-time-chunking style (``rtc``: request early, committed prefix
held fixed by inpainting), by temporal ensembling, and naively (wait for each chunk, holding
meanwhile). For each it reports the success rate (95% CI), stalls in the action stream after
motion began, and the largest / 99th-percentile joint-velocity jump at chunk boundaries and
within chunks. Every action passes the sim's safety layer, whose interventions are reported.

    MUJOCO_GL=egl .venv/bin/python scripts/bench/chunk_execution_delay.py \
        --policy runs/lift_state_10hz --task lift --episodes 50 --delay-ms 150 --json

``--realtime-episodes N`` adds the same comparison on the wall clock: the policy behind a real
``PolicyServer`` (loopback websocket, ``inject_delay_ms``), driven by ``PolicyControlLoop`` on a
``SimRobot`` at the policy's control rate, with requests on a background thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

CASES = (("no delay", "rtc", False), ("rtc", "rtc", True), ("ensemble", "ensemble", True),
         ("naive", "naive", True))  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from denoising_steps import machine

    from robot_learning.eval.rollout import evaluate
    from robot_learning.policies import load_policy

    policy = load_policy(args.policy)
    rows = []
    for label, mode, delayed in CASES:
        if args.cases and label not in args.cases:
            continue
        delay = args.delay_ms if delayed else 0.0
        logging.info("%s: execution %s, delay %g ms", label, mode, delay)
        result = evaluate(
            policy,
            args.task,
            args.episodes,
            variant=args.variant,
            num_envs=args.num_envs,
            seed=args.seed,
            videos=0,
            execution=mode,  # type: ignore[arg-type]
            inference_delay_ms=delay,
        )
        ex = result.execution
        rows.append(
            {
                "case": label,
                "execution": mode,
                "inference_delay_ms": delay,
                "success_rate": result.success_rate,
                "success_ci95_low": result.ci95_low,
                "success_ci95_high": result.ci95_high,
                "episode_len_mean": result.episode_len_mean,
                "stalls": ex["stalls"],
                "dropped_actions": ex["dropped_actions"],
                **{k: v for k, v in ex.items() if "jump" in k or k.endswith("_ticks")},
                "safety_interventions": result.safety,
            }
        )
    realtime = [
        realtime_case(policy, args, mode, args.delay_ms)
        for mode in ("rtc", "naive")
        if args.realtime_episodes > 0
    ]
    return {
        "policy": str(args.policy),
        "realtime": realtime,
        "task": args.task,
        "variant": args.variant,
        "episodes": args.episodes,
        "control_hz": policy.control_hz,
        "chunk_len": policy.chunk_len,
        "n_action_steps": policy.n_action_steps,
        "machine": machine(),
        "cases": rows,
    }


def realtime_case(
    policy: Any, args: argparse.Namespace, mode: str, delay_ms: float
) -> dict[str, Any]:
    """Episodes on the wall clock through a live server with ``delay_ms`` injected."""
    from drivers.robots.sim import SimRobot
    from robot_learning.eval.env_config import env_config_for
    from robot_learning.eval.rollout import eval_safety
    from robot_learning.eval.stats import wilson_interval
    from robot_learning.serving import (
        AsyncChunkRunner,
        ChunkExecutor,
        ExecutorConfig,
        PolicyClient,
        PolicyControlLoop,
        PolicyServer,
        SafetyLayer,
        ServerThread,
    )

    config = env_config_for(policy, args.task, variant=args.variant)
    period = 1.0 / policy.control_hz
    successes = stalls = overruns = ticks = 0
    server = PolicyServer({"policy": policy}, inject_delay_ms=delay_ms)
    with ServerThread(server) as thread, PolicyClient(thread.url) as client:
        client.connect()

        def infer(obs: Any, prefix: Any) -> Any:
            return client.infer(obs, prefix=prefix).actions

        with SimRobot(args.task, config=config) as robot:
            for episode in range(args.realtime_episodes):
                executor = ChunkExecutor(
                    ExecutorConfig(period, policy.chunk_len, policy.n_action_steps, mode=mode)  # type: ignore[arg-type]
                )
                with AsyncChunkRunner(
                    executor, infer, connected=lambda: client.connected
                ) as runner:
                    safety = SafetyLayer(eval_safety(config.control_mode, config.control_hz))
                    loop = PolicyControlLoop(
                        robot, runner, safety, policy.observation_spec, policy.n_obs_steps
                    )
                    loop.reset(seed=args.seed + episode)
                    records = loop.run(10_000, on_tick=lambda _: robot.done)
                successes += int(robot.is_success)
                stalls += executor.stats.stalls
                overruns += loop.overruns
                ticks += len(records)
    low, high = wilson_interval(successes, args.realtime_episodes)
    logging.info("realtime %s: %d/%d, %d stalls", mode, successes, args.realtime_episodes, stalls)
    return {
        "execution": mode,
        "inference_delay_ms": delay_ms,
        "episodes": args.realtime_episodes,
        "success_rate": successes / args.realtime_episodes,
        "success_ci95_low": low,
        "success_ci95_high": high,
        "ticks": ticks,
        "stalls": stalls,
        "overruns": overruns,
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['task']} ({report['variant']}), {report['episodes']} episodes at "
        f"{report['control_hz']:g} Hz, chunk {report['chunk_len']}, execute "
        f"{report['n_action_steps']}; {report['machine']}"
    )
    print(
        f"{'case':<10} {'delay ms':>8} {'success':>8} {'95% CI':>13} {'stalls':>7} "
        f"{'join max':>9} {'within max':>10} {'join p99':>9} {'within p99':>10}"
    )
    for r in report["cases"]:
        print(
            f"{r['case']:<10} {r['inference_delay_ms']:>8g} {100 * r['success_rate']:>7.0f}% "
            f"{100 * r['success_ci95_low']:>5.0f}-{100 * r['success_ci95_high']:.0f}% "
            f"{r['stalls']:>7} {r.get('boundary_jump_rad_s_max', float('nan')):>9.3f} "
            f"{r.get('within_jump_rad_s_max', float('nan')):>10.3f} "
            f"{r.get('boundary_jump_rad_s_p99', float('nan')):>9.3f} "
            f"{r.get('within_jump_rad_s_p99', float('nan')):>10.3f}"
        )
    print("jumps: largest change of any arm joint's velocity between ticks, rad/s")
    for r in report["realtime"]:
        print(
            f"wall clock, live server, {r['execution']:<5} {r['inference_delay_ms']:g} ms: success "
            f"{100 * r['success_rate']:.0f}% ({100 * r['success_ci95_low']:.0f}-"
            f"{100 * r['success_ci95_high']:.0f}%) over {r['episodes']} episodes, "
            f"{r['stalls']} stalls in {r['ticks']} ticks, {r['overruns']} overruns"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", required=True, help="checkpoint directory")
    parser.add_argument("--task", required=True)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=150.0)
    parser.add_argument("--variant", default="default")
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument(
        "--cases", nargs="*", default=None, help="subset of: 'no delay' rtc ensemble naive"
    )
    parser.add_argument(
        "--realtime-episodes",
        type=int,
        default=0,
        help="also run rtc and naive on the wall clock through a live server (episodes each)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    report = run(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
