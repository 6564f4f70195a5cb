"""Where a PostgreSQL bulk enqueue spends its time, in counters a busy machine does not distort much.

For each system of ``sql_compare.py`` (ours on SQLSpec and Advanced Alchemy, asyncpg and psycopg, and pgqueuer),
interleaved within each round, on a fresh database of a private PostgreSQL server with ``pg_stat_statements``
(the server of ``capacity.py``): open the system, then ``--calls`` bulk calls of each ``--bulk-size``, each one
measured alone:

* **client CPU** — this process's CPU time over the call (``time.process_time()``): building, encoding, driver;
* **server CPU** — the server's process tree (``/proc``, 10 ms ticks: summed over many calls it is exact enough);
* **server exec** — ``pg_stat_statements.total_exec_time`` of the call's statements (wall time inside the server:
  parallel statements add up, and it grows with the machine's load);
* **full GCs** — CPython generation-2 collections during the call (each walks every object of the process);
* **wall** — the call's elapsed time (the number the comparisons report; on a busy machine, noise).

The report gives, per call size, each figure per row (µs) as the median over all calls, and the first call of
each fresh system apart (what a one-call harness times: pool connections opened, statements prepared). Run::

    uv run --project benchmarks python benchmarks/sql_bulk_counters.py --rounds 3 --bulk-size 1000 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from typing import Any

from capacity import private_postgres, tree_cpu
from harness import System, machine_summary
from sql_compare import Databases, available_systems

SYSTEMS = (
    "litestar-queues-asyncpg",
    "litestar-queues-psycopg",
    "litestar-queues-alchemy-asyncpg",
    "litestar-queues-alchemy-psycopg",
    "pgqueuer",
)
FIGURES = ("client CPU", "server CPU", "server exec", "wall")


class FullCollections:
    """Counts CPython's generation-2 collections."""

    def __init__(self) -> None:
        self.count = 0
        gc.callbacks.append(self.seen)

    def seen(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self.count += 1


async def exec_ms(admin: Any) -> float:
    """Milliseconds the server spent executing this database's statements so far (``pg_stat_statements``)."""
    return float(
        await admin.fetchval(
            "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements WHERE dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat%'"
        )
    )


async def measure(
    system: System, dsn: str, pid: int, *, sizes: list[int], calls: int, full: FullCollections
) -> dict[tuple[int, str], list[float]]:
    """Per call, each figure in µs per row (full GCs: per call), keyed by call size and figure; first calls apart."""
    import asyncpg

    found: dict[tuple[int, str], list[float]] = {}
    admin = await asyncpg.connect(dsn)
    await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    await system.open(dsn)
    try:
        first = 0
        for index in range(calls):
            for size in sizes:
                gc.collect(0)
                server, executed, collections = tree_cpu(pid), await exec_ms(admin), full.count
                cpu, started = time.process_time(), time.perf_counter()
                await system.enqueue_bulk(range(first, first + size))
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                server, executed = tree_cpu(pid) - server, await exec_ms(admin) - executed
                first += size
                kind = "first call " if index == 0 else ""
                values = (cpu * 1e6, server * 1e6, executed * 1e3, wall * 1e6)
                for figure, value in zip(FIGURES, values, strict=True):
                    found.setdefault((size, kind + figure), []).append(value / size)
                found.setdefault((size, kind + "full GCs"), []).append(float(full.count - collections))
    finally:
        await system.close()
        await admin.close()
    return found


async def run(arguments: argparse.Namespace, dsn: str, pid: int) -> dict[str, dict[tuple[int, str], list[float]]]:
    databases = Databases(dsn.rsplit("/", 1)[0])
    full = FullCollections()
    results: dict[str, dict[tuple[int, str], list[float]]] = {}
    systems = available_systems(arguments.systems)
    for round_number in range(arguments.rounds):
        for system in systems:
            print(f"round {round_number + 1}: {system.name}", flush=True)
            async with databases.fresh() as database:
                found = await measure(
                    system, database, pid, sizes=arguments.bulk_size, calls=arguments.calls, full=full
                )
            for key, values in found.items():
                results.setdefault(system.name, {}).setdefault(key, []).extend(values)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="bulk calls of each size per fresh system")
    parser.add_argument("--bulk-size", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    arguments = parser.parse_args()
    loads = [os.getloadavg()[0]]
    with private_postgres() as (dsn, pid):
        results = asyncio.run(run(arguments, dsn, pid))
    loads.append(os.getloadavg()[0])
    print(f"\n{machine_summary()}; load average (1 min) at start and end: {loads[0]:.1f}, {loads[1]:.1f}")
    print(f"{arguments.rounds} rounds, {arguments.calls} calls of each size per fresh system; medians, µs per row\n")
    figures = [*FIGURES, "full GCs"]
    print("| rows per call | system | " + " | ".join(figures) + " | first call: client CPU | first call: wall |")
    print("|---:|---|" + "---:|" * (len(figures) + 2))
    for size in arguments.bulk_size:
        for name, found in results.items():
            cells = [f"{statistics.median(found[(size, f)]):.1f}" for f in FIGURES]
            cells.append(f"{sum(found[(size, 'full GCs')]) / len(found[(size, 'full GCs')]):.2f} per call")
            cells += [f"{statistics.median(found[(size, 'first call ' + f)]):.1f}" for f in ("client CPU", "wall")]
            print(f"| {size:,} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
