"""The whole backend conformance suite, once per driver, each test on emptied tables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from litestar_queues.backends.sqlspec import SQLSpecBackend
from litestar_queues.testing import BackendConformance


class _SQLSpecConformance(BackendConformance):
    driver: str

    @pytest.fixture
    def factory(self, make_factory: Callable[..., Any]) -> Any:
        return make_factory(self.driver, shared=True)

    @pytest.fixture
    async def backend(self, factory: Any) -> SQLSpecBackend:
        backend: SQLSpecBackend = await factory.open()
        return backend

    @pytest.fixture
    def corrupt_record(self, backend: SQLSpecBackend) -> Callable[[str], Awaitable[str]]:
        """The suite's hook: store text that is not JSON in a record's ``args`` column."""

        async def corrupt(record_id: str) -> str:
            async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
                sql = f"UPDATE {backend.names.tasks} SET args = 'not json' WHERE id = :id"
                await session.execute(sql, {"id": record_id})
                if backend.names.family != "postgres":
                    await session.commit()
            return "args"

        return corrupt

    @pytest.fixture
    async def second_backend(self, factory: Any, backend: SQLSpecBackend) -> SQLSpecBackend:
        second: SQLSpecBackend = await factory.open()
        return second


class TestAsyncpgConformance(_SQLSpecConformance):
    driver = "asyncpg"


class TestPsycopgConformance(_SQLSpecConformance):
    driver = "psycopg"


class TestSQLiteConformance(_SQLSpecConformance):
    driver = "aiosqlite"


class TestMariaDBConformance(_SQLSpecConformance):
    driver = "asyncmy"
