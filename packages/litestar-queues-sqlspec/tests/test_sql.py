"""The SQL itself: batch limits hold under generic plans, and the claim uses its index with many finished rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from litestar_queues.clock import utc_now
from litestar_queues.events.history import EventFilter
from litestar_queues.records import Outcome, TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio

FINISHED_ROWS = 200_000


def _records(count: int, **changes: Any) -> list[TaskRecord]:
    now = utc_now()
    values: dict[str, Any] = {"task_name": "t", "created_at": now, "scheduled_at": now}
    values.update(changes)
    return [TaskRecord(id=new_record_id(), **values) for _ in range(count)]


async def test_batch_limits_hold_with_generic_plans(make_factory: Callable[..., Any]) -> None:
    """A LIMIT n batch picked in a subquery that the planner may re-run could change more than n rows."""
    options = {"min_size": 1, "max_size": 2, "server_settings": {"plan_cache_mode": "force_generic_plan"}}
    backend = await make_factory("asyncpg", connection_options=options).open()
    now = utc_now()
    await backend.enqueue(_records(60, scheduled_at=now, expires_at=now + timedelta(seconds=1)))
    later = now + timedelta(seconds=2)
    for _ in range(12):  # well past the five executions after which plans may turn generic
        claimed = await backend.claim(["default"], owner="w", limit=2, now=now, lease_seconds=60)
        assert len(claimed) == 2
        for record in claimed:
            await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=now)
    for _ in range(6):
        assert await backend.expire(now=later, limit=3) == 3
    for _ in range(6):
        assert await backend.prune(finished_before=later, limit=4) == 4
    stats = await backend.statistics(now=now)
    assert sum(stats.counts.values()) == 60 - 24
    assert stats.counts[TaskStatus.PENDING] == 60 - 24 - 18


async def test_claim_uses_the_pending_index_with_many_finished_rows(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    backend = await make_factory(pg_driver).open()
    now = utc_now()
    await backend.enqueue(_records(50, scheduled_at=now))
    tasks = backend.names.tasks
    async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
        await session.execute(
            f"INSERT INTO {tasks} (id, task_name, queue, args, kwargs, priority, status, attempts, max_retries, "
            "retry_delay, created_at, scheduled_at, finished_at, execution_backend, metadata, token, cancel_requested) "
            "SELECT 'done-' || n, 't', 'default', '[]', '{}', 0, 'completed', 1, 0, 1.0, now(), now(), now(), "
            f"'local', '{{}}', 1, false FROM generate_series(1, {FINISHED_ROWS}) AS n"
        )
        await session.execute(f"ANALYZE {tasks}")
    sql = backend._dialect.sql_claim_one  # type: ignore[attr-defined]
    async with backend.sqlspec_config.provide_connection() as connection:  # type: ignore[attr-defined]
        runner = backend._db._native
        text, names = runner.convert(f"EXPLAIN (FORMAT JSON) {sql}")
        params = {"owner": "w", "now": now, "lease_expires_at": now, "limit": 10, "queue": "default"}
        if pg_driver == "asyncpg":
            plan = await connection.fetchval(text, *[params[name] for name in names])
        else:
            cursor = await connection.execute(text, params)
            plan = (await cursor.fetchone())[0]
    plan_text = json.dumps(plan)
    assert f"{backend.names.prefix}tasks_claim_ix" in plan_text, plan_text
    assert "Seq Scan" not in plan_text, plan_text
    claimed = await backend.claim(["default"], owner="w", limit=10, now=now, lease_seconds=60)
    assert len(claimed) == 10


async def test_claims_read_the_claim_index_in_order_in_an_unanalyzed_backlog(
    make_factory: Callable[..., Any],
) -> None:
    """A burst of enqueues that autovacuum has not analyzed yet looks tiny to the planner; it must still serve
    claims from the claim index, in order (it once read and sorted the whole backlog at every claim)."""
    options = {"min_size": 1, "max_size": 2, "server_settings": {"plan_cache_mode": "force_generic_plan"}}
    backend = await make_factory("asyncpg", connection_options=options).open()
    now = utc_now()
    for _ in range(20):
        await backend.enqueue(_records(1000, scheduled_at=now))
    sql = backend._dialect.sql_claim_one  # type: ignore[attr-defined]
    text, names = backend._db._native.convert(f"EXPLAIN (FORMAT JSON) {sql}")  # type: ignore[union-attr]
    params = {"owner": "w", "now": now, "lease_expires_at": now, "limit": 50, "queue": "default"}
    async with backend.sqlspec_config.provide_connection() as connection:  # type: ignore[attr-defined]
        plan_text = json.dumps(await connection.fetchval(text, *[params[name] for name in names]))
    assert f"{backend.names.prefix}tasks_claim_ix" in plan_text, plan_text
    assert '"Sort"' not in plan_text, plan_text


async def test_sqlite_claims_read_the_claim_index_in_order(make_factory: Callable[..., Any]) -> None:
    backend = await make_factory("aiosqlite").open()
    now = utc_now()
    await backend.enqueue(_records(2000, scheduled_at=now))
    tasks = backend.names.tasks
    rows = await backend._db.select(
        f"EXPLAIN QUERY PLAN SELECT id FROM {tasks} WHERE status = 'pending' AND queue IN ('default') "
        "AND scheduled_at <= :now AND (expires_at IS NULL OR expires_at > :now) "
        "ORDER BY priority DESC, scheduled_at, id LIMIT 50",
        {"now": backend._dialect.codec.time(now)},  # type: ignore[attr-defined]
    )
    plan = " | ".join(str(row["detail"]) for row in rows)
    assert f"{backend.names.prefix}tasks_claim_ix" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


async def test_claimed_times_are_utc_to_the_microsecond_whatever_the_session_time_zone(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    """The drivers return times in the session's ``TimeZone`` (psycopg) or in UTC (asyncpg); records hold UTC."""
    zone = "Asia/Kathmandu"  # +05:45: an hour-only fix would not hide it
    pool = {"min_size": 1, "max_size": 2}
    if pg_driver == "asyncpg":
        options: dict[str, Any] = {**pool, "server_settings": {"timezone": zone}}
    else:
        options = {**pool, "options": f"-c TimeZone={zone}"}
    backend = await make_factory(pg_driver, connection_options=options).open()
    async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
        assert await session.select_value("SHOW TimeZone") == zone
    now = utc_now().replace(microsecond=654321)
    (record,) = _records(1, scheduled_at=now - timedelta(seconds=1), expires_at=now + timedelta(hours=1))
    await backend.enqueue([record])
    (claimed,) = await backend.claim(["default"], owner="w", limit=1, now=now, lease_seconds=30)
    assert claimed == await backend.get(record.id)
    assert (claimed.created_at, claimed.scheduled_at, claimed.expires_at) == (
        record.created_at,
        record.scheduled_at,
        record.expires_at,
    )
    assert (claimed.started_at, claimed.lease_expires_at) == (now, now + timedelta(seconds=30))
    assert all(
        moment is not None and moment.utcoffset() == timedelta(0)
        for moment in (claimed.created_at, claimed.scheduled_at, claimed.started_at, claimed.lease_expires_at)
    )


