"""Pruning terminal records."""

from __future__ import annotations

from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    after,
    claim_one,
    completed,
    enqueue_one,
    make_record,
    obeying,
    rule,
)

__all__ = ("PruneConformance",)


class PruneConformance(ConformanceBase):
    """``prune`` deletes terminal records finished before a moment, and nothing else."""

    async def test_prune_deletes_terminal_records_finished_before(self, backend: QueueBackend, now: datetime) -> None:
        old = await enqueue_one(backend, make_record(now))
        await backend.cancel(old.id, now=after(now, -120))
        boundary = await enqueue_one(backend, make_record(now))
        await backend.cancel(boundary.id, now=after(now, -60))
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        finished = await backend.finish(running.lease, completed(), now=after(now, -90))
        assert finished is not None, rule("finish", "a matching fence: the updated record")
        deleted = await backend.prune(finished_before=after(now, -60), limit=10)
        assert deleted == 2, rule(
            "prune", "delete terminal records with finished_at < finished_before; return how many"
        )
        assert await backend.get(old.id) is None and await backend.get(running.id) is None, rule(
            "prune", "delete terminal records with finished_at < finished_before"
        )
        assert await backend.get(boundary.id) is not None, rule(
            "prune", "finished_at < finished_before is strict: a record finished at that moment stays"
        )

    async def test_prune_keeps_active_records(self, backend: QueueBackend, now: datetime) -> None:
        pending = await enqueue_one(backend, make_record(now, scheduled_at=after(now, 60)))
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        assert await backend.prune(finished_before=after(now, 3600), limit=10) == 0, rule(
            "prune", "only terminal records are deleted"
        )
        assert await backend.get(pending.id) == pending and await backend.get(running.id) == running, rule(
            "prune", "only terminal records are deleted"
        )

    async def test_prune_deletes_at_most_limit_records(self, backend: QueueBackend, now: datetime) -> None:
        for offset in range(5):
            record = await enqueue_one(backend, make_record(now))
            await backend.cancel(record.id, now=after(now, -100 + offset))
        assert await backend.prune(finished_before=now, limit=3) == 3, rule("prune", "delete up to limit records")
        assert await backend.prune(finished_before=now, limit=3) == 2, rule("prune", "the rest on the next call")

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_prune_with_limit_below_one_deletes_nothing(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        records = [make_record(now) for _ in range(3)]
        await backend.enqueue(records)
        for record in records:
            await backend.cancel(record.id, now=after(now, -100))
        assert await backend.prune(finished_before=now, limit=limit) == 0, rule(
            "prune", "limit <= 0 selects nothing: return 0"
        )
        for record in records:
            assert await backend.get(record.id) is not None, rule("prune", "limit <= 0 deletes nothing")

    async def test_prune_frees_the_id(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now, key="prune:key"))
        await backend.cancel(record.id, now=after(now, -10))
        await backend.prune(finished_before=now, limit=10)
        assert await backend.get_by_key("prune:key") is None, rule("get_by_key", "a deleted record is gone")
        with obeying("enqueue", "an id is new again once its record was deleted"):
            (outcome,) = await backend.enqueue([record])
        assert outcome.created, rule("enqueue", "an id is new again once its record was deleted")
