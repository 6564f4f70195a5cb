"""Schedule slots: one run per slot, deduplicated by a deterministic record id."""

from __future__ import annotations

from datetime import datetime

import anyio

from litestar_queues.backend import QueueBackend
from litestar_queues.records import EnqueueOutcome, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import claim_one, completed, enqueue_one, make_record, obeying, rule

__all__ = ("ScheduleSlotConformance",)


_SAME_ID = (
    "if a record with the same id exists (any status), return it with created=False: a slot's id is deterministic, "
    "so every scheduler enqueues the same one"
)


class ScheduleSlotConformance(ConformanceBase):
    """Enqueueing a slot's id again returns the existing run, in any status, so a slot never runs twice."""

    async def test_schedule_slot_enqueued_again_while_pending_is_not_created(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        slot_id = new_record_id()
        first = await enqueue_one(backend, make_record(now, id=slot_id))
        with obeying("enqueue", _SAME_ID):
            (outcome,) = await backend.enqueue([make_record(now, id=slot_id)])
        assert (outcome.created, outcome.record) == (False, first), rule("enqueue", _SAME_ID)

    async def test_schedule_slot_enqueued_again_after_it_finished_is_not_created(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        slot_id = new_record_id()
        await enqueue_one(backend, make_record(now, id=slot_id))
        running = await claim_one(backend, now)
        finished = await backend.finish(running.lease, completed("sent"), now=now)
        with obeying("enqueue", _SAME_ID):
            (outcome,) = await backend.enqueue([make_record(now, id=slot_id)])
        assert (outcome.created, outcome.record) == (False, finished), rule("enqueue", _SAME_ID)

    async def test_schedule_slot_enqueued_by_many_schedulers_at_once_is_created_once(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        outcomes: list[EnqueueOutcome] = []
        slot_id = new_record_id()

        async def scheduler() -> None:
            with obeying("enqueue", _SAME_ID + ", however many enqueue it at once"):
                outcomes.extend(await backend.enqueue([make_record(now, id=slot_id)]))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(scheduler)
        assert sum(outcome.created for outcome in outcomes) == 1, rule(
            "enqueue", "one record per id however many callers enqueue it at once"
        )
