"""Client instructions per row of one PostgreSQL bulk enqueue call: ours and pgqueuer's, counted by callgrind.

A count of executed instructions does not move with the machine's load, unlike a clock. For each system of
``sql_compare.py`` and each ``--bulk-size``, a child process runs under ``valgrind --tool=callgrind`` with
collection off: it opens the system on a fresh database of a private PostgreSQL server, makes one warm-up call of
that size (pool connections opened, statements prepared) and a full garbage collection, then one more call inside
``sys.call_tracing``, the only function callgrind collects in (``--toggle-collect``; nothing else calls it). The
count is everything that call executes in the client process (building, encoding, the driver, the young-generation
collections its objects cause); the server is another process and not counted (``sql_bulk_counters.py`` measures
its CPU). The collection before the call keeps a full collection, whose cost depends on everything else the process
holds (tens of millions of instructions here), from landing in one system's call and not another's. Run::

    uv run --project benchmarks python benchmarks/bulk_instructions.py --bulk-size 1000 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SYSTEMS = (
    "litestar-queues-asyncpg",
    "litestar-queues-psycopg",
    "litestar-queues-alchemy-asyncpg",
    "litestar-queues-alchemy-psycopg",
    "pgqueuer",
)
_COUNT = {name: re.compile(rf"^{name}: (\d+)", re.MULTILINE) for name in ("totals", "summary")}


def collected_instructions(callgrind_output: str) -> int:
    """The instructions a callgrind output file counted (its ``totals:`` line, else its ``summary:`` line)."""
    for pattern in _COUNT.values():
        found = pattern.search(callgrind_output)
        if found is not None:
            return int(found.group(1))
    raise ValueError("no totals in the callgrind output")


def child(system_name: str, size: int, dsn: str) -> None:
    """Open the system, make a warm-up call, then the counted call (the only code inside ``sys.call_tracing``)."""
    from harness import opened_system
    from sql_compare import available_systems

    (system,) = available_systems([system_name])
    loop = asyncio.new_event_loop()
    opened = opened_system(system, dsn)
    try:
        loop.run_until_complete(opened.__aenter__())
        loop.run_until_complete(system.enqueue_bulk(range(size)))
        gc.collect()
        sys.call_tracing(loop.run_until_complete, (system.enqueue_bulk(range(size, 2 * size)),))
        loop.run_until_complete(opened.__aexit__(None, None, None))
    finally:
        loop.close()


def count(system_name: str, size: int, dsn: str) -> int:
    """Instructions of one warm bulk call of ``size`` rows of ``system_name``, in a callgrind child process."""
    with tempfile.TemporaryDirectory(prefix="lq-callgrind-") as directory:
        output = Path(directory) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=sys_call_tracing",
            f"--callgrind-out-file={output}",
            sys.executable,
            __file__,
            "--child",
            system_name,
            str(size),
            dsn,
        ]
        subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).parent)
        return collected_instructions(output.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bulk-size", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--child", nargs=3, metavar=("SYSTEM", "SIZE", "DSN"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        name, size, dsn = arguments.child
        child(name, int(size), dsn)
        return

    from capacity import private_postgres
    from sql_compare import Databases

    results: dict[tuple[str, int], int] = {}
    with private_postgres() as (dsn, _):
        databases = Databases(dsn.rsplit("/", 1)[0])
        for size in arguments.bulk_size:
            for name in arguments.systems:

                async def one(name: str = name, size: int = size) -> int:
                    async with databases.fresh() as database:
                        return await asyncio.to_thread(count, name, size, database)

                results[(name, size)] = asyncio.run(one())
                print(f"{name} {size}: {results[(name, size)] / size:,.0f} instructions/row", file=sys.stderr)
    print("| rows per call | system | client instructions per row |")
    print("|---:|---|---:|")
    for (name, size), instructions in results.items():
        print(f"| {size:,} | {name} | {instructions / size / 1000:,.1f}k |")


if __name__ == "__main__":
    main()
