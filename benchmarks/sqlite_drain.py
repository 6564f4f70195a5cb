"""SQLite drain: the SQLSpec backend beside a direct aiosqlite backend and the memory backend, interleaved.

Each round drains ``--jobs`` no-op jobs through one ``Worker`` at each concurrency on: the memory backend, the
SQLSpec backend on a new SQLite file, and the aiosqlite reference (``aiosqlite_reference.py``: one connection, a
transaction per operation) on a new file; the order of the three rotates from round to round, so each sees the
same machine. Jobs are enqueued (1,000 per call) before the clock starts. Besides jobs/s, each drain reports the
process CPU time per job (both threads of aiosqlite included), which another process's load disturbs less.
The report gives, per concurrency, each system's median and range and the per-round ratios ours / reference
and ours / memory (median and range). Run::

    uv run --project benchmarks python benchmarks/sqlite_drain.py [--jobs 5000] [--rounds 5] [--concurrency 10 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiosqlite_reference import ReferenceConfig
from harness import machine_summary
from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


SYSTEMS: dict[str, Callable[[Path], Any]] = {
    "memory": lambda path: "memory://",
    "ours (SQLSpec)": lambda path: SQLSpecBackendConfig.from_url(f"sqlite:///{path}"),
    "aiosqlite reference": lambda path: ReferenceConfig(path=str(path)),
}


async def drain(backend: Any, jobs: int, concurrency: int) -> tuple[float, float]:
    """Jobs per second and CPU milliseconds per job of one drain."""
    worker = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05)
    async with QueueService(QueueConfig(queue_backend=backend, worker=worker), registry=registry) as service:
        for start in range(0, jobs, 1000):
            await service.enqueue_many([service.request(noop, n) for n in range(start, min(jobs, start + 1000))])
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        done = await Worker(service).run_until_idle(timeout=600)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert done == jobs, f"drained {done} of {jobs}"
    return jobs / seconds, cpu * 1000 / jobs


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median (min-max)``."""
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


async def main(jobs: int, rounds: int, concurrencies: Sequence[int]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="lq-sqlite-drain-"))
    names = list(SYSTEMS)
    rates: dict[tuple[int, str], list[float]] = {}
    cpu: dict[tuple[int, str], list[float]] = {}
    files = 0
    for round_number in range(rounds):
        for concurrency in concurrencies:
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                files += 1
                value, per_job = await drain(SYSTEMS[name](directory / f"jobs-{files}.db"), jobs, concurrency)
                rates.setdefault((concurrency, name), []).append(value)
                cpu.setdefault((concurrency, name), []).append(per_job)
                print(f"round {round_number + 1} c{concurrency} {name}: {value:,.0f} jobs/s, {per_job:.3f} ms CPU/job")
    print(f"\n{machine_summary()}; {jobs} no-op jobs per drain, {rounds} interleaved rounds\n")
    print("| concurrency | system | drain jobs/s | CPU ms per job |")
    print("|---:|---|---:|---:|")
    for concurrency in concurrencies:
        for name in names:
            key = (concurrency, name)
            print(f"| {concurrency} | {name} | {spread(rates[key], 0)} | {spread(cpu[key], 3)} |")
    print("\n| concurrency | ours / reference (drain) | ours / memory (drain) | ours / reference (CPU per job) |")
    print("|---:|---:|---:|---:|")
    for concurrency in concurrencies:
        ours = rates[(concurrency, names[1])]
        versus_reference = [a / b for a, b in zip(ours, rates[(concurrency, names[2])], strict=True)]
        versus_memory = [a / b for a, b in zip(ours, rates[(concurrency, names[0])], strict=True)]
        cpu_ratio = [a / b for a, b in zip(cpu[(concurrency, names[1])], cpu[(concurrency, names[2])], strict=True)]
        print(f"| {concurrency} | {spread(versus_reference)} | {spread(versus_memory, 3)} | {spread(cpu_ratio)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    arguments = parser.parse_args()
    asyncio.run(main(arguments.jobs, arguments.rounds, arguments.concurrency))
