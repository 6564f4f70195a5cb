"""What the configuration accepts and refuses, where the tables go, and who disposes the engine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from advanced_alchemy.base import metadata_registry
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import Column, Integer, MetaData, Table, event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig, QueueTables
from litestar_queues.errors import ConfigurationError

pytestmark = pytest.mark.anyio


def test_the_tables_join_the_bind_keys_metadata_when_the_configuration_is_made() -> None:
    key = f"cfg{uuid.uuid4().hex[:8]}"
    AdvancedAlchemyBackendConfig(bind_key=key, table_prefix="jobs_")
    assert {"jobs_tasks", "jobs_workers", "jobs_locks"} <= set(metadata_registry.get(key).tables)
    again = AdvancedAlchemyBackendConfig(bind_key=key, table_prefix="jobs_").tables()
    assert again.tasks is metadata_registry.get(key).tables["jobs_tasks"], "defined once, found again"


def test_a_config_of_advanced_alchemy_puts_them_on_its_metadata(tmp_path: Path) -> None:
    metadata = MetaData()
    alchemy = SQLAlchemyAsyncConfig(
        connection_string=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", metadata=metadata, bind_key=f"k{uuid.uuid4().hex}"
    )
    AdvancedAlchemyBackendConfig(alchemy=alchemy)
    assert "litestar_queues_tasks" in metadata.tables


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"table_prefix": "Jobs_"}, "table_prefix"),
        ({"table_prefix": "x" * 41}, "table_prefix"),
        ({"metadata": {}}, "MetaData"),
        ({"alchemy": "postgresql+asyncpg://app@db/app"}, "alchemy= takes"),
        ({"alchemy": async_sessionmaker()}, "bound to an AsyncEngine"),
    ],
)
def test_bad_settings_are_refused_where_they_are_given(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AdvancedAlchemyBackendConfig(**settings)


def test_a_table_of_another_owner_is_not_taken_over() -> None:
    metadata = MetaData()
    Table("jobs_tasks", metadata, Column("id", Integer, primary_key=True))
    with pytest.raises(ConfigurationError, match="not a queue table"):
        QueueTables(metadata, prefix="jobs_")


def test_without_a_database_outside_an_app_the_backend_says_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="QueuePlugin"):
        AdvancedAlchemyBackendConfig(metadata=MetaData()).create_backend()


async def test_only_an_advanced_alchemy_configs_engine_is_disposed_by_the_backend(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    disposed: list[str] = []
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: disposed.append("engine"))
    alchemy = SQLAlchemyAsyncConfig(connection_string=url, metadata=MetaData(), bind_key=f"k{uuid.uuid4().hex}")
    event.listen(alchemy.get_engine().sync_engine, "engine_disposed", lambda _engine: disposed.append("config"))
    for given in (engine, async_sessionmaker(engine), alchemy):
        backend = AdvancedAlchemyBackendConfig(alchemy=given, metadata=MetaData(), create_tables=True).create_backend()
        await backend.open()
        await backend.close()
    assert disposed == ["config"], "the app's engine and session maker stay their owner's"
    await engine.dispose()


async def test_processes_creating_the_tables_at_once_both_start(driver: str, make_factory: Callable[..., Any]) -> None:
    factory = make_factory(driver)
    first, second = factory.config(), factory.config()
    backends = [first.create_backend(), second.create_backend()]
    await asyncio.gather(*(backend.open() for backend in backends))
    factory.opened.extend(backends)  # dropped and closed by the factory
    await backends[0].enqueue([])
    assert await backends[1].get(str(uuid.uuid4())) is None
