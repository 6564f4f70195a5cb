"""Shared benchmark plumbing: timing, percentiles, and a Markdown table of results.

Benchmarks measure; they never assert. Numbers are reported as rates and as ratios between systems measured
in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = (
    "TRACKER",
    "Result",
    "SaqSystem",
    "System",
    "Timer",
    "Tracker",
    "Opener",
    "LitestarQueuesSystem",
    "add_round_arguments",
    "cancel_task",
    "free_port",
    "import_available",
    "measure_bulk",
    "measure_drain",
    "measure_pickup",
    "measure_single",
    "opened_system",
    "machine_summary",
    "markdown_table",
    "package_versions",
    "percentile",
    "print_report",
    "rate",
    "run_rounds",
)


@dataclass
class Result:
    """One measured number for one system."""

    system: str
    metric: str
    value: float
    unit: str
    spread: tuple[float, float] | None = None
    """The lowest and highest round, when ``value`` is the median of several."""
    rounds: tuple[float, ...] = ()
    """Every round's value in round order (NaN where a round did not finish), for per-round ratios."""


class Timer:
    """A monotonic stopwatch: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


LOADS: list[float] = []
"""The machine's 1-minute load average when each round of :func:`run_rounds` began, and when the last ended."""


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
    return f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} cores"


def round_ratios(row: Result, peers: Sequence[Result], *, higher: bool) -> list[float]:
    """``row``'s value divided by the best peer's value of the same round, for every round both finished (a peer's
    round that did not finish is NaN and one not measured 0: neither counts)."""
    ratios = []
    for index, value in enumerate(row.rounds):
        measured = [p.rounds[index] for p in peers if index < len(p.rounds) and p.rounds[index] > 0]
        if measured and not math.isnan(value):
            ratios.append(value / (max(measured) if higher else min(measured)))
    return ratios


def markdown_table(results: Sequence[Result], *, ours: Sequence[str] = (), references: Sequence[str] = ()) -> str:
    """Results grouped by metric, best first; with ``ours``, a column dividing each of ours by the best peer's
    value (rates: higher is better; latencies, in ms: lower is better). ``references`` are listed but are no
    peers (a bound such as the server's commit floor); with them, a column divides each of ours by the metric's
    first reference. With several rounds, a last column: the ratio to the best peer of the same round, its median
    and range."""
    metrics: dict[str, list[Result]] = {}
    for result in results:
        metrics.setdefault(result.metric, []).append(result)
    spreads = any(result.spread is not None for result in results)
    per_round = bool(ours) and any(len(result.rounds) > 1 for result in results)
    header = "| metric | system | value |" + (" rounds (min to max) |" if spreads else "")
    by_reference = bool(ours and references)
    lines = [
        header
        + (" ours / best peer |" if ours else "")
        + (" ours / reference |" if by_reference else "")
        + (" per round: median (min to max) |" if per_round else ""),
        "|---|---|---:|"
        + ("---:|" if spreads else "")
        + ("---:|" if ours else "")
        + ("---:|" if by_reference else "")
        + ("---:|" if per_round else ""),
    ]
    for metric, rows in metrics.items():
        peers = [r.value for r in rows if r.system not in (*ours, *references) and not math.isnan(r.value)]
        higher = rows[0].unit != "ms"
        best_peer = (max(peers) if higher else min(peers)) if peers else None
        reference = next((r.value for r in rows if r.system in references and not math.isnan(r.value)), None)
        for row in sorted(rows, key=lambda r: (math.isnan(r.value), -r.value if higher else r.value)):
            shown = "did not finish" if math.isnan(row.value) else f"{row.value:,.1f} {row.unit}"
            line = f"| {metric} | {row.system} | {shown} |"
            if spreads:
                line += f" {row.spread[0]:,.1f} to {row.spread[1]:,.1f} |" if row.spread else " |"
            if ours:
                measured = best_peer and row.system in ours and not math.isnan(row.value)
                ratio = f"{row.value / best_peer:.2f}x" if measured else ""
                line += f" {ratio} |"
            if by_reference:
                measured = reference and row.system in ours and not math.isnan(row.value)
                line += f" {row.value / reference:.2f}x |" if measured else " |"
            if per_round:
                peer_rows = [r for r in rows if r.system not in (*ours, *references)]
                ratios = round_ratios(row, peer_rows, higher=higher) if row.system in ours else []
                shown = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f} to {max(ratios):.2f})" if ratios else ""
                line += f" {shown} |"
            lines.append(line)
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
    single_only = False
    """Measured for single enqueues only (a reference bound, not a queue)."""

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a private server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def opened_system(system: System, location: str) -> AsyncIterator[System]:
    """``system`` opened over the storage at ``location`` with a fresh tracker, closed afterwards."""
    TRACKER.reset()
    await system.open(location)
    try:
        yield system
    finally:
        await system.close()


