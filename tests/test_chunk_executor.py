"""Chunk executor: stamping, early requests, dropped late actions, prefix joins, ensembling.

A synthetic "policy" whose chunks sample one smooth trajectory ``f(tick)`` makes timing errors
visible: every executed action must equal ``f`` of the tick it ran at, unless it was held.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_learning.policies.diffusion import DiffusionPolicy
from robot_learning.policies.diffusion_config import DiffusionConfig
from robot_learning.policies.normalizer import Normalizer
from robot_learning.serving.executor import ChunkExecutor, ExecutorConfig, stack_prefixes
from robot_learning.specs import FeatureSpec, SpecDict

CHUNK, EXECUTE, PERIOD = 15, 8, 0.1


def trajectory(tick: int) -> np.ndarray:
    return np.array([np.sin(0.1 * tick), 0.01 * tick], dtype=np.float32)


def chunk_from(obs_tick: int) -> np.ndarray:
    return np.stack([trajectory(obs_tick + j) for j in range(CHUNK)])


def run(
    mode: str, delay_ticks: int, ticks: int = 80
) -> tuple[list[np.ndarray | None], ChunkExecutor]:
    """Drive an executor in simulated time; replies arrive ``delay_ticks`` after the request.

    The "robot state" is how far along the trajectory it has moved (actions executed so far);
    a chunk continues the trajectory from the state observed when it was requested.
    """
    ex = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE, mode=mode))  # type: ignore[arg-type]
    pending: tuple[int, int, int] | None = None  # (obs tick, arrival tick, observed progress)
    out: list[np.ndarray | None] = []
    progress = 0
    for tick in range(ticks):
        if pending is not None and pending[1] <= tick:
            ex.on_chunk(chunk_from(pending[2]), pending[0], tick, delay_ticks * PERIOD)
            pending = None
        if ex.should_request(tick):
            ex.on_request(tick)
            pending = (tick, tick + delay_ticks, progress)
            if delay_ticks == 0:
                ex.on_chunk(chunk_from(progress), tick, tick, 0.0)
                pending = None
        action = ex.action_for(tick)
        out.append(None if action is None else action.value)
        progress += action is not None
    return out, ex


def assert_continuous(actions: list[np.ndarray | None]) -> None:
    """The executed actions follow the trajectory step by step: none skipped or repeated."""
    executed = [a for a in actions if a is not None]
    for step, action in enumerate(executed):
        np.testing.assert_allclose(action, trajectory(step))


@pytest.mark.parametrize("mode", ["rtc", "naive"])
def test_without_latency_requests_every_n_action_steps(mode: str) -> None:
    actions, ex = run(mode, 0)
    assert ex.stats.stalls == 0 and ex.stats.requests == 10  # 80 ticks / 8
    assert all(a is not None for a in actions)
    assert_continuous(actions)


def test_rtc_keeps_the_stream_going_under_latency() -> None:
    actions, ex = run("rtc", 2)
    assert actions[0] is None and actions[1] is None  # the very first chunk is awaited
    assert all(a is not None for a in actions[2:])
    assert ex.stats.stalls == 0
    assert_continuous(actions)  # the first chunk starts when it arrives; later ones join on
    assert ex.stats.dropped > 0  # the committed steps of each chunk, executed from the last


def test_naive_execution_stalls_every_chunk() -> None:
    actions, ex = run("naive", 2)
    held = [t for t, a in enumerate(actions) if a is None]
    assert ex.stats.stalls == len(held) - 2  # all but the initial wait count as stalls
    assert ex.stats.stalls >= 2 * 6  # two held ticks per chunk
    assert_continuous(actions)  # after each wait the chunk starts from its first step
    assert ex.stats.dropped == 0


def test_late_chunk_drops_the_steps_that_ran_meanwhile() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE))
    ex.on_request(0)
    ex.on_chunk(chunk_from(0), 0, 0, latency_s=0.0)
    assert [ex.action_for(t) is not None for t in (0, 1)] == [True, True]
    ex.on_request(2)
    assert all(ex.action_for(t) is not None for t in (2, 3, 4))  # the old chunk runs on
    late = chunk_from(100)
    ex.on_chunk(late, obs_tick=2, now_tick=5, latency_s=0.3)
    assert ex.stats.dropped == 3  # its steps for ticks 2..4: their time has passed
    action = ex.action_for(5)
    assert action is not None and action.tick == 5
    np.testing.assert_allclose(action.value, late[3])


def test_chunk_after_a_hold_starts_at_its_first_step() -> None:
    """Nothing ran while the request was out (start, or after a stall): nothing is skipped."""
    ex = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE))
    ex.on_request(0)
    assert ex.action_for(0) is None and ex.action_for(1) is None
    ex.on_chunk(chunk_from(0), obs_tick=0, now_tick=2, latency_s=0.2)
    action = ex.action_for(2)
    assert action is not None and ex.stats.dropped == 0
    np.testing.assert_allclose(action.value, trajectory(0))


def test_committed_prefix_is_what_runs_while_waiting() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE, initial_latency_s=0.25))
    assert ex.latency_ticks() == 3
    ex.on_request(0)
    ex.on_chunk(chunk_from(0), 0, 0, latency_s=0.25)
    prefix = ex.committed_prefix(5)
    assert prefix is not None
    np.testing.assert_allclose(prefix, np.stack([trajectory(t) for t in (5, 6, 7)]))
    assert (
        ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE, mode="naive")).committed_prefix(0)
        is None
    )


def test_ensemble_averages_overlapping_chunks() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE, mode="ensemble", ensemble_decay=0.5))
    ex.on_chunk(np.zeros((CHUNK, 2), np.float32), 0, 0, 0.0)
    ex.on_chunk(np.ones((CHUNK, 2), np.float32), 1, 1, 0.0)
    assert ex.action_for(0) is not None
    action = ex.action_for(1)
    assert action is not None
    w_new = np.exp(-0.5)  # the older prediction keeps weight 1
    np.testing.assert_allclose(action.value, w_new / (1 + w_new), rtol=1e-6)


def test_clear_plan_holds_and_allows_a_new_request() -> None:
    ex = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE))
    ex.on_request(0)
    ex.on_chunk(chunk_from(0), 0, 0, 0.0)
    assert ex.action_for(0) is not None
    ex.clear_plan()
    assert ex.action_for(1) is None and ex.stats.stalls == 1
    assert ex.should_request(1)


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown execution mode 'wait'"):
        ExecutorConfig(PERIOD, CHUNK, EXECUTE, mode="wait")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_action_steps"):
        ExecutorConfig(PERIOD, CHUNK, CHUNK + 1)


def tiny_policy(objective: str, sampler: str) -> DiffusionPolicy:
    torch.manual_seed(0)
    config = DiffusionConfig(
        obs_keys=["ee_pos"],
        horizon=8,
        n_obs_steps=2,
        n_action_steps=4,
        unet_channels=[16, 32],
        step_embed_dim=16,
        objective=objective,  # type: ignore[arg-type]
        sampler=sampler,  # type: ignore[arg-type]
        inference_steps=6,
    )
    spec = SpecDict(
        {
            "ee_pos": FeatureSpec((3,), "float32", "lowdim"),
            "action": FeatureSpec((2,), "float32", "lowdim"),
        }
    )
    stats = {k: {"min": [-1.0] * n, "max": [1.0] * n} for k, n in (("ee_pos", 3), ("action", 2))}
    stats["action"] = {"min": [-0.5, 0.0], "max": [0.5, 2.0]}
    normalizer = Normalizer.fit(stats, {"ee_pos": "limits", "action": "limits"})
    return DiffusionPolicy(config, spec, spec, normalizer)


@pytest.mark.parametrize(
    ("objective", "sampler"), [("ddpm", "ddim"), ("ddpm", "dpm"), ("flow", "flow_euler")]
)
def test_diffusion_holds_the_committed_prefix(objective: str, sampler: str) -> None:
    policy = tiny_policy(objective, sampler)
    assert policy.supports_prefix
    obs = {"ee_pos": np.zeros((2, 2, 3), np.float32)}
    prefix = stack_prefixes(
        [np.array([[0.1, 1.5], [0.2, 1.0]], np.float32), np.array([[-0.3, 0.5]], np.float32)], 2
    )
    assert prefix is not None and np.isnan(prefix[1, 1]).all()
    free = policy.predict_chunk(obs)
    held = policy.predict_chunk(obs, prefix=prefix)
    np.testing.assert_allclose(held[0, :2], prefix[0], atol=1e-5)
    np.testing.assert_allclose(held[1, :1], prefix[1, :1], atol=1e-5)
    assert not np.allclose(free[0, :2], prefix[0], atol=1e-3)  # not a coincidence
    assert held.shape == free.shape == (2, policy.chunk_len, 2)
