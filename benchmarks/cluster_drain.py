"""Drain of no-op jobs on a single Redis/Valkey server and on a 3-shard cluster of the same binary, interleaved.

Each round drains ``--jobs`` jobs once per target, in turn, each under a fresh key prefix (purged afterwards); the
table gives the median and range of every target's rate and of the cluster ÷ single-server ratio within a round.
Start the servers with ``bash scripts/servers.sh up redis redis_cluster`` (and source its env file), then::

    uv run --no-sync python benchmarks/cluster_drain.py [--jobs 2000] [--rounds 5] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.backends.redis import RedisBackendConfig

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


async def drain(url: str, jobs: int, concurrency: int) -> float:
    backend = RedisBackendConfig(url=url, key_prefix=f"lqbench:{uuid.uuid4().hex}")
    worker = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05)
    async with QueueService(QueueConfig(queue_backend=backend, worker=worker), registry=registry) as service:
        await service.enqueue_many([service.request(noop, n) for n in range(jobs)])
        started = time.perf_counter()
        done = await Worker(service).run_until_idle(timeout=600)
        seconds = time.perf_counter() - started
        assert done == jobs, f"drained {done} of {jobs}"
        await service.backend.purge()  # type: ignore[attr-defined]
    return jobs / seconds


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


async def main(targets: dict[str, str], jobs: int, rounds: int, concurrency: int) -> None:
    rates: dict[str, list[float]] = {name: [] for name in targets}
    ratios: list[float] = []
    await drain(next(iter(targets.values())), min(jobs, 200), concurrency)  # warm-up
    for _ in range(rounds):
        got = {name: await drain(url, jobs, concurrency) for name, url in targets.items()}
        for name, value in got.items():
            rates[name].append(value)
        if len(got) == 2:
            single, cluster = got.values()
            ratios.append(cluster / single)
    print(f"{jobs} no-op jobs, concurrency {concurrency}, {rounds} interleaved rounds; median (range), jobs/s")
    print("| target | drain |\n| --- | ---: |")
    for name, values in rates.items():
        print(f"| {name} | {spread(values)} |")
    if ratios:
        median, low, high = statistics.median(ratios), min(ratios), max(ratios)
        print(f"| cluster / single, per round | {median:.2f} ({low:.2f}-{high:.2f}) |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--single-only", action="store_true", help="only the single server (a before/after run)")
    arguments = parser.parse_args()
    chosen = {"single server": os.environ["LQ_REDIS_URL"]}
    if not arguments.single_only:
        chosen["3-shard cluster"] = os.environ["LQ_REDIS_CLUSTER_URL"]
    asyncio.run(main(chosen, arguments.jobs, arguments.rounds, arguments.concurrency))
