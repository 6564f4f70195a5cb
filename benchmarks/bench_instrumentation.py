"""What OpenTelemetry instrumentation costs: drains and enqueues on memory, off and on, interleaved in one run.

Variants, each measured every round in turn:

* ``off``: no instrumentation (``QueueConfig.instrumentation=None``);
* ``API only``: ``OpenTelemetryInstrumentation`` with the API's no-op providers (the library's own work, no SDK);
* ``on``: the SDK recording every span and measurement, a ``BatchSpanProcessor`` and a periodic metric reader, both
  exporting to nowhere (``no-op exporter``);
* ``on, 10% sampled``: the same with ``ParentBased(TraceIdRatioBased(0.1))``;
* ``on, metrics only``: the SDK's metrics, ``traces=False``.

Every job of a drain is enqueued on its own (outside the timed part), as if by a request of its own: with
instrumentation on, each carries its own trace context, so an attempt restores a context no other attempt shares,
and the 10 % sampler decides per trace, as in production.

Rates are jobs per second of CPU time of the process (its threads included: the SDK's export threads count), which a
busy shared machine disturbs far less than wall-clock time; the wall-clock rates are printed too.

The ``floor`` of a variant, measured in the same rounds, is what its OpenTelemetry calls cost for one attempt with
no queue work around them (:class:`BareCalls`, called in a loop over claimed records): restoring the creation
context, starting the ``process`` span with its attributes, two events, making it current and not, one more
attribute, ending it, and the two histogram measurements, each on the variant's own tracer and meter. No
instrumentation recording the same can cost less, so a variant's best possible drain is ``1 / (1 / off + floor)``
jobs per CPU second; the second table shows that bound beside the measured rate, and what the instrumentation adds
per attempt (``1 / measured - 1 / off``) against the floor.

The same calls cost more inside a drain than in that loop (the span outlives other work, the export thread runs
between attempts, caches are colder), so ``bare ... calls in a drain`` runs :class:`BareCalls` as the
instrumentation of a drain (no-op drains only): a second, higher floor, which the variant it shadows can be compared
with directly.

Run::

    uv run --project benchmarks python benchmarks/bench_instrumentation.py [--jobs 20000] [--rounds 5]

CPU time on a shared machine moves with the load; instructions do not. ``--one VARIANT`` only enqueues and drains
``--jobs`` jobs of one variant, for counting what a job costs in instructions under valgrind, whatever the load::

    count() { PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null benchmarks/.venv/bin/python \\
        benchmarks/bench_instrumentation.py --one "$1" --jobs "$2" 2>&1 | awk '/Collected/ {print $4}'; }
    echo $(( ($(count off 1200) - $(count off 200)) / 1000 ))   # instructions per job (its enqueue included)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NoOpTracerProvider, Span, SpanKind

from harness import Result, Timer, machine_summary, markdown_table, rate
from litestar_queues import QueueConfig, QueueService, Task, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.instrumentation import TRACE_CONTEXT_KEY, Instrumentation
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation
from litestar_queues.opentelemetry.instrumentation import _attempt_attributes
from litestar_queues.records import EnqueueOutcome, Outcome, TaskRecord, TaskStatus

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


@task("bench.busy", registry=registry)
async def busy(n: int) -> None:
    """About a millisecond of CPU work: a task that does something, for scale."""
    deadline = time.thread_time() + 0.001
    while time.thread_time() < deadline:
        pass


class NoSpans(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class NoMetrics(MetricExporter):
    def export(self, metrics_data: object, timeout_millis: float = 10_000, **kwargs: object) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        return None


OPEN: list[TracerProvider | MeterProvider] = []
"""The SDK providers made since the last :func:`close` (their export threads run until shut down)."""


def sdk(sampler: Sampler | None = None, *, traces: bool = True) -> Callable[[], Instrumentation]:
    def make() -> Instrumentation:
        tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(NoSpans()))
        reader = PeriodicExportingMetricReader(NoMetrics(), export_interval_millis=5_000)
        meter_provider = MeterProvider(metric_readers=[reader])
        OPEN.extend((tracer_provider, meter_provider))
        return OpenTelemetryInstrumentation(
            tracer_provider=tracer_provider, meter_provider=meter_provider, traces=traces
        )

    return make


def close() -> None:
    """Shut the SDK providers made for the last measurement down, outside any timed part."""
    while OPEN:
        OPEN.pop().shutdown()


class BareCalls(Instrumentation):
    """The OpenTelemetry calls one successful attempt needs and nothing else, on the tracer and instruments of an
    :class:`OpenTelemetryInstrumentation` (which does the enqueues): the yardstick of the floor, not an
    instrumentation to use (no errors, retries, counters, logs' trace ids or ``finish`` spans)."""

    def __init__(self, instrumentation: OpenTelemetryInstrumentation) -> None:
        self.instrumentation = instrumentation
        self.tracer = instrumentation.tracer
        self.metrics = instrumentation.metrics

    async def enqueue(
        self, records: Sequence[TaskRecord], send: Callable[[], Awaitable[list[EnqueueOutcome]]]
    ) -> list[EnqueueOutcome]:
        return await self.instrumentation.enqueue(records, send)

    async def attempt(self, record: TaskRecord, run: Callable[[], Awaitable[TaskRecord | None]]) -> TaskRecord | None:
        span, token, started = self.begin(record)
        final = await run()
        self.end(record, span, token, started)
        return final

    async def finish(
        self, record: TaskRecord, outcome: Outcome, write: Callable[[], Awaitable[TaskRecord | None]]
    ) -> TaskRecord | None:
        final = await write()
        if self.tracer is not None:
            self.finished(trace.get_current_span())
        return final

    def begin(self, record: TaskRecord) -> tuple[Span | None, object, float]:
        """Start the attempt's span and make it current: the span, the context's token, the start time."""
        started = time.perf_counter()
        if self.tracer is None:
            return None, None, started
        carrier = record.metadata.get(TRACE_CONTEXT_KEY)
        parent = propagate.extract(carrier) if carrier else None
        attributes = _attempt_attributes(record)  # the same attributes: building them is part of any attempt's span
        span = self.tracer.start_span(f"process {record.queue}", parent, SpanKind.CONSUMER, attributes)
        span.add_event("claim", timestamp=time.time_ns())
        return span, otel_context.attach(trace.set_span_in_context(span, parent)), started

    def finished(self, span: Span) -> None:
        """The outcome's write, as an event of the attempt's span."""
        written = {"litestar_queues.task.status": "completed", "litestar_queues.finish.duration": 1e-5}
        span.add_event("finish", written, timestamp=time.time_ns())

    def end(self, record: TaskRecord, span: Span | None, token: object, started: float) -> None:
        """Make the span no longer current and end it; measure the attempt's wait and run."""
        if span is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
            span.set_attribute("litestar_queues.task.status", "completed")
            span.end()
        if self.metrics is not None and record.started_at is not None:
            waited = (record.started_at - record.scheduled_at).total_seconds()
            self.metrics.wait_duration.record(waited, {"queue": record.queue, "task": record.task_name})
            ran = {"queue": record.queue, "task": record.task_name, "status": "completed"}
            self.metrics.run_duration.record(time.perf_counter() - started, ran)


def bare(make: Callable[[], Instrumentation | None]) -> Callable[[], Instrumentation]:
    def make_bare() -> Instrumentation:
        instrumentation = make()
        assert isinstance(instrumentation, OpenTelemetryInstrumentation)
        return BareCalls(instrumentation)

    return make_bare


VARIANTS: dict[str, Callable[[], Instrumentation | None]] = {
    "off": lambda: None,
    "API only": lambda: OpenTelemetryInstrumentation(
        tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
    ),
    "on (SDK, no-op exporters)": sdk(),
    "on, 10% sampled": sdk(ParentBased(TraceIdRatioBased(0.1))),
    "on, metrics only": sdk(traces=False),
}
REFERENCES: dict[str, Callable[[], Instrumentation | None]] = {
    "bare API calls in a drain": bare(VARIANTS["API only"]),
    "bare SDK calls in a drain": bare(VARIANTS["on (SDK, no-op exporters)"]),
}
"""Measured on no-op drains only; each shadows a variant (same providers), for the floor table."""
SHADOWS = {"API only": "bare API calls in a drain", "on (SDK, no-op exporters)": "bare SDK calls in a drain"}


class CpuTimer(Timer):
    """A stopwatch of wall-clock and process CPU time."""

    def __enter__(self) -> CpuTimer:
        self.cpu_start = time.process_time()
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.cpu_seconds = time.process_time() - self.cpu_start


async def drain(
    instrumentation: Instrumentation | None, jobs: int, concurrency: int, function: Task[..., None] = noop
) -> tuple[float, float]:
    worker = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05)
    config = QueueConfig(queue_backend="memory", worker=worker, instrumentation=instrumentation)
    async with QueueService(config, registry=registry) as service:
        for n in range(jobs):  # one by one: a trace context of its own each
            await service.enqueue(function, n)
        gc.collect()
        with CpuTimer() as timer:
            done = await Worker(service).run_until_idle(timeout=600)
        assert done == jobs, f"drained {done} of {jobs}"
    return rate(jobs, timer.cpu_seconds), rate(jobs, timer.seconds)


