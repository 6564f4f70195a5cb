"""Shared benchmark plumbing: timing, percentiles, and a Markdown table of results.

Benchmarks measure; they never assert. Numbers are reported as rates and as ratios between systems measured
in the same run on the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = (
    "TRACKER",
    "Result",
    "System",
    "Timer",
    "Tracker",
    "cancel_task",
    "machine_summary",
    "markdown_table",
    "package_versions",
    "percentile",
    "rate",
)


@dataclass
class Result:
    """One measured number for one system."""

    system: str
    metric: str
    value: float
    unit: str
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)


class Timer:
    """A monotonic stopwatch: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def rate(count: int, seconds: float) -> float:
    """Operations per second."""
    return count / seconds if seconds > 0 else float("inf")


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``samples``, interpolated."""
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    quantiles = statistics.quantiles(samples, n=1000, method="inclusive")
    index = min(len(quantiles) - 1, max(0, round(fraction * 1000) - 1))
    return quantiles[index]


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    """Seconds one awaited action took."""
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of the given distributions (``-`` when missing)."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def machine_summary() -> str:
    """One line describing where the numbers come from."""
    import os

    return f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} cores"


def markdown_table(results: Sequence[Result], *, baseline: str | None = None) -> str:
    """Render results grouped by metric; with ``baseline``, add each system's ratio to it."""
    metrics: dict[str, list[Result]] = {}
    for result in results:
        metrics.setdefault(result.metric, []).append(result)
    lines = [
        "| metric | system | value | unit |" + (" ratio |" if baseline else ""),
        "|---|---|---:|---|" + ("---:|" if baseline else ""),
    ]
    for metric, rows in metrics.items():
        reference = next((r.value for r in rows if r.system == baseline), None)
        for row in rows:
            ratio = f" {row.value / reference:.2f}x |" if baseline and reference else (" |" if baseline else "")
            note = f" ({row.notes})" if row.notes else ""
            lines.append(f"| {metric} | {row.system}{note} | {row.value:,.1f} | {row.unit} |{ratio}")
    return "\n".join(lines)


class Tracker:
    """What the task functions report: when each job started and how many ran."""

    def __init__(self) -> None:
        self.started: dict[int, float] = {}
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()

    def expect(self, total: int) -> None:
        self.target = total
        self.reached = asyncio.Event()
        if self.count >= total:
            self.reached.set()

    def hit(self, n: int) -> None:
        self.started.setdefault(n, time.perf_counter())
        self.count += 1
        if self.count >= self.target:
            self.reached.set()

    def reset(self) -> None:
        self.started.clear()
        self.count = 0


TRACKER = Tracker()


class System:
    """One queue system: how to enqueue and how to run a worker in this process."""

    name = "?"

    async def open(self, url: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def enqueue(self, n: int) -> None:
        raise NotImplementedError

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await asyncio.gather(*(self.enqueue(n) for n in ns))

    async def start_worker(self, concurrency: int) -> None:
        raise NotImplementedError

    async def stop_worker(self) -> None:
        raise NotImplementedError


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
