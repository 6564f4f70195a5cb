"""Traces and metrics of a Litestar app and its queue work, with Litestar's own OpenTelemetry and Prometheus support
(docs/observability.md). Needs ``pip install 'litestar-queues[prometheus]' 'litestar[opentelemetry]'``.

Run it with ``uv run python docs/examples/observability_app.py``: it requests a report, lets the in-app worker build
it, and prints the trace and the Prometheus lines that came out of it.
"""

from litestar import Litestar, post
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusController
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from litestar_queues import QueueConfig, QueuePlugin, QueueService, task
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

# Once per process (the web app and `litestar queues run` import this module alike), before the app is built.
resource = Resource.create({"service.name": "reports"})
tracer_provider = TracerProvider(resource=resource)  # add a span processor with the exporter of your collector
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()]))


@task("reports.build", retries=2)
async def build_report(report_id: int) -> dict[str, int]:
    with trace.get_tracer("reports").start_as_current_span("render"):  # nests under the attempt's span
        return {"report": report_id}


@post("/reports/{report_id:int}")
async def request_report(report_id: int, queue_service: QueueService) -> dict[str, str]:
    outcome = await queue_service.enqueue(build_report, report_id)
    return {"job": outcome.id}


app = Litestar(
    [request_report, PrometheusController],  # GET /metrics: this process's metrics, queue work included
    plugins=[
        OpenTelemetryPlugin(OpenTelemetryConfig()),  # a span per request; enqueues in a handler are its children
        QueuePlugin(QueueConfig(instrumentation=OpenTelemetryInstrumentation())),
    ],
)


if __name__ == "__main__":
    from litestar.testing import TestClient
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    with TestClient(app) as client:
        job = client.post("/reports/42").json()["job"]
        service: QueueService = app.state.queue_service
        with client.portal() as portal:
            assert portal.call(service.result, job, 10) == {"report": 42}
        scraped = client.get("/metrics").text
    names = {span.context.span_id: span.name for span in spans.get_finished_spans()}
    for span in sorted(spans.get_finished_spans(), key=lambda span: span.start_time or 0):
        if span.kind.name in {"SERVER", "PRODUCER", "CONSUMER"} or span.name == "render":
            print(f"{span.name} <- {names.get(span.parent.span_id, 'the request') if span.parent else '(root)'}")
    for line in scraped.splitlines():
        if line.startswith("litestar_queues_tasks_"):
            print(line.split("{")[0], line.rsplit(" ", 1)[1])
