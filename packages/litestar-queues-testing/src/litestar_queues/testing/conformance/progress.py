"""Progress on the record: ``save_progress`` under the fence, kept until the next report or a manual retry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import Lease, TaskProgress, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    after,
    claim_one,
    completed,
    diff,
    enqueue_one,
    make_record,
    retry_at,
    rule,
    stale,
)

__all__ = ("ProgressConformance", "make_progress")

_SAVED = "when the fence matches, the record's progress becomes progress; no other field changes"
_FENCE = "when the fence does not match, nothing changes"


def make_progress(now: datetime, current: float = 2.5, **changes: object) -> TaskProgress:
    """Return a progress report with every field set (odd microseconds, a fraction, a message)."""
    values: dict[str, object] = {
        "current": current,
        "total": 7.0,
        "percent": round(current * 100 / 7, 2),
        "message": "rendering page 3 — charts ✓",
        "attempt": 1,
        "updated_at": (now + timedelta(seconds=1)).replace(microsecond=654321),
    }
    values.update(changes)
    return TaskProgress(**values)  # type: ignore[arg-type]


async def _stale_lease(backend: QueueBackend, now: datetime, kind: str) -> tuple[Lease, TaskRecord]:
    """Return a lease that must not match, and the record as it is stored (which must stay so)."""
    if kind == "unknown record":
        return Lease(record_id=new_record_id(), owner="worker-a", token=1), await enqueue_one(backend, make_record(now))
    record = await enqueue_one(backend, make_record(now))
    if kind == "pending record":
        return Lease(record_id=record.id, owner="worker-a", token=1), record
    running = await claim_one(backend, now)
    if kind == "finished record":
        finished = await backend.finish(running.lease, completed(), now=now)
        assert finished is not None, rule("finish", "a matching fence: the updated record")
        return running.lease, finished
    if kind == "other owner":
        return stale(running.lease, owner="worker-z"), running
    # an old token: the attempt was recovered and claimed again
    await backend.finish(running.lease, retry_at(after(now, 40), only_if_lease_expired=True), now=after(now, 40))
    again = await claim_one(backend, after(now, 40), owner="worker-b")
    return running.lease, again


class ProgressConformance(ConformanceBase):
    """``save_progress`` keeps each running attempt's latest progress on its record, under its fence."""

    async def test_progress_is_saved_on_the_running_record(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        progress = make_progress(now)
        await backend.save_progress([(running.lease, progress)])
        stored = await backend.get(running.id)
        expected = replace(running, progress=progress)
        assert stored == expected, rule("save_progress", _SAVED, diff(expected, stored))

    async def test_progress_later_report_replaces_the_earlier_one(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue([make_record(now) for _ in range(2)])
        first = await claim_one(backend, now)
        second = await claim_one(backend, now)
        await backend.save_progress([(first.lease, make_progress(now, 1))])
        latest = make_progress(now, 5, total=None, percent=None, message=None)
        other = make_progress(now, 3)
        await backend.save_progress(
            [(first.lease, make_progress(now, 4)), (second.lease, other), (first.lease, latest)]
        )
        stored = [await backend.get(record.id) for record in (first, second)]
        assert [record.progress if record else None for record in stored] == [latest, other], rule(
            "save_progress", "for each (lease, progress) in order: a later update of the same record wins"
        )

    @pytest.mark.parametrize(
        "kind", ["other owner", "old token", "pending record", "finished record", "unknown record"]
    )
    async def test_progress_with_a_fence_that_does_not_match_changes_nothing(
        self, backend: QueueBackend, now: datetime, kind: str
    ) -> None:
        lease, record = await _stale_lease(backend, now, kind)
        await backend.save_progress([(lease, make_progress(now))])
        stored = await backend.get(record.id)
        assert stored == record, rule("save_progress", _FENCE, diff(record, stored))
        if kind == "unknown record":
            assert await backend.get(lease.record_id) is None, rule("save_progress", "an unknown record stays unknown")

    @pytest.mark.parametrize("ending", ["completed", "failed", "retry"])
    async def test_progress_stays_through_finish_and_the_next_claim(
        self, backend: QueueBackend, now: datetime, ending: str
    ) -> None:
        await enqueue_one(backend, make_record(now, max_retries=3))
        running = await claim_one(backend, now)
        progress = make_progress(now)
        await backend.save_progress([(running.lease, progress)])
        if ending == "retry":
            outcome = retry_at(now)
        else:
            outcome = completed("done") if ending == "completed" else replace(completed(), status=TaskStatus.FAILED)
        finished = await backend.finish(running.lease, outcome, now=after(now, 1))
        assert finished is not None and finished.progress == progress, rule(
            "save_progress", "progress stays on the record through finish", repr(finished)
        )
        if ending == "retry":
            again = await claim_one(backend, after(now, 2))
            assert again.progress == progress, rule(
                "save_progress", "progress stays through later claims until the next update", repr(again.progress)
            )

    async def test_progress_of_nothing_changes_nothing(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now))
        await backend.save_progress([])
        assert await backend.get(record.id) == record, rule("save_progress", "no updates: nothing changes")
