"""Test helpers for the Advanced Alchemy backend."""

from __future__ import annotations

from litestar_queues.backends.advanced_alchemy.backend import AdvancedAlchemyBackend

__all__ = ("corrupt_args", "corrupt_event")


async def corrupt_args(backend: AdvancedAlchemyBackend, record_id: str) -> str:
    """Store text that is not JSON in the ``args`` column of a record, so that it no longer decodes.

    The conformance suite's ``corrupt_record`` hook (see ``UndecodableConformance``):
    ``functools.partial(corrupt_args, backend)``. Returns the field it broke, ``"args"``.
    """
    tasks = backend.tables.tasks
    async with backend.engine.begin() as connection:
        await connection.execute(tasks.update().where(tasks.c.id == record_id).values(args="not json"))
    return "args"


async def corrupt_event(backend: AdvancedAlchemyBackend, event_id: str) -> None:
    """Store text that is no event in the ``body`` of a stored event, so that it no longer decodes.

    The conformance suite's ``corrupt_event`` hook (see ``EventHistoryConformance``):
    ``functools.partial(corrupt_event, backend)``.
    """
    events = backend.tables.events
    async with backend.engine.begin() as connection:
        await connection.execute(events.update().where(events.c.id == event_id).values(body="[not a stored event"))
