"""``OpenTelemetryInstrumentation``: traces that follow work from its enqueue to its attempts, and queue metrics.

Spans follow the OpenTelemetry messaging semantic conventions (``{operation} {queue}`` names, ``messaging.*``
attributes, span kinds by operation type):

* ``enqueue <queue>`` (PRODUCER, operation type ``send``) around an enqueue; its context is the creation context
  stored with every record it writes (``TaskRecord.metadata["trace_context"]``), unless the caller stored one of its
  own there;
* ``process <queue>`` (CONSUMER, ``process``) around an attempt, wherever it runs (a worker, the Cloud Run entry
  point, an ``immediate`` enqueue): a child of the creation context on the first attempt, the root of a new trace
  linked to it on a retry. It is current while the task's code runs, so the task's own spans nest under it. Its
  ``claim`` event marks when the worker claimed the record, its ``finish`` event the write of the outcome; a failed
  attempt sets its status to error, ``error.type`` and an ``exception`` event;
* ``finish <queue>`` (CLIENT, ``settle``) around the write of the outcome of an attempt that did not run here (a
  dispatch that failed, an attempt that stopped elsewhere and is reconciled).

One span per attempt, not three: with the Python SDK a recorded span costs about as much as running a no-op task, so
the claim and the outcome's write are events of it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, TypeVar

from litestar_queues.instrumentation import TRACE_CONTEXT_KEY, Instrumentation, stored_trace_id
from litestar_queues.opentelemetry.metrics import QueueMetrics
from litestar_queues.records import EnqueueOutcome, Outcome, TaskRecord, TaskStatus
from opentelemetry import context as otel_context
from opentelemetry import metrics as otel_metrics
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from litestar_queues.worker import Worker

__all__ = ("MESSAGING_SYSTEM", "SCOPE", "OpenTelemetryInstrumentation")

SCOPE = "litestar_queues"
"""The instrumentation scope (tracer and meter name)."""
MESSAGING_SYSTEM = "litestar_queues"
"""The ``messaging.system`` attribute of every span."""

try:
    _VERSION = version("litestar-queues-opentelemetry")
except PackageNotFoundError:  # pragma: no cover - run from a source tree without metadata
    _VERSION = ""

T = TypeVar("T")

_ATTEMPT_SPAN = otel_context.create_key("litestar_queues.attempt_span")
"""Where the context of a running attempt holds its ``process`` span (its outcome's write becomes an event of it)."""
_ERROR_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.PENDING})
"""Outcomes of a failed attempt (failed for good, or retrying); a hand-back is told apart by its refunded attempt."""


