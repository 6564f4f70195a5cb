"""Fencing: a lease that is no longer current changes nothing at all."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import LeaseState, Outcome, TaskError, TaskRecord, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    QUEUE,
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

__all__ = ("FencingConformance",)


_FENCE = (
    "a transition applies only if the record is running with the same owner and token; a failed fence changes nothing"
)


def _late_outcome(status: str, now: datetime) -> Outcome:
    """Return the outcome a worker that lost its lease might still try to apply."""
    if status == "pending":
        return retry_at(after(now, 3600), refund_attempt=True)
    if status == "failed":
        return Outcome(status=TaskStatus.FAILED, error=TaskError(type="builtins.RuntimeError", message="late"))
    return Outcome(status=TaskStatus(status), result={"stolen": True})


async def _recover_and_reclaim(backend: QueueBackend, now: datetime) -> tuple[TaskRecord, TaskRecord]:
    """Claim a record, let its lease expire, recover it and claim it again; return (first, second) attempts."""
    await enqueue_one(backend, make_record(now))
    first = await claim_one(backend, now, owner="worker-a", lease_seconds=10)
    recovered = await backend.finish(
        first.lease, retry_at(after(now, 10), only_if_lease_expired=True), now=after(now, 10)
    )
    assert recovered is not None, rule("finish", "stale recovery applies once the lease expired")
    second = await claim_one(backend, after(now, 10), owner="worker-b")
    return first, second


class FencingConformance(ConformanceBase):
    """After recovery and a new claim, the old attempt's lease can neither finish nor renew."""

    @pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "pending"])
    async def test_fencing_old_lease_cannot_finish_after_recovery_and_reclaim(
        self, backend: QueueBackend, now: datetime, status: str
    ) -> None:
        first, second = await _recover_and_reclaim(backend, now)
        outcome = _late_outcome(status, now)
        assert await backend.finish(first.lease, outcome, now=after(now, 11)) is None, rule("finish", _FENCE)
        stored = await backend.get(second.id)
        assert stored == second, rule("finish", _FENCE, diff(second, stored))

    async def test_fencing_old_lease_cannot_renew_after_recovery_and_reclaim(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        first, second = await _recover_and_reclaim(backend, now)
        states = await backend.renew([first.lease], now=after(now, 11), lease_seconds=600)
        assert states == {first.id: LeaseState.LOST}, rule("renew", "LOST when the fence does not match", repr(states))
        stored = await backend.get(second.id)
        assert stored == second, rule("renew", "a lost lease changes nothing", diff(second, stored))

    async def test_fencing_old_lease_cannot_recover_the_new_attempt(self, backend: QueueBackend, now: datetime) -> None:
        first, second = await _recover_and_reclaim(backend, now)
        much_later = after(now, 7200)  # the new lease has expired too, but the old fence still must not match
        outcome = retry_at(much_later, only_if_lease_expired=True)
        assert await backend.finish(first.lease, outcome, now=much_later) is None, rule("finish", _FENCE)
        stored = await backend.get(second.id)
        assert stored == second, rule("finish", _FENCE, diff(second, stored))

    async def test_fencing_reclaim_issues_a_new_token(self, backend: QueueBackend, now: datetime) -> None:
        first, second = await _recover_and_reclaim(backend, now)
        assert second.token == first.token + 1 and second.owner == "worker-b", rule(
            "claim",
            "each claimed record becomes running with owner and token + 1",
            f"{first.lease} then {second.lease}",
        )
        assert second.attempts == first.attempts + 1, rule(
            "claim", "attempts + 1", f"{first.attempts} then {second.attempts}"
        )

    async def test_fencing_current_lease_still_finishes_after_a_stale_attempt(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        first, second = await _recover_and_reclaim(backend, now)
        await backend.finish(first.lease, completed("stale"), now=after(now, 11))
        finished = await backend.finish(second.lease, completed("fresh"), now=after(now, 12))
        assert finished is not None and finished.result == "fresh", rule(
            "finish", "with a matching fence, set the status and result from the outcome", repr(finished)
        )

    @pytest.mark.parametrize("fence", ["other owner", "older token", "newer token"])
    async def test_fencing_mismatched_lease_cannot_finish_a_running_record(
        self, backend: QueueBackend, now: datetime, fence: str
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        lease = {
            "other owner": stale(running.lease, owner="worker-b"),
            "older token": stale(running.lease, token=running.token - 1),
            "newer token": stale(running.lease, token=running.token + 1),
        }[fence]
        assert await backend.finish(lease, completed(), now=now) is None, rule("finish", _FENCE, fence)
        stored = await backend.get(running.id)
        assert stored == running, rule("finish", _FENCE, diff(running, stored))

    async def test_fencing_concurrent_finishes_apply_only_where_the_fence_holds(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        """Finishes of many attempts at once (which a backend may write as one statement), every other one with a
        fence that no longer matches: each caller learns its own outcome, and a failed fence changes nothing."""
        await backend.enqueue([make_record(now) for _ in range(8)])
        running = await backend.claim([QUEUE], owner="worker-a", limit=8, now=now, lease_seconds=30)
        assert len(running) == 8, rule("claim", "claim up to limit due records", f"got {len(running)} of 8")
        leases = [
            stale(record.lease, owner="zombie") if index % 2 else record.lease for index, record in enumerate(running)
        ]
        finished = await asyncio.gather(
            *(
                backend.finish(lease, completed(index), now=after(now, 1), claimed=record)
                for index, (lease, record) in enumerate(zip(leases, running, strict=True))
            )
        )
        for index, (record, result) in enumerate(zip(running, finished, strict=True)):
            stored = await backend.get(record.id)
            if index % 2:
                assert result is None and stored == record, rule("finish", _FENCE, diff(record, stored))
            else:
                assert result is not None and result == stored and result.result == index, rule(
                    "finish", "each concurrent caller gets its own finished record", diff(stored, result)
                )

    async def test_fencing_finish_twice_applies_once(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        finished = await backend.finish(running.lease, completed("first"), now=now)
        assert await backend.finish(running.lease, completed("second"), now=after(now, 1)) is None, rule(
            "finish", "the fence applies only if the record is running"
        )
        stored = await backend.get(running.id)
        assert stored == finished, rule("finish", _FENCE, diff(finished, stored))

    async def test_fencing_lease_of_a_pending_record_finishes_nothing(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(backend, make_record(now))
        assert await backend.finish(record.lease, completed(), now=now) is None, rule(
            "finish", "the fence applies only if the record is running"
        )
        assert await backend.get(record.id) == record, rule("finish", _FENCE)