async def enqueue_single(instrumentation: Instrumentation | None, jobs: int) -> tuple[float, float]:
    config = QueueConfig(queue_backend="memory", instrumentation=instrumentation)
    async with QueueService(config, registry=registry) as service:
        gc.collect()
        with CpuTimer() as timer:
            for n in range(jobs):
                await service.enqueue(noop, n)
    return rate(jobs, timer.cpu_seconds), rate(jobs, timer.seconds)


async def floor(instrumentation: Instrumentation | None, attempts: int) -> float:
    """CPU seconds per attempt of the OpenTelemetry calls alone that ``instrumentation`` makes for one attempt of a
    no-op task (see the module's docstring); 0 for no instrumentation."""
    if not isinstance(instrumentation, OpenTelemetryInstrumentation):
        return 0.0
    calls = BareCalls(instrumentation)
    now = datetime.now(timezone.utc)
    records = []
    for n in range(attempts):  # claimed records carrying their creation contexts, made outside the timed part
        record = TaskRecord(id=f"{n:032x}", task_name=noop.name, created_at=now, scheduled_at=now)
        await instrumentation.enqueue([record], partial(_created, record))
        claimed = {"status": TaskStatus.RUNNING, "attempts": 1, "owner": "worker-1", "token": 1}
        records.append(msgspec.structs.replace(record, started_at=now + timedelta(microseconds=50), **claimed))
    gc.collect()
    started = time.process_time()
    for record in records:
        span, token, began = calls.begin(record)
        if span is not None:
            calls.finished(span)
        calls.end(record, span, token, began)
    return (time.process_time() - started) / attempts


