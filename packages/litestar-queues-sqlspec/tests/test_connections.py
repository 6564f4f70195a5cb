"""PostgreSQL: operations reuse kept connections; a kept connection the server ended is replaced; a claim's
relaxed commit does not outlive it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from litestar_queues.backends.sqlspec import SQLSpecBackend, SQLSpecBackendConfig
from litestar_queues.clock import utc_now
from litestar_queues.records import Outcome, TaskRecord, TaskStatus, new_record_id

pytestmark = pytest.mark.anyio


def _record() -> TaskRecord:
    now = utc_now()
    return TaskRecord(id=new_record_id(), task_name="t", created_at=now, scheduled_at=now)


async def _server_pid(backend: SQLSpecBackend) -> int:
    [row] = await backend._db.select("SELECT pg_backend_pid() AS pid")
    return int(row["pid"])


async def test_sequential_operations_share_one_server_connection(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    backend = await make_factory(pg_driver).open()
    pids = set()
    for _ in range(5):
        await backend.enqueue([_record()])
        pids.add(await _server_pid(backend))
    assert len(pids) == 1


async def test_concurrent_operations_borrow_further_connections(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    backend = await make_factory(pg_driver).open()
    pids: list[int] = []

    async def hold_pid() -> None:
        [row] = await backend._db.select("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)")
        pids.append(int(row["pid"]))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(hold_pid)
    assert len(set(pids)) == 3


async def test_connections_of_concurrent_operations_are_kept_for_the_next_ones(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    """A worker's claim, finishes and heartbeat run at once: each finds a kept connection, not the pool."""
    backend = await make_factory(pg_driver, connection_options={"min_size": 1, "max_size": 10}).open()

    async def hold() -> None:
        await backend._db.select("SELECT pg_sleep(0.1)")

    for _ in range(2):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(hold)
        assert len(backend._db._kept) == 4  # at most four are kept; the other two went back to the pool


async def test_a_claims_relaxed_commit_stays_in_its_own_transaction(
    pg_driver: str, make_factory: Callable[..., Any]
) -> None:
    """Claims commit without waiting for the WAL flush; the next operation on that connection waits again."""
    backend = await make_factory(pg_driver).open()
    await backend.enqueue([_record()])
    await backend._db.execute("SET synchronous_commit = on")  # for this session, whatever the server's default
    pid = await _server_pid(backend)
    [claimed] = await backend.claim(["default"], owner="w", limit=1, now=utc_now(), lease_seconds=30)
    [row] = await backend._db.select("SELECT pg_backend_pid() AS pid, current_setting('synchronous_commit') AS sync")
    assert (row["pid"], row["sync"]) == (pid, "on")
    assert claimed.owner == "w"


@pytest.mark.parametrize("size", [1, 2])
async def test_a_small_pool_serves_concurrent_operations(
    pg_driver: str, make_factory: Callable[..., Any], size: int
) -> None:
    """Operations never wait for the kept connection, and a pool of one is never kept from."""
    backend = await make_factory(pg_driver, connection_options={"min_size": 1, "max_size": size}).open()
    records = [_record() for _ in range(6)]
    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for record in records:
                group.start_soon(backend.enqueue, [record])
        for _ in range(3):
            await backend.enqueue([_record()])
    assert all([await backend.get(record.id) for record in records])


async def test_an_applications_own_pool_is_never_held(make_factory: Callable[..., Any]) -> None:
    factory = make_factory("asyncpg")
    await factory.open()  # the tables, dropped again when the test ends
    own, _ = factory.config().create_sqlspec_config()
    config = SQLSpecBackendConfig(sqlspec_config=own, table_prefix=factory.prefix, version_table=factory.version_table)
    backend = config.create_backend()
    await backend.open()
    try:
        await backend.enqueue([_record()])
        assert backend._db._kept == []
    finally:
        await backend.close()
        await own.close_pool()


async def test_a_kept_connection_the_server_ended_is_replaced(pg_driver: str, make_factory: Callable[..., Any]) -> None:
    factory = make_factory(pg_driver)
    backend, other = await factory.open(), await factory.open()
    await backend.enqueue([_record()])
    kept = await _server_pid(backend)
    await other._db.select("SELECT pg_terminate_backend(:pid) AS done", {"pid": kept})
    record = _record()
    for _ in range(2):  # psycopg learns of the end only from the next statement, which fails once
        try:
            await backend.enqueue([record])
            break
        except Exception:  # the one statement on the ended connection
            continue
    assert await backend.get(record.id) is not None
    assert await _server_pid(backend) != kept


async def test_a_sqlite_file_backend_runs_concurrent_operations_on_one_connection_of_its_own(tmp_path: Any) -> None:
    """No pooled connections queueing for the file's write lock: concurrent enqueues, claims and finishes borrow
    nothing from the pool, and the connection waits for other processes as long as the URL's busy timeout says."""
    config = SQLSpecBackendConfig.from_url(f"sqlite:///{tmp_path / 'queue.db'}")
    async with SQLSpecBackend(config) as backend:
        pool = await backend.sqlspec_config.provide_pool()  # type: ignore[attr-defined]
        opened = pool.size()
        records = [_record() for _ in range(40)]
        async with anyio.create_task_group() as group:
            for record in records:
                group.start_soon(backend.enqueue, [record])
        now = utc_now()
        claimed = await backend.claim(["default"], owner="w", limit=40, now=now, lease_seconds=30)
        assert len(claimed) == 40
        finished: list[Any] = []

        async def finish(record: TaskRecord) -> None:
            finished.append(await backend.finish(record.lease, Outcome(status=TaskStatus.COMPLETED), now=now))

        async with anyio.create_task_group() as group:
            for record in claimed:
                group.start_soon(finish, record)
        assert all(record is not None and record.status is TaskStatus.COMPLETED for record in finished)
        assert pool.size() == opened and pool.checked_out() == 0
        [row] = await backend._db.select("PRAGMA busy_timeout")
        assert row[0] == 30_000
