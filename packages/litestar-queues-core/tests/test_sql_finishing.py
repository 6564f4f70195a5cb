"""What the shared SQL helpers put into a finish statement, and the SQLite version check (no database needed)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from litestar_queues.errors import ConfigurationError
from litestar_queues.records import Lease, Outcome, TaskStatus
from litestar_queues.sql.finishing import FINISH_PARAMS, finish_params, finish_values
from litestar_queues.sql.rows import check_sqlite_version

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
LEASE = Lease("r1", "worker-a", 7)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def test_terminal_finish_binds_the_fence_status_moment_and_result() -> None:
    values = finish_values(Outcome(status=TaskStatus.COMPLETED, result={"n": 1}))
    assert values.shape == (True, False, False)
    assert finish_params(values, LEASE, NOW, _iso) == {
        "id": "r1",
        "owner": "worker-a",
        "token": 7,
        "error": None,
        "status": "completed",
        "now": NOW.isoformat(),
        "result": '{"n":1}',
    }


def test_retry_binds_the_due_time_and_now() -> None:
    """``now`` is bound for every retry: a record whose cancel was requested ends cancelled at ``now`` instead."""
    due = NOW + timedelta(seconds=30)
    retry = finish_values(Outcome(status=TaskStatus.PENDING, scheduled_at=due, refund_attempt=True))
    assert retry.shape == (False, True, False)
    assert finish_params(retry, LEASE, NOW, _iso) == {
        "id": "r1",
        "owner": "worker-a",
        "token": 7,
        "error": None,
        "now": NOW.isoformat(),
        "scheduled_at": due.isoformat(),
    }
    recovery = finish_values(Outcome(status=TaskStatus.PENDING, scheduled_at=due, only_if_lease_expired=True))
    assert recovery.shape == (False, False, True)
    assert finish_params(recovery, LEASE, NOW, _iso)["now"] == NOW.isoformat()


def test_a_backend_chooses_its_bind_names() -> None:
    names = FINISH_PARAMS._replace(id="rid", status="new_status", now="at")
    values = finish_values(Outcome(status=TaskStatus.FAILED))
    assert set(finish_params(values, LEASE, NOW, _iso, names)) == {
        "rid",
        "owner",
        "token",
        "error",
        "new_status",
        "at",
        "result",
    }


def test_an_old_sqlite_is_refused_with_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    check_sqlite_version("test backend")
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(ConfigurationError, match=r"the test backend needs SQLite 3\.35\+.*3\.31\.1"):
        check_sqlite_version("test backend")