async def _created(record: TaskRecord) -> list[EnqueueOutcome]:
    return [EnqueueOutcome(record, created=True)]


DRAIN = "drain no-op, concurrency {}"
FLOOR = "floor"


async def measure(
    name: str, make: Callable[[], Instrumentation | None], jobs: int, concurrency: Sequence[int], *, full: bool
) -> dict[tuple[str, str], tuple[float, float]]:
    """One round of one variant: (CPU, wall-clock) rates by (variant, metric); with ``full``, also its enqueues, its
    1 ms drain and its floor (CPU seconds per attempt, twice)."""
    measured: dict[tuple[str, str], tuple[float, float]] = {}
    for c in concurrency:
        measured[(name, DRAIN.format(c))] = await drain(make(), jobs, c)
        close()
    if full:
        measured[(name, "enqueue (single)")] = await enqueue_single(make(), jobs // 4)
        close()
        measured[(name, "drain 1 ms CPU tasks, concurrency 10")] = await drain(make(), jobs // 10, 10, busy)
        close()
        seconds = await floor(make(), jobs)
        measured[(name, FLOOR)] = (seconds, seconds)
        close()
    return measured


async def main(jobs: int, rounds: int, concurrency: Sequence[int]) -> tuple[list[Result], list[str]]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_number in range(rounds):
        for name, make in (*VARIANTS.items(), *REFERENCES.items()):
            print(f"round {round_number + 1}: {name}", flush=True)
            for key, value in (await measure(name, make, jobs, concurrency, full=name in VARIANTS)).items():
                samples.setdefault(key, []).append(value)
    cpu = {key: statistics.median(value[0] for value in values) for key, values in samples.items()}
    results = []
    for (name, metric), values in samples.items():
        if metric == FLOOR:
            continue
        off_cpu = cpu[("off", metric)]
        wall, off_wall = (
            statistics.median(value[1] for value in samples[key]) for key in ((name, metric), ("off", metric))
        )
        spread = f"{min(v[0] for v in values) / off_cpu:.0%} to {max(v[0] for v in values) / off_cpu:.0%}"
        unit = (
            f"jobs/CPU-s ({cpu[(name, metric)] / off_cpu:.0%} of off, rounds {spread}); "
            f"wall {wall:,.0f} jobs/s ({wall / off_wall:.0%})"
        )
        results.append(Result(name, metric, cpu[(name, metric)], unit))
    return results, floors(cpu, concurrency)


def floors(cpu: dict[tuple[str, str], float], concurrency: Sequence[int]) -> list[str]:
    """A Markdown table: per variant and no-op drain, the floor and the best rate it allows, the bare calls in a
    drain, and the measured rate, with what each adds per attempt to ``off``."""
    lines = [
        "| variant | drain | floor µs/attempt | best possible | bare calls in a drain: added µs/attempt (% of off)"
        " | measured: added µs/attempt (% of off) | added / floor | added / bare calls in a drain |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in VARIANTS:
        if name == "off":
            continue
        floor_seconds = cpu[(name, FLOOR)]
        for c in concurrency:
            metric = DRAIN.format(c)
            off, measured = cpu[("off", metric)], cpu[(name, metric)]
            added = 1 / measured - 1 / off
            shadow = SHADOWS.get(name)
            if shadow is None:
                bare_cell, versus_bare = "", ""
            else:
                bare_added = 1 / cpu[(shadow, metric)] - 1 / off
                bare_cell = f"{bare_added * 1e6:.1f} ({cpu[(shadow, metric)] / off:.0%})"
                versus_bare = f"{added / bare_added:.2f}x"
            best = 1 / (1 / off + floor_seconds)
            lines.append(
                f"| {name} | c{c} | {floor_seconds * 1e6:.1f} | {best / off:.0%} | {bare_cell} "
                f"| {added * 1e6:.1f} ({measured / off:.0%}) | {added / floor_seconds:.2f}x | {versus_bare} |"
            )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument(
        "--one",
        metavar="VARIANT",
        choices=[*VARIANTS, *REFERENCES],
        help="only enqueue and drain --jobs jobs of VARIANT at the first --concurrency, once: for instruction counts",
    )
    arguments = parser.parse_args()
    if arguments.one is not None:
        make = {**VARIANTS, **REFERENCES}[arguments.one]
        asyncio.run(drain(make(), arguments.jobs, arguments.concurrency[0]))
        close()
        raise SystemExit
    load = os.getloadavg()
    measured, floor_table = asyncio.run(main(arguments.jobs, arguments.rounds, arguments.concurrency))
    print(
        machine_summary(),
        f"- {arguments.jobs} jobs, {arguments.rounds} interleaved rounds, medians;",
        f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after",
    )
    print(markdown_table(measured))
    print()
    print("\n".join(floor_table))
    for result in measured:
        print(f"{result.system:28} {result.metric:36} {result.value:10,.0f} {result.unit}")
