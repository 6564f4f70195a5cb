"""Cancelling pending and running records."""

from __future__ import annotations

from datetime import datetime

import pytest
from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import LeaseState, Outcome, TaskError, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    QUEUE,
    after,
    claim_one,
    completed,
    diff,
    enqueue_one,
    make_record,
    retry_at,
    rule,
)

__all__ = ("CancelConformance",)

_FAILURE = TaskError(type="builtins.RuntimeError", message="attempt failed")
_WINS_RULE = (
    "a cancel request wins over a retry: a pending outcome of a record with cancel_requested ends it cancelled "
    "(finished_at = now, error from the outcome, attempts and scheduled_at unchanged, the key becomes free)"
)
_PENDING_OUTCOMES = {
    "retry": lambda now: retry_at(after(now, 60), error=_FAILURE),
    "hand-back": lambda now: retry_at(now, refund_attempt=True, error=_FAILURE),
    "stale recovery": lambda now: retry_at(now, error=_FAILURE, only_if_lease_expired=True),
}


class CancelConformance(ConformanceBase):
    """``cancel`` ends a pending record at once and asks the owner of a running one to stop."""

    async def test_cancel_pending_record_becomes_cancelled(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now, key="cancel:key"))
        cancelled = await backend.cancel(record.id, now=after(now, 1))
        expected = replace(record, status=TaskStatus.CANCELLED, finished_at=after(now, 1))
        assert cancelled == expected, rule(
            "cancel", "pending becomes cancelled with finished_at = now", diff(expected, cancelled)
        )
        assert await backend.get(record.id) == expected, rule("cancel", "the cancellation is stored")
        claimed = await backend.claim([QUEUE], owner=OWNER, limit=5, now=after(now, 1), lease_seconds=LEASE_SECONDS)
        assert claimed == [], rule("claim", "a cancelled record is not pending, so never due")
        (outcome,) = await backend.enqueue([make_record(now, key="cancel:key")])
        assert outcome.created, rule("cancel", "pending becomes cancelled (the key becomes free)")

    async def test_cancel_running_record_requests_cancellation(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        flagged = await backend.cancel(running.id, now=after(now, 1))
        expected = replace(running, cancel_requested=True)
        assert flagged == expected, rule(
            "cancel", "running gets cancel_requested = True and stays running", diff(expected, flagged)
        )
        assert await backend.get(running.id) == expected, rule("cancel", "the request is stored")

    async def test_cancel_running_record_is_surfaced_by_renew_until_finished(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        await backend.cancel(running.id, now=now)
        states = await backend.renew([running.lease], now=after(now, 1), lease_seconds=LEASE_SECONDS)
        assert states == {running.id: LeaseState.CANCEL_REQUESTED}, rule(
            "renew", "CANCEL_REQUESTED (held, but cancel was called on the running record)", repr(states)
        )
        finished = await backend.finish(running.lease, Outcome(status=TaskStatus.CANCELLED), now=after(now, 2))
        assert finished is not None, rule("finish", "the owner finishes the interrupted attempt under its fence")
        assert (finished.status, finished.cancel_requested, finished.finished_at) == (
            TaskStatus.CANCELLED,
            False,
            after(now, 2),
        ), rule(
            "finish",
            "cancelled: set the status and finished_at = now; cancel_requested becomes false",
            repr(finished),
        )

    async def test_cancel_terminal_record_returns_it_unchanged(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        finished = await backend.finish(running.lease, completed("kept"), now=now)
        cancelled = await backend.cancel(running.id, now=after(now, 5))
        assert cancelled == finished, rule(
            "cancel", "a terminal record is returned unchanged", diff(finished, cancelled)
        )
        assert await backend.get(running.id) == finished, rule("cancel", "a terminal record is not changed")

    async def test_cancel_unknown_record_returns_none(self, backend: QueueBackend, now: datetime) -> None:
        assert await backend.cancel(new_record_id(), now=now) is None, rule("cancel", "None if it does not exist")

    @pytest.mark.parametrize("kind", list(_PENDING_OUTCOMES))
    async def test_cancel_request_wins_over_a_retry(self, backend: QueueBackend, now: datetime, kind: str) -> None:
        await enqueue_one(backend, make_record(now, key="cancel:wins", max_retries=5))
        running = await claim_one(backend, now, lease_seconds=10)
        flagged = await backend.cancel(running.id, now=after(now, 1))
        assert flagged is not None and flagged.cancel_requested
        moment = after(now, 20)  # past the lease, so that a stale recovery applies too
        outcome = _PENDING_OUTCOMES[kind](moment)
        finished = await backend.finish(running.lease, outcome, now=moment, claimed=running)
        expected = replace(
            running,
            status=TaskStatus.CANCELLED,
            finished_at=moment,
            error=_FAILURE,
            owner=None,
            lease_expires_at=None,
            cancel_requested=False,
        )
        assert finished == expected, rule("finish", _WINS_RULE, diff(expected, finished))
        assert await backend.get(running.id) == expected, rule("finish", _WINS_RULE + " (stored)")
        later = after(now, 3600)
        claimed = await backend.claim([QUEUE], owner=OWNER, limit=5, now=later, lease_seconds=LEASE_SECONDS)
        assert claimed == [], rule("finish", _WINS_RULE + ": the record never runs again", repr(claimed))
        assert await backend.expired_leases(now=later, limit=5) == [], rule("finish", _WINS_RULE)
        (again,) = await backend.enqueue([make_record(now, key="cancel:wins")])
        assert again.created, rule("finish", _WINS_RULE + ": the key becomes free")

    async def test_cancel_request_leaves_a_completed_attempt_completed(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        await backend.cancel(running.id, now=now)
        finished = await backend.finish(running.lease, completed("done"), now=after(now, 1))
        assert finished is not None and (finished.status, finished.result) == (TaskStatus.COMPLETED, "done"), rule(
            "finish", "completed: set the status and result (a cancel request only turns a pending outcome)"
        )
