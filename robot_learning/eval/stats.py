"""Summary statistics for evaluations: success-rate confidence intervals and latency percentiles.

Why Wilson and not ``p ± 1.96·sqrt(p(1-p)/n)``: evaluations run tens of episodes and policies are
often near 0 % or 100 % success, where the normal approximation collapses to a zero-width interval
(or leaves [0, 1]). The Wilson score interval stays inside [0, 1] and keeps a sensible width there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile; 1.96 is the usual rounding


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for ``successes`` out of ``n`` Bernoulli trials.

    ``n == 0`` carries no information and gives ``(0.0, 1.0)``. The endpoints are exact at the
    extremes: 0 successes give ``low == 0.0`` and ``n`` successes give ``high == 1.0``.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if z <= 0 or not math.isfinite(z):
        raise ValueError(f"z must be a positive number, got {z}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile (linear interpolation); NaN for no values, so JSON shows null."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan")
    return float(np.percentile(arr, q))


def mean(values: Sequence[float] | np.ndarray) -> float:
    """Arithmetic mean; NaN for no values (instead of numpy's warning)."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def latency_summary(values_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``latency_ms_p50``, ``latency_ms_p99`` and ``latency_ms_mean`` of per-call latencies (ms)."""
    return {
        "latency_ms_p50": percentile(values_ms, 50.0),
        "latency_ms_p99": percentile(values_ms, 99.0),
        "latency_ms_mean": mean(values_ms),
    }


__all__ = ["Z_95", "latency_summary", "mean", "percentile", "wilson_interval"]
