"""Test helpers for the SQL backend."""

from __future__ import annotations

from litestar_queues.backends.sqlspec.backend import SQLSpecBackend

__all__ = ("corrupt_args", "corrupt_event")


async def corrupt_args(backend: SQLSpecBackend, record_id: str) -> str:
    """Store text that is not JSON in the ``args`` column of a record, so that it no longer decodes.

    The conformance suite's ``corrupt_record`` hook (see ``UndecodableConformance``):
    ``functools.partial(corrupt_args, backend)``. Returns the field it broke, ``"args"``.
    """
    sql = f"UPDATE {backend.names.tasks} SET args = 'not json' WHERE id = :id"  # noqa: S608 - a quoted table name
    await backend._db.execute(sql, {"id": record_id})
    return "args"


async def corrupt_event(backend: SQLSpecBackend, event_id: str) -> None:
    """Store text that is no event in the ``body`` of a stored event, so that it no longer decodes.

    The conformance suite's ``corrupt_event`` hook (see ``EventHistoryConformance``):
    ``functools.partial(corrupt_event, backend)``.
    """
    sql = f"UPDATE {backend.names.events} SET body = '[not a stored event' WHERE id = :id"  # noqa: S608 - a quoted table name
    await backend._db.execute(sql, {"id": event_id})
