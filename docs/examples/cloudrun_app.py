"""The migration guide's Cloud Run task (seed 004), unchanged, in a Litestar app whose in-app worker starts it as a
Cloud Run job execution; its progress streams to a websocket through Channels on Redis.

The same module is the container's app: deploy the image with ``LITESTAR_APP=app:app`` and the entry point
``litestar-queues-cloudrun-worker``. ``CLOUD_RUN_API_ENDPOINT`` points the app at an emulated Admin API instead of
Google's (the tests run it that way: tests/cloudrun/test_seed.py).
"""

from __future__ import annotations

import os

from google.auth.credentials import AnonymousCredentials
from litestar import Litestar, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsStreamBackend
from litestar.connection import WebSocket
from litestar.params import FromPath
from redis.asyncio import Redis

from litestar_queues import QueueConfig, QueuePlugin, QueueService, task
from litestar_queues.backends.redis import RedisBackendConfig
from litestar_queues.events import (
    QueueChannels,
    QueueEventConfig,
    publish_task_log,
    publish_task_progress,
    stream_queue_events,
)
from litestar_queues.execution.cloudrun import CloudRunExecutionConfig
from litestar_queues.litestar import NamedDependency


@task(
    "files.process",
    queue="files",
    retries=3,
    timeout=600,
    execution_backend="cloudrun",
    execution_profile="worker-heavy",
    description="Process an uploaded file.",
    log_level="info",
)
async def process_file(file_id: str, *, _job_id: str) -> dict[str, str]:
    await publish_task_progress(current=1, total=3, message="started")
    await publish_task_log("file processing started", payload={"file_id": file_id})
    return {"task_id": str(_job_id), "file_id": file_id}


REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
EMULATOR = os.environ.get("CLOUD_RUN_API_ENDPOINT")

# a stream backend keeps recent events, so a websocket that connects late still sees the task's progress
channels = ChannelsPlugin(
    RedisChannelsStreamBackend(history=50, redis=Redis.from_url(REDIS_URL)), arbitrary_channels_allowed=True
)

config = QueueConfig(
    queue_backend=RedisBackendConfig(REDIS_URL, key_prefix=os.environ.get("QUEUE_KEY_PREFIX", "litestar_queues")),
    execution_backends=(
        CloudRunExecutionConfig(
            project=os.environ.get("GOOGLE_CLOUD_PROJECT", "my-project"),
            region=os.environ.get("CLOUD_RUN_REGION", "europe-west1"),
            job="worker",
            profiles={"worker-heavy": "worker-heavy"},
            **({"api_endpoint": EMULATOR, "credentials": AnonymousCredentials()} if EMULATOR else {}),
        ),
    ),
    event_config=QueueEventConfig(enabled=True, channels_backend=channels),
)


@post("/files/{file_id:str}")
async def process(file_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(process_file, file_id)).id


@websocket("/jobs/{job_id:str}/events")
async def job_events(socket: WebSocket, job_id: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.task(job_id)])


@get("/")
async def ready() -> str:
    return "ok"


app = Litestar([process, job_events, ready], plugins=[channels, QueuePlugin(config=config)])
