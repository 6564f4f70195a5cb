"""OpenTelemetry traces and metrics for litestar-queues (``QueueConfig(instrumentation=...)``).

See ``docs/observability.md`` for the span names and attributes, the metric names and labels, and a setup with
Litestar's OpenTelemetry and Prometheus plugins.
"""

from litestar_queues.opentelemetry.instrumentation import MESSAGING_SYSTEM, SCOPE, OpenTelemetryInstrumentation
from litestar_queues.opentelemetry.metrics import DURATION_BUCKETS, QueueMetrics

__all__ = ("DURATION_BUCKETS", "MESSAGING_SYSTEM", "SCOPE", "OpenTelemetryInstrumentation", "QueueMetrics")
