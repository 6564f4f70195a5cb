"""Deduplication by id and by dedup key."""

from __future__ import annotations

from datetime import datetime

import anyio
import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.records import EnqueueOutcome, Outcome, TaskError, TaskStatus
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    LEASE_SECONDS,
    OWNER,
    after,
    claim_one,
    completed,
    enqueue_one,
    make_record,
    obeying,
    retry_at,
    rule,
)

__all__ = ("DedupConformance",)

_KEY = "dedup:key"
_SAME_ID = "if a record with the same id exists, return it with created=False"
_ACTIVE_KEY = "if key is set and an active (pending or running) record holds that key, return that record"
_IN_CALL = (
    "within one call, a later record whose key an earlier record of the same call took resolves to the earlier one"
)
_CONCURRENT = "concurrent enqueues of the same key from many callers create exactly one record"


class DedupConformance(ConformanceBase):
    """An id is stored once; a key is held by at most one active record and is free again once it ends."""

    async def test_dedup_existing_id_returns_the_stored_record_not_created(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        first = await enqueue_one(backend, make_record(now, args=["first"]))
        with obeying("enqueue", _SAME_ID):
            (outcome,) = await backend.enqueue([make_record(now, id=first.id, args=["second"])])
        assert not outcome.created, rule("enqueue", _SAME_ID)
        assert outcome.record == first, rule("enqueue", "if a record with the same id exists, return it")
        assert await backend.get(first.id) == first, rule("enqueue", "a duplicate id stores nothing")

    async def test_dedup_active_key_returns_the_pending_holder(self, backend: QueueBackend, now: datetime) -> None:
        holder = await enqueue_one(backend, make_record(now, key=_KEY))
        duplicate = make_record(now, key=_KEY)
        with obeying("enqueue", _ACTIVE_KEY):
            (outcome,) = await backend.enqueue([duplicate])
        assert not outcome.created and outcome.record == holder, rule("enqueue", _ACTIVE_KEY)
        assert await backend.get(duplicate.id) is None, rule("enqueue", "a duplicate key stores nothing")

    async def test_dedup_active_key_returns_the_running_holder(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now, key=_KEY))
        running = await claim_one(backend, now)
        with obeying("enqueue", _ACTIVE_KEY):
            (outcome,) = await backend.enqueue([make_record(now, key=_KEY)])
        assert not outcome.created and outcome.record == running, rule("enqueue", _ACTIVE_KEY)

    async def test_dedup_pending_retry_keeps_holding_its_key(self, backend: QueueBackend, now: datetime) -> None:
        await enqueue_one(backend, make_record(now, key=_KEY))
        running = await claim_one(backend, now)
        retrying = await backend.finish(running.lease, retry_at(after(now, 60)), now=now)
        (outcome,) = await backend.enqueue([make_record(now, key=_KEY)])
        assert not outcome.created and outcome.record == retrying, rule(
            "finish", "pending: ... the key stays held", f"enqueue returned {outcome!r}"
        )

    @pytest.mark.parametrize(
        "ending", ["finish completed", "finish failed", "finish cancelled", "cancel pending", "expire"]
    )
    async def test_dedup_key_is_free_once_the_holder_is_terminal(
        self, backend: QueueBackend, now: datetime, ending: str
    ) -> None:
        first = await enqueue_one(backend, make_record(now, key=_KEY, expires_at=after(now, 60)))
        if ending == "cancel pending":
            await backend.cancel(first.id, now=now)
        elif ending == "expire":
            await backend.expire(now=after(now, 60), limit=10)
        else:
            running = await claim_one(backend, now)
            status = TaskStatus(ending.removeprefix("finish "))
            error = None if status is TaskStatus.COMPLETED else TaskError(type="builtins.RuntimeError", message="x")
            await backend.finish(running.lease, Outcome(status=status, error=error), now=now)
        method = ending.split(maxsplit=1)[0]
        ended = await backend.get(first.id)
        assert ended is not None and ended.is_terminal, rule(method, "the holder ends", repr(ended))
        second = make_record(now, key=_KEY)
        (outcome,) = await backend.enqueue([second])
        assert outcome.created and outcome.record == second, rule(
            method,
            "the dedup key becomes free once its record is terminal",
            f"after {ending}, enqueue of the key returned {outcome!r}",
        )
        assert await backend.get_by_key(_KEY) == second, rule("get_by_key", "return the active record holding key")

    async def test_dedup_get_by_key_returns_the_most_recently_created_terminal_record(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        # Stored and ended in another order than created, and the last id is not the newest created_at: "last
        # stored", "last finished" and "greatest id" each pick another record than "most recently created".
        oldest_id, middle, newest, greatest_id = (
            make_record(after(now, -100), key=_KEY),
            make_record(after(now, -50), key=_KEY),
            make_record(now, key=_KEY),
            make_record(after(now, -200), key=_KEY),
        )
        for offset, record in enumerate([middle, newest, greatest_id, oldest_id]):
            await enqueue_one(backend, record)
            await backend.cancel(record.id, now=after(now, offset))
        expected = await backend.get(newest.id)
        found = await backend.get_by_key(_KEY)
        assert found == expected, rule(
            "get_by_key",
            "else the most recently created record with that key (terminal): greatest created_at, then greatest id",
            f"expected the record created at {newest.created_at}, got {found.created_at if found else None}",
        )

    async def test_dedup_get_by_key_prefers_the_active_holder_to_newer_terminal_records(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        older = await enqueue_one(backend, make_record(after(now, -60), key=_KEY))
        await backend.cancel(older.id, now=after(now, -30))
        newer = await enqueue_one(backend, make_record(now, key=_KEY))
        await backend.cancel(newer.id, now=now)
        requeued = await backend.requeue(older.id, now=now)  # the older record holds the key again
        assert requeued is not None and requeued.status is TaskStatus.PENDING, rule("requeue", "back to pending")
        found = await backend.get_by_key(_KEY)
        assert found == requeued, rule(
            "get_by_key",
            "return the active record holding key, even over terminal records created after it",
            f"got the {found.status.value if found else None} record created at {found.created_at if found else None}",
        )
        running = await claim_one(backend, now)
        assert await backend.get_by_key(_KEY) == running, rule(
            "get_by_key", "return the active (pending or running) record holding key"
        )

    async def test_dedup_duplicate_keys_inside_one_bulk_call_resolve_to_the_first(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        first, second, other = make_record(now, key=_KEY), make_record(now, key=_KEY), make_record(now, key="other")
        with obeying("enqueue", _IN_CALL):
            outcomes = await backend.enqueue([first, second, other])
        assert [outcome.created for outcome in outcomes] == [True, False, True], rule(
            "enqueue", _IN_CALL, f"created flags: {[outcome.created for outcome in outcomes]}"
        )
        assert outcomes[1].record == first, rule("enqueue", "a later record resolves to the earlier one")
        assert await backend.get(second.id) is None, rule("enqueue", "a duplicate key stores nothing")

    async def test_dedup_same_id_twice_inside_one_bulk_call_is_stored_once(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        record = make_record(now)
        with obeying("enqueue", _SAME_ID):
            outcomes = await backend.enqueue([record, make_record(now, id=record.id, args=["later"])])
        assert [outcome.created for outcome in outcomes] == [True, False], rule("enqueue", _SAME_ID)
        assert outcomes[1].record == record, rule("enqueue", "if a record with the same id exists, return it")

    async def test_dedup_bulk_call_of_new_and_stored_records_creates_only_the_new(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        stored = await enqueue_one(backend, make_record(now, args=["stored"]))
        holder = await enqueue_one(backend, make_record(now, key=_KEY))
        batch = [
            make_record(now, args=["new 1"]),
            make_record(now, id=stored.id, args=["again"]),
            make_record(now, args=["new 2"], key="other"),
            make_record(now, key=_KEY),
            make_record(now, args=["new 3"]),
        ]
        with obeying("enqueue", f"{_SAME_ID}; {_ACTIVE_KEY}"):
            outcomes = await backend.enqueue(batch)
        assert [outcome.created for outcome in outcomes] == [True, False, True, False, True], rule(
            "enqueue", "one outcome per record: the new ones created, the others resolved to what is stored"
        )
        assert outcomes[1].record == stored and outcomes[3].record == holder, rule("enqueue", _SAME_ID)
        for position in (0, 2, 4):
            assert await backend.get(batch[position].id) == outcomes[position].record == batch[position], rule(
                "enqueue", "a record created in a bulk call is stored as given"
            )
        assert await backend.get(batch[3].id) is None, rule("enqueue", "a duplicate key stores nothing")
        with obeying("enqueue", _SAME_ID):
            again = await backend.enqueue([batch[0], batch[2], batch[4]])
        assert [outcome.created for outcome in again] == [False, False, False], rule("enqueue", _SAME_ID)

    async def test_dedup_concurrent_enqueues_of_one_key_create_exactly_one(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        outcomes = await _enqueue_concurrently([backend] * 20, now)
        _assert_one_created(outcomes)

    async def test_dedup_concurrent_enqueues_of_one_key_across_connections_create_exactly_one(
        self, backend: QueueBackend, cross_connection_backend: QueueBackend, now: datetime
    ) -> None:
        outcomes = await _enqueue_concurrently([backend, cross_connection_backend] * 10, now)
        _assert_one_created(outcomes)

    async def test_dedup_record_taking_a_freed_key_is_claimed_like_any_other(
        self, backend: QueueBackend, now: datetime
    ) -> None:
        await enqueue_one(backend, make_record(now, key=_KEY))
        running = await claim_one(backend, now)
        await backend.finish(running.lease, completed(), now=now)
        replacement = await enqueue_one(backend, make_record(now, key=_KEY))
        claimed = await backend.claim([replacement.queue], owner=OWNER, limit=5, now=now, lease_seconds=LEASE_SECONDS)
        assert [record.id for record in claimed] == [replacement.id], rule(
            "claim", "the new holder of a freed key is an ordinary due record"
        )


async def _enqueue_concurrently(backends: list[QueueBackend], now: datetime) -> list[EnqueueOutcome]:
    outcomes: list[EnqueueOutcome] = []

    async def enqueue(backend: QueueBackend) -> None:
        with obeying("enqueue", _CONCURRENT):
            outcomes.extend(await backend.enqueue([make_record(now, key=_KEY)]))

    async with anyio.create_task_group() as group:
        for backend in backends:
            group.start_soon(enqueue, backend)
    return outcomes


def _assert_one_created(outcomes: list[EnqueueOutcome]) -> None:
    created = [outcome.record.id for outcome in outcomes if outcome.created]
    assert len(created) == 1, rule(
        "enqueue", _CONCURRENT, f"{len(created)} of {len(outcomes)} concurrent enqueues were created"
    )
    assert {outcome.record.id for outcome in outcomes} == set(created), rule(
        "enqueue", "every concurrent enqueue of the key resolves to the one record created"
    )
