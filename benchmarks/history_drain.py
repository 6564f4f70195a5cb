"""Drain throughput with the durable event history on vs off, interleaved, on Redis and PostgreSQL (the SQLSpec
backend, and the Advanced Alchemy backend with ``--alchemy``).

Each job publishes three events (``task.started``, one ``task.progress``, ``task.completed``) to a sink that counts
them; with the history on, each event is also stored in the queue backend (``QueueEventConfig(history=True)``). The
progress is kept on the record in both runs (that is not the history's cost). Rounds run the variants in turns
(off, on; on, off; …), on fresh storage each (a key or table prefix of their own), so both variants see the same
machine; the report gives each variant's median and range and the ratio of the medians (the issue's target:
on / off >= 0.75).

Each round also measures the floor under that ratio: the same number of events written alone, in batches of the
size the history writer used in that round, one write at a time. If the drain could not overlap those writes with
anything else, on / off would be ``t_off / (t_off + t_writes)`` per job ("writes alone" bound).

Where the backend stores a ``task.progress`` event's progress in the same statement as the events
(``stores_progress_with_events``: PostgreSQL), ``--apart`` adds a third variant to each round: the history on with
the progress written apart (``ProgressReporter``'s own batches, as on a backend that cannot combine them). Each
variant also reports its event + progress round trips per job: the history writer's calls plus the progress
writes of their own (each one statement on PostgreSQL; with the history off, only the progress writes). Run::

    uv run --project benchmarks python benchmarks/history_drain.py --redis redis://127.0.0.1:6379/0 \
        --postgres postgresql://postgres@127.0.0.1:5432/bench \
        --alchemy postgresql+asyncpg://postgres@127.0.0.1:5432/bench [--apart] [--jobs 5000] [--rounds 5] \
        [--concurrency 10 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from harness import Timer, machine_summary, rate
from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.config import resolve_backend
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


def alchemy_storage(url: str) -> Storage:
    """The Advanced Alchemy backend on an engine of ``url`` (``postgresql+asyncpg://…``, ``postgresql+psycopg://…``)."""

    def make(prefix: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
        from sqlalchemy import MetaData
        from sqlalchemy.ext.asyncio import create_async_engine

        from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig

        engine = create_async_engine(url, pool_size=60, max_overflow=0)  # as many as the SQLSpec pool keeps
        config = AdvancedAlchemyBackendConfig(
            alchemy=engine, metadata=MetaData(), table_prefix=f"{prefix}_", create_tables=True
        )
        tables = config.tables()

        async def drop() -> None:
            async with engine.begin() as connection:
                await connection.run_sync(tables.metadata.drop_all, tables=list(tables.all), checkfirst=True)
            await engine.dispose()

        return config, drop

    return make


class Writes:
    """Counts the history writer's calls and events (wraps the backend's ``append_events_with_progress``)."""

    def __init__(self, append: Callable[[list[QueueEvent], list[Any]], Awaitable[None]]) -> None:
        self.append = append
        self.calls = 0
        self.events = 0

    async def __call__(self, events: list[QueueEvent], progress: list[Any]) -> None:
        self.calls += 1
        self.events += len(events)
        await self.append(events, progress)

    @property
    def batch(self) -> int:
        """The mean batch size."""
        return max(1, round(self.events / self.calls)) if self.calls else 1


class Saves:
    """Counts the progress writes of their own (wraps the backend's ``save_progress``)."""

    def __init__(self, save: Callable[[list[Any]], Awaitable[None]]) -> None:
        self.save = save
        self.calls = 0

    async def __call__(self, updates: list[Any]) -> None:
        self.calls += 1
        await self.save(updates)


class Drained(NamedTuple):
    """One drain: jobs per second, the history writer's mean batch (1 with the history off), and the history round
    trips per job (the writer's calls and the progress writes of their own)."""

    rate: float
    batch: int
    round_trips: float


async def drain(
    backend_config: Any, *, history: bool, jobs: int, concurrency: int, progress_apart: bool = False, check: bool = True
) -> Drained:
    """One drain of ``jobs``; with ``progress_apart``, progress is not stored with its event even where it can be;
    ``check`` reads the stored history back and counts it (after the timing)."""
    sink = CountingSink()
    backend = resolve_backend(backend_config)
    saves = Saves(backend.save_progress)
    backend.save_progress = saves  # type: ignore[method-assign] # counted: the progress reporter binds it at open
    config = QueueConfig(
        queue_backend=backend,
        worker=WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05),
        event_config=QueueEventConfig(enabled=True, sink=sink, history=history),
    )
    async with QueueService(config, registry=registry) as service:
        writes = Writes(service.backend.append_events_with_progress)
        if history:
            combined = service.backend.stores_progress_with_events and not progress_apart
            service.publisher.store_with(writes, with_progress=combined)
        for start in range(0, jobs, 1000):
            chunk = range(start, min(jobs, start + 1000))
            await service.enqueue_many([service.request(three_events, n) for n in chunk])
        gc.collect()
        with Timer() as timer:
            done = await Worker(service).run_until_idle(timeout=900)  # returns once every event reached the sink
        assert done == jobs, f"drained {done} of {jobs}"
        assert sink.count == 3 * jobs, f"{sink.count} events for {jobs} jobs"
        if history and check:
            stored = 0
            page = await service.list_events(limit=1000)
            while True:
                stored += len(page.events)
                if page.next_cursor is None:
                    break
                page = await service.list_events(limit=1000, cursor=page.next_cursor)
            assert stored == 3 * jobs, f"{stored} stored events for {jobs} jobs"
    return Drained(rate(jobs, timer.seconds), writes.batch, (writes.calls + saves.calls) / jobs)


def job_events(jobs: int) -> list[QueueEvent]:
    """The events a drain of ``jobs`` stores, as the worker makes them."""
    events: list[QueueEvent] = []
    for _ in range(jobs):
        task_id = str(uuid.uuid4())
        common: dict[str, Any] = {
            "scope_key": task_id,
            "task_id": task_id,
            "task_name": three_events.name,
            "queue": "default",
            "worker_id": "bench-worker",
            "execution_backend": "local",
            "attempt": 1,
        }
        events += [
            QueueEvent(type="task.started", sequence=1, **common),
            QueueEvent(
                type="task.progress",
                sequence=2,
                progress_current=1,
                progress_total=1,
                progress_percent=100.0,
                **common,
            ),
            QueueEvent(type="task.completed", sequence=3, **common),
        ]
    return events


async def writes_alone(config: Any, events: list[QueueEvent], batch: int) -> float:
    """Seconds to store ``events`` in batches of ``batch``, one write at a time (the history writer's pattern)."""
    backend = resolve_backend(config)
    await backend.open()
    try:
        started = time.perf_counter()
        for start in range(0, len(events), batch):
            await backend.append_events(events[start : start + batch])
        return time.perf_counter() - started
    finally:
        await backend.close()


_VARIANTS = {"off": {"history": False}, "on": {"history": True}, "apart": {"history": True, "progress_apart": True}}
"""Drain variants: the history off, on, and on with the progress written apart (``--apart``)."""


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


async def compare(name: str, storage: Storage, *, jobs: int, rounds: int, concurrency: int, apart: bool) -> str:
    variants = ["off", "on", "apart"] if apart else ["off", "on"]
    rates: dict[str, list[float]] = {variant: [] for variant in variants}
    trips: dict[str, list[float]] = {variant: [] for variant in variants}
    alone: list[float] = []
    events = job_events(jobs)
    load = os.getloadavg()[0]
    for round_number in range(rounds):
        batch = 1
        shift = round_number % len(variants)
        for variant in variants[shift:] + variants[:shift]:  # each variant first in some round
            prefix = f"lqh{uuid.uuid4().hex[:8]}"
            backend, drop = storage(prefix)
            try:
                drained = await drain(backend, jobs=jobs, concurrency=concurrency, **_VARIANTS[variant])
            finally:
                await drop()
            rates[variant].append(drained.rate)
            trips[variant].append(drained.round_trips)
            batch = drained.batch if variant == "on" else batch
            print(
                f"  {name} c{concurrency} round {round_number + 1} history {variant}: {drained.rate:,.0f} jobs/s, "
                f"{drained.round_trips:.3f} event + progress round trips/job"
            )
        prefix = f"lqh{uuid.uuid4().hex[:8]}"
        backend, drop = storage(prefix)
        try:
            alone.append(await writes_alone(backend, events, batch) / jobs)
        finally:
            await drop()
        print(
            f"  {name} c{concurrency} round {round_number + 1} writes alone, batches of {batch}: "
            f"{alone[-1] * 1e6:.0f} us/job"
        )
    load = max(load, os.getloadavg()[0])
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    per_job = statistics.median(alone)
    bound = (1 / off) / (1 / off + per_job)
    cells = [
        name,
        str(concurrency),
        _spread(rates["off"]),
        _spread(rates["on"]),
        f"**{on / off:.2f}**",
        f"{statistics.median(trips['on']):.3f}",
    ]
    if apart:
        cells += [
            _spread(rates["apart"]),
            f"{statistics.median(rates['apart']) / off:.2f}",
            f"{statistics.median(trips['apart']):.3f}",
        ]
    cells += [f"{per_job * 1e6:.0f} µs", f"{bound:.2f}", f"{load:.1f}"]
    return f"| {' | '.join(cells)} |"


async def main(arguments: argparse.Namespace) -> None:
    rows: list[str] = []
    targets: list[tuple[str, Storage]] = []
    if arguments.redis:
        targets.append(("Redis", redis_storage(arguments.redis)))
    if arguments.postgres:
        targets.append(("PostgreSQL (asyncpg)", postgres_storage(arguments.postgres)))
    if arguments.alchemy:
        driver = arguments.alchemy.split("://", 1)[0].partition("+")[2] or "default driver"
        targets.append((f"PostgreSQL (Advanced Alchemy, {driver})", alchemy_storage(arguments.alchemy)))
    for concurrency in arguments.concurrency:
        for name, storage in targets:
            rows.append(
                await compare(
                    name,
                    storage,
                    jobs=arguments.jobs,
                    rounds=arguments.rounds,
                    concurrency=concurrency,
                    apart=arguments.apart,
                )
            )
    print()
    print(
        machine_summary(),
        f"- {arguments.jobs} jobs x 3 events, {arguments.rounds} rounds each (medians, range in brackets)",
    )
    header = ["backend", "concurrency", "history off, jobs/s", "history on, jobs/s", "on / off", "round trips/job"]
    if arguments.apart:
        header += ["progress apart, jobs/s", "apart / off", "round trips/job, apart"]
    header += ["writes alone, per job", "writes-alone bound", "load (1 min, max)"]
    print(f"| {' | '.join(header)} |")
    print(f"|---|{'---:|' * (len(header) - 1)}")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", help="a Redis URL")
    parser.add_argument("--postgres", help="a PostgreSQL DSN")
    parser.add_argument(
        "--alchemy", help="a SQLAlchemy PostgreSQL URL (postgresql+asyncpg://… or postgresql+psycopg://…)"
    )
    parser.add_argument("--apart", action="store_true", help="also drain with the progress written apart")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    asyncio.run(main(parser.parse_args()))
