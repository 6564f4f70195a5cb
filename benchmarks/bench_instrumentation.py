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
no queue work around them: restoring the creation context, starting the ``process`` span with its attributes, two
events, making it current and not, one more attribute, ending it, and the two histogram measurements, each on the
variant's own tracer and meter. No instrumentation recording the same can cost less, so a variant's best possible
drain is ``1 / (1 / off + floor)`` jobs per CPU second; the table shows that bound beside the measured rate, and what
the instrumentation adds per attempt (``1 / on - 1 / off``) against the floor.

Run::

    uv run --project benchmarks python benchmarks/bench_instrumentation.py [--jobs 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NoOpTracerProvider, SpanKind

from harness import Result, Timer, machine_summary, markdown_table, rate
from litestar_queues import QueueConfig, QueueService, Task, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.instrumentation import Instrumentation
from litestar_queues.opentelemetry import MESSAGING_SYSTEM, OpenTelemetryInstrumentation

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


VARIANTS: dict[str, Callable[[], Instrumentation | None]] = {
    "off": lambda: None,
    "API only": lambda: OpenTelemetryInstrumentation(
        tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
    ),
    "on (SDK, no-op exporters)": sdk(),
    "on, 10% sampled": sdk(ParentBased(TraceIdRatioBased(0.1))),
    "on, metrics only": sdk(traces=False),
}


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


def floor(instrumentation: Instrumentation | None, attempts: int) -> float:
    """CPU seconds per attempt of the OpenTelemetry calls alone that ``instrumentation`` makes for one attempt of a
    no-op task (see the module's docstring); 0 for no instrumentation."""
    if not isinstance(instrumentation, OpenTelemetryInstrumentation):
        return 0.0
    tracer, metrics = instrumentation.tracer, instrumentation.metrics
    carriers: list[dict[str, str]] = []
    attributes: list[dict[str, str | int]] = []
    for n in range(attempts):  # what the records carry, prepared outside the timed part
        enqueued = tracer.start_span("enqueue default", kind=SpanKind.PRODUCER) if tracer is not None else None
        carrier: dict[str, str] = {}
        if enqueued is not None and enqueued.get_span_context().is_valid:
            propagate.inject(carrier, trace.set_span_in_context(enqueued))
            enqueued.end()
        carriers.append(carrier)
        attributes.append(
            {
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation.name": "process",
                "messaging.operation.type": "process",
                "messaging.destination.name": "default",
                "messaging.message.id": f"{n:032x}",
                "litestar_queues.task.name": "bench.noop",
                "litestar_queues.task.attempt": 1,
                "messaging.client.id": "worker-1",
            }
        )
    waited, ran = (
        {"queue": "default", "task": "bench.noop"},
        {"queue": "default", "task": "bench.noop", "status": "completed"},
    )
    gc.collect()
    started = time.process_time()
    for n in range(attempts):
        if tracer is not None:
            carrier = carriers[n]
            parent = propagate.extract(carrier) if carrier else None
            span = tracer.start_span("process default", parent, SpanKind.CONSUMER, attributes[n])
            now = time.time_ns()
            span.add_event("claim", timestamp=now)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            span.add_event(
                "finish",
                {"litestar_queues.task.status": "completed", "litestar_queues.finish.duration": 1e-6},
                timestamp=now,
            )
            otel_context.detach(token)
            span.set_attribute("litestar_queues.task.status", "completed")
            span.end()
        if metrics is not None:
            metrics.wait_duration.record(0.001, waited)
            metrics.run_duration.record(0.00002, ran)
    return (time.process_time() - started) / attempts


async def measure(
    name: str, make: Callable[[], Instrumentation | None], jobs: int, concurrency: Sequence[int]
) -> dict[tuple[str, str], tuple[float, float]]:
    """One round of one variant: (CPU, wall-clock) rates by (variant, metric), and its floor in seconds."""
    measured: dict[tuple[str, str], tuple[float, float]] = {}
    for c in concurrency:
        measured[(name, f"drain no-op, concurrency {c}")] = await drain(make(), jobs, c)
        close()
    measured[(name, "enqueue (single)")] = await enqueue_single(make(), jobs // 4)
    close()
    measured[(name, "drain 1 ms CPU tasks, concurrency 10")] = await drain(make(), jobs // 10, 10, busy)
    close()
    seconds = floor(make(), jobs)
    measured[(name, FLOOR)] = (seconds, seconds)
    close()
    return measured


FLOOR = "floor"


async def main(jobs: int, rounds: int, concurrency: Sequence[int]) -> tuple[list[Result], list[str]]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_number in range(rounds):
        for name, make in VARIANTS.items():
            print(f"round {round_number + 1}: {name}", flush=True)
            for key, value in (await measure(name, make, jobs, concurrency)).items():
                samples.setdefault(key, []).append(value)
    results = []
    for (name, metric), values in samples.items():
        if metric == FLOOR:
            continue
        cpu, wall = statistics.median(value[0] for value in values), statistics.median(value[1] for value in values)
        off_cpu, off_wall = (statistics.median(value[i] for value in samples[("off", metric)]) for i in (0, 1))
        spread = f"{min(v[0] for v in values) / off_cpu:.0%} to {max(v[0] for v in values) / off_cpu:.0%}"
        unit = (
            f"jobs/CPU-s ({cpu / off_cpu:.0%} of off, rounds {spread}); wall {wall:,.0f} jobs/s ({wall / off_wall:.0%})"
        )
        results.append(Result(name, metric, cpu, unit))
    return results, floors(samples, concurrency)


def floors(samples: dict[tuple[str, str], list[tuple[float, float]]], concurrency: Sequence[int]) -> list[str]:
    """A Markdown table: per variant and no-op drain, the floor, the best rate it allows, the measured rate, and what
    the instrumentation adds per attempt against the floor."""
    lines = [
        "| variant | drain | floor µs/attempt | best possible (% of off) | measured (% of off) | added µs/attempt"
        " | added / floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in VARIANTS:
        if name == "off":
            continue
        floor_seconds = statistics.median(value[0] for value in samples[(name, FLOOR)])
        for c in concurrency:
            metric = f"drain no-op, concurrency {c}"
            off = statistics.median(value[0] for value in samples[("off", metric)])
            measured = statistics.median(value[0] for value in samples[(name, metric)])
            best = 1 / (1 / off + floor_seconds)
            added = 1 / measured - 1 / off
            lines.append(
                f"| {name} | c{c} | {floor_seconds * 1e6:.1f} | {best / off:.0%} | {measured / off:.0%} | "
                f"{added * 1e6:.1f} | {added / floor_seconds:.2f}x |"
            )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    arguments = parser.parse_args()
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
