"""Transfer: a running attempt handed to another owner under the fence (remote execution targets)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from msgspec.structs import replace

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.records import LeaseState, TaskRecord, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    after,
    claim_one,
    completed,
    diff,
    enqueue_one,
    make_record,
    require,
    retry_at,
    rule,
    stale,
)

__all__ = ("TransferConformance",)

_HANDED = "owner becomes owner, token increments, lease_expires_at = now + lease_seconds; every other field is kept"
_FENCE = "a failed fence changes nothing and returns None"


async def _running(backend: QueueBackend, now: datetime) -> TaskRecord:
    require(backend, Capability.TRANSFER)
    await enqueue_one(backend, make_record(now, max_retries=3, metadata={"kept": True}, priority=4))
    return await claim_one(backend, now, owner="dispatcher", lease_seconds=10)


class TransferConformance(ConformanceBase):
    """``transfer`` hands the attempt over atomically, once, and only under the current fence."""

    async def test_transfer_hands_the_attempt_to_the_new_owner(self, backend: QueueBackend, now: datetime) -> None:
        running = await _running(backend, now)
        handed = await backend.transfer(running.lease, owner="execution-1", now=after(now, 2), lease_seconds=600)
        expected = replace(running, owner="execution-1", token=running.token + 1, lease_expires_at=after(now, 602))
        assert handed == expected, rule("transfer", _HANDED, diff(expected, handed))
        stored = await backend.get(running.id)
        assert stored == expected, rule("transfer", "return the record after the change", diff(expected, stored))

    async def test_transfer_retires_the_old_lease(self, backend: QueueBackend, now: datetime) -> None:
        running = await _running(backend, now)
        handed = await backend.transfer(running.lease, owner="execution-1", now=now, lease_seconds=600)
        assert handed is not None, rule("transfer", _HANDED)
        states = await backend.renew([running.lease], now=after(now, 1), lease_seconds=10)
        assert states == {running.id: LeaseState.LOST}, rule("transfer", "the old lease is no longer current")
        assert await backend.finish(running.lease, completed("stolen"), now=after(now, 1)) is None, rule(
            "transfer", "the old lease is no longer current"
        )
        assert await backend.get(running.id) == handed, rule("transfer", "the old lease changes nothing")
        finished = await backend.finish(handed.lease, completed("done"), now=after(now, 2))
        assert finished is not None and finished.status is TaskStatus.COMPLETED and finished.result == "done", rule(
            "transfer", "the new owner ends the attempt with its own lease", repr(finished)
        )

    async def test_transfer_of_the_same_lease_applies_once(self, backend: QueueBackend, now: datetime) -> None:
        running = await _running(backend, now)
        first = await backend.transfer(running.lease, owner="execution-1", now=now, lease_seconds=600)
        assert first is not None, rule("transfer", _HANDED)
        second = await backend.transfer(running.lease, owner="execution-2", now=after(now, 1), lease_seconds=600)
        assert second is None, rule("transfer", "of two transfers presenting the same lease at most one applies")
        assert await backend.get(running.id) == first, rule("transfer", _FENCE)

    async def test_transfer_from_many_callers_applies_once(self, backend: QueueBackend, now: datetime) -> None:
        running = await _running(backend, now)
        results = await asyncio.gather(
            *(
                backend.transfer(running.lease, owner=f"execution-{index}", now=now, lease_seconds=600)
                for index in range(8)
            )
        )
        applied = [result for result in results if result is not None]
        assert len(applied) == 1, rule(
            "transfer", "of two transfers presenting the same lease at most one applies", f"{len(applied)} applied"
        )
        stored = await backend.get(running.id)
        assert stored == applied[0], rule("transfer", "return the record after the change", diff(applied[0], stored))

    @pytest.mark.parametrize("fence", ["other owner", "older token", "newer token"])
    async def test_transfer_with_a_mismatched_fence_changes_nothing(
        self, backend: QueueBackend, now: datetime, fence: str
    ) -> None:
        running = await _running(backend, now)
        lease = {
            "other owner": stale(running.lease, owner="someone-else"),
            "older token": stale(running.lease, token=running.token - 1),
            "newer token": stale(running.lease, token=running.token + 1),
        }[fence]
        assert await backend.transfer(lease, owner="execution-1", now=now, lease_seconds=600) is None, rule(
            "transfer", _FENCE, fence
        )
        stored = await backend.get(running.id)
        assert stored == running, rule("transfer", _FENCE, diff(running, stored))

    @pytest.mark.parametrize("state", ["never claimed", "retrying", "completed", "deleted"])
    async def test_transfer_of_a_record_not_running_changes_nothing(
        self, backend: QueueBackend, now: datetime, state: str
    ) -> None:
        require(backend, Capability.TRANSFER)
        record = await enqueue_one(backend, make_record(now))
        lease = record.lease
        if state != "never claimed":
            running = await claim_one(backend, now)
            lease = running.lease
            outcome = retry_at(after(now, 60)) if state == "retrying" else completed(1)
            await backend.finish(lease, outcome, now=now)
            if state == "deleted":
                await backend.prune(finished_before=after(now, 1), limit=10)
        before = await backend.get(record.id)
        assert await backend.transfer(lease, owner="execution-1", now=after(now, 1), lease_seconds=600) is None, rule(
            "transfer", "the fence applies only if the record is running", state
        )
        assert await backend.get(record.id) == before, rule("transfer", _FENCE, state)

    async def test_transfer_keeps_a_cancel_request(self, backend: QueueBackend, now: datetime) -> None:
        running = await _running(backend, now)
        await backend.cancel(running.id, now=now)
        handed = await backend.transfer(running.lease, owner="execution-1", now=now, lease_seconds=600)
        assert handed is not None and handed.cancel_requested, rule(
            "transfer", "cancel_requested is kept", repr(handed)
        )
        states = await backend.renew([handed.lease], now=after(now, 1), lease_seconds=10)
        assert states == {running.id: LeaseState.CANCEL_REQUESTED}, rule(
            "renew", "CANCEL_REQUESTED for the new owner after a transfer", repr(states)
        )

    async def test_transfer_sets_the_lease_that_expiry_sees(self, backend: QueueBackend, now: datetime) -> None:
        running = await _running(backend, now)  # its claim lease ends at now + 10
        handed = await backend.transfer(running.lease, owner="execution-1", now=now, lease_seconds=600)
        assert handed is not None, rule("transfer", _HANDED)
        assert await backend.expired_leases(now=after(now, 30), limit=10) == [], rule(
            "transfer", "lease_expires_at = now + lease_seconds (a longer lease is not expired at the old end)"
        )
        expired = await backend.expired_leases(now=after(now, 600), limit=10)
        assert [record.id for record in expired] == [running.id], rule(
            "expired_leases", "the transferred lease expires at its new end", repr(expired)
        )
        assert expired[0].owner == "execution-1", rule(
            "expired_leases", "returns the record as stored", diff(handed, expired[0])
        )
