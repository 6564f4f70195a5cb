"""One process, through ``QueueService`` and ``Worker``: single and bulk enqueue rates, drain of no-op tasks.

Any backend URL works; the default is the memory backend. Run::

    uv run --project benchmarks python benchmarks/bench_service.py [--jobs 20000] [--backend sqlite:///jobs.db]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import Result, Timer, machine_summary, markdown_table, rate
from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


async def enqueue_single(backend: str, jobs: int) -> float:
    async with QueueService(QueueConfig(queue_backend=backend), registry=registry) as service:
        with Timer() as timer:
            for n in range(jobs):
                await service.enqueue(noop, n)
    return rate(jobs, timer.seconds)


async def enqueue_bulk(backend: str, jobs: int, chunk: int = 1000) -> float:
    async with QueueService(QueueConfig(queue_backend=backend), registry=registry) as service:
        with Timer() as timer:
            for start in range(0, jobs, chunk):
                await service.enqueue_many([service.request(noop, n) for n in range(start, min(jobs, start + chunk))])
    return rate(jobs, timer.seconds)


async def drain(backend: str, jobs: int, concurrency: int) -> float:
    worker = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05)
    config = QueueConfig(queue_backend=backend, worker=worker)
    async with QueueService(config, registry=registry) as service:
        await service.enqueue_many([service.request(noop, n) for n in range(jobs)])
        worker = Worker(service)
        with Timer() as timer:
            done = await worker.run_until_idle(timeout=600)
        assert done == jobs, f"drained {done} of {jobs}"
    return rate(jobs, timer.seconds)


async def main(backend: str, jobs: int) -> list[Result]:
    system = f"litestar-queues {backend.split(':', 1)[0]}"
    fresh = _fresh(backend)
    gc.collect()
    results = [
        Result(system, "enqueue (single)", await enqueue_single(next(fresh), jobs), "jobs/s"),
        Result(system, "enqueue (bulk, 1000/call)", await enqueue_bulk(next(fresh), jobs), "jobs/s"),
    ]
    for concurrency in (10, 50):
        value = await drain(next(fresh), jobs, concurrency)
        results.append(Result(system, f"drain no-op, concurrency {concurrency}", value, "jobs/s"))
    return results


def _fresh(backend: str) -> Iterator[str]:
    """Storage with no records for each measurement: a new SQLite file each time, else the backend as given."""
    if not backend.startswith("sqlite:///"):
        while True:
            yield backend
    directory = Path(tempfile.mkdtemp(prefix="lq-bench-"))
    for index in itertools.count():
        yield f"sqlite:///{directory / f'jobs-{index}.db'}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--backend", default="memory", help="a backend name or URL (default: memory)")
    arguments = parser.parse_args()
    measured = asyncio.run(main(arguments.backend, arguments.jobs))
    print(machine_summary(), f"- {arguments.jobs} jobs")
    print(markdown_table(measured))
