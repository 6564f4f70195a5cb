"""Stored records that cannot be decoded: isolated, never stalling the rest.

These tests need the backend's test file to provide a ``corrupt_record`` fixture: an async function
``corrupt(record_id) -> field`` that damages the stored record so that it can no longer be decoded, and returns
the name of the ``TaskRecord`` field it broke. It must break a field the backend decodes other than ``id``,
``status``, ``queue``, ``owner``, ``token`` and the times (the suite still reaches the record through those);
``args`` is a good choice. Without the fixture these tests skip, saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import RecordFilter, TaskRecord, TaskStatus
from litestar_queues.salvage import UNDECODABLE
from litestar_queues.testing.conformance.base import ConformanceBase, optional_fixture
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    QUEUE,
    after,
    claim_one,
    completed,
    enqueue_one,
    make_record,
    rule,
)

__all__ = ("UndecodableConformance",)

Corrupt = Callable[[str], Awaitable[str]]


def _names_the_damage(record: TaskRecord | None, record_id: str, field: str) -> bool:
    error = record.error if record is not None else None
    return (
        error is not None and error.type == UNDECODABLE and record_id in error.message and repr(field) in error.message
    )


class UndecodableConformance(ConformanceBase):
    """A record that cannot be decoded is read field by field: a claim fails it instead of running it and returns
    the rest of its batch; it can still be read, listed, cancelled, expired, recovered and pruned."""

    @pytest.fixture
    def corrupt(self, request: pytest.FixtureRequest) -> Corrupt:
        """The backend's ``corrupt_record`` fixture, or skip (see the module docstring)."""
        hook: Corrupt = optional_fixture(
            request,
            "corrupt_record",
            "undecodable-record test: define a `corrupt_record` fixture returning `async corrupt(record_id) -> field` "
            "that damages a stored record (see docs/writing-a-backend.md) to run it",
        )
        return hook

    async def test_claim_fails_an_undecodable_record_and_returns_the_rest(
        self, backend: QueueBackend, now: datetime, corrupt: Corrupt
    ) -> None:
        records = [make_record(now, scheduled_at=after(now, -3 + index)) for index in range(3)]
        await backend.enqueue(records)
        broken = records[1]
        field = await corrupt(broken.id)
        claimed = await backend.claim([QUEUE], owner=OWNER, limit=10, now=now, lease_seconds=LEASE_SECONDS)
        assert [record.id for record in claimed] == [records[0].id, records[2].id], rule(
            "claim",
            "a claimed record that cannot be decoded is failed (never returned); the rest of the batch is returned",
            f"claimed {[record.id for record in claimed]}",
        )
        stored = await backend.get(broken.id)
        assert stored is not None and stored.status is TaskStatus.FAILED and stored.finished_at == now, rule(
            "claim", "an undecodable claimed record ends failed, finished at now", repr(stored)
        )
        assert _names_the_damage(stored, broken.id, field), rule(
            "claim", f"the error of an undecodable record names it and the field {field!r}", repr(stored.error)
        )
        assert await backend.claim([QUEUE], owner=OWNER, limit=10, now=now, lease_seconds=LEASE_SECONDS) == [], rule(
            "claim", "an undecodable record that was failed is not claimed again"
        )

    async def test_claim_record_fails_an_undecodable_record(
        self, backend: QueueBackend, now: datetime, corrupt: Corrupt
    ) -> None:
        record = await enqueue_one(backend, make_record(now))
        field = await corrupt(record.id)
        claimed = await backend.claim_record(record.id, owner=OWNER, now=now, lease_seconds=LEASE_SECONDS)
        assert claimed is None, rule("claim_record", "an undecodable record is failed, not returned", repr(claimed))
        stored = await backend.get(record.id)
        assert stored is not None and stored.status is TaskStatus.FAILED, rule(
            "claim_record", "an undecodable record ends failed", repr(stored)
        )
        assert _names_the_damage(stored, record.id, field), rule("claim_record", "the error names the record")

    async def test_an_undecodable_record_can_be_read_listed_and_cancelled(
        self, backend: QueueBackend, now: datetime, corrupt: Corrupt
    ) -> None:
        good = await enqueue_one(backend, make_record(now))
        broken = await enqueue_one(backend, make_record(now, key="undecodable:key"))
        field = await corrupt(broken.id)
        stored = await backend.get(broken.id)
        assert stored is not None and stored.id == broken.id and stored.status is TaskStatus.PENDING, rule(
            "get", "a record that cannot be decoded is returned with every field that can be read", repr(stored)
        )
        assert _names_the_damage(stored, broken.id, field), rule("get", "its error names the broken field")
        by_key = await backend.get_by_key("undecodable:key")
        assert by_key is not None and by_key.id == broken.id, rule("get_by_key", "an undecodable holder is returned")
        page = await backend.query(RecordFilter(queue=QUEUE), limit=10)
        assert {record.id for record in page.records} == {good.id, broken.id}, rule(
            "query", "an undecodable record is listed with the others", repr(page)
        )
        cancelled = await backend.cancel(broken.id, now=after(now, 1))
        assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED, rule(
            "cancel", "an undecodable pending record can be cancelled", repr(cancelled)
        )
        (outcome,) = await backend.enqueue([make_record(now, key="undecodable:key")])
        assert outcome.created, rule("cancel", "cancelling an undecodable record frees its key")
        claimed = await backend.claim([QUEUE], owner=OWNER, limit=10, now=after(now, 2), lease_seconds=LEASE_SECONDS)
        assert {record.id for record in claimed} == {good.id, outcome.record.id}, rule(
            "claim", "a cancelled undecodable record is never claimed", repr(claimed)
        )

    async def test_enqueue_resolving_to_an_undecodable_record_returns_it(
        self, backend: QueueBackend, now: datetime, corrupt: Corrupt
    ) -> None:
        broken = await enqueue_one(backend, make_record(now, key="undecodable:dedup"))
        field = await corrupt(broken.id)
        same_id, same_key = await backend.enqueue([broken, make_record(now, key="undecodable:dedup")])
        for outcome in (same_id, same_key):
            assert not outcome.created and outcome.record.id == broken.id, rule(
                "enqueue", "a record resolving to an undecodable one returns it with created=False", repr(outcome)
            )
            assert _names_the_damage(outcome.record, broken.id, field), rule("enqueue", "its error names the field")

    async def test_maintenance_goes_on_around_undecodable_records(
        self, backend: QueueBackend, now: datetime, corrupt: Corrupt
    ) -> None:
        expiring = await enqueue_one(backend, make_record(now, expires_at=after(now, 5)))
        await enqueue_one(backend, make_record(now, scheduled_at=after(now, -1)))
        running = await claim_one(backend, now)
        await corrupt(expiring.id)
        await corrupt(running.id)
        assert await backend.expire(now=after(now, 10), limit=10) == 1, rule(
            "expire", "an undecodable pending record past expires_at is expired like any other"
        )
        stale = await backend.expired_leases(now=after(now, LEASE_SECONDS), limit=10)
        assert [record.id for record in stale] == [running.id], rule(
            "expired_leases", "an undecodable running record whose lease expired is returned", repr(stale)
        )
        assert stale[0].lease == running.lease, rule("expired_leases", "with its lease (owner and token)")
        failed = await backend.finish(stale[0].lease, completed(), now=after(now, LEASE_SECONDS))
        assert failed is not None and failed.status is TaskStatus.COMPLETED, rule(
            "finish", "an undecodable record is finished under its fence like any other", repr(failed)
        )
        assert await backend.prune(finished_before=after(now, 3600), limit=10) == 2, rule(
            "prune", "undecodable terminal records are pruned like any other"
        )
        assert await backend.get(expiring.id) is None and await backend.get(running.id) is None, rule(
            "prune", "pruned records are gone"
        )
