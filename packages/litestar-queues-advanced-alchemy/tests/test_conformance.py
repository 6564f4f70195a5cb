"""The whole backend conformance suite, once per driver, each test on emptied tables."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.backends.advanced_alchemy.testing import corrupt_args, corrupt_event
from litestar_queues.testing import BackendConformance, CallerTransaction


class _AlchemyConformance(BackendConformance):
    driver: str

    @pytest.fixture
    def factory(self, make_factory: Callable[..., Any]) -> Any:
        return make_factory(self.driver, shared=True)

    @pytest.fixture
    async def backend(self, factory: Any) -> AdvancedAlchemyBackend:
        backend: AdvancedAlchemyBackend = await factory.open()
        return backend

    @pytest.fixture
    def corrupt_record(self, backend: AdvancedAlchemyBackend) -> Callable[[str], Awaitable[str]]:
        return functools.partial(corrupt_args, backend)

    @pytest.fixture
    def corrupt_event(self, backend: AdvancedAlchemyBackend) -> Callable[[str], Awaitable[None]]:
        return functools.partial(corrupt_event, backend)

    @pytest.fixture
    def limit_history_scan(self, backend: AdvancedAlchemyBackend) -> Callable[[int], None]:
        return lambda window: setattr(backend, "event_scan_window", window)

    @pytest.fixture
    async def second_backend(self, factory: Any, backend: AdvancedAlchemyBackend) -> AdvancedAlchemyBackend:
        second: AdvancedAlchemyBackend = await factory.open()
        return second

    @pytest.fixture
    def caller_transaction(
        self, backend: AdvancedAlchemyBackend
    ) -> Callable[[], AbstractAsyncContextManager[CallerTransaction]]:
        """An ``AsyncSession`` of the application's own, on the queue's engine."""
        sessions = async_sessionmaker(backend.engine, expire_on_commit=False)

        @asynccontextmanager
        async def open_transaction() -> AsyncIterator[CallerTransaction]:
            async with sessions() as session:
                yield CallerTransaction(session, session.commit, session.rollback)

        return open_transaction


class TestAsyncpgConformance(_AlchemyConformance):
    driver = "asyncpg"


class TestPsycopgConformance(_AlchemyConformance):
    driver = "psycopg"


class TestSQLiteConformance(_AlchemyConformance):
    driver = "aiosqlite"


class TestMariaDBConformance(_AlchemyConformance):
    driver = "asyncmy"


class TestAsyncpgThroughPgBouncerConformance(_AlchemyConformance):
    """Through the test PgBouncer in transaction pooling mode; LISTEN on the server directly (``listen_url``)."""

    driver = "asyncpg+pgbouncer"


class TestPsycopgThroughPgBouncerConformance(_AlchemyConformance):
    """Through the test PgBouncer in transaction pooling mode, polling (no ``listen_url``)."""

    driver = "psycopg+pgbouncer"
