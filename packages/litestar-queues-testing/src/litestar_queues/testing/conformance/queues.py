"""Several queues at once: every operation with its records spread over queues.

Most areas use one queue. A backend may keep each queue apart (the Redis backend on a cluster gives every queue a
hash slot of its own, on whichever shard owns it), so here each operation works on records of several queues: found
by id, claimed in one due order across queues, finished, retried, recovered, cancelled, requeued, expired and pruned,
held to one dedup key whatever the queue, counted and listed over all queues.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from litestar_queues.backend import QueueBackend
from litestar_queues.errors import DuplicateTaskError
from litestar_queues.records import LeaseState, Outcome, RecordFilter, TaskError, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    after,
    completed,
    enqueue_one,
    make_record,
    raising,
    retry_at,
    rule,
)

__all__ = ("ManyQueuesConformance",)

QUEUES = ("conformance.alpha", "conformance.beta", "conformance.gamma", "conformance.delta")
_KEY = "conformance-many-queues-key"


def _failed() -> Outcome:
    return Outcome(status=TaskStatus.FAILED, error=TaskError(type="builtins.ValueError", message="no"))


class ManyQueuesConformance(ConformanceBase):
    """Operations over records of several queues behave as over one queue."""

    async def test_records_of_several_queues_are_found_claimed_and_ended_as_in_one(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        # one bulk enqueue over four queues; due order across them: priority, then scheduled_at, then id
        records = [
            make_record(now, queue=queue, priority=index % 2, scheduled_at=after(now, -10 * index - 1))
            for index, queue in enumerate(QUEUES * 2)
        ]
        outcomes = await backend.enqueue(records)
        assert [outcome.record.id for outcome in outcomes if outcome.created] == [r.id for r in records], rule(
            "enqueue", "new records are stored, created=True, one outcome per input in order"
        )
        for record in records:
            assert await backend.get(record.id) == record, rule("get", "return the record with the id, any queue")
        due = sorted(records, key=lambda r: (-r.priority, r.scheduled_at, r.id))
        claimed = await backend.claim(list(QUEUES), owner=OWNER, limit=3, now=now, lease_seconds=LEASE_SECONDS)
        assert [r.id for r in claimed] == [r.id for r in due[:3]], rule(
            "claim", "claim due records of the given queues in due order (across queues)"
        )
        first, second, third = claimed
        done = await backend.finish(first.lease, completed("ok"), now=after(now, 1))
        assert done is not None and done.status is TaskStatus.COMPLETED, rule("finish", "completed ends the attempt")
        retried = await backend.finish(second.lease, retry_at(after(now, 5)), now=after(now, 1))
        assert retried is not None and retried.status is TaskStatus.PENDING, rule("finish", "pending is a retry")
        renewed = await backend.renew([third.lease, second.lease], now=after(now, 2), lease_seconds=60)
        assert renewed == {third.id: LeaseState.HELD, second.id: LeaseState.LOST}, rule(
            "renew", "held and lost leases, any queue"
        )
        again = await backend.claim([second.queue], owner=OWNER, limit=5, now=after(now, 6), lease_seconds=1)
        assert second.id in [r.id for r in again], rule("claim", "a retried record is due again at its time")
        # a dead worker's records, over several queues, are recovered under the expired-lease fence
        expired = await backend.expired_leases(now=after(now, 100), limit=100)
        assert {r.id for r in expired} >= {third.id, second.id}, rule(
            "expired_leases", "return running records whose lease expired, any queue"
        )
        for record in expired:
            assert record.lease is not None
            back = await backend.finish(
                record.lease, retry_at(after(now, 100), only_if_lease_expired=True), now=after(now, 100)
            )
            assert back is not None and back.status is TaskStatus.PENDING, rule("finish", "recovery re-queues it")
        # cancel, requeue and claim one record by id
        pending = [r for r in due[3:] if r.id not in {second.id, third.id}]
        cancelled = await backend.cancel(pending[0].id, now=after(now, 101))
        assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED, rule("cancel", "pending: cancelled")
        requeued = await backend.requeue(pending[0].id, now=after(now, 102))
        assert requeued is not None and requeued.status is TaskStatus.PENDING, rule("requeue", "back to pending")
        taken = await backend.claim_record(pending[1].id, owner=OWNER, now=after(now, 103), lease_seconds=30)
        assert taken is not None and taken.queue == pending[1].queue, rule("claim_record", "claim it by id")
        assert await backend.get(new_record_id()) is None, rule("get", "None when no record has the id")

    async def test_counts_and_listings_cover_every_queue(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(after(now, index), queue=QUEUES[index % 3]) for index in range(9)]
        await backend.enqueue(records)
        claimed = await backend.claim([QUEUES[1]], owner=OWNER, limit=1, now=after(now, 20), lease_seconds=30)
        total = await backend.statistics(now=after(now, 20))
        assert total.counts[TaskStatus.PENDING] == 8 and total.counts[TaskStatus.RUNNING] == 1, rule(
            "statistics", "without a queue: counts over every queue"
        )
        assert total.oldest_pending_at == min(r.scheduled_at for r in records if r.id != claimed[0].id), rule(
            "statistics", "the oldest due pending record of every queue"
        )
        one = await backend.statistics(now=after(now, 20), queue=QUEUES[1])
        assert one.counts[TaskStatus.PENDING] == 2 and one.counts[TaskStatus.RUNNING] == 1, rule(
            "statistics", "with a queue: that queue's counts"
        )
        seen, cursor = [], None
        while True:
            page = await backend.query(RecordFilter(), limit=2, cursor=cursor)
            seen += [record.id for record in page.records]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted((r.id for r in records), reverse=True), rule(
            "query", "pages of every queue's records, newest first, each once"
        )
        running = await backend.query(RecordFilter(status=TaskStatus.RUNNING), limit=10)
        assert [r.id for r in running.records] == [claimed[0].id], rule("query", "filters hold over every queue")

    async def test_a_dedup_key_is_held_across_queues(self, backend: QueueBackend, now: datetime) -> None:
        holder = await enqueue_one(backend, make_record(now, queue=QUEUES[0], key=_KEY))
        (outcome,) = await backend.enqueue([make_record(now, queue=QUEUES[1], key=_KEY)])
        assert not outcome.created and outcome.record == holder, rule(
            "enqueue", "an active record holding the key resolves the enqueue, whatever its queue"
        )
        assert await backend.get_by_key(_KEY) == holder, rule("get_by_key", "the active record holding the key")
        (running,) = await backend.claim([QUEUES[0]], owner=OWNER, limit=1, now=now, lease_seconds=30)
        await backend.finish(running.lease, _failed(), now=after(now, 1))
        successor = await enqueue_one(backend, make_record(after(now, 2), queue=QUEUES[2], key=_KEY))
        assert await backend.get_by_key(_KEY) == successor, rule("get_by_key", "the active record holding the key")
        with raising(DuplicateTaskError, "requeue", "raises DuplicateTaskError if another active record holds its key"):
            await backend.requeue(holder.id, now=after(now, 3))
        (mine,) = await backend.claim([QUEUES[2]], owner=OWNER, limit=1, now=after(now, 3), lease_seconds=30)
        await backend.finish(mine.lease, completed(), now=after(now, 4))
        back = await backend.requeue(holder.id, now=after(now, 5))
        assert back is not None and back.status is TaskStatus.PENDING, rule(
            "requeue", "once the key is free again the record takes it back"
        )
        (late,) = await backend.enqueue([make_record(after(now, 6), queue=QUEUES[3], key=_KEY)])
        assert not late.created and late.record.id == holder.id, rule("enqueue", "the requeued record holds the key")

    async def test_concurrent_enqueues_of_one_key_on_several_queues_create_one_record(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        outcomes = await asyncio.gather(
            *(backend.enqueue([make_record(now, queue=QUEUES[i % 4], key=_KEY)]) for i in range(12))
        )
        created = [outcome for (outcome,) in outcomes if outcome.created]
        assert len(created) == 1, rule("enqueue", "concurrent enqueues of one key create exactly one record")
        assert {outcome.record.id for (outcome,) in outcomes} == {created[0].record.id}, rule(
            "enqueue", "every other enqueue resolves to the record holding the key"
        )

    async def test_pauses_expiry_and_pruning_span_queues(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue([make_record(now, queue=queue) for queue in QUEUES[:2]])
        assert await backend.pause_queue(QUEUES[0], now=now), rule("pause_queue", "pausing a running queue pauses it")
        assert list(await backend.paused_queues()) == [QUEUES[0]], rule("paused_queues", "the paused queues")
        claimed = await backend.claim(list(QUEUES[:2]), owner=OWNER, limit=5, now=now, lease_seconds=30)
        assert [r.queue for r in claimed] == [QUEUES[1]], rule("claim", "records of paused queues are not claimed")
        assert await backend.resume_queue(QUEUES[0]), rule("resume_queue", "resuming a paused queue")
        doomed = [make_record(now, queue=queue, expires_at=after(now, 5)) for queue in QUEUES[2:]]
        await backend.enqueue(doomed)
        assert await backend.expire(now=after(now, 10), limit=1) == 1, rule("expire", "expire at most limit records")
        assert await backend.expire(now=after(now, 10), limit=10) == 1, rule("expire", "the rest, any queue")
        for record in doomed:
            found = await backend.get(record.id)
            assert found is not None and found.status is TaskStatus.EXPIRED, rule("expire", "they become expired")
        assert await backend.prune(finished_before=after(now, 11), limit=1) == 1, rule("prune", "at most limit")
        assert await backend.prune(finished_before=after(now, 11), limit=10) == 1, rule("prune", "the rest")
        assert [await backend.get(record.id) for record in doomed] == [None, None], rule("prune", "they are gone")

    async def test_another_connection_finds_and_ends_records_of_several_queues(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        """A second backend instance (another process: nothing of the first's in memory) finds every record by id,
        renews and ends the first's attempts, and recovers its expired leases."""
        other = cross_connection_backend
        records = [make_record(now, queue=queue) for queue in QUEUES]
        await backend.enqueue(records)
        claimed = await backend.claim(list(QUEUES[:3]), owner=OWNER, limit=3, now=now, lease_seconds=30)
        for record in records:
            found = await other.get(record.id)
            assert found is not None and found.queue == record.queue, rule("get", "any connection, any queue")
        leases = [record.lease for record in claimed if record.lease is not None]
        held = await other.renew(leases, now=after(now, 1), lease_seconds=30)
        assert set(held.values()) == {LeaseState.HELD}, rule("renew", "extend held leases, any connection")
        done = await other.finish(leases[0], completed(), now=after(now, 2))
        assert done is not None and done.status is TaskStatus.COMPLETED, rule("finish", "any connection")
        cancelled = await other.cancel(records[3].id, now=after(now, 2))
        assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED, rule("cancel", "any connection")
        stale = await other.expired_leases(now=after(now, 100), limit=10)
        assert {r.id for r in stale} == {r.id for r in claimed[1:]}, rule("expired_leases", "every queue's")
        for record in stale:
            assert record.lease is not None
            back = await other.finish(
                record.lease, retry_at(after(now, 100), only_if_lease_expired=True), now=after(now, 100)
            )
            assert back is not None and back.status is TaskStatus.PENDING, rule("finish", "recovery re-queues it")
        stats = await other.statistics(now=after(now, 100))
        assert stats.counts[TaskStatus.PENDING] == 2 and stats.counts[TaskStatus.COMPLETED] == 1, rule(
            "statistics", "without a queue: counts over every queue"
        )
