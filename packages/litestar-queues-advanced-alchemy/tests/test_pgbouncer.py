"""An application's engine through PgBouncer in transaction pooling mode (the test servers' ``LQ_PGBOUNCER_DSN``).

The whole conformance suite also runs through it (``test_conformance.py``); these are the pooler's own cases: the
engine settings ``open()`` demands, polling without ``listen_url`` while enqueues still wake a direct listener, and
asyncpg's type introspection kept inside one transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pytest

from litestar_queues.backend import Capability
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.errors import ConfigurationError
from litestar_queues.testing import server_url
from litestar_queues.testing.sql import (
    assert_a_pooled_enqueue_wakes_a_direct_listener,
    assert_array_types_learned_in_transactions,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "connect_args",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"statement_cache_size": 0, "prepared_statement_cache_size": 0}, id="generated-names"),
        pytest.param({"prepared_statement_name_func": str}, id="statement-cache-on"),
    ],
)
async def test_an_asyncpg_engine_that_prepares_named_statements_is_refused_at_open(
    make_factory: Callable[..., Any], connect_args: dict[str, Any]
) -> None:
    factory = make_factory("asyncpg+pgbouncer")
    with pytest.raises(ConfigurationError, match="prepared_statement_name_func"):
        await factory.open(alchemy=factory.engine(connect_args=connect_args))


async def test_a_psycopg_engine_that_prepares_statements_is_refused_at_open(
    make_factory: Callable[..., Any],
) -> None:
    factory = make_factory("psycopg+pgbouncer")
    with pytest.raises(ConfigurationError, match='"prepare_threshold": None'):
        await factory.open(alchemy=factory.engine(connect_args={}))


async def test_pooler_mode_is_for_postgresql_only(make_factory: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL only"):
        make_factory("aiosqlite").config(pooler_mode="transaction").create_backend()
    with pytest.raises(ConfigurationError, match="pooler_mode must be one of"):
        make_factory("aiosqlite").config(pooler_mode="statement")


async def test_without_listen_url_a_backend_polls_and_its_enqueues_still_wake_listeners(
    pg_driver: str, make_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    factory = make_factory(f"{pg_driver}+pgbouncer")
    with caplog.at_level(logging.INFO, logger="litestar_queues.sql"):
        polling: AdvancedAlchemyBackend = await factory.open(listen_url=None)
    assert not {Capability.PUSH_WAKEUP, Capability.FINISH_WAKEUP} & polling.capabilities
    assert polling.listener is None  # nothing ever LISTENs through the pooler
    assert "has no direct URL to LISTEN on: workers poll" in caplog.text
    direct = server_url("LQ_POSTGRES_DSN").replace("postgresql://", f"postgresql+{pg_driver}://", 1)
    listening: AdvancedAlchemyBackend = await factory.open(listen_url=direct)
    assert Capability.PUSH_WAKEUP in listening.capabilities
    await assert_a_pooled_enqueue_wakes_a_direct_listener(polling, listening)


async def test_asyncpg_learns_the_array_types_in_one_transaction_not_across_pooled_connections(
    make_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg switches ``jit`` for the session around its catalog query; outside a transaction the pooler spreads
    the three statements over three server connections (slow JIT'd introspection, ``jit`` changed for others).

    The tables come from an earlier start, as with migrations run apart: DDL through an engine makes SQLAlchemy
    reload every connection's type cache, so asyncpg learns the types again on first use (see ``pooler``)."""
    factory = make_factory("asyncpg+pgbouncer")
    await factory.open()  # creates the tables
    await assert_array_types_learned_in_transactions(functools.partial(factory.open, create_tables=False), monkeypatch)
