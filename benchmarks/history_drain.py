"""Drain throughput with the durable event history on vs off, interleaved, on Redis and PostgreSQL.

Each job publishes three events (``task.started``, one ``task.progress``, ``task.completed``) to a sink that counts
them; with the history on, each event is also stored in the queue backend (``QueueEventConfig(history=True)``). The
progress is kept on the record in both runs (that is not the history's cost). Rounds alternate off, on, off, on, …
on fresh storage each (a key or table prefix of their own), so both variants see the same machine; the report
gives each variant's median and best and the ratio of the medians (the issue's target: on / off >= 0.75). Run::

    uv run --project benchmarks python benchmarks/history_drain.py --redis redis://127.0.0.1:6379/0 \
        --postgres postgresql://postgres@127.0.0.1:5432/bench [--jobs 5000] [--rounds 5] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from harness import Timer, machine_summary, rate
from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.events import QueueEvent, QueueEventConfig, publish_task_progress

registry = TaskRegistry()


@task("bench.three_events", registry=registry)
async def three_events(n: int) -> None:
    await publish_task_progress(current=1, total=1)


class CountingSink:
    """Counts what it is given (the sink both variants publish to)."""

    def __init__(self) -> None:
        self.count = 0

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        self.count += 1


Storage = Callable[[str], tuple[Any, Callable[[], Awaitable[None]]]]
"""``storage(prefix) -> (queue_backend, drop)``: a backend on fresh storage, and what removes it afterwards."""


def redis_storage(url: str) -> Storage:
    def make(prefix: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
        from redis.asyncio import Redis

        from litestar_queues.backends.redis import RedisBackendConfig

        async def drop() -> None:
            client = Redis.from_url(url)
            try:
                keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=5000)]
                for start in range(0, len(keys), 5000):
                    await client.delete(*keys[start : start + 5000])
            finally:
                await client.aclose()

        return RedisBackendConfig(url, key_prefix=prefix), drop

    return make


def postgres_storage(dsn: str) -> Storage:
    def make(prefix: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
        import asyncpg

        from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

        async def drop() -> None:
            connection = await asyncpg.connect(dsn)
            try:
                for table in ("tasks", "workers", "locks", "queue_pauses", "events"):
                    await connection.execute(f'DROP TABLE IF EXISTS "{prefix}_{table}"')
                await connection.execute("DELETE FROM ddl_migrations WHERE version_num LIKE $1", f"ext_{prefix}%")
            finally:
                await connection.close()

        return SQLSpecBackendConfig.from_url(dsn, table_prefix=f"{prefix}_", listen_notify=True), drop

    return make


async def drain(backend: Any, *, history: bool, jobs: int, concurrency: int) -> float:
    sink = CountingSink()
    config = QueueConfig(
        queue_backend=backend,
        worker=WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05),
        event_config=QueueEventConfig(enabled=True, sink=sink, history=history),
    )
    async with QueueService(config, registry=registry) as service:
        for start in range(0, jobs, 1000):
            chunk = range(start, min(jobs, start + 1000))
            await service.enqueue_many([service.request(three_events, n) for n in chunk])
        gc.collect()
        with Timer() as timer:
            done = await Worker(service).run_until_idle(timeout=900)
        assert done == jobs, f"drained {done} of {jobs}"
        assert sink.count == 3 * jobs, f"{sink.count} events for {jobs} jobs"
        if history:
            stored = 0
            page = await service.list_events(limit=1000)
            while True:
                stored += len(page.events)
                if page.next_cursor is None:
                    break
                page = await service.list_events(limit=1000, cursor=page.next_cursor)
            assert stored == 3 * jobs, f"{stored} stored events for {jobs} jobs"
    return rate(jobs, timer.seconds)


async def compare(name: str, storage: Storage, *, jobs: int, rounds: int, concurrency: int) -> list[str]:
    rates: dict[bool, list[float]] = {False: [], True: []}
    for round_number in range(rounds):
        for history in (False, True) if round_number % 2 == 0 else (True, False):
            prefix = f"lqh{uuid.uuid4().hex[:8]}"
            backend, drop = storage(prefix)
            try:
                rates[history].append(await drain(backend, history=history, jobs=jobs, concurrency=concurrency))
            finally:
                await drop()
            print(f"  {name} round {round_number + 1} history {'on ' if history else 'off'}: {rates[history][-1]:,.0f}")
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    spread = " ".join(f"{value:,.0f}" for value in rates[True])
    return [
        f"| {name} | {off:,.0f} (best {max(rates[False]):,.0f}) | {on:,.0f} (best {max(rates[True]):,.0f}) | "
        f"{on / off:.2f} | {spread} |"
    ]


async def main(arguments: argparse.Namespace) -> None:
    rows: list[str] = []
    targets: list[tuple[str, Storage]] = []
    if arguments.redis:
        targets.append(("Redis", redis_storage(arguments.redis)))
    if arguments.postgres:
        targets.append(("PostgreSQL (asyncpg)", postgres_storage(arguments.postgres)))
    for name, storage in targets:
        rows += await compare(
            name, storage, jobs=arguments.jobs, rounds=arguments.rounds, concurrency=arguments.concurrency
        )
    print()
    print(
        machine_summary(),
        f"- {arguments.jobs} jobs x 3 events, concurrency {arguments.concurrency}, {arguments.rounds} rounds each",
    )
    print("| backend | history off, jobs/s (median) | history on, jobs/s (median) | on / off | on, every round |")
    print("|---|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", help="a Redis URL")
    parser.add_argument("--postgres", help="a PostgreSQL DSN")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
