"""Leases: renewal, expiry detection and stale recovery."""

from __future__ import annotations

from datetime import datetime

import pytest
from msgspec.structs import replace

from litestar_queues.backend import QueueBackend
from litestar_queues.records import Lease, LeaseState, TaskError, TaskStatus, new_record_id
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

__all__ = ("LeaseConformance",)


class LeaseConformance(ConformanceBase):
    """``renew`` extends held leases, ``expired_leases`` finds stale ones, and recovery never steals a live one."""

    async def test_lease_renew_extends_a_held_lease(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        states = await backend.renew([running.lease], now=after(now, 5), lease_seconds=20)
        assert states == {running.id: LeaseState.HELD}, rule(
            "renew", "HELD when the fence matches, keyed by record id", repr(states)
        )
        expected = replace(running, lease_expires_at=after(now, 25))
        stored = await backend.get(running.id)
        assert stored == expected, rule(
            "renew", "extend each held lease to now + lease_seconds", diff(expected, stored)
        )

    async def test_lease_renew_reports_cancel_requested_and_still_extends(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        await backend.cancel(running.id, now=now)
        states = await backend.renew([running.lease], now=after(now, 5), lease_seconds=10)
        assert states == {running.id: LeaseState.CANCEL_REQUESTED}, rule(
            "renew", "CANCEL_REQUESTED (held, but cancel was called on the running record)", repr(states)
        )
        stored = await backend.get(running.id)
        assert stored is not None and stored.lease_expires_at == after(now, 15), rule(
            "renew",
            "the lease is extended in both cases",
            diff(replace(running, lease_expires_at=after(now, 15)), stored),
        )

    @pytest.mark.parametrize(
        "fence", ["older token", "newer token", "other owner", "finished record", "unknown record"]
    )
    async def test_lease_renew_of_a_lease_not_held_reports_lost_and_changes_nothing(
        self, backend: QueueBackend, now: datetime, fence: str
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now)
        lease = running.lease
        if fence == "finished record":
            assert await backend.finish(lease, completed(), now=now) is not None
        elif fence == "unknown record":
            lease = Lease(record_id=new_record_id(), owner=lease.owner, token=lease.token)
        else:
            lease = {
                "older token": stale(lease, token=lease.token - 1),
                "newer token": stale(lease, token=lease.token + 1),
                "other owner": stale(lease, owner="worker-b"),
            }[fence]
        before = await backend.get(running.id)
        states = await backend.renew([lease], now=after(now, 1), lease_seconds=300)
        assert states == {lease.record_id: LeaseState.LOST}, rule(
            "renew", "LOST when the fence does not match or the record is gone", f"{fence}: {states!r}"
        )
        after_renew = await backend.get(running.id)
        assert after_renew == before, rule("renew", "a lost lease changes nothing", diff(before, after_renew))

    async def test_lease_renew_reports_every_lease_by_record_id(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue([make_record(now) for _ in range(3)])
        held, cancelled, lost = (
            await claim_one(backend, now),
            await claim_one(backend, now),
            await claim_one(backend, now),
        )
        await backend.cancel(cancelled.id, now=now)
        states = await backend.renew(
            [held.lease, cancelled.lease, stale(lost.lease, owner="worker-b")], now=now, lease_seconds=30
        )
        assert states == {
            held.id: LeaseState.HELD,
            cancelled.id: LeaseState.CANCEL_REQUESTED,
            lost.id: LeaseState.LOST,
        }, rule("renew", "report each lease's state, keyed by record id", repr(states))

    async def test_lease_expired_leases_finds_running_records_whose_lease_expired(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await backend.enqueue([make_record(now) for _ in range(4)])
        short = await claim_one(backend, now, lease_seconds=10)
        exact = await claim_one(backend, now, lease_seconds=20)
        await claim_one(backend, now, lease_seconds=60)
        finished = await claim_one(backend, now, lease_seconds=10)
        await backend.finish(finished.lease, completed(), now=now)
        found = await backend.expired_leases(now=after(now, 20), limit=10)
        assert sorted(record.id for record in found) == sorted([short.id, exact.id]), rule(
            "expired_leases",
            "return running records whose lease_expires_at <= now",
            f"found {[record.id for record in found]}",
        )
        assert {record.id: record for record in found}[short.id] == short, rule(
            "expired_leases", "return the records as stored", "the returned record differs from the claimed one"
        )

    async def test_lease_expired_leases_returns_at_most_limit(self, backend: QueueBackend, now: datetime) -> None:
        await backend.enqueue([make_record(now) for _ in range(5)])
        for _ in range(5):
            await claim_one(backend, now, lease_seconds=1)
        found = await backend.expired_leases(now=after(now, 2), limit=3)
        assert len(found) == 3, rule("expired_leases", "return up to limit running records", f"got {len(found)}")

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_lease_expired_leases_with_limit_below_one_returns_nothing(
        self, backend: QueueBackend, now: datetime, limit: int
    ) -> None:
        await backend.enqueue([make_record(now) for _ in range(3)])
        for _ in range(3):
            await claim_one(backend, now, lease_seconds=1)
        found = await backend.expired_leases(now=after(now, 2), limit=limit)
        assert found == [], rule("expired_leases", "limit <= 0 selects nothing", f"limit={limit}: got {len(found)}")

    async def test_lease_expired_leases_skips_renewed_leases(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        await backend.renew([running.lease], now=after(now, 9), lease_seconds=10)
        assert await backend.expired_leases(now=after(now, 15), limit=10) == [], rule(
            "expired_leases", "a renewed lease expires at its new lease_expires_at"
        )

    async def test_lease_stale_recovery_returns_the_record_to_pending(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now, key="recover-me"))
        running = await claim_one(backend, now, lease_seconds=10)
        error = TaskError(type="litestar_queues.LeaseExpired", message="worker vanished")
        recovered = await backend.finish(
            running.lease, retry_at(after(now, 15), error=error, only_if_lease_expired=True), now=after(now, 10)
        )
        expected = replace(
            running,
            status=TaskStatus.PENDING,
            scheduled_at=after(now, 15),
            error=error,
            owner=None,
            lease_expires_at=None,
        )
        assert recovered == expected, rule(
            "finish",
            "pending with only_if_lease_expired and lease_expires_at <= now: scheduled_at and error from the "
            "outcome; owner and lease_expires_at become None; started_at keeps the last start; the key stays held",
            diff(expected, recovered),
        )
        assert await backend.get(running.id) == expected, rule("finish", "the recovery is stored")

    async def test_lease_stale_recovery_is_refused_while_the_lease_is_live(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        outcome = retry_at(now, only_if_lease_expired=True)
        assert await backend.finish(running.lease, outcome, now=after(now, 9)) is None, rule(
            "finish", "with only_if_lease_expired, apply only if lease_expires_at <= now"
        )
        stored = await backend.get(running.id)
        assert stored == running, rule("finish", "a refused finish changes nothing", diff(running, stored))

    async def test_lease_stale_recovery_is_refused_after_a_renewal(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        await backend.renew([running.lease], now=after(now, 8), lease_seconds=10)
        renewed = await backend.get(running.id)
        outcome = retry_at(now, only_if_lease_expired=True)
        assert await backend.finish(running.lease, outcome, now=after(now, 12)) is None, rule(
            "finish", "stale recovery must not steal a renewed lease (only_if_lease_expired)"
        )
        stored = await backend.get(running.id)
        assert stored == renewed, rule("finish", "a refused finish changes nothing", diff(renewed, stored))

    async def test_lease_stale_recovery_applies_at_the_moment_of_expiry(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now))
        running = await claim_one(backend, now, lease_seconds=10)
        recovered = await backend.finish(running.lease, retry_at(now, only_if_lease_expired=True), now=after(now, 10))
        assert recovered is not None and recovered.status is TaskStatus.PENDING, rule(
            "finish", "only_if_lease_expired applies when lease_expires_at <= now (inclusive)", repr(recovered)
        )
        assert recovered.owner is None and recovered.attempts == running.attempts, rule(
            "finish", "pending: owner becomes None; attempts change only with refund_attempt", repr(recovered)
        )
