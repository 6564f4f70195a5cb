"""Stored records that cannot be decoded: keep what can be read, and let everything else go on.

Backends decode stored records one at a time. When one cannot be decoded (a field that is not valid JSON, a
number that is not a number, a status nobody knows...), the backend builds it with :func:`salvage_record`
from one reader per field instead of failing the whole call: the fields that can be read keep their values,
the others get defaults, and ``error`` names the record and every broken field, with ``error.type`` set to
:data:`UNDECODABLE`. Such a record can be listed, shown, cancelled, expired and pruned like any other; it is
never run. A claim passes what it claimed through :func:`isolate_undecodable`, which fails each undecodable
record under its fence and hands the rest of the batch to the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from litestar_queues.backend import QueueBackend
from litestar_queues.records import Outcome, TaskError, TaskRecord, TaskStatus

__all__ = ("UNDECODABLE", "is_undecodable", "isolate_undecodable", "isolate_undecodable_record", "salvage_record")

logger = logging.getLogger("litestar_queues.backends")

UNDECODABLE: Final = "undecodable_record"
"""``TaskError.type`` of a record whose stored fields could not all be decoded (no exception has this name)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REQUIRED_DEFAULTS: dict[str, Any] = {"task_name": "", "created_at": _EPOCH, "scheduled_at": _EPOCH}
_REASON_LIMIT = 200


def salvage_record(record_id: str, readers: Mapping[str, Callable[[], Any]]) -> TaskRecord:
    """Build the record ``record_id`` from one reader per stored field, keeping every field that can be read.

    Args:
        record_id: The record's id (read from where the backend keeps it, e.g. its key or primary key).
        readers: ``TaskRecord`` field name -> a function returning the decoded value or raising. A field without
            a reader gets its default.

    Returns:
        The record. When a reader raised, its field holds the default (an unreadable status becomes ``failed``,
        so nothing claims it), and ``error`` is a :data:`UNDECODABLE` error naming the record and each broken
        field with the reason; the ``error`` field's own stored value is replaced by it.
    """
    values: dict[str, Any] = {}
    broken: list[str] = []
    for name, read in readers.items():
        try:
            values[name] = read()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            broken.append(f"{name!r} ({reason[:_REASON_LIMIT]})")
    values["id"] = record_id
    for name, default in _REQUIRED_DEFAULTS.items():
        values.setdefault(name, default)
    if broken:
        values.setdefault("status", TaskStatus.FAILED)
        field_list = "; ".join(broken)
        values["error"] = TaskError(
            type=UNDECODABLE,
            message=f"record {record_id} cannot be decoded: stored field {field_list}",
        )
    return TaskRecord(**values)


def is_undecodable(record: TaskRecord) -> bool:
    """Whether ``record`` was built by :func:`salvage_record` with broken fields."""
    error = record.error
    return error is not None and error.type == UNDECODABLE


async def isolate_undecodable(backend: QueueBackend, claimed: list[TaskRecord], *, now: datetime) -> list[TaskRecord]:
    """Return the records of a claim that can run; fail every undecodable one under its fence, never running it.

    Backends call this from ``claim`` and ``claim_record`` on what they claimed, so one broken record never holds
    up its batch: it ends ``failed`` with the error naming its broken fields, and the others run.
    """
    runnable = [record for record in claimed if not is_undecodable(record)]
    if len(runnable) == len(claimed):
        return claimed
    for record in claimed:
        error = record.error
        if error is not None and error.type == UNDECODABLE:
            logger.error("%s; marking it failed instead of running it", error.message)
            await backend.finish(record.lease, Outcome(status=TaskStatus.FAILED, error=error), now=now)
    return runnable


async def isolate_undecodable_record(
    backend: QueueBackend, claimed: TaskRecord | None, *, now: datetime
) -> TaskRecord | None:
    """:func:`isolate_undecodable` of the one record ``claim_record`` claimed (``None`` when it was failed)."""
    if claimed is None or not is_undecodable(claimed):
        return claimed
    await isolate_undecodable(backend, [claimed], now=now)
    return None
