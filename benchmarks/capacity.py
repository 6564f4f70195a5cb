"""What one job costs the server: CPU time, round trips, commands or statements, on Redis and PostgreSQL.

Inputs of the capacity model in docs/deployment.md. The script starts PRIVATE servers of its own on free ports
(``redis-server`` without persistence; PostgreSQL 15 with the settings of ``scripts/servers.sh`` plus
``pg_stat_statements``), so the counters below see this workload only, and stops them at the end. Wall-clock rates
on a shared machine are noise; these counters are not:

* **server CPU** — Redis: ``used_cpu_user + used_cpu_sys`` from ``INFO cpu`` (the server's getrusage, µs
  resolution); PostgreSQL: ``utime + stime`` from ``/proc/<pid>/stat`` of the postmaster and every child process
  (``cutime + cstime`` of the postmaster for children that exited), 10 ms ticks.
* **client CPU** — this process (enqueuer + worker in one process): ``time.process_time()``.
* **round trips** — Redis: socket writes of the client (redis-py ``send_packed_command``: one per command or
  pipeline); commands as the server counts them (``INFO commandstats``, the calls a Lua script makes included).
  PostgreSQL: statements executed (``pg_stat_statements`` calls, ``BEGIN``/``COMMIT`` included: with asyncpg
  each is one round trip), transactions that wrote (xid delta), and WAL bytes.

Phases, each on a fresh key/table prefix and measured alone: enqueue awaited one by one, enqueue in bulk (1,000
per call), and drains of no-op jobs at concurrency 1 (claim batch 1), 10 and 50 (claim batch = concurrency).
Every figure is per job; the report gives the median and range over ``--rounds`` rounds. Run (from the checkout
root, after ``uv sync --all-packages``)::

    uv run --no-sync python benchmarks/capacity.py [--jobs 2000] [--rounds 3] [--backends redis,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import free_port, machine_summary
from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task

registry = TaskRegistry()
TICK = os.sysconf("SC_CLK_TCK")


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


PHASES = ("enqueue single", "enqueue bulk", "drain c1", "drain c10", "drain c50")
"""A round: ``enqueue single`` then ``drain c1`` on one prefix, ``enqueue bulk`` then ``drain c10``, bulk then c50."""

LIFECYCLES = {"single": ("enqueue single", "drain c1"), "batched": ("enqueue bulk", "drain c50")}
"""A whole job's life, as the sum of the medians of its phases."""


# --- private servers --------------------------------------------------------------------------------------------


def as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the ``postgres`` OS user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def private_redis() -> Iterator[tuple[str, int]]:
    port = free_port()
    directory = tempfile.mkdtemp(prefix="lqcap-redis-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )
    try:
        ping = ["redis-cli", "-p", str(port), "ping"]
        while subprocess.run(ping, check=False, capture_output=True).stdout.strip() != b"PONG":
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", server.pid
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[tuple[str, int]]:
    bin_dir = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="lqcap-pg-"))
    directory.chmod(0o755)
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    subprocess.run(
        as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{directory}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.max = 10000\n"
        )
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(directory / "log"), "-w"]
    subprocess.run(as_postgres([*pg_ctl, "start"]), check=True, capture_output=True)
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", pid
    finally:
        subprocess.run(as_postgres([*pg_ctl, "-m", "fast", "stop"]), check=False, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its children, living and reaped (``/proc/<pid>/stat``)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root:
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        elif ppid == root:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


# --- counters ---------------------------------------------------------------------------------------------------

Counters = dict[str, float]


class RedisProbe:
    """Counters of a private Redis server, and the client's socket writes (patched into redis-py)."""

    writes = 0

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.connection import AbstractConnection

        original = AbstractConnection.send_packed_command

        async def counted(connection: Any, command: Any, check_health: bool = True) -> None:
            RedisProbe.writes += 1
            await original(connection, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign,assignment]
        self.client = Redis.from_url(url)
        self.original = original
        self.own_writes = 0

    async def read(self) -> Counters:
        self.own_writes += 1  # the INFO below
        info = await self.client.info("all")
        writes = RedisProbe.writes - self.own_writes
        stats = {key[len("cmdstat_") :]: value for key, value in info.items() if key.startswith("cmdstat_")}
        return {
            "server CPU µs": (info["used_cpu_user"] + info["used_cpu_sys"]) * 1e6,
            "round trips": writes,
            "commands": sum(value["calls"] for name, value in stats.items() if name != "info"),
        }

    async def close(self) -> None:
        from redis.asyncio.connection import AbstractConnection

        await self.client.aclose()
        AbstractConnection.send_packed_command = self.original  # type: ignore[method-assign]


class PostgresProbe:
    """Counters of a private PostgreSQL server (process-tree CPU, pg_stat_statements, xids, WAL)."""

    def __init__(self, dsn: str, pid: int) -> None:
        self.dsn, self.pid = dsn, pid
        self.connection: Any = None

    async def open(self) -> None:
        import asyncpg

        self.connection = await asyncpg.connect(self.dsn)
        await self.connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    async def read(self) -> Counters:
        row = await self.connection.fetchrow(
            "SELECT (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%')"
            " AS statements, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid,"
            " pg_current_wal_lsn() - '0/0'::pg_lsn AS wal"
        )
        return {
            "server CPU µs": tree_cpu(self.pid) * 1e6,
            "statements": float(row["statements"]),
            "write xacts": float(row["xid"]),
            "WAL bytes": float(row["wal"]),
        }

    async def close(self) -> None:
        await self.connection.close()


# --- phases -----------------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    backend: Callable[[str], Any]
    """``backend(prefix)``: a backend configuration on fresh storage."""
    probe: Any


@asynccontextmanager
async def measured(probe: Any, jobs: int, into: dict[str, list[float]]) -> AsyncIterator[None]:
    """Per-job deltas of the probe's counters and of this process's CPU over the block."""
    gc.collect()
    before, cpu = await probe.read(), time.process_time()
    yield
    cpu, after = time.process_time() - cpu, await probe.read()
    into.setdefault("client CPU µs", []).append(cpu * 1e6 / jobs)
    for key, value in after.items():
        into.setdefault(key, []).append((value - before[key]) / jobs)


async def lifecycle(
    target: Target, *, jobs: int, bulk: bool, concurrency: int, results: dict[str, dict[str, list[float]]]
) -> None:
    settings = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05)
    config = QueueConfig(queue_backend=target.backend(f"lqcap{uuid.uuid4().hex[:8]}"), worker=settings)
    async with QueueService(config, registry=registry) as service:
        enqueue = "enqueue bulk" if bulk else "enqueue single"
        async with measured(target.probe, jobs, results.setdefault(enqueue, {})):
            if bulk:
                for start in range(0, jobs, 1000):
                    chunk = range(start, min(jobs, start + 1000))
                    await service.enqueue_many([service.request(noop, n) for n in chunk])
            else:
                for n in range(jobs):
                    await service.enqueue(noop, n)
        # Worker.start + waiting for the count, as a long-running worker drains; ``run_until_idle`` would add its own
        # idleness checks (an aggregate over the table whenever no attempt runs) to what is measured.
        worker = Worker(service)
        async with measured(target.probe, jobs, results.setdefault(f"drain c{concurrency}", {})):
            await worker.start()
            deadline = time.monotonic() + 900
            while worker.processed < jobs:
                assert time.monotonic() < deadline, f"drained {worker.processed} of {jobs} in 900 s"
                await asyncio.sleep(0.01)
        await worker.stop()
        assert worker.processed == jobs, f"drained {worker.processed} of {jobs}"


