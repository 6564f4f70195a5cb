"""The queue's tables in the application's migrations: Alembic autogenerate writes them, and then finds nothing more.

Each test gets an empty database of its own (autogenerate compares the whole database with the metadata).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.extensions.litestar import AlembicAsyncConfig, SQLAlchemyAsyncConfig
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig, QueueTables
from litestar_queues.testing import server_url

QUEUE_TABLES = tuple(table.name for table in QueueTables(MetaData()).all)


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def empty_database(driver: str, tmp_path: Path) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database on ``driver``'s server (dropped afterwards)."""
    if driver == "aiosqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"lq_alembic_{uuid.uuid4().hex[:10]}"
    if driver == "asyncmy":
        server = server_url("LQ_MARIADB_DSN").replace("mysql://", "mysql+asyncmy://", 1)
    else:
        server = server_url("LQ_POSTGRES_DSN").replace("postgresql://", f"postgresql+{driver}://", 1)
    asyncio.run(_admin(server, f"CREATE DATABASE {name}"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server, f"DROP DATABASE {name}"))


def _app_metadata() -> MetaData:
    metadata = MetaData()
    Table("people", metadata, Column("name", String(50), primary_key=True))
    return metadata


def test_alembic_autogenerate_writes_the_queue_tables_and_then_finds_no_change(
    empty_database: str, tmp_path: Path
) -> None:
    """What ``litestar database make-migrations`` and ``upgrade`` do, through Advanced Alchemy's Alembic commands."""
    metadata = _app_metadata()
    alchemy = SQLAlchemyAsyncConfig(
        connection_string=empty_database,
        bind_key=f"alembic{uuid.uuid4().hex[:8]}",
        metadata=metadata,
        alembic_config=AlembicAsyncConfig(
            script_location=str(tmp_path / "migrations"), script_config=str(tmp_path / "alembic.ini")
        ),
    )
    AdvancedAlchemyBackendConfig(alchemy=alchemy)  # the queue's tables join the app's metadata
    commands = AlembicCommands(sqlalchemy_config=alchemy)
    commands.init(str(tmp_path / "migrations"))
    first = commands.revision("queue tables", autogenerate=True)
    assert first is not None and not isinstance(first, list)
    written = Path(first.path).read_text()
    for table in (*QUEUE_TABLES, "people"):
        assert f"op.create_table('{table}'" in written or f'op.create_table("{table}"' in written, written
    for index in (index for table in QueueTables(metadata).all for index in table.indexes):
        assert str(index.name) in written, f"{index.name} missing from the migration"
    commands.upgrade()
    second = commands.revision("nothing new", autogenerate=True)
    assert second is not None and not isinstance(second, list)
    body = Path(second.path).read_text()
    upgrade = body[body.index("def schema_upgrades") : body.index("def schema_downgrades")]
    assert "op." not in upgrade, f"a second autogenerate found changes:\n{upgrade}"


def test_plain_alembic_comparing_types_finds_the_created_tables_unchanged(empty_database: str) -> None:
    """An application without Advanced Alchemy's commands: Alembic's own comparison, types and all."""
    metadata = _app_metadata()
    tables = QueueTables(metadata, prefix="jobs_")

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, metadata))

    async def run() -> tuple[list[Any], list[Any]]:
        engine = create_async_engine(empty_database)
        try:
            async with engine.begin() as connection:
                before = await connection.run_sync(compare)
                await connection.run_sync(metadata.create_all)
            async with engine.connect() as connection:
                return before, await connection.run_sync(compare)
        finally:
            await engine.dispose()

    before, after = asyncio.run(run())
    added = {diff[1].name for diff in before if diff[0] == "add_table"}
    assert added == {table.name for table in tables.all} | {"people"}
    assert after == [], f"differences after creating the tables: {after}"
