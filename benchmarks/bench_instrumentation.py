"""What OpenTelemetry instrumentation costs: drains and enqueues on memory, off and on, interleaved in one run.

Variants, each measured every round in turn:

* ``off``: no instrumentation (``QueueConfig.instrumentation=None``);
* ``API only``: ``OpenTelemetryInstrumentation`` with the API's no-op providers (the library's own work, no SDK);
* ``on``: the SDK recording every span and measurement, a ``BatchSpanProcessor`` and a periodic metric reader, both
  exporting to nowhere (``no-op exporter``);
* ``on, 10% sampled``: the same with ``ParentBased(TraceIdRatioBased(0.1))``;
* ``on, metrics only``: the SDK's metrics, ``traces=False``.

Rates are jobs per second of CPU time of the process (its threads included: the SDK's export threads count), which a
busy shared machine disturbs far less than wall-clock time; the wall-clock rates are printed too.

Run::

    uv run --project benchmarks python benchmarks/bench_instrumentation.py [--jobs 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NoOpTracerProvider

from harness import Result, Timer, machine_summary, markdown_table, rate
from litestar_queues import QueueConfig, QueueService, Task, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.instrumentation import Instrumentation
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

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


def sdk(sampler: Sampler | None = None, *, traces: bool = True) -> Callable[[], Instrumentation]:
    def make() -> Instrumentation:
        tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(NoSpans()))
        reader = PeriodicExportingMetricReader(NoMetrics(), export_interval_millis=5_000)
        return OpenTelemetryInstrumentation(
            tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]), traces=traces
        )

    return make


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
        await service.enqueue_many([service.request(function, n) for n in range(jobs)])
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


async def main(jobs: int, rounds: int, concurrency: Sequence[int]) -> list[Result]:
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_number in range(rounds):
        for name, make in VARIANTS.items():
            print(f"round {round_number + 1}: {name}", flush=True)
            for c in concurrency:
                samples.setdefault((name, f"drain no-op, concurrency {c}"), []).append(await drain(make(), jobs, c))
            samples.setdefault((name, "enqueue (single)"), []).append(await enqueue_single(make(), jobs // 4))
            busy_drain = await drain(make(), jobs // 10, 10, busy)
            samples.setdefault((name, "drain 1 ms CPU tasks, concurrency 10"), []).append(busy_drain)
    results = []
    for (name, metric), values in samples.items():
        cpu, wall = statistics.median(value[0] for value in values), statistics.median(value[1] for value in values)
        off_cpu, off_wall = (statistics.median(value[i] for value in samples[("off", metric)]) for i in (0, 1))
        unit = f"jobs/CPU-s ({cpu / off_cpu:.0%} of off); wall {wall:,.0f} jobs/s ({wall / off_wall:.0%})"
        results.append(Result(name, metric, cpu, unit))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    arguments = parser.parse_args()
    measured = asyncio.run(main(arguments.jobs, arguments.rounds, arguments.concurrency))
    print(machine_summary(), f"- {arguments.jobs} jobs, {arguments.rounds} interleaved rounds, medians")
    print(markdown_table(measured))
    for result in measured:
        print(f"{result.system:28} {result.metric:28} {result.value:10,.0f} {result.unit}")
