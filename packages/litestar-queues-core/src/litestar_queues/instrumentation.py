"""Hooks around the life of work, for tracing, metrics and the like: ``QueueConfig(instrumentation=...)``.

An :class:`Instrumentation` wraps the calls that matter to an observer: an enqueue, an attempt (its whole run in
this process, the task's code and its outcome's write included), the write of an outcome, and the maintenance pass of
the worker holding the maintenance lock. Each wrapping hook receives the call not yet started, as a zero-argument
callable, and must call it exactly once and return what it returns (or let what it raises through). With no
instrumentation configured nothing here runs: the service, runner and worker test one attribute for ``None``.

``litestar-queues-opentelemetry`` implements it with OpenTelemetry traces and metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from litestar_queues.records import EnqueueOutcome, Outcome, TaskRecord

if TYPE_CHECKING:
    from litestar_queues.worker import Worker

__all__ = ("TRACE_CONTEXT_KEY", "Instrumentation", "stored_trace_id")

TRACE_CONTEXT_KEY = "trace_context"
"""The ``TaskRecord.metadata`` key under which an enqueue stores the trace context of its caller: the carrier of the
configured propagator, a ``{"traceparent": "00-<trace id>-<span id>-<flags>", ...}`` mapping for W3C Trace Context."""


def stored_trace_id(record: TaskRecord) -> str | None:
    """The trace id in the W3C ``traceparent`` stored with ``record`` at its enqueue, or ``None``."""
    carrier = record.metadata.get(TRACE_CONTEXT_KEY)
    traceparent = carrier.get("traceparent") if isinstance(carrier, dict) else None
    if isinstance(traceparent, str) and len(traceparent) >= 55 and traceparent[2] == "-":
        return traceparent[3:35]
    return None


class Instrumentation:
    """Observes enqueues, attempts, outcome writes and maintenance passes. Subclass it and override what you need;
    every hook here does nothing but proceed."""

    async def enqueue(
        self, records: Sequence[TaskRecord], send: Callable[[], Awaitable[list[EnqueueOutcome]]]
    ) -> list[EnqueueOutcome]:
        """Around the backend call writing new ``records`` (one ``enqueue``/``enqueue_many`` call of the service).

        ``send`` has not started, so ``records`` (their ``metadata``) may still be changed: that is how a trace
        context travels with the work.
        """
        return await send()

    async def attempt(self, record: TaskRecord, run: Callable[[], Awaitable[TaskRecord | None]]) -> TaskRecord | None:
        """Around one attempt of the claimed ``record`` in this process: the task's code, the write of its outcome and
        the lifecycle events, in the asyncio task (and context) that runs the task's code.

        ``run`` returns the record as the outcome left it, or ``None`` when the attempt's lease was lost (nothing was
        written). Exceptions of the task's code do not pass through here: they become the outcome (``status``,
        ``error``).
        """
        return await run()

    async def finish(
        self, record: TaskRecord, outcome: Outcome, write: Callable[[], Awaitable[TaskRecord | None]]
    ) -> TaskRecord | None:
        """Around the write of ``outcome`` for the running ``record`` under its fence: after an attempt, and when an
        attempt ends without running here (a dispatch that failed, an attempt that stopped elsewhere).

        ``write`` returns the updated record, or ``None`` when the fence failed (nothing changed).
        """
        return await write()

    async def tick(self, worker: Worker) -> None:
        """Called by the worker holding the maintenance lock, once per maintenance pass (every
        ``WorkerConfig.maintenance_interval``): the place to sample queue-wide state cheaply, never per job.

        An exception is logged and the pass goes on.
        """

    def trace_id(self, record: TaskRecord) -> str | None:
        """The id of the trace the current attempt of ``record`` belongs to, for log lines: by default the one stored
        at its enqueue."""
        return stored_trace_id(record)
