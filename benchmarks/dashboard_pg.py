"""Server time of the dashboard's pages over a large PostgreSQL table: 1,000,000 finished and 10,000 pending records.

Fills a fresh table prefix (ids, queues, task names, statuses and finish times shaped like a week of real work),
analyzes it, then renders each page in process through Litestar's test client many times and reports the median
and 95th percentile of the request's time: routing, the service's reads, and rendering the template, no network.
Each page is measured with the indexes of migration 0005 and then without them (dropped), so the difference they
make is shown in the same run. The tables are dropped at the end.

    uv run --project benchmarks python benchmarks/dashboard_pg.py [--dsn postgresql://...] [--finished N] [--pending N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from harness import machine_summary
from litestar_queues import QueueConfig, QueuePlugin, task
from litestar_queues.backends.sqlspec import SQLSpecBackend, SQLSpecBackendConfig
from litestar_queues.litestar import DashboardConfig

QUEUES = 4
TASKS = 10

for _number in range(TASKS):  # the app's tasks: the overview shows their queues
    task(f"app.task{_number}", queue=f"q{_number % QUEUES}")(lambda: None)

PAGES: list[tuple[str, str]] = [
    ("overview", "/queues/"),
    ("jobs, first page", "/queues/jobs"),
    ("jobs, second page", "SECOND"),
    ("jobs of one queue", "/queues/jobs?queue=q1"),
    ("failed jobs", "/queues/jobs?status=failed"),
    ("failed jobs of one queue", "/queues/jobs?status=failed&queue=q2"),
    ("pending jobs", "/queues/jobs?status=pending"),
    ("jobs of one task", "/queues/jobs?task=app.task3"),
]


def _fill(finished: int, pending: int, prefix: str) -> list[str]:
    """SQL filling ``<prefix>tasks``: UUIDv7-shaped, time-ordered ids; 98.6 % completed, 1 % failed, 0.4 % cancelled."""
    tasks = f'"{prefix}tasks"'
    ids = "lpad(to_hex(floor(extract(epoch FROM {t}) * 1000)::bigint), 12, '0') || lpad(to_hex(g), 20, '0')"
    uuid_of = (
        "substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-7' || substr({h}, 14, 3) || '-8' || substr({h}, 18, 3)"
        " || '-' || substr({h}, 21, 12)"
    )
    finished_at = f"now() - interval '7 days' + g * interval '{7 * 24 * 3600 / finished} seconds'"
    columns = (
        "id, task_name, queue, args, kwargs, priority, status, attempts, max_retries, retry_delay, created_at, "
        "scheduled_at, started_at, finished_at, result, error, execution_backend, metadata, token, cancel_requested"
    )
    hex_finished = ids.format(t=f"({finished_at})")
    hex_pending = ids.format(t="now()")
    return [
        f"INSERT INTO {tasks} ({columns}) SELECT {uuid_of.format(h=hex_finished)}, 'app.task' || (g % {TASKS}), "
        f"'q' || (g % {QUEUES}), '[1, \"abc\"]', '{{}}', 0, "
        "CASE WHEN g % 100 = 0 THEN 'failed' WHEN g % 250 = 1 THEN 'cancelled' ELSE 'completed' END, 1, 0, 1.0, "
        f"{finished_at} - interval '2 seconds', {finished_at} - interval '2 seconds', "
        f"{finished_at} - interval '1 second', "
        f"{finished_at}, CASE WHEN g % 100 = 0 THEN NULL ELSE '{{\"ok\": true}}' END, "
        'CASE WHEN g % 100 = 0 THEN \'{"type": "builtins.ValueError", "message": "boom", '
        "\"traceback\": \"Traceback (most recent call last): ...\"}' END, 'local', '{}', 1, false "
        f"FROM generate_series(1, {finished}) AS g",
        f"INSERT INTO {tasks} ({columns}) SELECT {uuid_of.format(h=hex_pending)}, 'app.task' || (g % {TASKS}), "
        f"'q' || (g % {QUEUES}), '[1, \"abc\"]', '{{}}', 0, 'pending', 0, 0, 1.0, now(), now() - interval '1 minute', "
        "NULL, NULL, NULL, NULL, 'local', '{}', 0, false "
        f"FROM generate_series({finished + 1}, {finished + pending}) AS g",
    ]


async def _sql(backend: SQLSpecBackend, *statements: str) -> None:
    async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
        for statement in statements:
            await session.execute_script(statement)


def _measure(client: TestClient[Any], path: str, rounds: int) -> tuple[float, float]:
    """Median and 95th percentile of a page's request time, in milliseconds (after two warm-up requests)."""
    for _ in range(2):
        assert client.get(path).status_code == 200
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def _second_page(client: TestClient[Any]) -> str:
    page = client.get("/queues/jobs").text
    marker = 'rel="next" href="'
    return page[page.index(marker) + len(marker) :].split('"', 1)[0].replace("&amp;", "&")


def _run_pages(config: QueueConfig, rounds: int) -> dict[str, tuple[float, float]]:
    app = Litestar(plugins=[QueuePlugin(config=config)], logging_config=None)
    results = {}
    with TestClient(app) as client:
        for name, path in PAGES:
            results[name] = _measure(client, _second_page(client) if path == "SECOND" else path, rounds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dsn", default=os.environ.get("LQ_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    prefix = f"lqdash{uuid.uuid4().hex[:8]}_"
    backend_config = SQLSpecBackendConfig.from_url(args.dsn, table_prefix=prefix)
    backend = SQLSpecBackend(backend_config)

    def run(coroutine: Callable[[], Any]) -> Any:
        return asyncio.run(coroutine())

    async def prepare() -> None:
        await backend.open()
        started = time.perf_counter()
        await _sql(backend, *_fill(args.finished, args.pending, prefix), f'VACUUM ANALYZE "{prefix}tasks"')
        seconds = time.perf_counter() - started
        print(f"filled {args.finished:,} finished + {args.pending:,} pending records in {seconds:.0f} s")
        await backend.close()

    async def drop_index() -> None:
        await backend.open()
        await _sql(backend, f'DROP INDEX "{prefix}tasks_ended_ix"', f'ANALYZE "{prefix}tasks"')
        await backend.close()

    async def drop_tables() -> None:
        await backend.open()
        names = backend.names
        for table in (names.tasks, names.workers, names.locks, names.pauses):
            await _sql(backend, f"DROP TABLE IF EXISTS {table}")
        await backend.close()

    run(prepare)
    config = QueueConfig(
        queue_backend=SQLSpecBackendConfig.from_url(args.dsn, table_prefix=prefix),
        in_app_worker=False,
        initialize_schedules=False,
        dashboard=DashboardConfig(guards=[lambda connection, handler: None]),
    )
    try:
        with_index = _run_pages(config, args.rounds)
        run(drop_index)
        without_index = _run_pages(config, args.rounds)
    finally:
        run(drop_tables)
    print(f"\n{machine_summary()}")
    print(f"PostgreSQL, {args.finished:,} finished + {args.pending:,} pending records, {args.rounds} requests a page\n")
    print("| page | median | p95 | without tasks_ended_ix: median | p95 |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in PAGES:
        (median, p95), (bare_median, bare_p95) = with_index[name], without_index[name]
        print(f"| {name} | {median:.1f} ms | {p95:.1f} ms | {bare_median:.1f} ms | {bare_p95:.1f} ms |")


if __name__ == "__main__":
    main()
