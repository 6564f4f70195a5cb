"""Enqueue, get and bulk insert."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from litestar_queues.backend import QueueBackend
from litestar_queues.records import new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    QUEUE,
    diff,
    enqueue_one,
    make_record,
    rule,
)

__all__ = ("EnqueueConformance",)


class EnqueueConformance(ConformanceBase):
    """``enqueue`` stores records as given and ``get`` reads them back as independent snapshots."""

    async def test_enqueue_stores_the_record_as_given(self, backend: QueueBackend, now: datetime) -> None:
        record = make_record(now, args=[1, "two"], kwargs={"three": 3})
        outcomes = await backend.enqueue([record])
        assert len(outcomes) == 1, rule("enqueue", "return one outcome per input", f"got {outcomes!r}")
        assert outcomes[0].created, rule("enqueue", "store the record exactly as given and return it with created=True")
        assert outcomes[0].record == record, rule(
            "enqueue", "store the record exactly as given", diff(record, outcomes[0].record)
        )
        stored = await backend.get(record.id)
        assert stored == record, rule("get", "return the record with record_id", diff(record, stored))

    async def test_enqueue_returns_outcomes_in_input_order(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now) for _ in range(12)]
        random.Random(7).shuffle(records)  # input order is not id order
        outcomes = await backend.enqueue(records)
        assert [outcome.record.id for outcome in outcomes] == [record.id for record in records], rule(
            "enqueue", "return one outcome per input in input order"
        )
        assert all(outcome.created for outcome in outcomes), rule("enqueue", "new records are created=True")

    async def test_enqueue_of_nothing_returns_nothing(self, backend: QueueBackend) -> None:
        assert await backend.enqueue([]) == [], rule("enqueue", "return one outcome per input")

    async def test_enqueue_bulk_of_many_records_stores_each(self, backend: QueueBackend, now: datetime) -> None:
        records = [make_record(now, args=[number]) for number in range(500)]
        outcomes = await backend.enqueue(records)
        assert sum(outcome.created for outcome in outcomes) == 500, rule("enqueue", "every new record is created")
        for record in records[::50]:
            assert await backend.get(record.id) == record, rule("get", "return the record with record_id")

    async def test_enqueue_bulk_of_mixed_records_stores_each_as_given(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        """A bulk call whose records share most values but differ per record (ids, arguments, keys, priorities,
        schedules), some differing in other fields too, and some keys taken: each record is stored as given or
        resolves to its key's holder (a backend encoding the shared values once must not spread one record's
        values to another)."""
        holder = await enqueue_one(backend, make_record(now, key="mixed-held"))
        records = []
        for number in range(600):
            changes: dict[str, Any] = {"args": [number, "x" * (number % 3)], "priority": number % 5}
            if number % 2:
                changes["kwargs"] = {"n": number}
            if number % 7 == 0:
                changes["key"] = f"mixed-{number}"
            if number % 11 == 0:
                changes["scheduled_at"] = now + timedelta(seconds=number)
            if number % 97 == 0:  # the odd one out in a value the others share
                changes.update(queue="mixed-other", max_retries=3, metadata={"tag": number})
            records.append(make_record(now, **changes))
        duplicate = make_record(now, key="mixed-14", priority=9)  # the 15th record's key, later in the same call
        taken = make_record(now, key="mixed-held")
        records[300:300] = [duplicate, taken]
        outcomes = await backend.enqueue(records)
        assert [outcome.record.id for outcome in outcomes[300:302]] == [records[14].id, holder.id], rule(
            "enqueue", "a record whose key is held (by an active record or an earlier one of the call) resolves to it"
        )
        assert not outcomes[300].created and not outcomes[301].created, rule("enqueue", "a resolved record is not new")
        for index, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
            if record is duplicate or record is taken:
                continue
            assert outcome.created and outcome.record == record, rule(
                "enqueue", "store every record exactly as given", diff(record, outcome.record)
            )
            if index % 5 == 0 or record.queue != QUEUE:
                stored = await backend.get(record.id)
                assert stored == record, rule("get", "return the record with record_id", diff(record, stored))

    async def test_enqueue_makes_records_claimable_at_once(self, backend: QueueBackend, now: datetime) -> None:
        record = await enqueue_one(backend, make_record(now))
        claimed = await backend.claim([QUEUE], owner=OWNER, limit=10, now=now, lease_seconds=LEASE_SECONDS)
        assert [item.id for item in claimed] == [record.id], rule(
            "enqueue", "inserted records are visible to claim as soon as this returns"
        )

    async def test_enqueue_then_get_of_an_unknown_id_returns_none(self, backend: QueueBackend) -> None:
        assert await backend.get(new_record_id()) is None, rule("get", "return the record with record_id, or None")

    async def test_enqueue_then_get_by_key_returns_the_active_holder(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(backend, make_record(now, key="report:42"))
        assert await backend.get_by_key("report:42") == record, rule(
            "get_by_key", "return the active record holding key"
        )
        assert await backend.get_by_key("report:43") is None, rule("get_by_key", "else None")

    async def test_enqueue_and_get_return_snapshots(self, backend: QueueBackend, now: datetime) -> None:
        record = make_record(now, args=[[1, 2]], kwargs={"nested": {"a": 1}}, metadata={"tags": ["x"]})
        returned = await enqueue_one(backend, record)
        returned.args[0].append(3)
        returned.kwargs["nested"]["a"] = 2
        returned.metadata["tags"].append("y")
        read = await backend.get(record.id)
        assert read is not None, rule("get", "return the record with record_id")
        read.kwargs["extra"] = True
        assert await backend.get(record.id) == make_record(
            now, id=record.id, args=[[1, 2]], kwargs={"nested": {"a": 1}}, metadata={"tags": ["x"]}
        ), "QueueBackend: records returned are snapshots: mutating them changes nothing stored"

    async def test_enqueue_keeps_no_reference_to_the_given_object(self, backend: QueueBackend, now: datetime) -> None:
        record = make_record(now, kwargs={"items": [1]})
        await enqueue_one(backend, record)
        record.kwargs["items"].append(2)
        record.priority = 99
        stored = await backend.get(record.id)
        assert stored is not None, rule("get", "return the record with record_id")
        assert (stored.kwargs, stored.priority) == ({"items": [1]}, 0), rule(
            "enqueue", "store the record exactly as given (as it was when enqueue was called)"
        )

    async def test_enqueue_records_outlive_the_connection_that_stored_them(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(cross_connection_backend, make_record(now))
        await cross_connection_backend.close()
        assert await backend.get(record.id) == record, rule(
            "close", "release connections; records persist", "a record stored through a closed backend is gone"
        )
