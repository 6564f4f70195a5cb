"""Atomicity under concurrent callers: several claimers, finishers and recoverers at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio

from litestar_queues.backend import QueueBackend
from litestar_queues.records import TaskRecord
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    QUEUE,
    after,
    claim_one,
    completed,
    enqueue_one,
    make_record,
    retry_at,
    rule,
)

__all__ = ("ConcurrencyConformance",)

_RECORDS = 200
_CLAIMERS = 8


async def _drain_concurrently(backends: list[QueueBackend], now: datetime) -> list[str]:
    """Let one claimer per backend claim in small batches until the queue is empty; return every claimed id."""
    claimed: list[str] = []

    async def claimer(backend: QueueBackend, number: int) -> None:
        # Bounded, so a backend that hands records out twice cannot loop forever.
        for _ in range(2 * _RECORDS):
            batch = await backend.claim([QUEUE], owner=f"claimer-{number}", limit=3, now=now, lease_seconds=60)
            if not batch:
                return
            claimed.extend(record.id for record in batch)

    async with anyio.create_task_group() as group:
        for number, backend in enumerate(backends):
            group.start_soon(claimer, backend, number)
    return claimed


def _assert_each_claimed_once(claimed: list[str], records: list[TaskRecord]) -> None:
    twice = sorted(record_id for record_id, times in Counter(claimed).items() if times > 1)
    assert not twice, rule(
        "claim",
        "no record is ever returned to two claimers, however many claim concurrently",
        f"{len(twice)} records were claimed more than once, e.g. {twice[:3]}",
    )
    missing = {record.id for record in records} - set(claimed)
    assert not missing, rule("claim", "every due record is claimed", f"{len(missing)} were never claimed")


class ConcurrencyConformance(ConformanceBase):
    """Transitions stay atomic when many callers race for the same records."""

    async def test_concurrency_claimers_claim_every_record_exactly_once(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        records = [make_record(now, priority=number % 3) for number in range(_RECORDS)]
        await backend.enqueue(records)
        claimed = await _drain_concurrently([backend] * _CLAIMERS, now)
        _assert_each_claimed_once(claimed, records)

    async def test_concurrency_claimers_on_two_connections_claim_every_record_exactly_once(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        records = [make_record(now) for _ in range(_RECORDS)]
        await backend.enqueue(records)
        claimed = await _drain_concurrently([backend, cross_connection_backend] * (_CLAIMERS // 2), now)
        _assert_each_claimed_once(claimed, records)

    async def test_concurrency_claim_record_races_have_one_winner(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now))
        winners: list[TaskRecord] = []

        async def contender(number: int) -> None:
            claimed = await backend.claim_record(
                record.id, owner=f"contender-{number}", now=now, lease_seconds=LEASE_SECONDS
            )
            if claimed is not None:
                winners.append(claimed)

        async with anyio.create_task_group() as group:
            for number in range(20):
                group.start_soon(contender, number)
        assert len(winners) == 1, rule(
            "claim_record",
            "same transition as claim: no record is ever returned to two claimers",
            f"{len(winners)} won",
        )

    async def test_concurrency_finishes_with_one_lease_apply_once(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        applied = await _race(20, lambda: backend.finish(running.lease, completed(), now=now))
        assert applied == 1, rule(
            "finish",
            "the fence applies only if the record is running with the same owner and token",
            f"{applied} applied",
        )

    async def test_concurrency_stale_recoveries_have_one_winner(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        later = after(now, 11)
        applied = await _race(
            20, lambda: backend.finish(running.lease, retry_at(later, only_if_lease_expired=True), now=later)
        )
        assert applied == 1, rule("finish", "stale recovery of one lease applies once", f"{applied} applied")

    async def test_concurrency_finish_across_connections_is_visible_and_fenced(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        finished = await cross_connection_backend.finish(running.lease, completed("done"), now=now)
        assert finished is not None, rule("finish", "a lease claimed on one connection is honoured on another")
        assert await backend.get(running.id) == finished, rule("get", "a finish on another connection is visible")
        assert await backend.finish(running.lease, completed(), now=now) is None, rule(
            "finish", "a failed fence changes nothing"
        )


async def _race(contenders: int, attempt: Callable[[], Awaitable[TaskRecord | None]]) -> int:
    """Run ``attempt()`` from many tasks at once; return how many got a record back."""
    results: list[TaskRecord | None] = []

    async def contender() -> None:
        results.append(await attempt())

    async with anyio.create_task_group() as group:
        for _ in range(contenders):
            group.start_soon(contender)
    return sum(result is not None for result in results)
