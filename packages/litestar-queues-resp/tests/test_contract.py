"""Direct tests of the backend contract (``litestar_queues.backend``) beyond the shared conformance suite."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from msgspec.structs import replace

from litestar_queues.backends.resp import RespBackend
from litestar_queues.errors import DuplicateTaskError
from litestar_queues.records import (
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    RecordFilter,
    TaskError,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from litestar_queues.testing.conformance.support import QUEUE, make_record

pytestmark = pytest.mark.anyio


def at(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


async def add(backend: RespBackend, *records: TaskRecord) -> list[EnqueueOutcome]:
    outcomes = await backend.enqueue(list(records))
    assert all(outcome.created for outcome in outcomes)
    return outcomes


async def running(backend: RespBackend, now: datetime, **changes: Any) -> TaskRecord:
    pending = make_record(now, **changes)
    await add(backend, pending)
    claimed = await backend.claim_record(pending.id, owner="w", now=now, lease_seconds=30)
    assert claimed is not None
    return claimed


# -- storage round trip ------------------------------------------------------------------------------


async def test_every_field_round_trips(backend: RespBackend, now: datetime) -> None:
    plus_two = timezone(timedelta(hours=2))
    original = make_record(
        now,
        args=[1, "two", [3.5, None], {"four": True}],
        kwargs={"x": {"nested": [1, 2]}, "y": "é✓"},
        priority=-7,
        status=TaskStatus.FAILED,
        key="key with spaces:and:colons",
        attempts=3,
        max_retries=5,
        retry_delay=2.5,
        timeout=12.25,
        created_at=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=plus_two),
        scheduled_at=at(now, 5),
        expires_at=at(now, 3600),
        started_at=at(now, -2),
        finished_at=at(now, -1),
        result={"ok": [1, 2, 3]},
        error=TaskError(type="builtins.ValueError", message="bad", traceback="Traceback ..."),
        execution_backend="cloudrun",
        execution_profile="big",
        metadata={"trace": "abc", "n": 1},
        owner=None,
        token=4,
        cancel_requested=False,
    )
    await add(backend, original)
    stored = await backend.get(original.id)
    assert stored == original
    assert stored is not None and stored.created_at.utcoffset() == timedelta(hours=2)


async def test_running_record_round_trips_with_owner_and_lease(backend: RespBackend, now: datetime) -> None:
    original = make_record(
        now, status=TaskStatus.RUNNING, owner="", token=9, attempts=1, started_at=now, lease_expires_at=at(now, 30)
    )
    await add(backend, original)
    assert await backend.get(original.id) == original
    assert [r.id for r in await backend.expired_leases(now=at(now, 30), limit=10)] == [original.id]


async def test_get_missing_record_is_none(backend: RespBackend) -> None:
    assert await backend.get("missing") is None
    assert await backend.get_by_key("missing") is None


async def test_bulk_enqueue_spans_chunks_and_dedups_across_them(open_backend: Any, now: datetime) -> None:
    async with open_backend(enqueue_chunk_size=7) as backend:
        records = [make_record(now, key=f"k{i % 10}") for i in range(40)]
        outcomes = await backend.enqueue(records)
        assert [o.created for o in outcomes] == [True] * 10 + [False] * 30
        assert [o.record.id for o in outcomes[10:]] == [records[i % 10].id for i in range(10, 40)]
        stats = await backend.statistics(now=now)
        assert stats.counts[TaskStatus.PENDING] == 10


# -- leases ------------------------------------------------------------------------------------------


async def test_renew_reports_held_cancel_requested_and_lost(backend: RespBackend, now: datetime) -> None:
    held = await running(backend, now)
    cancelled = await running(backend, now)
    await backend.cancel(cancelled.id, now=now)
    wrong_token = await running(backend, now)
    states = await backend.renew(
        [
            held.lease,
            cancelled.lease,
            Lease(wrong_token.id, "w", wrong_token.token + 1),
            Lease("missing", "w", 1),
        ],
        now=at(now, 10),
        lease_seconds=60,
    )
    assert states == {
        held.id: LeaseState.HELD,
        cancelled.id: LeaseState.CANCEL_REQUESTED,
        wrong_token.id: LeaseState.LOST,
        "missing": LeaseState.LOST,
    }
    renewed = await backend.get(held.id)
    assert renewed is not None and renewed.lease_expires_at == at(now, 70)
    untouched = await backend.get(wrong_token.id)
    assert untouched == wrong_token
    assert await backend.expired_leases(now=at(now, 69), limit=10) == [untouched]


# -- finish ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
async def test_finish_terminal_frees_the_key(backend: RespBackend, now: datetime, status: TaskStatus) -> None:
    claimed = await running(backend, now, key="k")
    error = TaskError(type="x.Y", message="m")
    done = await backend.finish(claimed.lease, Outcome(status=status, result=[1], error=error), now=at(now, 1))
    assert done == replace(
        claimed,
        status=status,
        finished_at=at(now, 1),
        result=[1],
        error=error,
        owner=None,
        lease_expires_at=None,
    )
    assert await backend.get(claimed.id) == done
    (again,) = await backend.enqueue([make_record(now, key="k")])
    assert again.created
    assert await backend.get_by_key("k") == again.record


async def test_finish_pending_keeps_the_key_and_refunds(backend: RespBackend, now: datetime) -> None:
    claimed = await running(backend, now, key="k")
    error = TaskError(type="x.Y", message="retry me")
    outcome = Outcome(status=TaskStatus.PENDING, scheduled_at=at(now, 5), error=error, refund_attempt=True)
    back = await backend.finish(claimed.lease, outcome, now=at(now, 1))
    assert back == replace(
        claimed,
        status=TaskStatus.PENDING,
        scheduled_at=at(now, 5),
        error=error,
        attempts=claimed.attempts - 1,
        owner=None,
        lease_expires_at=None,
    )
    (dup,) = await backend.enqueue([make_record(now, key="k")])
    assert not dup.created and dup.record.id == claimed.id
    assert await backend.claim([QUEUE], owner="w", limit=5, now=at(now, 4), lease_seconds=30) == []
    (again,) = await backend.claim([QUEUE], owner="w2", limit=5, now=at(now, 5), lease_seconds=30)
    assert again.id == claimed.id and again.token == claimed.token + 1 and again.error == error


async def test_finish_with_a_stale_fence_changes_nothing(backend: RespBackend, now: datetime) -> None:
    claimed = await running(backend, now)
    for lease in (Lease(claimed.id, "other", claimed.token), Lease(claimed.id, "w", claimed.token - 1)):
        assert await backend.finish(lease, Outcome(status=TaskStatus.COMPLETED), now=now) is None
    assert await backend.get(claimed.id) == claimed


async def test_finish_only_if_lease_expired(backend: RespBackend, now: datetime) -> None:
    claimed = await running(backend, now)
    recovery = Outcome(status=TaskStatus.PENDING, scheduled_at=now, only_if_lease_expired=True)
    assert await backend.finish(claimed.lease, recovery, now=at(now, 29)) is None
    await backend.renew([claimed.lease], now=at(now, 20), lease_seconds=30)
    assert await backend.finish(claimed.lease, recovery, now=at(now, 31)) is None
    recovered = await backend.finish(claimed.lease, recovery, now=at(now, 50))
    assert recovered is not None and recovered.status is TaskStatus.PENDING


async def test_finish_rejects_non_finishing_statuses(backend: RespBackend, now: datetime) -> None:
    claimed = await running(backend, now)
    with pytest.raises(ValueError, match="expired"):
        await backend.finish(claimed.lease, Outcome(status=TaskStatus.EXPIRED), now=now)
    with pytest.raises(ValueError, match="scheduled_at"):
        await backend.finish(claimed.lease, Outcome(status=TaskStatus.PENDING), now=now)


async def test_finishing_sweeps_records_past_the_retention(open_backend: Any, now: datetime) -> None:
    async with open_backend(finished_retention=60) as backend:
        old = [await running(backend, now) for _ in range(3)]
        for claimed in old:
            await backend.finish(claimed.lease, Outcome(status=TaskStatus.COMPLETED), now=now)
        recent = await running(backend, at(now, 100))
        await backend.finish(recent.lease, Outcome(status=TaskStatus.COMPLETED), now=at(now, 100))
        remaining = [await backend.get(claimed.id) for claimed in old]
        assert sum(r is None for r in remaining) == 2  # two per finish
        assert (await backend.statistics(now=at(now, 100))).counts[TaskStatus.COMPLETED] == 2


async def test_retention_none_keeps_finished_records(open_backend: Any, now: datetime) -> None:
    async with open_backend(finished_retention=None) as backend:
        old = await running(backend, now)
        await backend.finish(old.lease, Outcome(status=TaskStatus.COMPLETED), now=now)
        recent = await running(backend, now)
        await backend.finish(recent.lease, Outcome(status=TaskStatus.COMPLETED), now=at(now, 10**8))
        assert await backend.get(old.id) is not None


# -- control -----------------------------------------------------------------------------------------


async def test_cancel_pending_running_terminal_and_missing(backend: RespBackend, now: datetime) -> None:
    pending = make_record(now, key="k")
    await add(backend, pending)
    cancelled = await backend.cancel(pending.id, now=at(now, 1))
    assert cancelled == replace(pending, status=TaskStatus.CANCELLED, finished_at=at(now, 1))
    assert await backend.cancel(pending.id, now=at(now, 2)) == cancelled
    assert (await backend.enqueue([make_record(now, key="k")]))[0].created
    claimed = await running(backend, now)
    requested = await backend.cancel(claimed.id, now=now)
    assert requested == replace(claimed, cancel_requested=True)
    assert await backend.cancel("missing", now=now) is None
    assert await backend.claim([QUEUE], owner="w", limit=10, now=now, lease_seconds=1) != []  # only the new "k"


async def test_requeue(backend: RespBackend, now: datetime) -> None:
    claimed = await running(backend, now, key="k")
    failed = await backend.finish(claimed.lease, Outcome(status=TaskStatus.FAILED, result=1), now=now)
    assert failed is not None
    requeued = await backend.requeue(claimed.id, now=at(now, 5))
    assert requeued == replace(
        failed, status=TaskStatus.PENDING, scheduled_at=at(now, 5), attempts=0, finished_at=None, result=None
    )
    assert await backend.requeue(claimed.id, now=at(now, 6)) == requeued  # active: unchanged
    (dup,) = await backend.enqueue([make_record(now, key="k")])
    assert not dup.created
    assert await backend.requeue("missing", now=now) is None


async def test_requeue_refuses_when_another_record_holds_the_key(backend: RespBackend, now: datetime) -> None:
    first = make_record(now, key="k")
    await add(backend, first)
    await backend.cancel(first.id, now=now)
    await add(backend, make_record(now, key="k"))
    with pytest.raises(DuplicateTaskError):
        await backend.requeue(first.id, now=now)
    stored = await backend.get(first.id)
    assert stored is not None and stored.status is TaskStatus.CANCELLED


async def test_requeue_leaves_completed_records(backend: RespBackend, now: datetime) -> None:
    claimed = await running(backend, now)
    done = await backend.finish(claimed.lease, Outcome(status=TaskStatus.COMPLETED), now=now)
    assert await backend.requeue(claimed.id, now=now) == done


async def test_expire(backend: RespBackend, now: datetime) -> None:
    soon = make_record(now, expires_at=at(now, 10), key="k")
    later = make_record(now, expires_at=at(now, 100))
    never = make_record(now)
    await add(backend, soon, later, never)
    assert await backend.claim([QUEUE], owner="w", limit=0, now=now, lease_seconds=1) == []
    assert [r.id for r in await backend.claim([QUEUE], owner="w", limit=5, now=at(now, 10), lease_seconds=1)] == [
        later.id,
        never.id,
    ]
    assert await backend.expire(now=at(now, 9), limit=10) == 0
    assert await backend.expire(now=at(now, 10), limit=10) == 1
    expired = await backend.get(soon.id)
    assert expired == replace(soon, status=TaskStatus.EXPIRED, finished_at=at(now, 10))
    assert (await backend.enqueue([make_record(now, key="k")]))[0].created
    assert await backend.expire(now=at(now, 1000), limit=10) == 0  # `later` is running


async def test_prune_deletes_old_terminal_records_and_their_index_entries(backend: RespBackend, now: datetime) -> None:
    ids = []
    for offset in range(5):
        claimed = await running(backend, now, key="k", task_name="tests.pruned")
        await backend.finish(claimed.lease, Outcome(status=TaskStatus.COMPLETED), now=at(now, offset))
        ids.append(claimed.id)
    assert await backend.prune(finished_before=at(now, 3), limit=2) == 2
    assert await backend.prune(finished_before=at(now, 3), limit=10) == 1
    assert [await backend.get(i) is None for i in ids] == [True, True, True, False, False]
    page = await backend.query(RecordFilter(task_name="tests.pruned"), limit=10)
    assert [r.id for r in page.records] == ids[:2:-1]
    latest = await backend.get_by_key("k")
    assert latest is not None and latest.id == ids[-1]
    stats = await backend.statistics(now=now)
    assert stats.counts[TaskStatus.COMPLETED] == 2


# -- reading -----------------------------------------------------------------------------------------


async def test_query_filters_and_pages_newest_first(backend: RespBackend, now: datetime) -> None:
    records = [
        make_record(
            now, queue=f"q{i % 3}", task_name=f"t{i % 2}", status=[TaskStatus.PENDING, TaskStatus.FAILED][i % 2]
        )
        for i in range(30)
    ]
    await add(backend, *records)
    filters = [
        RecordFilter(),
        RecordFilter(status=TaskStatus.FAILED),
        RecordFilter(queue="q1"),
        RecordFilter(task_name="t0"),
        RecordFilter(queue="q2", status=TaskStatus.PENDING),
        RecordFilter(queue="q2", status=TaskStatus.PENDING, task_name="t0"),
        RecordFilter(status=TaskStatus.PENDING, task_name="t1"),
        RecordFilter(queue="nope"),
    ]
    for where in filters:
        expected = [
            r.id
            for r in sorted(records, key=lambda r: r.id, reverse=True)
            if (where.status is None or r.status is where.status)
            and (where.queue is None or r.queue == where.queue)
            and (where.task_name is None or r.task_name == where.task_name)
        ]
        seen: list[str] = []
        cursor = None
        while True:
            page = await backend.query(where, limit=4, cursor=cursor)
            assert len(page.records) <= 4
            seen += [r.id for r in page.records]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, where


async def test_statistics_per_queue_and_oldest_due(backend: RespBackend, now: datetime) -> None:
    due_old = make_record(now, scheduled_at=at(now, -50), queue="a")
    expired_older = make_record(now, scheduled_at=at(now, -100), expires_at=at(now, -1), queue="a")
    delayed = make_record(now, scheduled_at=at(now, 50), queue="a", priority=5)
    other = make_record(now, scheduled_at=at(now, -10), queue="b", priority=9)
    await add(backend, due_old, expired_older, delayed, other, make_record(now, queue="b", status=TaskStatus.FAILED))
    stats_a = await backend.statistics(now=now, queue="a")
    assert stats_a.queue == "a" and stats_a.counts[TaskStatus.PENDING] == 3
    assert stats_a.oldest_pending_at == due_old.scheduled_at
    overall = await backend.statistics(now=now)
    assert overall.counts == {
        TaskStatus.PENDING: 4,
        TaskStatus.RUNNING: 0,
        TaskStatus.COMPLETED: 0,
        TaskStatus.FAILED: 1,
        TaskStatus.CANCELLED: 0,
        TaskStatus.EXPIRED: 0,
    }
    assert overall.oldest_pending_at == due_old.scheduled_at
    empty = await backend.statistics(now=now, queue="nothing")
    assert set(empty.counts.values()) == {0} and empty.oldest_pending_at is None


# -- workers and locks -------------------------------------------------------------------------------


async def test_workers(backend: RespBackend, now: datetime) -> None:
    def info(worker_id: str, beat: datetime) -> WorkerInfo:
        return WorkerInfo(
            id=worker_id, host="h", pid=1, queues=["q"], concurrency=2, started_at=now, last_heartbeat_at=beat
        )

    await backend.register_worker(info("b", now), ttl_seconds=10)
    await backend.register_worker(info("a", now), ttl_seconds=10)
    assert [w.id for w in await backend.list_workers(now=at(now, 10))] == ["a", "b"]
    await backend.register_worker(info("a", at(now, 5)), ttl_seconds=10)
    assert [w.id for w in await backend.list_workers(now=at(now, 11))] == ["a"]
    await backend.remove_worker("a")
    assert await backend.list_workers(now=at(now, 11)) == []


async def test_locks(backend: RespBackend, now: datetime) -> None:
    assert await backend.acquire_lock("m", owner="a", ttl_seconds=10, now=now)
    assert not await backend.acquire_lock("m", owner="b", ttl_seconds=10, now=at(now, 9))
    assert await backend.acquire_lock("m", owner="a", ttl_seconds=10, now=at(now, 9))  # renew
    assert not await backend.acquire_lock("m", owner="b", ttl_seconds=10, now=at(now, 18))
    assert await backend.acquire_lock("m", owner="b", ttl_seconds=10, now=at(now, 19))
    await backend.release_lock("m", owner="a")  # not the holder: no effect
    assert not await backend.acquire_lock("m", owner="a", ttl_seconds=10, now=at(now, 20))
    await backend.release_lock("m", owner="b")
    assert await backend.acquire_lock("m", owner="a", ttl_seconds=10, now=at(now, 20))


# -- group commit ------------------------------------------------------------------------------------


async def test_concurrent_calls_share_script_calls_and_keep_their_semantics(
    backend: RespBackend, now: datetime
) -> None:
    keyed = [make_record(now, key=f"k{i % 5}") for i in range(50)]
    plain = [make_record(now) for _ in range(50)]
    outcomes = await asyncio.gather(*(backend.enqueue([r]) for r in keyed + plain), backend.enqueue([]))
    created = [outcome[0] for outcome in outcomes[:-1]]
    assert outcomes[-1] == []
    assert sum(o.created for o in created[:50]) == 5
    assert all(o.created for o in created[50:])
    for o, r in zip(created[:50], keyed, strict=True):
        assert o.record.key == r.key
    claimed = await backend.claim([QUEUE], owner="w", limit=100, now=now, lease_seconds=30)
    assert len(claimed) == 55
    stale = claimed[0].lease
    results = await asyncio.gather(
        *(backend.finish(r.lease, Outcome(status=TaskStatus.COMPLETED, result=r.id), now=now) for r in claimed),
        backend.finish(
            Lease(stale.record_id, stale.owner, stale.token + 1), Outcome(status=TaskStatus.FAILED), now=now
        ),
    )
    assert [r.result if r else None for r in results[:-1]] == [r.id for r in claimed]
    assert results[-1] is None
    assert (await backend.statistics(now=now)).counts[TaskStatus.COMPLETED] == 55


async def test_an_enqueue_replaces_a_body_left_without_its_record(backend: RespBackend, now: datetime) -> None:
    """Without a key, writing the body is the enqueue's id check; a body whose record is gone (the two are written and
    deleted together, so only damage leaves one) does not make the new record a duplicate."""
    record = make_record(now)
    client: Any = backend._client
    await client.set(f"{backend.key_prefix}:b:{record.id}", b"left behind")
    (outcome,) = await backend.enqueue([record])
    assert outcome.created
    stored = await backend.get(record.id)
    assert stored is not None and stored.args == record.args and stored.task_name == record.task_name
