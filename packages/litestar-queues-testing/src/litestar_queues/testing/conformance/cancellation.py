"""Cancelling pending and running records."""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import LeaseState, Outcome, TaskStatus, new_record_id
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
    rule,
)

__all__ = ("CancelConformance",)


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
