"""Test helpers for the Advanced Alchemy backend."""

from __future__ import annotations

from litestar_queues.backends.advanced_alchemy.backend import AdvancedAlchemyBackend

__all__ = ("corrupt_args",)


async def corrupt_args(backend: AdvancedAlchemyBackend, record_id: str) -> str:
    """Store text that is not JSON in the ``args`` column of a record, so that it no longer decodes.

    The conformance suite's ``corrupt_record`` hook (see ``UndecodableConformance``):
    ``functools.partial(corrupt_args, backend)``. Returns the field it broke, ``"args"``.
    """
    tasks = backend.tables.tasks
    async with backend.engine.begin() as connection:
        await connection.execute(tasks.update().where(tasks.c.id == record_id).values(args="not json"))
    return "args"
