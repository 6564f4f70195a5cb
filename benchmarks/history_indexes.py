"""What each stored event costs PostgreSQL with the events table's five indexes (migration 0006) and with three
(0007 dropped the queue and type indexes), counted rather than timed.

Per round and layout, a fresh schema gets the SQLSpec backend's packaged migrations (0001-0006, or 0001-0007), then
``--events`` realistic events (a job's ``task.started``, ``task.progress`` and ``task.completed``, as the history
stores them) go in with the backend's one-statement insert (``unnest`` of one array per column, ``ON CONFLICT DO
NOTHING``) in batches of ``--batch``. Each insert runs under ``EXPLAIN (ANALYZE, WAL, TIMING OFF)``, which counts
the WAL records and bytes the statement itself wrote (other sessions' writes do not enter it), and the CPU time of
the server process serving the connection is read from ``/proc/<pid>/stat`` around the inserts (so the server must
run on this machine). Layouts alternate within each round; the report gives the median and range per layout and
the ratio of the medians. Run::

    uv run --project benchmarks python benchmarks/history_indexes.py --dsn postgresql://postgres@127.0.0.1:5432/db \
        [--events 30000] [--batch 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import asyncpg

from harness import machine_summary
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.sql.events import EVENT_COLUMNS, event_rows

_MIGRATIONS = "litestar_queues.backends.sqlspec.migrations"
_NUMBERED = {
    1: "0001_create_tasks",
    2: "0002_create_workers_and_locks",
    3: "0003_claims_never_sort",
    4: "0004_create_queue_pauses",
    5: "0005_ended_records_by_queue",
    6: "0006_event_history_and_progress",
    7: "0007_events_by_order_only",
}
LAYOUTS = {"five indexes (0006)": 6, "three indexes (0007)": 7}
_TYPES = ("varchar", "timestamptz", "bigint", "varchar", "varchar", "varchar", "text")
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def job_events(count: int) -> list[QueueEvent]:
    """``count`` events of jobs as the history stores them: started, progress, completed per job."""
    start = datetime.now(timezone.utc)
    events: list[QueueEvent] = []
    while len(events) < count:
        task_id = str(uuid.uuid4())
        common = {"scope": "task", "scope_key": task_id, "task_id": task_id, "task_name": "bench.three_events"}
        moment = start + timedelta(microseconds=len(events) * 37)
        events += [
            QueueEvent(type="task.started", queue="default", attempt=1, occurred_at=moment, **common),
            QueueEvent(
                type="task.progress",
                queue="default",
                attempt=1,
                sequence=1,
                progress_current=1.0,
                progress_total=1.0,
                progress_percent=100.0,
                occurred_at=moment + timedelta(microseconds=11),
                **common,
            ),
            QueueEvent(
                type="task.completed",
                queue="default",
                attempt=1,
                occurred_at=moment + timedelta(microseconds=23),
                **common,
            ),
        ]
    return events[:count]


async def migrate(connection: asyncpg.Connection, schema: str, last: int) -> None:
    """Apply the packaged migrations 0001 to ``last`` in ``schema`` (its own search path)."""
    context = SimpleNamespace(extension_config={"table_prefix": "lq_", "family": "postgres"}, dialect="postgres")
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.execute(f'SET search_path TO "{schema}"')
    for number in range(1, last + 1):
        module = importlib.import_module(f"{_MIGRATIONS}.{_NUMBERED[number]}")
        for statement in await module.up(context):
            await connection.execute(statement)


async def measure(dsn: str, last: int, events: list[QueueEvent], batch: int) -> dict[str, float]:
    """WAL records, WAL bytes and server CPU microseconds per stored event for one layout on a fresh schema."""
    schema = f"lq_bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection, schema, last)
        arrays = ", ".join(f"${number}::{kind}[]" for number, kind in enumerate(_TYPES, 1))
        insert = (
            f"EXPLAIN (ANALYZE, WAL, TIMING OFF, SUMMARY OFF, FORMAT JSON) INSERT INTO lq_events "
            f"({', '.join(EVENT_COLUMNS)}) SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO NOTHING"
        )
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        records = wal_bytes = 0
        cpu = 0.0
        for start in range(0, len(events), batch):
            rows = event_rows(events[start : start + batch], lambda moment: moment)
            columns = [list(column) for column in zip(*rows, strict=True)]
            before = cpu_seconds(pid)
            plan = await connection.fetchval(insert, *columns)
            cpu += cpu_seconds(pid) - before
            top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
            records += top["WAL Records"]
            wal_bytes += top["WAL Bytes"]
        return {
            "wal_records": records / len(events),
            "wal_bytes": wal_bytes / len(events),
            "cpu_us": cpu * 1e6 / len(events),
        }
    finally:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL on this machine (its server CPU is read from /proc)")
    parser.add_argument("--events", type=int, default=30000)
    parser.add_argument("--batch", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(machine_summary())
    events = job_events(args.events)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in LAYOUTS}
    for round_number in range(args.rounds):
        names = list(LAYOUTS) if round_number % 2 == 0 else list(LAYOUTS)[::-1]
        for name in names:
            result = await measure(args.dsn, LAYOUTS[name], events, args.batch)
            results[name].append(result)
            print(f"  round {round_number + 1} {name}: {result}", flush=True)
    print(
        f"\n{args.events} events per round, batches of {args.batch}, {args.rounds} rounds; median [min-max] per event"
    )
    print("| layout | WAL records | WAL bytes | server CPU, µs |")
    print("|---|---|---|---|")
    for name, rounds in results.items():
        cells = [spread([result[key] for result in rounds]) for key in ("wal_records", "wal_bytes", "cpu_us")]
        print(f"| {name} | {' | '.join(cells)} |")
    five, three = (results[name] for name in LAYOUTS)
    for key in ("wal_records", "wal_bytes", "cpu_us"):
        ratio = statistics.median(r[key] for r in three) / statistics.median(r[key] for r in five)
        print(f"three / five, {key}: {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