async def test_postgres_stores_a_batch_of_events_and_progress_in_one_statement(
    driver: str, make_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from litestar_queues.events.envelope import QueueEvent
    from litestar_queues.records import TaskProgress

    backend = await make_factory(driver).open()
    now = utc_now()
    await backend.enqueue(_records(1, scheduled_at=now))
    (claimed,) = await backend.claim(["default"], owner="w", limit=1, now=now, lease_seconds=60)
    statements: list[str] = []
    execute = type(backend._db).execute

    async def counted(self: Any, sql: str, params: Any = None) -> Any:
        statements.append(sql)
        return await execute(self, sql, params)

    monkeypatch.setattr(type(backend._db), "execute", counted)
    progress = TaskProgress(current=1.0, total=2.0, percent=50.0, attempt=1, updated_at=now)
    event = QueueEvent(type="task.progress", task_id=claimed.id, queue="default", occurred_at=now)
    await backend.append_events_with_progress([event], [(claimed.lease, progress)])
    together = backend.names.family == "postgres"
    assert backend.stores_progress_with_events is together
    assert len(statements) == (1 if together else 2)
    stored = await backend.get(claimed.id)
    assert stored is not None and stored.progress == progress
    assert [e.id for e in (await backend.query_events(EventFilter(task_id=claimed.id), limit=5)).events] == [event.id]