def add_round_arguments(parser: argparse.ArgumentParser) -> None:
    """The measurement sizes every comparison takes."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=2000, help="jobs in the single-enqueue measurement (0: none)")
    parser.add_argument("--bulk", type=int, default=20000, help="jobs in each bulk-enqueue measurement")
    parser.add_argument(
        "--bulk-size",
        type=int,
        nargs="+",
        default=[1000],
        help="jobs per bulk call, one measurement each (--bulk 2000 --bulk-size 2000: one call on a fresh system)",
    )
    parser.add_argument("--jobs", type=int, default=10000, help="jobs drained")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[10, 50], help="drains (none: no drain)")
    parser.add_argument("--samples", type=int, default=200, help="idle pickups measured (0: none)")
    parser.add_argument(
        "--median",
        action="store_true",
        help="report each metric's median round and the spread of the rounds (default: the best round)",
    )


def print_report(
    arguments: argparse.Namespace,
    server: str,
    peers: Sequence[str],
    results: Sequence[Result],
    ours: Sequence[str],
    *,
    references: Sequence[str] = (),
) -> None:
    """Print the machine, server and package versions, the sizes, and the result table."""
    versions = ", ".join(f"{name} {v}" for name, v in package_versions(peers).items() if v != "-")
    print(f"{machine_summary()}; server {server}; {versions}")
    if LOADS:
        print(f"load average (1 min) at the start of each round and at the end: {', '.join(f'{v:.1f}' for v in LOADS)}")
    print(
        f"{'median' if arguments.median else 'best'} of {arguments.rounds} rounds; {arguments.single} single "
        f"enqueues, {arguments.bulk} bulk (calls of {'/'.join(map(str, arguments.bulk_size))}), {arguments.jobs} "
        f"jobs drained, {arguments.samples} pickups\n"
    )
    print(markdown_table(results, ours=ours, references=references))


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


Opener = Callable[[], contextlib.AbstractAsyncContextManager[System]]
"""Opens one system over fresh storage for one measurement (each comparison supplies its own)."""


async def measure_single(open_system: Opener, jobs: int) -> float:
    async with open_system() as system:
        started = time.perf_counter()
        for n in range(jobs):
            await system.enqueue(n)
        return rate(jobs, time.perf_counter() - started)


async def measure_bulk(open_system: Opener, jobs: int, chunk: int = 1000) -> float:
    async with open_system() as system:
        started = time.perf_counter()
        for first in range(0, jobs, chunk):
            await system.enqueue_bulk(range(first, min(jobs, first + chunk)))
        return rate(jobs, time.perf_counter() - started)


DRAIN_LIMIT = 120.0
"""Seconds a drain may take before it counts as not finished (every system here drains 5,000 jobs far faster)."""
STOP_LIMIT = 15.0
"""Seconds a worker may take to stop before it is abandoned."""


async def measure_drain(open_system: Opener, jobs: int, concurrency: int) -> float:
    async with open_system() as system:
        for first in range(0, jobs, 1000):
            await system.enqueue_bulk(range(first, min(jobs, first + 1000)))
        TRACKER.expect(jobs)
        started = time.perf_counter()
        await system.start_worker(concurrency)
        try:
            await asyncio.wait_for(TRACKER.reached.wait(), DRAIN_LIMIT)
            return rate(jobs, time.perf_counter() - started)
        finally:
            await asyncio.wait_for(system.stop_worker(), STOP_LIMIT)


async def measure_pickup(open_system: Opener, samples: int) -> tuple[float, float]:
    async with open_system() as system:
        await system.start_worker(10)
        try:
            await asyncio.sleep(0.5)
            latencies = []
            for n in range(samples):
                TRACKER.expect(TRACKER.count + 1)
                sent = time.perf_counter()
                await system.enqueue(n)
                await asyncio.wait_for(TRACKER.reached.wait(), 10)
                latencies.append(TRACKER.started[n] - sent)
                await asyncio.sleep(0.01)
            return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        finally:
            await asyncio.wait_for(system.stop_worker(), STOP_LIMIT)


class LitestarQueuesSystem(System):
    """litestar-queues through its public ``QueueService`` and ``Worker``; a comparison supplies the backend config."""

    def __init__(self, name: str) -> None:
        self.name = name

    def backend_config(self, location: str) -> Any:
        """The ``queue_backend`` for the storage at ``location`` (a server URL or DSN)."""
        raise NotImplementedError

    async def open(self, url: str) -> None:
        from litestar_queues import QueueConfig, QueueService, TaskRegistry, task

        registry = TaskRegistry()

        @task("bench.noop", registry=registry)
        async def noop(n: int) -> None:
            TRACKER.hit(n)

        self.task = noop
        self.service = QueueService(QueueConfig(queue_backend=self.backend_config(url)), registry=registry)
        await self.service.open()
        self.worker: Any = None

    async def close(self) -> None:
        await self.service.close()

    async def enqueue(self, n: int) -> None:
        await self.service.enqueue(self.task, n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await self.service.enqueue_many([self.service.request(self.task, n) for n in ns])

    async def start_worker(self, concurrency: int) -> None:
        from litestar_queues import Worker, WorkerConfig

        self.worker = Worker(self.service, WorkerConfig(concurrency=concurrency, batch_size=concurrency))
        await self.worker.start()

    async def stop_worker(self) -> None:
        await self.worker.stop(drain_timeout=5)


class SaqSystem(System):
    """SAQ; ``Queue.from_url`` picks its Redis or PostgreSQL broker from the URL."""

    def __init__(self, name: str = "saq") -> None:
        self.name = name

    async def open(self, url: str) -> None:
        from saq import Queue

        self.queue = Queue.from_url(url, name="bench")
        await self.queue.connect()
        self.task: asyncio.Task[Any] | None = None

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue(self, n: int) -> None:
        await self.queue.enqueue("noop", n=n)

    async def start_worker(self, concurrency: int) -> None:
        from saq import Worker

        async def noop(ctx: Any, *, n: int) -> None:
            TRACKER.hit(n)

        self.worker = Worker(self.queue, functions=[("noop", noop)], concurrency=concurrency)
        self.task = asyncio.create_task(self.worker.start())

    async def stop_worker(self) -> None:
        try:
            await self.worker.stop()
        finally:
            await cancel_task(self.task)


def import_available(
    names: Sequence[str], factories: Mapping[str, Callable[[], System]], modules: Mapping[str, str]
) -> list[System]:
    """Build the named systems, skipping (with a message) those whose package is not installed."""
    systems = []
    for name in names:
        module = modules.get(name)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                print(f"skipping {name}: {module} is not installed", file=sys.stderr)
                continue
        systems.append(factories[name]())
    return systems


async def run_rounds(
    systems: Sequence[System],
    open_for: Callable[[System], Opener],
    arguments: Any,
    *,
    measures_pickup: Callable[[System], bool] = lambda _: True,
) -> list[Result]:
    """Measure every system ``arguments.rounds`` times, interleaved; keep each metric's best value (with
    ``arguments.median``: the median and the spread of the rounds).

    A measurement that fails or times out is reported on stderr and, when no round of it finished, shown as
    "did not finish" (NaN) in the table; the run goes on.
    """
    rounds: dict[tuple[str, str], list[float]] = {}
    units: dict[tuple[str, str], str] = {}

    def keep(system: System, metric: str, value: float, *, higher: bool = True) -> None:
        key = (system.name, metric)
        print(f"  {system.name} | {metric} | {value:.2f}", file=sys.stderr)  # every round, for per-round ratios
        units[key] = "jobs/s" if higher else "ms"
        rounds.setdefault(key, []).append(value)

    async def attempt(system: System, metrics: Sequence[str], measurement: Awaitable[Any]) -> Any:
        try:
            return await measurement
        except Exception as exc:  # a peer's worker that hangs or crashes must not end the whole run
            print(f"{system.name}: {', '.join(metrics)} did not finish: {type(exc).__name__} {exc}", file=sys.stderr)
            return None

    for round_number in range(arguments.rounds):
        LOADS.append(os.getloadavg()[0])
        for system in systems:
            gc.collect()
            print(f"round {round_number + 1}: {system.name}", file=sys.stderr)
            open_system = open_for(system)
            rates = [("enqueue single", lambda o=open_system: measure_single(o, arguments.single))]
            rates = rates if arguments.single else []
            rates += [
                (f"enqueue bulk ({size} per call)", lambda o=open_system, s=size: measure_bulk(o, arguments.bulk, s))
                for size in arguments.bulk_size
            ]
            rates += [
                (f"drain, concurrency {c}", lambda o=open_system, c=c: measure_drain(o, arguments.jobs, c))
                for c in arguments.concurrency
            ]
            for metric, measure in rates[: int(bool(arguments.single))] if system.single_only else rates:
                value = await attempt(system, [metric], measure())
                keep(system, metric, math.nan if value is None else value)
            if measures_pickup(system) and not system.single_only and arguments.samples:
                pickup = await attempt(system, ["idle pickup"], measure_pickup(open_system, arguments.samples))
                p50, p99 = (math.nan, math.nan) if pickup is None else pickup
                keep(system, "idle pickup p50", p50, higher=False)
                keep(system, "idle pickup p99", p99, higher=False)
    LOADS.append(os.getloadavg()[0])
    results = []
    for (name, metric), every in rounds.items():
        unit = units[(name, metric)]
        values = [value for value in every if not math.isnan(value)]
        if not values:
            results.append(Result(name, metric, math.nan, unit, rounds=tuple(every)))
        elif arguments.median:
            spread = (min(values), max(values))
            results.append(Result(name, metric, statistics.median(values), unit, spread, tuple(every)))
        else:
            best = max(values) if unit == "jobs/s" else min(values)
            results.append(Result(name, metric, best, unit, rounds=tuple(every)))
    return results
