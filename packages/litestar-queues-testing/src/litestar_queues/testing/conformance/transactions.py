"""Enqueue inside the caller's transaction: ``enqueue_within`` and ``after_commit`` ([TRANSACTIONAL_ENQUEUE]).

These tests need a way to open a transaction of the caller's own on the backend's database: define a
``caller_transaction`` fixture returning a callable that opens one (an async context manager yielding a
:class:`~litestar_queues.testing.CallerTransaction`, closed at the end of the block, rolling back what was neither
committed nor rolled back).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import anyio
import pytest
from anyio.abc import TaskStatus as StartedStatus

from litestar_queues.backend import Capability, QueueBackend
from litestar_queues.records import TaskRecord
from litestar_queues.testing.conformance.base import ConformanceBase
from litestar_queues.testing.conformance.support import (
    QUEUE,
    CallerTransaction,
    diff,
    enqueue_one,
    make_record,
    require,
    rule,
)

__all__ = ("TransactionConformance",)

OpenTransaction = Callable[[], AbstractAsyncContextManager[CallerTransaction]]
_OTHER_QUEUE = "conformance-other"
_TIMEOUT = 20.0
_EARLY = _TIMEOUT / 2


def _invisible(record_id: str, found: object) -> str:
    return rule(
        "enqueue_within",
        "records become visible to claim only when the caller commits",
        f"{record_id} was seen from another connection before the commit: {found!r}",
    )


class TransactionConformance(ConformanceBase):
    """Records enqueued in the caller's transaction share its fate: committed with it, gone with its rollback."""

    @pytest.fixture
    def transactions(self, backend: QueueBackend, request: pytest.FixtureRequest) -> OpenTransaction:
        """The user's ``caller_transaction`` fixture (required with the capability), or skip."""
        require(backend, Capability.TRANSACTIONAL_ENQUEUE)
        try:
            opener: OpenTransaction = request.getfixturevalue("caller_transaction")
        except pytest.FixtureLookupError:
            pytest.fail(
                f"{type(backend).__name__} declares {Capability.TRANSACTIONAL_ENQUEUE.value}: define a "
                "`caller_transaction` fixture (see litestar_queues.testing.conformance.transactions) to check it"
            )
        return opener

    async def test_transactional_record_is_created_and_invisible_until_commit(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        record = make_record(now, key="tx:visible")
        async with transactions() as transaction:
            (outcome,) = await backend.enqueue_within(transaction.session, [record])
            assert outcome.created and outcome.record == record, rule(
                "enqueue_within",
                "a new record is stored as given and returned with created=True",
                diff(record, outcome.record),
            )
            assert await backend.get(record.id) is None, _invisible(record.id, "get")
            assert await backend.get_by_key("tx:visible") is None, _invisible(record.id, "get_by_key")
            await transaction.commit()
        assert await backend.get(record.id) == record, rule("enqueue_within", "a commit stores the record as given")
        claimed = await backend.claim([QUEUE], owner="w", limit=5, now=now, lease_seconds=30)
        assert [r.id for r in claimed] == [record.id], rule("enqueue_within", "a committed record is claimable")

    async def test_transactional_claim_never_sees_a_record_rolled_back(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        record = make_record(now)
        async with anyio.create_task_group() as group, transactions() as transaction:
            await backend.enqueue_within(transaction.session, [record])
            claims: list[list[TaskRecord]] = []

            async def claim() -> None:  # may wait for the transaction's locks (SQLite), never sees its rows
                claims.append(await backend.claim([QUEUE], owner="w", limit=5, now=now, lease_seconds=30))

            group.start_soon(claim)
            await anyio.wait_all_tasks_blocked()
            await transaction.rollback()
        assert claims == [[]], _invisible(record.id, claims)
        assert await backend.get(record.id) is None, rule("enqueue_within", "a rollback leaves no record")

    async def test_transactional_rollback_frees_the_key(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        async with transactions() as transaction:
            (outcome,) = await backend.enqueue_within(transaction.session, [make_record(now, key="tx:freed")])
            assert outcome.created
            await transaction.rollback()
        after = await backend.enqueue([make_record(now, key="tx:freed")])
        assert after[0].created, rule("enqueue_within", "a rollback frees the keys its records took")

    async def test_transactional_key_is_held_inside_and_after_the_transaction(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        first = make_record(now, key="tx:held")
        async with transactions() as transaction:
            await backend.enqueue_within(transaction.session, [first])
            (again,) = await backend.enqueue_within(transaction.session, [make_record(now, key="tx:held")])
            assert not again.created and again.record.id == first.id, rule(
                "enqueue_within", "deduplicates against records of the same transaction", f"got {again!r}"
            )
            await transaction.commit()
        (later,) = await backend.enqueue([make_record(now, key="tx:held")])
        assert not later.created and later.record.id == first.id, rule(
            "enqueue_within", "a committed record holds its key like any other"
        )

    async def test_transactional_enqueue_deduplicates_against_committed_records(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        holder = await enqueue_one(backend, make_record(now, key="tx:committed"))
        async with transactions() as transaction:
            outcomes = await backend.enqueue_within(
                transaction.session, [make_record(now, key="tx:committed"), make_record(now, id=holder.id)]
            )
            assert [(o.created, o.record.id) for o in outcomes] == [(False, holder.id), (False, holder.id)], rule(
                "enqueue_within", "an active key or an existing id returns the stored record", f"got {outcomes!r}"
            )
            await transaction.rollback()
        assert await backend.get(holder.id) == holder, rule("enqueue_within", "a rollback leaves others' records alone")

    async def test_transactional_bulk_enqueue_commits_together(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        records = [make_record(now, key=f"tx:bulk:{n}") for n in range(40)]
        async with transactions() as transaction:
            outcomes = await backend.enqueue_within(transaction.session, records)
            assert [o.record.id for o in outcomes if o.created] == [r.id for r in records]
            assert (await backend.statistics(now=now, queue=QUEUE)).counts[records[0].status] == 0, _invisible(
                records[0].id, "statistics"
            )
            await transaction.commit()
        stats = await backend.statistics(now=now, queue=QUEUE)
        assert stats.counts[records[0].status] == len(records), rule("enqueue_within", "a commit stores every record")

    async def test_transactional_wakeup_waits_for_the_commit(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        require(backend, Capability.PUSH_WAKEUP)
        woken: dict[str, float] = {}
        other_woken = anyio.Event()

        async def waiter(queue: str, *, task_status: StartedStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            started = anyio.current_time()
            await backend.wait_for_work([queue], timeout=_TIMEOUT)
            woken[queue] = anyio.current_time() - started
            if queue == _OTHER_QUEUE:
                other_woken.set()

        async with anyio.create_task_group() as group, transactions() as transaction:
            await group.start(waiter, QUEUE)
            await backend.enqueue_within(transaction.session, [make_record(now)])
            # Wakeups are delivered in commit order: once a later, committed enqueue on another queue woke its
            # waiter, one sent by the open transaction would have arrived too.
            await group.start(waiter, _OTHER_QUEUE)
            await enqueue_one(backend, make_record(now, queue=_OTHER_QUEUE))
            with anyio.fail_after(_EARLY):
                await other_woken.wait()
            assert QUEUE not in woken, rule("enqueue_within", "waiters are woken only when the caller commits")
            await transaction.commit()
        assert woken[QUEUE] < _EARLY, rule("enqueue_within", "a commit wakes the waiters of the records' queues")

    async def test_transactional_after_commit_runs_once_on_commit_only(
        self, backend: QueueBackend, transactions: OpenTransaction, now: datetime
    ) -> None:
        calls: list[str] = []
        async with transactions() as transaction:
            await backend.enqueue_within(transaction.session, [make_record(now)])
            if not backend.after_commit(transaction.session, lambda: calls.append("rolled back")):
                pytest.skip(f"{type(backend).__name__} cannot tell when this kind of session commits")
            await transaction.rollback()
        async with transactions() as transaction:
            await backend.enqueue_within(transaction.session, [make_record(now)])
            assert backend.after_commit(transaction.session, lambda: calls.append("committed"))
            assert not calls, rule("after_commit", "the callback runs once the transaction commits, not before")
            await transaction.commit()
        assert calls == ["committed"], rule("after_commit", "runs the callback once on commit, never on rollback")
