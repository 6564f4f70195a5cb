"""The tasks and queue config of the Cloud Run end-to-end tests: imported by the test process and, as
``tests.cloudrun.cloudrun_app:make_config``, by the real ``litestar-queues-cloudrun-worker`` in emulated containers.

Every task appends what it did to a file named in its arguments, so a test can count effects across processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from google.auth.credentials import AnonymousCredentials

from litestar_queues import QueueConfig, WorkerConfig, task
from litestar_queues.backend import BackendConfig
from litestar_queues.context import TaskExecutionContext
from litestar_queues.execution.cloudrun import CloudRunExecutionConfig

QUEUE = "cloudrun-e2e"


def make_config() -> QueueConfig:
    """The queue config, from ``LQ_E2E_*`` variables set by the test (and inherited by the containers).

    With ``LQ_E2E_SPANS`` set, a container records its spans and writes them there at exit.
    """
    env = os.environ
    instrumentation = None
    if env.get("LQ_E2E_SPANS") and env.get("CLOUD_RUN_EXECUTION"):
        from tests.spans import record_spans

        from litestar_queues.opentelemetry import OpenTelemetryInstrumentation

        record_spans(Path(env["LQ_E2E_SPANS"]))
        instrumentation = OpenTelemetryInstrumentation()
    cloudrun = CloudRunExecutionConfig(
        project="demo",
        region="europe-west1",
        job="worker",
        profiles={"heavy": "worker-heavy"},
        api_endpoint=env["LQ_E2E_CLOUDRUN"],
        credentials=AnonymousCredentials(),
        start_timeout=float(env.get("LQ_E2E_START_TIMEOUT", "60")),
        timeout_grace=0,
        api_retries=2,
        api_backoff=0.01,
    )
    return QueueConfig(
        queue_backend=_backend(env["LQ_E2E_BACKEND"], env["LQ_E2E_PREFIX"]),
        execution_backends=(cloudrun,),
        worker=WorkerConfig(
            queues=(QUEUE,),
            poll_interval=0.05,
            heartbeat_interval=0.2,
            stale_threshold=10.0,
            maintenance_interval=0.2,
            reconcile_interval=0.2,
        ),
        initialize_schedules=False,
        instrumentation=instrumentation,
    )


def _backend(url: str, prefix: str) -> BackendConfig:
    if url.startswith("redis"):
        from litestar_queues.backends.redis import RedisBackendConfig

        return RedisBackendConfig(url, key_prefix=prefix)
    from litestar_queues.backends.sqlspec import SQLSpecBackendConfig

    return SQLSpecBackendConfig.from_url(url, table_prefix=prefix)


def _note(path: str, line: str) -> None:
    with Path(path).open("a") as effects:
        effects.write(f"{line}\n")


@task("cloudrun_e2e.effect", queue=QUEUE, execution_backend="cloudrun")
async def effect(path: str, mode: str = "ok", *, _task_context: TaskExecutionContext) -> int:
    """Note the start, then: ``ok`` finish; ``fail`` raise; ``wait`` until ``<path>.release`` exists;
    ``crash-once`` hang on the first attempt (the test kills it); ``block`` block the event loop for a minute."""
    attempt = _task_context.attempt
    _note(path, f"start {attempt} {os.environ.get('CLOUD_RUN_EXECUTION', '-')}")
    await _task_context.publish_progress(1, 2, message="started")
    if mode == "fail":
        raise RuntimeError("failed on purpose")
    if mode == "block":
        time.sleep(60)
    if mode == "wait" or (mode == "crash-once" and attempt == 1):
        release = Path(f"{path}.release")
        for _ in range(1200):
            if release.exists():
                break
            await asyncio.sleep(0.05)
    _note(path, f"done {attempt}")
    return attempt
