"""Schema migrations through SQLSpec: empty databases, upgrades from the previous version, concurrent starters,
and the application's own ``sqlspec upgrade`` path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlspec.migrations.commands import AsyncMigrationCommands

from litestar_queues.backends.sqlspec import SQLSpecBackend, SQLSpecBackendConfig, migration_extension_config
from litestar_queues.backends.sqlspec.urls import config_from_url
from litestar_queues.errors import ConfigurationError
from litestar_queues.events.envelope import QueueEvent, QueueEventType
from litestar_queues.events.history import EventFilter
from litestar_queues.records import TaskRecord, WorkerInfo, new_record_id
from litestar_queues.sql.rows import TASK_COLUMNS, encode_task

pytestmark = pytest.mark.anyio

LATEST = 7
"""The number of the newest packaged migration."""


async def _versions(factory: Any) -> list[str]:
    backend = factory.config().create_backend()
    try:
        return sorted(await backend._migrator.applied())
    finally:
        await backend.close()


async def test_open_creates_the_schema_in_an_empty_database(
    driver: str, make_factory: Callable[..., Any], now_record: Callable[[], TaskRecord]
) -> None:
    factory = make_factory(driver)
    backend = await factory.open()
    extension = backend.names.extension
    assert await _versions(factory) == _all_versions(extension)
    record = now_record()
    assert (await backend.enqueue([record]))[0].created
    assert await backend.get(record.id) == record


def _all_versions(extension: str) -> list[str]:
    return [f"ext_{extension}_{number:04d}" for number in range(1, LATEST + 1)]


async def _store_as_before_0006(backend: SQLSpecBackend, record: TaskRecord) -> None:
    """Insert ``record``'s row with the columns every version before 0006 has (0006 added ``progress``)."""
    row = dict(zip(TASK_COLUMNS, encode_task(record, backend._dialect.codec), strict=True))
    del row["progress"]
    columns = ", ".join(row)
    values = ", ".join(f":{column}" for column in row)
    await backend._db.execute(f"INSERT INTO {backend.names.tasks} ({columns}) VALUES ({values})", row)


@pytest.mark.parametrize("previous", range(1, LATEST))
async def test_upgrade_from_a_previous_version_keeps_the_data(
    driver: str, make_factory: Callable[..., Any], now_record: Callable[[], TaskRecord], previous: int
) -> None:
    factory = make_factory(driver)
    old = factory.config().create_backend()
    extension = old.names.extension
    try:
        assert await old._migrator.upgrade(f"ext_{extension}_{previous:04d}") == _all_versions(extension)[:previous]
        record = now_record()
        await _store_as_before_0006(old, record)  # the tasks table is there from version 0001 on
    finally:
        await old.close()

    backend = await factory.open()  # upgrades to head
    assert await _versions(factory) == _all_versions(extension)
    assert await backend.get(record.id) == record
    info = WorkerInfo(
        id="w",
        host="h",
        pid=1,
        queues=["q"],
        concurrency=1,
        started_at=record.created_at,
        last_heartbeat_at=record.created_at,
    )
    await backend.register_worker(info, ttl_seconds=60)
    assert await backend.list_workers(now=record.created_at) == [info]
    event = QueueEvent(type=QueueEventType.ENQUEUED, task_id=record.id, queue=record.queue)
    await backend.append_events([event])  # the history table is there from version 0006 on
    assert (await backend.query_events(EventFilter(task_id=record.id), limit=10)).events == [event]


async def test_reopening_applies_nothing(driver: str, make_factory: Callable[..., Any]) -> None:
    factory = make_factory(driver)
    backend = await factory.open()
    assert await backend._migrator.upgrade() == []
    assert await backend._migrator.pending() == []


async def test_concurrent_starters_apply_each_migration_once(driver: str, make_factory: Callable[..., Any]) -> None:
    factory = make_factory(driver)
    backends = [factory.config().create_backend() for _ in range(4)]
    applied: list[str] = []

    async def start(backend: Any) -> None:
        applied.extend(await backend._migrator.upgrade())

    try:
        async with anyio.create_task_group() as group:
            for backend in backends:
                group.start_soon(start, backend)
    finally:
        for backend in backends:
            await backend.close()
    extension = backends[0].names.extension
    assert sorted(applied) == _all_versions(extension)
    factory.opened.append(await factory.open())  # usable, and dropped afterwards


async def test_without_apply_migrations_a_missing_schema_fails_with_instructions(
    driver: str, make_factory: Callable[..., Any]
) -> None:
    factory = make_factory(driver)
    backend = factory.config(apply_migrations=False).create_backend()
    try:
        with pytest.raises(ConfigurationError, match="sqlspec upgrade"):
            await backend.open()
    finally:
        await backend.close()


async def test_the_applications_sqlspec_upgrade_applies_the_same_versions(
    driver: str, make_factory: Callable[..., Any], tmp_path: Path
) -> None:
    factory = make_factory(driver)
    extension, options = migration_extension_config(factory.prefix)
    app_config = config_from_url(factory.url)
    app_config.migration_config = {
        "script_location": str(tmp_path / "app_migrations"),  # the app's own (empty) migrations
        "version_table_name": factory.version_table,
        "include_extensions": [extension],
    }
    app_config.extension_config = {extension: options}
    try:
        await AsyncMigrationCommands(app_config).upgrade(echo=False)
        backend = await factory.open(apply_migrations=False)
        assert await backend._migrator.pending() == []
        record = TaskRecord(id=new_record_id(), task_name="t", created_at=_now(), scheduled_at=_now())
        assert (await backend.enqueue([record]))[0].created
        owned_by_app = SQLSpecBackendConfig(sqlspec_config=app_config, table_prefix=factory.prefix)
        async with owned_by_app.create_backend() as shared:
            assert await shared.get(record.id) == record
        # The backend borrowed the application's pool and left it open.
        async with app_config.provide_session() as session:
            assert await session.select_value("SELECT 1") == 1
    finally:
        await app_config.close_pool()


def _now() -> Any:
    from litestar_queues.clock import utc_now

    return utc_now()


@pytest.fixture
def now_record() -> Callable[[], TaskRecord]:
    return lambda: TaskRecord(
        id=new_record_id(), task_name="t", args=[1, "x"], key=new_record_id(), created_at=_now(), scheduled_at=_now()
    )
