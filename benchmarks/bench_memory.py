"""Memory backend, one process: single and bulk enqueue rates, and drain throughput of no-op tasks.

Run: ``uv run --project benchmarks python benchmarks/bench_memory.py [--jobs 20000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc

from harness import Result, Timer, machine_summary, markdown_table, rate
from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


async def enqueue_single(jobs: int) -> float:
    async with QueueService(QueueConfig(), registry=registry) as service:
        with Timer() as timer:
            for n in range(jobs):
                await service.enqueue(noop, n)
    return rate(jobs, timer.seconds)


async def enqueue_bulk(jobs: int, chunk: int = 1000) -> float:
    async with QueueService(QueueConfig(), registry=registry) as service:
        with Timer() as timer:
            for start in range(0, jobs, chunk):
                await service.enqueue_many([service.request(noop, n) for n in range(start, min(jobs, start + chunk))])
    return rate(jobs, timer.seconds)


async def drain(jobs: int, concurrency: int) -> float:
    config = QueueConfig(worker=WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05))
    async with QueueService(config, registry=registry) as service:
        await service.enqueue_many([service.request(noop, n) for n in range(jobs)])
        worker = Worker(service)
        with Timer() as timer:
            done = await worker.run_until_idle(timeout=600)
        assert done == jobs, f"drained {done} of {jobs}"
    return rate(jobs, timer.seconds)


async def main(jobs: int) -> list[Result]:
    gc.collect()
    results = [
        Result("litestar-queues memory", "enqueue (single)", await enqueue_single(jobs), "jobs/s"),
        Result("litestar-queues memory", "enqueue (bulk, 1000/call)", await enqueue_bulk(jobs), "jobs/s"),
    ]
    for concurrency in (10, 50):
        value = await drain(jobs, concurrency)
        results.append(Result("litestar-queues memory", f"drain no-op, concurrency {concurrency}", value, "jobs/s"))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    arguments = parser.parse_args()
    measured = asyncio.run(main(arguments.jobs))
    print(machine_summary(), f"- {arguments.jobs} jobs")
    print(markdown_table(measured))
