"""Pausing queues: a paused queue is never claimed from, and everything else about it goes on."""

from __future__ import annotations

from datetime import datetime

from litestar_queues.backend import QueueBackend
from litestar_queues.records import LeaseState, TaskStatus
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

__all__ = ("PauseConformance",)

_GATES = "a paused queue among queues is skipped and the others are claimed as usual"
_NEIGHBOURS = [f"{QUEUE}.bulk", f"{QUEUE}x", f"x{QUEUE}"]
"""Queues whose names contain the paused one: a pause matched by prefix, suffix or substring claims none of them."""


async def _claim_ids(backend: QueueBackend, queues: list[str], now: datetime, limit: int = 100) -> list[str]:
    claimed = await backend.claim(queues, owner=OWNER, limit=limit, now=now, lease_seconds=LEASE_SECONDS)
    return [record.id for record in claimed]


class PauseConformance(ConformanceBase):
    """``pause_queue`` gates claims of one queue, persistently, until ``resume_queue``; nothing else changes."""

    async def test_pause_skips_the_paused_queue_among_several_claimed_together(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        # The paused queue has the highest priority and the oldest records, is listed in the middle, and its
        # neighbours' names contain its own: skipping it alone leaves exactly the others, in due order.
        paused = [make_record(now, priority=9, scheduled_at=after(now, -60 - offset)) for offset in range(3)]
        others = [
            make_record(now, queue=queue, priority=priority, scheduled_at=after(now, -priority))
            for priority, queue in enumerate(_NEIGHBOURS)
        ]
        await backend.enqueue([*paused, *others])
        assert await backend.pause_queue(QUEUE, now=now) is True, rule("pause_queue", "return whether it paused")
        queues = [_NEIGHBOURS[0], QUEUE, *_NEIGHBOURS[1:]]
        expected = [record.id for record in sorted(others, key=lambda r: (-r.priority, r.scheduled_at, r.id))]
        assert await _claim_ids(backend, queues, now) == expected, rule(
            "claim", _GATES + " (in due order; a queue is named exactly)"
        )
        for record in paused:
            stored = await backend.get(record.id)
            assert stored == record, rule("claim", "records of paused queues are never returned", diff(record, stored))
        assert await _claim_ids(backend, [QUEUE], now) == [], rule("claim", "a paused queue alone gives nothing")

    async def test_pause_then_resume_makes_its_records_claimable_in_due_order(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        records = [make_record(now, priority=priority, scheduled_at=after(now, -priority)) for priority in (1, 3, 2)]
        other = make_record(now, queue="conformance.other", priority=2, scheduled_at=after(now, -10))
        await backend.enqueue([*records, other])
        await backend.pause_queue(QUEUE, now=now)
        assert await backend.resume_queue(QUEUE) is True, rule("resume_queue", "return whether it was paused")
        expected = [r.id for r in sorted([*records, other], key=lambda r: (-r.priority, r.scheduled_at, r.id))]
        assert await _claim_ids(backend, [QUEUE, "conformance.other"], now) == expected, rule(
            "resume_queue", "its due records are claimable again at once (in due order with other queues)"
        )

    async def test_pause_and_resume_report_whether_they_changed_anything(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        assert await backend.paused_queues() == {}, rule("paused_queues", "every paused queue: none yet")
        assert await backend.resume_queue(QUEUE) is False, rule("resume_queue", "return whether it was paused")
        assert await backend.pause_queue(QUEUE, now=now) is True, rule("pause_queue", "return whether it paused it")
        assert await backend.pause_queue("conformance.b", now=after(now, 5)) is True, rule(
            "pause_queue", "return whether this call paused it"
        )
        assert await backend.pause_queue(QUEUE, now=after(now, 60)) is False, rule(
            "pause_queue", "False: it was paused already"
        )
        paused = await backend.paused_queues()
        assert paused == {QUEUE: now, "conformance.b": after(now, 5)}, rule(
            "paused_queues",
            "every paused queue with the now of the call that paused it (a second pause keeps the first paused_at)",
            repr(paused),
        )
        assert await backend.resume_queue(QUEUE) is True, rule("resume_queue", "return whether it was paused")
        assert await backend.resume_queue(QUEUE) is False, rule("resume_queue", "False once resumed")
        assert await backend.paused_queues() == {"conformance.b": after(now, 5)}, rule(
            "resume_queue", "lift the pause of queue (only that one)"
        )

    async def test_pause_of_a_queue_without_records_holds_for_records_enqueued_later(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await backend.pause_queue("conformance.new", now=now)
        outcomes = await backend.enqueue([make_record(now, queue="conformance.new") for _ in range(2)])
        assert all(outcome.created for outcome in outcomes), rule("pause_queue", "enqueue still stores records")
        assert await _claim_ids(backend, ["conformance.new"], now) == [], rule(
            "pause_queue", "a queue can be paused before it has any record"
        )

    async def test_pause_gates_claims_only(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        ended = await enqueue_one(backend, make_record(now))
        await backend.cancel(ended.id, now=now)
        expiring = await enqueue_one(backend, make_record(now, expires_at=after(now, 1)))
        await backend.pause_queue(QUEUE, now=now)

        enqueued = await backend.enqueue([make_record(now)])
        assert enqueued[0].created and enqueued[0].record.status is TaskStatus.PENDING, rule(
            "pause_queue", "enqueue still makes records of the queue pending"
        )
        requeued = await backend.requeue(ended.id, now=now)
        assert requeued is not None and requeued.status is TaskStatus.PENDING, rule(
            "pause_queue", "requeue still makes records of the queue pending", repr(requeued)
        )
        states = await backend.renew([running.lease], now=now, lease_seconds=LEASE_SECONDS)
        assert states[running.id] is LeaseState.HELD, rule("pause_queue", "running records renew", repr(states))
        finished = await backend.finish(running.lease, completed("done"), now=after(now, 1))
        assert finished is not None and finished.status is TaskStatus.COMPLETED, rule(
            "pause_queue", "running records finish", repr(finished)
        )
        assert await backend.expire(now=after(now, 1), limit=10) == 1, rule("pause_queue", "expire works as always")
        expired = await backend.get(expiring.id)
        assert expired is not None and expired.status is TaskStatus.EXPIRED, rule("expire", "marks it expired")
        explicit = await backend.claim_record(enqueued[0].id, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
        assert explicit is not None and explicit.status is TaskStatus.RUNNING, rule(
            "claim_record", "a pause of its queue does not apply: this claim names its record"
        )
        stats = await backend.statistics(now=now, queue=QUEUE)
        assert (stats.counts[TaskStatus.PENDING], stats.oldest_pending_at) == (1, now), rule(
            "statistics", "counts and oldest_pending_at of a paused queue as always", repr(stats)
        )
        assert await _claim_ids(backend, [QUEUE], now) == [], rule("claim", "still paused after all that")

    async def test_pause_made_through_another_connection_holds_after_it_closes(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(backend, make_record(now))
        await cross_connection_backend.pause_queue(QUEUE, now=now)
        await cross_connection_backend.close()
        assert await backend.paused_queues() == {QUEUE: now}, rule(
            "pause_queue", "the pause is stored like the records: it outlives the connection that made it"
        )
        assert await _claim_ids(backend, [QUEUE], now) == [], rule(
            "pause_queue", "it holds for every backend over the same storage"
        )
        assert await backend.resume_queue(QUEUE) is True
        assert await _claim_ids(backend, [QUEUE], now) == [record.id], rule("resume_queue", "claimable again")
