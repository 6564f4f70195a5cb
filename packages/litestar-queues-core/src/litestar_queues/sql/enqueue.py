"""Enqueue with deduplication for SQL backends: the contract's per-record rules on top of one multi-row insert.

Per record, in input order: an existing record with the same id wins; else an active record holding
the same key wins; else the record is stored. The database decides races: the insert skips rows
that conflict on the primary key or on the unique ``active_key`` index, and the skipped ones are
then resolved by reading who holds their id or key. If that holder vanished meanwhile (finished and
freed its key, or was pruned), the record is simply tried again.

Records of one call that share an id or a key with an earlier record of the same call go in a later
*round* (:func:`~litestar_queues.semantics.enqueue_rounds`), after the earlier one is settled, which gives exactly
the sequential semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from litestar_queues.records import ACTIVE_STATUSES, EnqueueOutcome, TaskRecord, TaskStatus, as_status
from litestar_queues.semantics import enqueue_rounds

__all__ = ("RecordInserter", "enqueue_records")

_MAX_TRIES = 20
"""Rounds of insert-then-resolve for one record before giving up (each lost race means a holder came and went)."""


class RecordInserter(Protocol):
    """Where :func:`enqueue_records` writes: one database connection or transaction of a SQL backend."""

    async def insert_tasks(self, records: Sequence[TaskRecord]) -> set[str]:
        """Insert records, skipping any that conflict on id or active key; return the inserted ids."""
        ...

    async def fetch_by_ids(self, ids: Sequence[str]) -> list[TaskRecord]:
        """Return the stored records with these ids."""
        ...

    async def fetch_active_by_keys(self, keys: Sequence[str]) -> list[TaskRecord]:
        """Return the active records holding these keys."""
        ...


async def _holders(store: RecordInserter, records: Sequence[TaskRecord]) -> dict[str, TaskRecord]:
    """Return the active records holding the keys of ``records``, by key."""
    keys = [record.key for record in records if record.key is not None]
    if not keys:
        return {}
    return {holder.key: holder for holder in await store.fetch_active_by_keys(keys) if holder.key is not None}


async def _resolve(store: RecordInserter, records: list[TaskRecord]) -> dict[str, EnqueueOutcome]:
    """Return outcomes of records that lost to an existing id or active key, keyed by their id."""
    by_id = {record.id: record for record in await store.fetch_by_ids([record.id for record in records])}
    holders = await _holders(store, [record for record in records if record.id not in by_id])
    outcomes: dict[str, EnqueueOutcome] = {}
    for record in records:
        existing = by_id.get(record.id)
        if existing is None and record.key is not None:
            existing = holders.get(record.key)
        if existing is not None:
            outcomes[record.id] = EnqueueOutcome(existing, created=False)
    return outcomes


async def enqueue_records(store: RecordInserter, records: Sequence[TaskRecord]) -> list[EnqueueOutcome]:
    """Insert ``records`` deduplicating by id, then by active key; one outcome per input, in input order."""
    outcomes: list[EnqueueOutcome | None] = [None] * len(records)
    for positions in enqueue_rounds(records):
        todo = {records[position].id: records[position] for position in positions}
        # A record stored inactive never conflicts on active_key; its key rule is checked explicitly.
        inactive = [record for record in todo.values() if record.status not in ACTIVE_STATUSES]
        settled: dict[str, EnqueueOutcome] = {}
        holders = await _holders(store, inactive)
        for record in inactive:
            holder = None if record.key is None else holders.get(record.key)
            if holder is not None:
                settled[record.id] = EnqueueOutcome(holder, created=False)
                del todo[record.id]
        for _ in range(_MAX_TRIES):
            if not todo:
                break
            inserted = await store.insert_tasks(list(todo.values()))
            pop = todo.pop
            for record_id in inserted:
                record = pop(record_id)
                if type(record.status) is not TaskStatus:
                    record = msgspec.structs.replace(record, status=as_status(record.status))
                settled[record_id] = EnqueueOutcome(record, True)
            if todo:
                resolved = await _resolve(store, list(todo.values()))
                for record_id, outcome in resolved.items():
                    settled[record_id] = outcome
                    del todo[record_id]
        if todo:
            msg = f"could not settle enqueue of {sorted(todo)} after {_MAX_TRIES} tries (keys kept changing hands)"
            raise RuntimeError(msg)
        for position in positions:
            outcomes[position] = settled[records[position].id]
    return outcomes  # type: ignore[return-value]  # every position is in one round, so every outcome is set
