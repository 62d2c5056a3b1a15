"""Prometheus text-format metrics of the policy server, without a client library.

Why home-made: the server needs a handful of counters, one gauge and a few histograms, all
updated from its event loop thread; a 100-line registry avoids a dependency and any locking.
The format follows the Prometheus text exposition format 0.0.4.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

PREFIX = "robot_learning_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.label_names = tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def render(self) -> list[str]:
        return [
            f"{self.name}{_labels(self.label_names, key)} {_number(v)}"
            for key, v in sorted(self.values.items())
        ]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def render(self) -> list[str]:
        lines = super().render()
        if not lines and not self.label_names:
            lines = [f"{self.name} 0"]
        return lines


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        buckets: Sequence[float],
        labels: Sequence[str] = (),
    ) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(buckets))
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts, total = self.series.setdefault(labels, ([0] * (len(self.bounds) + 1), [0.0]))
        counts[bisect.bisect_left(self.bounds, value)] += 1
        total[0] += value

    def count(self, *labels: str) -> int:
        series = self.series.get(labels)
        return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines: list[str] = []
        for key, (counts, total) in sorted(self.series.items()):
            running = 0
            for bound, n in zip((*self.bounds, math.inf), counts):
                running += n
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {running}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(total[0])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {running}")
        return lines


class ServerMetrics:
    """The server's metrics; names are part of the documented interface (docs/serving.md)."""

    def __init__(self) -> None:
        self.requests = Counter("requests_total", "Infer requests received, by policy.", ["policy"])
        self.errors = Counter("errors_total", "Error replies sent, by error code.", ["code"])
        self.rejected = Counter(
            "rejected_total",
            "Connections or requests refused (auth, too_large, overloaded).",
            ["reason"],
        )
        self.inference_seconds = Histogram(
            "inference_seconds",
            "Model time per batch (predict_chunk, in the worker thread).",
            LATENCY_BUCKETS_S,
            ["policy"],
        )
        self.batch_size = Histogram(
            "batch_size", "Requests per model call.", BATCH_BUCKETS, ["policy"]
        )
        self.connected_clients = Gauge("connected_clients", "Open websocket connections.")
        self.request_seconds = Histogram(
            "request_seconds",
            "Server time per answered request, from receipt to reply.",
            LATENCY_BUCKETS_S,
            ["policy"],
        )
        self.all: list[_Metric] = [
            self.requests,
            self.errors,
            self.rejected,
            self.inference_seconds,
            self.batch_size,
            self.connected_clients,
            self.request_seconds,
        ]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all:
            lines.extend(metric.header())
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
