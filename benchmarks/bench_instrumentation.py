"""What OpenTelemetry instrumentation costs: drains and enqueues on memory, off and on, interleaved in one run.

Variants, each measured every round in turn:

* ``off``: no instrumentation (``QueueConfig.instrumentation=None``);
* ``API only``: ``OpenTelemetryInstrumentation`` with the API's no-op providers (the library's own work, no SDK);
* ``on``: the SDK recording every span and measurement, a ``BatchSpanProcessor`` and a periodic metric reader, both
  exporting to nowhere (``no-op exporter``);
* ``on, 10% sampled``: the same with ``ParentBased(TraceIdRatioBased(0.1))``.

Run::

    uv run --project benchmarks python benchmarks/bench_instrumentation.py [--jobs 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
from collections.abc import Callable, Sequence

from harness import Result, Timer, machine_summary, markdown_table, rate
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NoOpTracerProvider

from litestar_queues import QueueConfig, QueueService, TaskRegistry, Worker, WorkerConfig, task
from litestar_queues.instrumentation import Instrumentation
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

registry = TaskRegistry()


@task("bench.noop", registry=registry)
async def noop(n: int) -> None:
    return None


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


def sdk(sampler: Sampler | None = None) -> Callable[[], Instrumentation]:
    def make() -> Instrumentation:
        tracer_provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(NoSpans()))
        reader = PeriodicExportingMetricReader(NoMetrics(), export_interval_millis=5_000)
        return OpenTelemetryInstrumentation(
            tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
        )

    return make


VARIANTS: dict[str, Callable[[], Instrumentation | None]] = {
    "off": lambda: None,
    "API only": lambda: OpenTelemetryInstrumentation(
        tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
    ),
    "on (SDK, no-op exporters)": sdk(),
    "on, 10% sampled": sdk(ParentBased(TraceIdRatioBased(0.1))),
}


async def drain(instrumentation: Instrumentation | None, jobs: int, concurrency: int) -> float:
    worker = WorkerConfig(concurrency=concurrency, batch_size=concurrency, poll_interval=0.05)
    config = QueueConfig(queue_backend="memory", worker=worker, instrumentation=instrumentation)
    async with QueueService(config, registry=registry) as service:
        await service.enqueue_many([service.request(noop, n) for n in range(jobs)])
        gc.collect()
        with Timer() as timer:
            done = await Worker(service).run_until_idle(timeout=600)
        assert done == jobs, f"drained {done} of {jobs}"
    return rate(jobs, timer.seconds)


async def enqueue_single(instrumentation: Instrumentation | None, jobs: int) -> float:
    config = QueueConfig(queue_backend="memory", instrumentation=instrumentation)
    async with QueueService(config, registry=registry) as service:
        gc.collect()
        with Timer() as timer:
            for n in range(jobs):
                await service.enqueue(noop, n)
    return rate(jobs, timer.seconds)


async def main(jobs: int, rounds: int, concurrency: Sequence[int]) -> list[Result]:
    samples: dict[tuple[str, str], list[float]] = {}
    for round_number in range(rounds):
        for name, make in VARIANTS.items():
            print(f"round {round_number + 1}: {name}", flush=True)
            for c in concurrency:
                value = await drain(make(), jobs, c)
                samples.setdefault((name, f"drain no-op, concurrency {c}"), []).append(value)
            value = await enqueue_single(make(), jobs // 4)
            samples.setdefault((name, "enqueue (single)"), []).append(value)
    results = []
    for (name, metric), values in samples.items():
        median = statistics.median(values)
        off = statistics.median(samples[("off", metric)])
        results.append(Result(name, metric, median, f"jobs/s ({median / off:.0%} of off)"))
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
