"""PostgreSQL: statements that lock several task rows lock them in id order, so they cannot deadlock each other.

A worker's batched finish and its lease renewal both lock several of its rows, on two connections at once. Locked
in whatever order each statement met them, the two could wait for each other and PostgreSQL would abort one (the
finished outcome lost, the job run again once its lease expired).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackend
from litestar_queues.testing.sql import (
    LOCKING_STATEMENTS,
    assert_a_drain_runs_every_job_once,
    assert_rows_locked_in_id_order,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("statement", LOCKING_STATEMENTS)
async def test_rows_are_locked_in_id_order(pg_driver: str, make_factory: Callable[..., Any], statement: str) -> None:
    backend: AdvancedAlchemyBackend = await make_factory(pg_driver).open()
    await assert_rows_locked_in_id_order(backend, backend.tables.tasks.name, statement)


async def test_a_drain_by_several_workers_runs_every_job_once(
    make_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Without a crash or an outage no job runs twice: finishes and renewals of many slots never deadlock."""
    factory = make_factory("asyncpg")
    await factory.open()  # creates the tables (and drops them after the test)
    configs = [factory.config(alchemy=factory.engine(pool_size=10)) for _ in range(3)]
    await assert_a_drain_runs_every_job_once(configs, 3000, caplog)
