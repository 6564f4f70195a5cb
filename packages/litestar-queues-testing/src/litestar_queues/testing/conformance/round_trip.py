"""Every field of a record comes back exactly as stored, from every method that returns records."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest
from msgspec.structs import fields

from litestar_queues.backend import QueueBackend
from litestar_queues.records import RecordFilter, TaskError, TaskProgress, TaskRecord, TaskStatus, new_record_id
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    after,
    claim_one,
    diff,
    enqueue_one,
    make_record,
    rule,
)

__all__ = ("RecordRoundTripConformance",)

_EXACT = "store the record exactly as given (every field; datetimes aware UTC to the microsecond)"


def _odd_microseconds(moment: datetime, offset: float) -> datetime:
    """Return a moment ``offset`` seconds from ``moment`` whose microseconds a millisecond store would lose."""
    return (moment + timedelta(seconds=offset)).replace(microsecond=123457)


def _full_record(now: datetime, status: TaskStatus) -> TaskRecord:
    """Return a record of ``status`` with every field set to something other than its default."""
    terminal = status is not TaskStatus.PENDING
    return make_record(
        now,
        task_name="billing.charge_customer",
        queue="round-trip",
        args=[42, "text", [1.5, None], {"nested": True}],
        kwargs={"customer": "c-1", "amount": 1999, "options": {"retry": False, "tags": ["a", "b"]}},
        priority=-7,
        status=status,
        key=f"charge:c-1:{status.value}",
        attempts=2,
        max_retries=5,
        retry_delay=2.5,
        timeout=12.25,
        created_at=_odd_microseconds(now, -3600),
        scheduled_at=_odd_microseconds(now, -1800),
        expires_at=_odd_microseconds(now, 7200),
        started_at=_odd_microseconds(now, -900),
        finished_at=_odd_microseconds(now, -60) if terminal else None,
        result={"charged": 1999, "currency": "EUR"} if terminal else None,
        error=None
        if status is TaskStatus.COMPLETED
        else TaskError(type="builtins.TimeoutError", message="gateway slow", traceback="Traceback ...\nTimeoutError"),
        execution_backend="cloudrun",
        execution_profile="large",
        metadata={"trace_id": "abc123", "source": {"app": "shop", "version": 3}},
        token=2,
        progress=TaskProgress(
            current=3.5, total=7, percent=50.0, message="step 3 — ✓", attempt=2, updated_at=_odd_microseconds(now, -30)
        ),
    )


def _assert_utc_datetimes(record: TaskRecord, where: str) -> None:
    for field in fields(TaskRecord):
        value = getattr(record, field.name)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0), rule(
                where, "all datetimes are aware UTC", f"{field.name} = {value!r}"
            )


class RecordRoundTripConformance(ConformanceBase):
    """No field is lost, rounded or retyped on the way in or out."""

    @pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.COMPLETED])
    async def test_round_trip_every_field_through_get(
        self, backend: QueueBackend, now: datetime, status: TaskStatus
    ) -> None:
        record = _full_record(now, status)
        returned = await enqueue_one(backend, record)
        assert returned == record, rule("enqueue", _EXACT, diff(record, returned))
        stored = await backend.get(record.id)
        assert stored == record, rule("get", _EXACT, diff(record, stored))
        assert stored is not None, rule("get", "return the record with record_id")
        _assert_utc_datetimes(stored, "get")

    async def test_round_trip_every_field_through_one_bulk_enqueue(self, backend: QueueBackend, now: datetime) -> None:
        records = [
            msgspec.structs.replace(_full_record(now, status), id=new_record_id(), key=f"bulk:{status.value}")
            for status in (TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.COMPLETED)
        ]
        outcomes = await backend.enqueue(records)
        assert [outcome.record for outcome in outcomes] == records, rule("enqueue", _EXACT, "one call, many records")
        for record in records:
            stored = await backend.get(record.id)
            assert stored == record, rule("get", _EXACT, diff(record, stored))

    async def test_round_trip_every_field_through_get_by_key_and_query(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(backend, _full_record(now, TaskStatus.PENDING))
        by_key = await backend.get_by_key(record.key or "")
        assert by_key == record, rule("get_by_key", _EXACT, diff(record, by_key))
        page = await backend.query(RecordFilter(queue=record.queue), limit=10)
        assert page.records == [record], rule("query", _EXACT, diff(record, page.records[0] if page.records else None))

    async def test_round_trip_running_fields_through_claim_and_expired_leases(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        record = await enqueue_one(backend, _full_record(now, TaskStatus.PENDING))
        moment = _odd_microseconds(now, 1)
        running = await claim_one(backend, moment, queue=record.queue)
        assert (running.started_at, running.lease_expires_at) == (moment, moment + timedelta(seconds=LEASE_SECONDS)), (
            rule(
                "claim", "started_at = now, lease_expires_at = now + lease_seconds (to the microsecond)", repr(running)
            )
        )
        _assert_utc_datetimes(running, "claim")
        await backend.cancel(running.id, now=moment)
        flagged = await backend.get(running.id)
        assert flagged is not None and flagged.cancel_requested, rule("cancel", "running gets cancel_requested = True")
        expired = await backend.expired_leases(now=after(moment, LEASE_SECONDS), limit=10)
        assert expired == [flagged], rule("expired_leases", _EXACT, diff(flagged, expired[0] if expired else None))
