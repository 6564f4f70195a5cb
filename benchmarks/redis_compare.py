"""Redis and Valkey backends side by side with SAQ, arq, taskiq-redis and streaq, in one run on one server.

Measures, for every system, with no-op tasks taking one int argument:

* single enqueue: sequential awaited enqueues of one job;
* bulk enqueue: the system's fastest way to enqueue many jobs (``enqueue_many`` where it exists, else
  ``asyncio.gather`` of single enqueues), 1000 jobs per call;
* drain: jobs already queued, a worker with ``--concurrency`` slots started, time until the last one ran;
* idle pickup: an idle worker; time from the start of one enqueue to the start of the task function.

Each number is the best of ``--rounds`` rounds, the systems interleaved within a round. The peers run with their
defaults except concurrency (arq polls every 0.5 s by default, which dominates its pickup latency).

Run (the peers are pinned in the benchmark project's own lock, ``benchmarks/uv.lock``)::

    uv run --project benchmarks python benchmarks/redis_compare.py

A private server is started on a free port from ``--server-bin`` (default ``$LQ_REDIS_BIN``, else
``redis-server`` on PATH; pass the valkey-server binary to measure Valkey) and flushed between measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from harness import TRACKER, Result, System, cancel_task, machine_summary, package_versions, percentile, rate

PEERS = ("saq", "arq", "taskiq-redis", "taskiq", "streaq", "redis", "valkey", "hiredis")


# -- litestar-queues ---------------------------------------------------------------------------------


class LitestarQueues(System):
    def __init__(self, flavor: str) -> None:
        self.flavor = flavor
        self.name = f"litestar-queues {flavor}"

    async def open(self, url: str) -> None:
        from litestar_queues import QueueConfig, QueueService, TaskRegistry, task

        if self.flavor == "redis":
            from litestar_queues.backends.redis import RedisBackendConfig as Config
        else:
            from litestar_queues.backends.valkey import ValkeyBackendConfig as Config  # type: ignore[assignment]
        registry = TaskRegistry()

        @task("bench.noop", registry=registry)
        async def noop(n: int) -> None:
            TRACKER.hit(n)

        self.task = noop
        self.url = url
        self.config_type = Config
        self.service = QueueService(QueueConfig(queue_backend=Config(url=url, key_prefix="bench")), registry=registry)
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


# -- SAQ ---------------------------------------------------------------------------------------------


class Saq(System):
    name = "saq"

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
        await self.worker.stop()
        await cancel_task(self.task)


# -- arq ---------------------------------------------------------------------------------------------


class Arq(System):
    name = "arq"

    async def open(self, url: str) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.settings = RedisSettings.from_dsn(url)
        self.pool = await create_pool(self.settings)
        self.task: asyncio.Task[Any] | None = None

    async def close(self) -> None:
        await self.pool.aclose()

    async def enqueue(self, n: int) -> None:
        await self.pool.enqueue_job("noop", n)

    async def start_worker(self, concurrency: int) -> None:
        from arq.worker import Worker, func

        async def noop(ctx: Any, n: int) -> None:
            TRACKER.hit(n)

        self.worker = Worker(
            functions=[func(noop, name="noop")],
            redis_pool=self.pool,
            max_jobs=concurrency,
            handle_signals=False,
            keep_result=0,
        )
        self.task = asyncio.create_task(self.worker.async_run())

    async def stop_worker(self) -> None:
        await cancel_task(self.task)
        with contextlib.suppress(BaseException):  # close() re-raises the cancellation of its job tasks
            await self.worker.close()


# -- taskiq-redis ------------------------------------------------------------------------------------


class Taskiq(System):
    def __init__(self, broker_name: str) -> None:
        self.broker_name = broker_name
        self.name = f"taskiq-redis {broker_name}"

    async def open(self, url: str) -> None:
        import taskiq_redis

        self.broker = getattr(taskiq_redis, self.broker_name)(url)

        async def noop(n: int) -> None:
            TRACKER.hit(n)

        self.noop = self.broker.register_task(noop, task_name="noop")
        await self.broker.startup()
        self.task: asyncio.Task[Any] | None = None

    async def close(self) -> None:
        await self.broker.shutdown()

    async def enqueue(self, n: int) -> None:
        await self.noop.kiq(n)

    async def start_worker(self, concurrency: int) -> None:
        from taskiq.api import run_receiver_task

        self.task = asyncio.create_task(run_receiver_task(self.broker, max_async_tasks=concurrency))

    async def stop_worker(self) -> None:
        await cancel_task(self.task)


# -- streaq ------------------------------------------------------------------------------------------


class Streaq(System):
    name = "streaq"

    async def open(self, url: str) -> None:
        self.url = url
        self.client = self._make_worker(16)
        await self.client.__aenter__()
        self.task: asyncio.Task[Any] | None = None

    def _make_worker(self, concurrency: int) -> Any:
        from streaq import Worker

        worker = Worker(redis_url=self.url, concurrency=concurrency, queue_name="bench", handle_signals=False)

        @worker.task()
        async def noop(n: int) -> None:
            TRACKER.hit(n)

        worker.bench_noop = noop  # type: ignore[attr-defined]
        return worker

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)

    async def enqueue(self, n: int) -> None:
        await self.client.bench_noop.enqueue(n)

    async def enqueue_bulk(self, ns: Sequence[int]) -> None:
        await self.client.enqueue_many([self.client.bench_noop.enqueue(n) for n in ns])

    async def start_worker(self, concurrency: int) -> None:
        self.worker = self._make_worker(concurrency)
        self.task = asyncio.create_task(self.worker.run_async())

    async def stop_worker(self) -> None:
        await cancel_task(self.task)


# -- the server and the measurements -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_server(binary: str) -> Any:
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen([*command, "--dir", directory], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} did not start")
                time.sleep(0.02)
            version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
            yield f"redis://127.0.0.1:{port}/0", version.split()[2]
        finally:
            process.terminate()
            process.wait(10)


async def flush(url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    await client.flushall()
    await client.aclose()


@contextlib.asynccontextmanager
async def opened(system: System, url: str) -> AsyncIterator[System]:
    await flush(url)
    TRACKER.reset()
    await system.open(url)
    try:
        yield system
    finally:
        await system.close()


async def measure_single(system: System, url: str, jobs: int) -> float:
    async with opened(system, url):
        started = time.perf_counter()
        for n in range(jobs):
            await system.enqueue(n)
        return rate(jobs, time.perf_counter() - started)


async def measure_bulk(system: System, url: str, jobs: int, chunk: int = 1000) -> float:
    async with opened(system, url):
        started = time.perf_counter()
        for first in range(0, jobs, chunk):
            await system.enqueue_bulk(range(first, min(jobs, first + chunk)))
        return rate(jobs, time.perf_counter() - started)


async def measure_drain(system: System, url: str, jobs: int, concurrency: int) -> float:
    async with opened(system, url):
        for first in range(0, jobs, 1000):
            await system.enqueue_bulk(range(first, min(jobs, first + 1000)))
        TRACKER.expect(jobs)
        started = time.perf_counter()
        await system.start_worker(concurrency)
        try:
            await asyncio.wait_for(TRACKER.reached.wait(), 300)
            return rate(jobs, time.perf_counter() - started)
        finally:
            await system.stop_worker()


async def measure_pickup(system: System, url: str, samples: int) -> tuple[float, float]:
    async with opened(system, url):
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
            await system.stop_worker()


def available_systems(names: Sequence[str]) -> list[System]:
    factories: dict[str, Callable[[], System]] = {
        "litestar-queues-redis": lambda: LitestarQueues("redis"),
        "litestar-queues-valkey": lambda: LitestarQueues("valkey"),
        "saq": Saq,
        "arq": Arq,
        "taskiq-list": lambda: Taskiq("ListQueueBroker"),
        "taskiq-stream": lambda: Taskiq("RedisStreamBroker"),
        "streaq": Streaq,
    }
    modules = {"saq": "saq", "arq": "arq", "taskiq-list": "taskiq_redis", "taskiq-stream": "taskiq_redis"}
    modules |= {"streaq": "streaq", "litestar-queues-valkey": "valkey"}
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


async def run(arguments: argparse.Namespace, url: str) -> list[Result]:
    systems = available_systems(arguments.systems)
    best: dict[tuple[str, str], float] = {}
    lowest: dict[tuple[str, str], float] = {}

    def keep(system: System, metric: str, value: float, *, higher: bool = True) -> None:
        table = best if higher else lowest
        key = (system.name, metric)
        old = table.get(key)
        if old is None or (value > old if higher else value < old):
            table[key] = value

    for round_number in range(arguments.rounds):
        for system in systems:
            gc.collect()
            print(f"round {round_number + 1}: {system.name}", file=sys.stderr)
            keep(system, "enqueue single", await measure_single(system, url, arguments.single))
            keep(system, "enqueue bulk (1000 per call)", await measure_bulk(system, url, arguments.bulk))
            for concurrency in arguments.concurrency:
                value = await measure_drain(system, url, arguments.jobs, concurrency)
                keep(system, f"drain, concurrency {concurrency}", value)
            if system.name != "arq" or arguments.arq_pickup:
                p50, p99 = await measure_pickup(system, url, arguments.samples)
                keep(system, "idle pickup p50", p50, higher=False)
                keep(system, "idle pickup p99", p99, higher=False)
    results = [Result(name, metric, value, "jobs/s") for (name, metric), value in best.items()]
    results += [Result(name, metric, value, "ms") for (name, metric), value in lowest.items()]
    return results


def report(results: list[Result], ours: Sequence[str]) -> str:
    """A Markdown table; the last column divides our value by the best peer's (rates: higher is better,
    latencies: lower is better)."""
    metrics: dict[str, list[Result]] = {}
    for result in results:
        metrics.setdefault(result.metric, []).append(result)
    lines = ["| metric | system | value | ours / best peer |", "|---|---|---:|---:|"]
    for metric, rows in metrics.items():
        peers = [r.value for r in rows if r.system not in ours]
        higher = rows[0].unit != "ms"
        best_peer = (max(peers) if higher else min(peers)) if peers else None
        for row in sorted(rows, key=lambda r: -r.value if higher else r.value):
            ratio = ""
            if best_peer and row.system in ours:
                ratio = f"{row.value / best_peer:.2f}x"
            lines.append(f"| {metric} | {row.system} | {row.value:,.1f} {row.unit} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bin = os.environ.get("LQ_REDIS_BIN") or shutil.which("redis-server") or "redis-server"
    parser.add_argument("--server-bin", default=default_bin)
    parser.add_argument("--url", help="use this server instead of starting one (it is FLUSHALLed!)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=2000, help="jobs in the single-enqueue measurement")
    parser.add_argument("--bulk", type=int, default=20000, help="jobs in the bulk-enqueue measurement")
    parser.add_argument("--jobs", type=int, default=10000, help="jobs drained")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--samples", type=int, default=200, help="idle pickups measured")
    parser.add_argument("--arq-pickup", action="store_true", help="also measure arq's pickup (0.5 s polling)")
    systems = ["litestar-queues-redis", "litestar-queues-valkey", "saq", "arq", "taskiq-list", "taskiq-stream"]
    parser.add_argument("--systems", nargs="+", default=[*systems, "streaq"])
    arguments = parser.parse_args()
    ours = ("litestar-queues redis", "litestar-queues valkey")
    if arguments.url:
        results = asyncio.run(run(arguments, arguments.url))
        server = arguments.url
    else:
        with private_server(arguments.server_bin) as (url, version):
            results = asyncio.run(run(arguments, url))
            server = f"{Path(arguments.server_bin).name} {version}"
    versions = ", ".join(f"{name} {v}" for name, v in package_versions(PEERS).items() if v != "-")
    print(f"{machine_summary()}; server {server}; {versions}")
    print(
        f"best of {arguments.rounds} rounds; {arguments.single} single enqueues, {arguments.bulk} bulk, "
        f"{arguments.jobs} jobs drained, {arguments.samples} pickups\n"
    )
    print(report(results, ours))


if __name__ == "__main__":
    main()