class OpenTelemetryInstrumentation(Instrumentation):
    """Traces and metrics through the OpenTelemetry API, for ``QueueConfig(instrumentation=...)``.

    It uses the global tracer and meter providers unless given others (set them once at start-up, as Litestar's
    ``OpenTelemetryConfig`` does), and the global propagator (W3C Trace Context and Baggage by default) to store and
    restore the trace context. Without an SDK installed every call is a no-op of the API.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
        traces: bool = True,
        metrics: bool = True,
    ) -> None:
        """Create the instrumentation.

        Args:
            tracer_provider: Where spans go; the global provider when ``None``.
            meter_provider: Where metrics go; the global provider when ``None``.
            propagator: How the trace context is stored with a record and restored; the global one when ``None``.
            traces: Record spans.
            metrics: Record metrics.
        """
        self.tracer = trace.get_tracer(SCOPE, _VERSION, tracer_provider) if traces else None
        """The tracer spans come from (``None`` with ``traces=False``)."""
        self.metrics = QueueMetrics(otel_metrics.get_meter(SCOPE, _VERSION, meter_provider)) if metrics else None
        """The instruments (``None`` with ``metrics=False``)."""
        self._propagator = propagator
        self._extracted: tuple[dict[str, Any], otel_context.Context] | None = None
        """The last carrier restored and its context: the records of one batch share one creation context."""

    # -- hooks ---------------------------------------------------------------------------------------

    async def enqueue(
        self, records: Sequence[TaskRecord], send: Callable[[], Awaitable[list[EnqueueOutcome]]]
    ) -> list[EnqueueOutcome]:
        """Send the records inside an ``enqueue`` span whose context they carry; count the new ones."""
        tracer = self.tracer
        if tracer is None:
            outcomes = await send()
        else:
            queues = {record.queue for record in records}
            queue = queues.pop() if len(queues) == 1 else None
            attributes: dict[str, Any] = {
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation.name": "enqueue",
                "messaging.operation.type": "send",
            }
            if queue is not None:
                attributes["messaging.destination.name"] = queue
            if len(records) == 1:
                attributes["litestar_queues.task.name"] = records[0].task_name
            else:
                attributes["messaging.batch.message_count"] = len(records)
            span = tracer.start_span(
                "enqueue" if queue is None else f"enqueue {queue}", kind=SpanKind.PRODUCER, attributes=attributes
            )
            try:
                context = trace.set_span_in_context(span)
                if span.get_span_context().is_valid:
                    carrier: dict[str, str] = {}
                    self._inject(carrier, context)
                    for record in records:  # a creation context of the caller's own is kept
                        record.metadata.setdefault(TRACE_CONTEXT_KEY, dict(carrier))
                outcomes = await _within(span, context, send)
                if len(outcomes) == 1 and span.is_recording():
                    span.set_attribute("messaging.message.id", outcomes[0].id)
                    if not outcomes[0].created:
                        span.set_attribute("litestar_queues.deduplicated", True)
            finally:
                span.end()
        if self.metrics is not None:
            self.metrics.count_enqueued(outcome.record for outcome in outcomes if outcome.created)
        return outcomes

    async def attempt(self, record: TaskRecord, run: Callable[[], Awaitable[TaskRecord | None]]) -> TaskRecord | None:
        """Run the attempt inside a ``process`` span (current while the task's code runs); record its metrics."""
        meters = self.metrics
        if meters is not None:
            meters.attempt_started(record)
        tracer = self.tracer
        started = time.perf_counter()
        if tracer is None:
            final = await run()
        else:
            parent, links = self._origin(record)
            span = tracer.start_span(
                f"process {record.queue}", parent, SpanKind.CONSUMER, _attempt_attributes(record), links
            )
            recording = span.is_recording()
            if recording and record.started_at is not None:
                span.add_event("claim", timestamp=int(record.started_at.timestamp() * 1e9))
            context = otel_context.set_value(_ATTEMPT_SPAN, span, trace.set_span_in_context(span, parent))
            try:
                final = await _within(span, context, run)
                if recording:
                    _describe_outcome(span, record, final)
            finally:
                span.end()
        if meters is not None:
            meters.attempt_ended(record, _outcome_name(record, final), time.perf_counter() - started)
        return final

    async def finish(
        self, record: TaskRecord, outcome: Outcome, write: Callable[[], Awaitable[TaskRecord | None]]
    ) -> TaskRecord | None:
        """Write the outcome: a ``finish`` event of the attempt's span, or a ``finish`` span of its own when the
        attempt did not run here (in the record's trace); count it."""
        tracer = self.tracer
        if tracer is None:
            final = await write()
        else:
            attempt = otel_context.get_value(_ATTEMPT_SPAN)
            if isinstance(attempt, Span):
                began = time.time_ns()
                final = await write()
                if attempt.is_recording():
                    written = {
                        "litestar_queues.task.status": outcome.status.value,
                        "litestar_queues.finish.duration": (time.time_ns() - began) / 1e9,
                    }
                    attempt.add_event("finish", written, timestamp=began)
            else:
                parent, links = self._origin(record)
                attributes = {
                    "messaging.system": MESSAGING_SYSTEM,
                    "messaging.operation.name": "finish",
                    "messaging.operation.type": "settle",
                    "messaging.destination.name": record.queue,
                    "messaging.message.id": record.id,
                    "litestar_queues.task.status": outcome.status.value,
                }
                span = tracer.start_span(f"finish {record.queue}", parent, SpanKind.CLIENT, attributes, links)
                try:
                    final = await _within(span, trace.set_span_in_context(span, parent), write)
                    if final is None and span.is_recording():
                        span.set_attribute("litestar_queues.fence_lost", True)
                finally:
                    span.end()
        if final is not None and self.metrics is not None:
            self.metrics.outcome_written(outcome, final)
        return final

    async def tick(self, worker: Worker) -> None:
        """Take the queue gauges' snapshot: statistics of every queue the worker knows or finds paused, the live
        workers and the paused queues."""
        if self.metrics is None:
            return
        backend = worker.service.backend
        paused = await backend.paused_queues()
        queues = sorted({*worker.queues, *(task.options.queue for task in worker.service.registry), *paused})
        now = worker.service.clock.now()
        statistics = [await backend.statistics(now=now, queue=queue) for queue in queues]
        workers = await backend.list_workers(now=now)
        self.metrics.take_snapshot(statistics, workers, paused, now, ttl=3 * worker.config.maintenance_interval)

    def trace_id(self, record: TaskRecord) -> str | None:
        """The current span's trace id (the attempt's), else the one stored at the enqueue."""
        span_context = trace.get_current_span().get_span_context()
        return format(span_context.trace_id, "032x") if span_context.is_valid else stored_trace_id(record)

    # -- context propagation -------------------------------------------------------------------------

    def _inject(self, carrier: dict[str, str], context: otel_context.Context) -> None:
        if self._propagator is None:
            propagate.inject(carrier, context)
        else:
            self._propagator.inject(carrier, context)

    def _origin(self, record: TaskRecord) -> tuple[otel_context.Context | None, Sequence[Link]]:
        """The parent context and links of a span about ``record``: its creation context as the parent on the first
        attempt; on a retry, no parent span (a new trace, with the creation context's baggage) and a link to it."""
        carrier = record.metadata.get(TRACE_CONTEXT_KEY)
        if not isinstance(carrier, dict) or not carrier:
            return None, ()
        extracted = self._extracted
        if extracted is not None and extracted[0] == carrier:
            context = extracted[1]
        else:
            context = propagate.extract(carrier) if self._propagator is None else self._propagator.extract(carrier)
            self._extracted = (carrier, context)
        if record.attempts <= 1:
            return context, ()
        creation = trace.get_current_span(context).get_span_context()
        links = (Link(creation),) if creation.is_valid else ()
        return trace.set_span_in_context(INVALID_SPAN, context), links


async def _within(span: Span, context: otel_context.Context, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` with ``context`` (holding ``span``) current; an exception passing through marks ``span``."""
    token = otel_context.attach(context)
    try:
        return await call()
    except BaseException as exc:
        if span.is_recording():
            span.set_attribute("error.type", f"{type(exc).__module__}.{type(exc).__qualname__}")
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        otel_context.detach(token)


def _attempt_attributes(record: TaskRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.queue,
        "messaging.message.id": record.id,
        "litestar_queues.task.name": record.task_name,
        "litestar_queues.task.attempt": record.attempts,
    }
    if record.owner:
        attributes["messaging.client.id"] = record.owner
    return attributes


def _outcome_name(record: TaskRecord, final: TaskRecord | None) -> str:
    """``completed``, ``failed``, ``cancelled``, ``retrying``, ``handed_back`` (a shutdown gave it back without using
    up the attempt) or ``lost`` (the lease was lost: nothing written)."""
    if final is None:
        return "lost"
    if final.status is TaskStatus.PENDING:
        return "handed_back" if final.attempts < record.attempts else "retrying"
    status: str = final.status.value
    return status


def _describe_outcome(span: Span, record: TaskRecord, final: TaskRecord | None) -> None:
    name = _outcome_name(record, final)
    span.set_attribute("litestar_queues.task.status", name)
    error = final.error if final is not None and final.status in _ERROR_STATUSES and name != "handed_back" else None
    if error is None:
        return
    span.set_attribute("error.type", error.type)
    span.add_event(
        "exception",
        {
            "exception.type": error.type,
            "exception.message": error.message,
            "exception.stacktrace": error.traceback or "",
        },
    )
    span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
