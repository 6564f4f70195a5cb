"""Drain of no-op jobs on a single Redis/Valkey server and on a 3-shard cluster of the same binary, interleaved.

Each round drains ``--jobs`` jobs once per target, in turn, under fresh key prefixes (purged afterwards); the table
gives the median and range of every target's rate and of the cluster ÷ single-server ratio within a round. The jobs
go round-robin to ``--queues`` queues (one worker serves them all) and to ``--prefixes`` key prefixes (one service
and worker each, draining side by side, each with ``--concurrency`` slots). For the cluster it also gives the
spread: every shard's share of the server CPU time the drain cost (``INFO cpu`` before and after, per node).

Start the servers with ``bash scripts/servers.sh up redis redis_cluster`` (and source its env file), then::

    uv run --no-sync python benchmarks/cluster_drain.py [--jobs 2000] [--rounds 5] [--concurrency 10]
    uv run --no-sync python benchmarks/cluster_drain.py --queues 6               # one app, six queues
    uv run --no-sync python benchmarks/cluster_drain.py --prefixes 3             # three workloads, own prefixes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from contextlib import AsyncExitStack

from redis.asyncio import Redis, RedisCluster

from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.backends.redis import RedisBackendConfig

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


async def filled_service(stack: AsyncExitStack, url: str, jobs: int, queues: list[str], concurrency: int) -> Worker:
    """Open a service under a fresh prefix (purged on exit), enqueue ``jobs`` over ``queues``; return its worker."""
    backend = RedisBackendConfig(url=url, key_prefix=f"lqbench:{uuid.uuid4().hex}")
    worker = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05, queues=tuple(queues))
    service = await stack.enter_async_context(
        QueueService(QueueConfig(queue_backend=backend, worker=worker), registry=registry)
    )
    stack.push_async_callback(service.backend.purge)  # type: ignore[attr-defined]
    tasks = [noop.using(queue=queue) for queue in queues]
    await service.enqueue_many([service.request(tasks[n % len(tasks)], n) for n in range(jobs)])
    return Worker(service)


async def drain(url: str, jobs: int, queues: int, prefixes: int, concurrency: int) -> tuple[float, list[float]]:
    """The drain rate (jobs/s, all prefixes together) and the server CPU seconds each node spent on it."""
    names = [f"q{index}" for index in range(queues)]
    share = jobs // prefixes
    async with AsyncExitStack() as stack:
        workers = [await filled_service(stack, url, share, names, concurrency) for _ in range(prefixes)]
        before = await server_cpu(url)
        started = time.perf_counter()
        done = await asyncio.gather(*(worker.run_until_idle(timeout=600) for worker in workers))
        seconds = time.perf_counter() - started
        after = await server_cpu(url)
    assert sum(done) == share * prefixes, f"drained {sum(done)} of {share * prefixes}"
    return share * prefixes / seconds, [a - b for a, b in zip(after, before, strict=True)]


async def server_cpu(url: str) -> list[float]:
    """Every primary's ``used_cpu_user + used_cpu_sys`` (one entry for a single server)."""
    if "+cluster" not in url:
        client = Redis.from_url(url)
        clients = [client]
    else:
        cluster = RedisCluster.from_url(url.replace("+cluster", ""))
        await cluster.initialize()
        nodes = sorted(cluster.get_primaries(), key=lambda node: node.name)
        await cluster.aclose()
        clients = [Redis(host=node.host, port=int(node.port)) for node in nodes]
    try:
        infos = [await client.info("cpu") for client in clients]
    finally:
        for client in clients:
            await client.aclose()
    return [float(info["used_cpu_user"]) + float(info["used_cpu_sys"]) for info in infos]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


async def main(
    targets: dict[str, str], *, jobs: int, rounds: int, queues: int, prefixes: int, concurrency: int
) -> None:
    rates: dict[str, list[float]] = {name: [] for name in targets}
    shares: dict[str, list[list[float]]] = {name: [] for name in targets}
    ratios: list[float] = []
    await drain(next(iter(targets.values())), min(jobs, 200), queues, prefixes, concurrency)  # warm-up
    for _ in range(rounds):
        got = {}
        for name, url in targets.items():
            got[name], cpu = await drain(url, jobs, queues, prefixes, concurrency)
            total = sum(cpu) or 1.0
            shares[name].append(sorted((value / total for value in cpu), reverse=True))
        for name, value in got.items():
            rates[name].append(value)
        if len(got) == 2:
            single, cluster = got.values()
            ratios.append(cluster / single)
    print(
        f"{jobs} no-op jobs over {queues} queue(s) and {prefixes} prefix(es), concurrency {concurrency} per "
        f"prefix, {rounds} interleaved rounds; median (range)"
    )
    print("| target | drain, jobs/s | server CPU share per shard, busiest first |\n| --- | ---: | --- |")
    for name, values in rates.items():
        per_shard = zip(*shares[name], strict=True)
        cpu_text = " / ".join(f"{statistics.median(column):.0%}" for column in per_shard)
        print(f"| {name} | {spread(values)} | {cpu_text} |")
    if ratios:
        median, low, high = statistics.median(ratios), min(ratios), max(ratios)
        print(f"| cluster / single, per round | {median:.2f} ({low:.2f}-{high:.2f}) | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--queues", type=int, default=1, help="queues the jobs go to, round-robin")
    parser.add_argument("--prefixes", type=int, default=1, help="key prefixes (services) draining side by side")
    parser.add_argument("--single-only", action="store_true", help="only the single server (a before/after run)")
    arguments = parser.parse_args()
    chosen = {"single server": os.environ["LQ_REDIS_URL"]}
    if not arguments.single_only:
        chosen["3-shard cluster"] = os.environ["LQ_REDIS_CLUSTER_URL"]
    asyncio.run(
        main(
            chosen,
            jobs=arguments.jobs,
            rounds=arguments.rounds,
            queues=arguments.queues,
            prefixes=arguments.prefixes,
            concurrency=arguments.concurrency,
        )
    )