async def measure(target: Target, *, jobs: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    for round_number in range(rounds):
        for bulk, concurrency in ((False, 1), (True, 10), (True, 50)):
            await lifecycle(target, jobs=jobs, bulk=bulk, concurrency=concurrency, results=results)
        print(f"  {target.name}: round {round_number + 1} of {rounds} done", flush=True)
    return results


def spread(values: list[float], digits: int) -> str:
    median = statistics.median(values)
    return f"{median:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def report(name: str, results: dict[str, dict[str, list[float]]]) -> None:
    columns = [key for key in next(iter(results.values())) if key != "client CPU µs"]
    print(f"\n{name}: per job, median (min-max)")
    print("| phase | " + " | ".join(columns) + " | client CPU µs | server jobs/s per core (derived) |")
    print("|---|" + "---:|" * (len(columns) + 2))
    for phase in PHASES:
        row = results[phase]
        cells = [spread(row[key], 0 if key.endswith(("µs", "bytes")) else 3) for key in columns]
        per_core = 1e6 / statistics.median(row["server CPU µs"])
        print(f"| {phase} | " + " | ".join(cells) + f" | {spread(row['client CPU µs'], 0)} | {per_core:,.0f} |")
    for label, phases in LIFECYCLES.items():
        server = sum(statistics.median(results[phase]["server CPU µs"]) for phase in phases)
        client = sum(statistics.median(results[phase]["client CPU µs"]) for phase in phases)
        print(
            f"| **{label}** (derived: {' + '.join(phases)}) | {server:,.0f} |"
            + " |" * (len(columns) - 1)
            + f" {client:,.0f} | {1e6 / server:,.0f} |"
        )


async def main(arguments: argparse.Namespace) -> None:
    print(machine_summary(), f"- {arguments.jobs} no-op jobs per phase, {arguments.rounds} rounds", flush=True)
    backends = arguments.backends.split(",")
    if "redis" in backends:
        from litestar_queues.backends.redis import RedisBackendConfig

        with private_redis() as (url, _pid):
            redis_probe = RedisProbe(url)
            try:
                target = Target("Redis", lambda prefix: RedisBackendConfig(url, key_prefix=prefix), redis_probe)
                report("Redis", await measure(target, jobs=arguments.jobs, rounds=arguments.rounds))
            finally:
                await redis_probe.close()
    if "postgres" in backends:
        from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

        with private_postgres() as (dsn, pid):
            pg_probe = PostgresProbe(dsn, pid)
            await pg_probe.open()
            try:
                target = Target(
                    "PostgreSQL (SQLSpec, asyncpg)",
                    lambda prefix: SQLSpecBackendConfig.from_url(dsn, table_prefix=f"{prefix}_", listen_notify=True),
                    pg_probe,
                )
                report(target.name, await measure(target, jobs=arguments.jobs, rounds=arguments.rounds))
            finally:
                await pg_probe.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="redis,postgres")
    asyncio.run(main(parser.parse_args()))
