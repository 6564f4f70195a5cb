"""Progress on the record: the latest progress each running attempt reported, written in batches."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from litestar_queues.batching import WriteBatcher
from litestar_queues.errors import SerializationError
from litestar_queues.records import Lease, TaskProgress, TaskRecord

if TYPE_CHECKING:
    from litestar_queues.backend import QueueBackend
    from litestar_queues.clock import Clock

__all__ = ("ProgressReporter", "progress_percent")

logger = logging.getLogger("litestar_queues.worker")


def progress_percent(current: float, total: float | None) -> float | None:
    """``current * 100 / total`` rounded to two decimals, or ``None`` when ``total`` is unknown or zero."""
    return round(current * 100.0 / total, 2) if total else None


class ProgressReporter:
    """Keeps each running attempt's latest progress on its record (``QueueBackend.save_progress``, under its fence).

    The writes of every attempt running in the process share batches, so reporting progress costs a task one
    batched round trip, not one of its own. A failed write is logged and the attempt goes on: progress is a view
    of the work, not the work.
    """

    __slots__ = ("_clock", "_writes")

    def __init__(self, backend: QueueBackend, clock: Clock, *, max_batch: int = 500) -> None:
        self._clock = clock
        self._writes: WriteBatcher[tuple[Lease, TaskProgress]] = WriteBatcher(
            backend.save_progress, max_batch=max_batch
        )

    def measure(
        self, record: TaskRecord, current: float, total: float | None = None, message: str | None = None
    ) -> TaskProgress:
        """The progress of the attempt running ``record`` (as claimed), as :meth:`save` stores it.

        Raises:
            SerializationError: ``current`` or ``total`` is not a finite number.
        """
        for name, value in (("current", current), ("total", total)):
            if value is not None and (
                type(value) is bool or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise SerializationError(f"progress {name} must be a finite number, got {value!r}")
        return TaskProgress(
            current=current,
            total=total,
            percent=progress_percent(current, total),
            message=message,
            attempt=record.attempts,
            updated_at=self._clock.now(),
        )

    async def save(self, record: TaskRecord, progress: TaskProgress) -> None:
        """Store ``progress`` on ``record`` under the attempt's fence, in the next shared batch; a failure is logged."""
        try:
            await self._writes.submit((record.lease, progress))
        except Exception:
            logger.warning("task %s (%s): storing its progress failed", record.id, record.task_name, exc_info=True)

    async def flush(self) -> None:
        """Wait until every progress reported so far is written (or failed)."""
        await self._writes.flush()
