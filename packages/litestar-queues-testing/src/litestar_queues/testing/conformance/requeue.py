"""Requeue: the manual retry of failed, cancelled and expired records."""

from __future__ import annotations

from datetime import datetime

import pytest
from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.errors import DuplicateTaskError
from litestar_queues.records import Outcome, TaskError, TaskProgress, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    after,
    claim_one,
    completed,
    diff,
    enqueue_one,
    make_record,
    raising,
    rule,
)

__all__ = ("RequeueConformance",)

_KEY = "requeue:key"
_STORED = "stored failed with every field set"
_RESET = (
    "put a failed, cancelled or expired record back to pending: scheduled_at = now, attempts = 0, clears "
    "expires_at, finished_at, result, error, progress and cancel_requested"
)


async def _ended(backend: QueueBackend, now: datetime, how: str) -> TaskRecord:
    """Return a record that ended ``how`` (failed, cancelled, expired, or stored failed) holding key ``_KEY``.

    Every one has an ``expires_at`` (passed only for the expired one), which a requeue clears; the stored one has
    every field a requeue resets set, ``cancel_requested`` included.
    """
    if how == _STORED:
        return await enqueue_one(
            backend,
            make_record(
                after(now, -600),
                status=TaskStatus.FAILED,
                key=_KEY,
                attempts=4,
                token=4,
                started_at=after(now, -300),
                finished_at=after(now, -200),
                expires_at=after(now, -100),
                result={"partial": [1, 2]},
                error=TaskError(type="builtins.KeyError", message="'x'"),
                cancel_requested=True,
                metadata={"kept": True},
                progress=TaskProgress(current=3, total=4, percent=75.0, attempt=4, updated_at=after(now, -250)),
            ),
        )
    status = TaskStatus(how)
    expires_at = after(now, 30 if status is TaskStatus.EXPIRED else 3600)
    record = await enqueue_one(backend, make_record(now, key=_KEY, expires_at=expires_at))
    if status is TaskStatus.EXPIRED:
        await backend.expire(now=after(now, 30), limit=10)
    elif status is TaskStatus.CANCELLED:
        await backend.cancel(record.id, now=after(now, 1))
    else:
        running = await claim_one(backend, now)
        progress = TaskProgress(current=1, total=2, percent=50.0, attempt=1, updated_at=now)
        await backend.save_progress([(running.lease, progress)])
        error = TaskError(type="builtins.ValueError", message="bad input")
        await backend.finish(running.lease, Outcome(status=status, result="partial", error=error), now=after(now, 1))
    ended = await backend.get(record.id)
    assert ended is not None and ended.status is status, f"setting up a {status.value} record failed: {ended!r}"
    return ended


class RequeueConformance(ConformanceBase):
    """``requeue`` resets an ended record to pending, unless its key was taken meanwhile."""

    @pytest.mark.parametrize("how", ["failed", "cancelled", "expired", _STORED])
    async def test_requeue_resets_an_ended_record_to_pending(
        self, backend: QueueBackend, now: datetime, how: str
    ) -> None:
        ended = await _ended(backend, now, how)
        requeued = await backend.requeue(ended.id, now=after(now, 60))
        expected = replace(
            ended,
            status=TaskStatus.PENDING,
            scheduled_at=after(now, 60),
            expires_at=None,
            attempts=0,
            finished_at=None,
            result=None,
            error=None,
            cancel_requested=False,
            progress=None,
        )
        assert requeued == expected, rule("requeue", _RESET, diff(expected, requeued))
        assert await backend.get(ended.id) == expected, rule("requeue", "the requeue is stored")
        assert await backend.get_by_key(_KEY) == expected, rule("requeue", "a pending record holds its key again")

    async def test_requeue_makes_a_failed_record_claimable_again(self, backend: QueueBackend, now: datetime) -> None:
        ended = await _ended(backend, now, "failed")
        await backend.requeue(ended.id, now=after(now, 60))
        again = await claim_one(backend, after(now, 60))
        assert (again.id, again.attempts) == (ended.id, 1), rule("requeue", "back to pending with attempts = 0")

    async def test_requeue_refuses_when_another_active_record_holds_the_key(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        ended = await _ended(backend, now, "failed")
        await enqueue_one(backend, make_record(now, key=_KEY))
        with raising(DuplicateTaskError, "requeue", "raises DuplicateTaskError if another active record holds its key"):
            await backend.requeue(ended.id, now=after(now, 60))
        stored = await backend.get(ended.id)
        assert stored == ended, rule("requeue", "a refused requeue changes nothing", diff(ended, stored))

    async def test_requeue_leaves_active_and_completed_records_unchanged(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        pending = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 3600)))
        await backend.enqueue([make_record(now) for _ in range(2)])
        running = await claim_one(backend, now)
        done = await claim_one(backend, now)
        finished = await backend.finish(done.lease, completed("done"), now=now)
        assert finished is not None, rule("finish", "a matching fence: the updated record")
        for record in (pending, running, finished):
            requeued = await backend.requeue(record.id, now=after(now, 60))
            assert requeued == record, rule(
                "requeue", "an active or completed record is returned unchanged", diff(record, requeued)
            )
            assert await backend.get(record.id) == record, rule("requeue", "an active or completed record is unchanged")

    async def test_requeue_of_unknown_record_returns_none(self, backend: QueueBackend, now: datetime) -> None:
        assert await backend.requeue(new_record_id(), now=now) is None, rule("requeue", "None if it does not exist")
