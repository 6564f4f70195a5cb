"""The SQL that reaches each database: claims lock with SKIP LOCKED where the database has it (some SQLAlchemy
dialects drop ``FOR UPDATE`` without an error), every transition is one statement where it can be, and the claim
reads its index.

The statements are watched through SQLAlchemy's ``before_cursor_execute`` event, so PostgreSQL's run through
SQLAlchemy here (``native_statements=False``); the last test shows the driver receives the same text natively.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.clock import utc_now
from litestar_queues.events.envelope import QueueEvent
from litestar_queues.events.history import EventFilter
from litestar_queues.records import Lease, Outcome, TaskProgress, TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio


def _records(count: int, **changes: Any) -> list[TaskRecord]:
    now = utc_now()
    values: dict[str, Any] = {"task_name": "t", "created_at": now, "scheduled_at": now}
    values.update(changes)
    return [TaskRecord(id=new_record_id(), **values) for _ in range(count)]


@contextmanager
def sent(backend: AdvancedAlchemyBackend, parameters: list[Any] | None = None) -> Iterator[list[str]]:
    """The statements sent to the database meanwhile, as the driver received them (and their parameters)."""
    statements: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))
        if parameters is not None:
            parameters.append((statement, params))

    event.listen(backend.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(backend.engine.sync_engine, "before_cursor_execute", record)


def _about(statements: list[str], table: str) -> list[str]:
    return [statement for statement in statements if table in statement]


async def test_each_operation_sends_what_its_database_needs(driver: str, make_factory: Callable[..., Any]) -> None:
    backend: AdvancedAlchemyBackend = await make_factory(driver).open(native_statements=False)
    tasks = backend.tables.tasks.name
    now = utc_now()
    await backend.enqueue(_records(3, scheduled_at=now, expires_at=now + timedelta(seconds=1)))
    with sent(backend) as statements:
        claimed = await backend.claim(["default"], owner="w", limit=2, now=now, lease_seconds=30)
    assert len(claimed) == 2
    claim = _about(statements, tasks)
    if driver == "aiosqlite":  # one statement under the database's write lock; FOR UPDATE has no meaning there
        assert len(claim) == 1 and claim[0].startswith(f"UPDATE {tasks} SET status=") and "RETURNING" in claim[0]
        assert f"WHERE {tasks}.id IN (SELECT {tasks}.id FROM {tasks} WHERE" in claim[0]
    elif driver == "asyncmy":  # no LIMIT in IN (subquery), no UPDATE RETURNING: lock the rows, then start them
        assert [s.split()[0] for s in claim] == ["SELECT", "UPDATE"], claim
        assert claim[0].endswith("FOR UPDATE SKIP LOCKED"), claim[0]
    else:  # one statement: the rows locked, skipping locked ones, in a CTE evaluated once
        assert len(claim) == 1, claim
        assert claim[0].startswith("WITH picked AS MATERIALIZED (SELECT") and "FOR UPDATE SKIP LOCKED)" in claim[0]
        assert "RETURNING" in claim[0]
    with sent(backend) as statements:
        for record in claimed:
            assert await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=now, claimed=record)
    finish = _about(statements, tasks)
    assert len(finish) == 2, f"one statement per finish: {finish}"
    for statement in finish:
        assert f"UPDATE {tasks} SET status=" in statement, statement
        guard = statement[statement.index(" WHERE ") :]
        assert f"{tasks}.owner = " in guard and f"{tasks}.token = " in guard, "every finish is guarded by the fence"
    with sent(backend) as statements:
        assert await backend.expire(now=now + timedelta(seconds=2), limit=5) == 1
        assert await backend.prune(finished_before=now + timedelta(seconds=3), limit=5) == 3
    if driver in ("asyncpg", "psycopg", "asyncmy"):
        locking = [s for s in _about(statements, tasks) if "SELECT" in s]
        assert len(locking) == 2 and all("FOR UPDATE SKIP LOCKED" in s for s in locking), locking


async def test_progress_rides_with_its_events_in_one_statement_on_postgresql(
    driver: str, make_factory: Callable[..., Any]
) -> None:
    """PostgreSQL stores a batch's events and progress in one statement, the progress under its fence (a stale lease
    changes nothing, the events are stored all the same); the others send the two writes one after the other."""
    backend: AdvancedAlchemyBackend = await make_factory(driver).open(native_statements=False)
    now = utc_now()
    await backend.enqueue(_records(2, scheduled_at=now))
    first, second = await backend.claim(["default"], owner="w", limit=2, now=now, lease_seconds=30)
    events = [
        QueueEvent(type="task.progress", scope_key=first.id, task_id=first.id, queue="default", sequence=number)
        for number in (1, 2)
    ]
    progress = TaskProgress(current=1.0, total=2.0, percent=50.0, attempt=1, updated_at=now)
    stale = Lease(record_id=second.id, owner="zombie", token=second.lease.token)
    with sent(backend) as statements:
        await backend.append_events_with_progress(events, [(first.lease, progress), (stale, progress)])
    written = [statement for statement in statements if statement.split()[0] in ("WITH", "INSERT", "UPDATE")]
    postgres = driver in ("asyncpg", "psycopg")
    assert backend.stores_progress_with_events is postgres
    if postgres:
        assert len(written) == 1, written
        assert written[0].startswith(f"WITH progress AS (UPDATE {backend.tables.tasks.name} SET progress="), written
        assert f"INSERT INTO {backend.tables.events.name} " in written[0], written
    else:
        assert len(written) == 2, written
    stored, untouched = await backend.get(first.id), await backend.get(second.id)
    assert stored is not None and stored.progress == progress
    assert untouched is not None and untouched.progress is None, "a stale fence changes nothing"
    page = await backend.query_events(EventFilter(task_id=first.id), limit=10)
    assert [event.id for event in page.events] == [event.id for event in events]


async def test_the_claim_reads_the_claim_index_with_many_finished_rows(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    backend: AdvancedAlchemyBackend = await make_factory(pg_driver).open(native_statements=False)
    now = utc_now()
    await backend.enqueue(_records(50, scheduled_at=now))
    tasks = backend.tables.tasks.name
    async with backend.engine.begin() as connection:
        await connection.execute(
            text(
                f"INSERT INTO {tasks} (id, task_name, queue, args, kwargs, priority, status, attempts, max_retries, "
                "retry_delay, created_at, scheduled_at, finished_at, execution_backend, metadata, token, "
                "cancel_requested) SELECT 'done-' || n, 't', 'default', '[]', '{}', 0, 'completed', 1, 0, 1.0, now(), "
                "now(), now(), 'local', '{}', 1, false FROM generate_series(1, 100000) AS n"
            )
        )
        await connection.execute(text(f"ANALYZE {tasks}"))
    executed: list[Any] = []
    with sent(backend, executed):
        assert len(await backend.claim(["default"], owner="w", limit=10, now=now, lease_seconds=30)) == 10
    ((statement, parameters),) = executed
    async with backend.engine.connect() as connection:
        result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        plan = json.dumps(result.scalar())
    assert f"{backend.tables.prefix}tasks_claim_ix" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_native_statements_send_what_sqlalchemy_compiled(make_factory: Callable[..., Any]) -> None:
    """On asyncpg the repeated statements bypass SQLAlchemy's execution; asyncpg's own query log shows their text."""
    factory = make_factory("asyncpg")
    backend: AdvancedAlchemyBackend = await factory.open()
    queries: list[str] = []

    @event.listens_for(backend.engine.sync_engine, "connect")
    def log_queries(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(lambda record: queries.append(record.query))

    await backend.engine.dispose()  # new connections, with the logger
    now = utc_now()
    with sent(backend) as through_sqlalchemy:
        await backend.enqueue(_records(1, scheduled_at=now))
        (claimed,) = await backend.claim(["default"], owner="w", limit=5, now=now, lease_seconds=30)
        assert await backend.finish(claimed.lease, Outcome(status=TaskStatus.COMPLETED), now=now, claimed=claimed)
    store: Any = backend.store
    dialect = backend.engine.dialect
    expected = [str(statement.compile(dialect=dialect)) for statement in (store.sql_insert_one, store.sql_claim_one)]
    assert [query for query in queries if query in expected] == expected, queries
    assert "FOR UPDATE SKIP LOCKED" in expected[1]
    assert any(query.startswith("WITH locked AS") and "unnest(" in query for query in queries), "the batched finish"
    assert _about(through_sqlalchemy, backend.tables.tasks.name) == [], "none of them went through SQLAlchemy"


async def test_a_claim_relaxes_only_its_own_commit(pg_driver: str, make_factory: Callable[..., Any]) -> None:
    """``synchronous_commit`` is off for the claim's transaction, and on again for the connection's next one."""
    factory = make_factory(pg_driver)
    durable: dict[str, Any] = (  # the test server's default is off
        {"server_settings": {"synchronous_commit": "on"}}
        if pg_driver == "asyncpg"
        else {"options": "-c synchronous_commit=on"}
    )
    engine = factory.engine(pool_size=1, max_overflow=0, connect_args=durable)
    backend: AdvancedAlchemyBackend = await factory.open(alchemy=engine)
    now = utc_now()
    await backend.enqueue(_records(2, scheduled_at=now))
    assert len(await backend.claim(["default"], owner="w", limit=2, now=now, lease_seconds=30)) == 2
    assert "set_config" in str(backend.store.sql_claim_one.compile(dialect=engine.dialect))  # type: ignore[attr-defined]
    async with backend.engine.connect() as connection:  # the pool's only connection: the one that claimed
        assert (await connection.execute(text("SHOW synchronous_commit"))).scalar() == "on"
