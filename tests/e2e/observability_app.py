"""The app of the observability end-to-end tests, run as a web process (uvicorn) and as ``litestar queues run``.

Both processes set up OpenTelemetry the way the docs show: the global tracer provider (here recording into memory,
written to ``$LQ_OBS_SPANS`` at exit), a meter provider with a Prometheus reader, Litestar's OpenTelemetry plugin and
Prometheus controller in the app, and ``OpenTelemetryInstrumentation`` in the queue config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from litestar import Litestar, get, post
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusController
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from tests.spans import record_spans, write_spans

from litestar_queues import QueueConfig, QueuePlugin, QueueService, WorkerConfig, task
from litestar_queues.backends.redis import RedisBackendConfig
from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

spans_folder = Path(os.environ["LQ_OBS_SPANS"])
exporter = record_spans(spans_folder)
metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))


@task("obs.ok")
async def ok(n: int) -> int:
    return n


@task("obs.fail", retries=1, retry_backoff=0)
async def fail() -> None:
    raise RuntimeError("failed on purpose")


config = QueueConfig(
    queue_backend=RedisBackendConfig(os.environ["LQ_OBS_REDIS"], key_prefix=os.environ["LQ_OBS_PREFIX"]),
    in_app_worker=False,
    instrumentation=OpenTelemetryInstrumentation(),
    worker=WorkerConfig(poll_interval=0.05, heartbeat_interval=0.5, maintenance_interval=0.2),
)


@get("/")
async def index() -> str:
    return "ok"


@post("/jobs/{mode:str}")
async def enqueue(mode: str, queue_service: QueueService) -> dict[str, Any]:
    outcome = await (queue_service.enqueue(ok, 1) if mode == "ok" else queue_service.enqueue(fail))
    return {"id": outcome.id}


@get("/jobs/{job_id:str}")
async def job(job_id: str, queue_service: QueueService) -> dict[str, Any]:
    record = await queue_service.get_task(job_id)
    return {"status": None if record is None else record.status.value}


app = Litestar(
    [index, enqueue, job, PrometheusController],
    plugins=[OpenTelemetryPlugin(OpenTelemetryConfig()), QueuePlugin(config)],
    on_shutdown=[lambda: write_spans(exporter, spans_folder)],  # uvicorn ends with the signal: no atexit
)
