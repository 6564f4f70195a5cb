from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from litestar_queues import QueueConfig, QueueService, TaskRegistry, WorkerConfig
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

FAST_WORKER = WorkerConfig(poll_interval=0.02, heartbeat_interval=0.05, stale_threshold=1.0, maintenance_interval=0.1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Telemetry:
    """An SDK tracer and meter provider of the test's own, an in-memory exporter and reader behind them."""

    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if name is None or span.name == name]

    def points(self, metric: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        """The data points of ``metric`` by their sorted attributes (value for sums and gauges, the point itself for
        histograms)."""
        data = self.reader.get_metrics_data()
        found: dict[tuple[tuple[str, Any], ...], Any] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name != metric:
                        continue
                    for point in item.data.data_points:
                        key = tuple(sorted(point.attributes.items()))
                        found[key] = getattr(point, "value", point)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, spans, meter_provider, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def instrumentation(telemetry: Telemetry) -> OpenTelemetryInstrumentation:
    return OpenTelemetryInstrumentation(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def make_config(instrumentation: OpenTelemetryInstrumentation) -> Callable[..., QueueConfig]:
    def make(**overrides: Any) -> QueueConfig:
        return QueueConfig(
            **{"queue_backend": "memory", "worker": FAST_WORKER, "instrumentation": instrumentation, **overrides}
        )

    return make


@pytest.fixture
async def service(registry: TaskRegistry, make_config: Callable[..., QueueConfig]) -> AsyncIterator[QueueService]:
    async with QueueService(make_config(), registry=registry) as opened:
        yield opened
