"""The whole backend conformance suite, once per driver (and once per PostgreSQL driver through PgBouncer), each
test on emptied tables."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

import pytest

from litestar_queues.backends.sqlspec import SQLSpecBackend
from litestar_queues.backends.sqlspec.testing import corrupt_args, corrupt_event
from litestar_queues.testing import BackendConformance, CallerTransaction


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
        return functools.partial(corrupt_args, backend)

    @pytest.fixture
    def corrupt_event(self, backend: SQLSpecBackend) -> Callable[[str], Awaitable[None]]:
        return functools.partial(corrupt_event, backend)

    @pytest.fixture
    def limit_history_scan(self, backend: SQLSpecBackend) -> Callable[[int], None]:
        return lambda window: setattr(backend, "event_scan_window", window)

    @pytest.fixture
    async def second_backend(self, factory: Any, backend: SQLSpecBackend) -> SQLSpecBackend:
        second: SQLSpecBackend = await factory.open()
        return second

    @pytest.fixture
    def caller_transaction(
        self, backend: SQLSpecBackend
    ) -> Callable[[], AbstractAsyncContextManager[CallerTransaction]]:
        """A SQLSpec driver session of the application's own, on the queue's configuration, in a transaction."""

        @asynccontextmanager
        async def open_transaction() -> AsyncIterator[CallerTransaction]:
            async with backend.sqlspec_config.provide_session() as session:  # type: ignore[attr-defined]
                await session.begin()
                try:
                    yield CallerTransaction(session, session.commit, session.rollback)
                finally:
                    with suppress(Exception):  # rolls back what the test left open (nothing if it ended it)
                        await session.rollback()

        return open_transaction


class TestAsyncpgConformance(_SQLSpecConformance):
    driver = "asyncpg"


class TestPsycopgConformance(_SQLSpecConformance):
    driver = "psycopg"


class TestAsyncpgPgBouncerConformance(_SQLSpecConformance):
    """Through PgBouncer in transaction pooling mode; LISTEN on a direct connection (``direct_dsn``)."""

    driver = "asyncpg+pgbouncer"


class TestPsycopgPgBouncerConformance(_SQLSpecConformance):
    """Through PgBouncer in transaction pooling mode without a direct connection: no push wakeups, polling."""

    driver = "psycopg+pgbouncer"


class TestSQLiteConformance(_SQLSpecConformance):
    driver = "aiosqlite"


class TestMariaDBConformance(_SQLSpecConformance):
    driver = "asyncmy"
