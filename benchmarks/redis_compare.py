"""Redis and Valkey backends side by side with SAQ, arq, taskiq-redis and streaq, in one run on one server.

Measures, for every system, with no-op tasks taking one int argument:

* single enqueue: sequential awaited enqueues of one job;
* bulk enqueue: the system's fastest way to enqueue many jobs (``enqueue_many`` where it exists, else
  ``asyncio.gather`` of single enqueues), 1000 jobs per call;
* drain: jobs already queued, a worker with ``--concurrency`` slots started, time until the last one ran;
* idle pickup: an idle worker; time from the start of one enqueue to the start of the task function.

The single enqueues are also measured for a reference that is no queue, the script floor: one client (redis-py,
as ours) awaiting one ``EVALSHA`` per job of the cheapest script that stores a job, makes it claimable and wakes a
worker (``HSET`` of the body, ``ZADD`` to a pending set, ``PUBLISH``).

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
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    TRACKER,
    LitestarQueuesSystem,
    Result,
    SaqSystem,
    System,
    add_round_arguments,
    cancel_task,
    free_port,
    import_available,
    opened_system,
    print_report,
    run_rounds,
)

PEERS = ("saq", "arq", "taskiq-redis", "taskiq", "streaq", "redis", "valkey", "hiredis")


# -- litestar-queues ---------------------------------------------------------------------------------


class LitestarQueues(LitestarQueuesSystem):
    def __init__(self, flavor: str) -> None:
        super().__init__(f"litestar-queues {flavor}")
        self.flavor = flavor

    def backend_config(self, location: str) -> Any:
        if self.flavor == "redis":
            from litestar_queues.backends.redis import RedisBackendConfig

            return RedisBackendConfig(url=location, key_prefix="bench")
        from litestar_queues.backends.valkey import ValkeyBackendConfig

        return ValkeyBackendConfig(url=location, key_prefix="bench")


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


# -- the script floor --------------------------------------------------------------------------------


class ScriptFloor(System):
    """A reference, not a queue: the round trip a single enqueue cannot go below, whatever its script does."""

    name = "EVALSHA of a 3-call script (floor)"
    single_only = True
    SCRIPT = (
        "redis.call('HSET', KEYS[1] .. ':r:' .. ARGV[1], 'b', ARGV[2]) "
        "redis.call('ZADD', KEYS[1] .. ':pending', 0, ARGV[1]) "
        "redis.call('PUBLISH', KEYS[1] .. ':wake', '') return 1"
    )

    async def open(self, url: str) -> None:
        import msgspec
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url)
        self.sha = await self.client.script_load(self.SCRIPT)
        self.encode = msgspec.json.Encoder().encode

    async def close(self) -> None:
        await self.client.aclose()

    async def enqueue(self, n: int) -> None:
        await self.client.evalsha(self.sha, 1, "floor", str(n), self.encode({"task": "noop", "args": [n]}))


# -- the server and the measurements -----------------------------------------------------------------


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
    async with opened_system(system, url):
        yield system


def available_systems(names: Sequence[str]) -> list[System]:
    factories: dict[str, Callable[[], System]] = {
        "litestar-queues-redis": lambda: LitestarQueues("redis"),
        "litestar-queues-valkey": lambda: LitestarQueues("valkey"),
        "saq": SaqSystem,
        "arq": Arq,
        "taskiq-list": lambda: Taskiq("ListQueueBroker"),
        "taskiq-stream": lambda: Taskiq("RedisStreamBroker"),
        "streaq": Streaq,
        "floor": ScriptFloor,
    }
    modules = {"saq": "saq", "arq": "arq", "taskiq-list": "taskiq_redis", "taskiq-stream": "taskiq_redis"}
    modules |= {"streaq": "streaq", "litestar-queues-valkey": "valkey"}
    return import_available(names, factories, modules)


async def run(arguments: argparse.Namespace, url: str) -> list[Result]:
    return await run_rounds(
        available_systems(arguments.systems),
        lambda system: partial(opened, system, url),
        arguments,
        measures_pickup=lambda system: system.name != "arq" or arguments.arq_pickup,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_bin = os.environ.get("LQ_REDIS_BIN") or shutil.which("redis-server") or "redis-server"
    parser.add_argument("--server-bin", default=default_bin)
    parser.add_argument("--url", help="use this server instead of starting one (it is FLUSHALLed!)")
    add_round_arguments(parser)
    parser.add_argument("--arq-pickup", action="store_true", help="also measure arq's pickup (0.5 s polling)")
    systems = ["litestar-queues-redis", "litestar-queues-valkey", "saq", "arq", "taskiq-list", "taskiq-stream"]
    parser.add_argument("--systems", nargs="+", default=[*systems, "streaq", "floor"])
    arguments = parser.parse_args()
    ours = ("litestar-queues redis", "litestar-queues valkey")
    if arguments.url:
        results = asyncio.run(run(arguments, arguments.url))
        server = arguments.url
    else:
        with private_server(arguments.server_bin) as (url, version):
            results = asyncio.run(run(arguments, url))
            server = f"{Path(arguments.server_bin).name} {version}"
    print_report(arguments, server, PEERS, results, ours, references=(ScriptFloor.name,))


if __name__ == "__main__":
    main()
