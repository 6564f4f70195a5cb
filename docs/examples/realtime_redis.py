"""Live job events across processes, and a durable history: the copy-paste Redis setup of docs/realtime.md.

One Redis URL is both the queue and the event transport (Redis streams). The web process runs no worker; workers
run in their own processes, and their events reach the browsers through Redis::

    REDIS_URL=redis://localhost:6379/0 uvicorn realtime_redis:app
    REDIS_URL=redis://localhost:6379/0 litestar --app realtime_redis:app queues run

Every event is also stored in the queue's event history, so a page opened after the job finished (or an
``EventSource`` reconnecting with ``Last-Event-ID``) still gets every event, and the record keeps the job's latest
progress. Run as a script (``cd docs/examples && REDIS_URL=... uv run python realtime_redis.py``), it starts a worker
process, enqueues a job, watches it live over a websocket, then reconnects over SSE after the job finished.
"""

import asyncio
import os
from datetime import timedelta

from litestar import Litestar, Request, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsStreamBackend
from litestar.connection import WebSocket
from litestar.params import FromPath
from litestar.response import ServerSentEvent
from redis.asyncio import Redis

from litestar_queues import QueueConfig, QueuePlugin, QueueService, TaskRecord, task
from litestar_queues.events import (
    QueueChannels,
    QueueEventConfig,
    publish_task_progress,
    sse_queue_events,
    stream_queue_events,
)
from litestar_queues.litestar import NamedDependency

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")

redis = Redis.from_url(REDIS_URL)
channels = ChannelsPlugin(
    RedisChannelsStreamBackend(history=100, redis=redis, stream_ttl=timedelta(minutes=10)),
    arbitrary_channels_allowed=True,
)
config = QueueConfig(
    queue_backend=REDIS_URL,
    in_app_worker=False,  # the work runs in `litestar --app realtime_redis:app queues run`
    event_config=QueueEventConfig(
        enabled=True,
        channels_backend=channels,
        history=True,  # store every event in the queue backend
        history_retention=7 * 24 * 3600,  # pruned by the workers' maintenance after a week (the default)
    ),
)


@task("reports.render")
async def render_report(pages: int) -> int:
    for page in range(1, pages + 1):
        await asyncio.sleep(0.2)
        await publish_task_progress(current=page, total=pages, message=f"page {page}")
    return pages


@post("/reports")
async def create_report(queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(render_report, 3)).record.id


@get("/reports/{task_id:str}")
async def report(task_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> TaskRecord | None:
    return await queue_service.get_task(task_id)  # record.progress: how far it got


@websocket("/reports/{task_id:str}/events")
async def report_events(socket: WebSocket, task_id: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.task(task_id)])


@get("/reports/{task_id:str}/events/sse")
async def report_events_sse(request: Request, task_id: FromPath[str]) -> ServerSentEvent:
    return await sse_queue_events(request, [QueueChannels.task(task_id)])


app = Litestar(
    route_handlers=[create_report, report, report_events, report_events_sse],
    plugins=[channels, QueuePlugin(config=config)],
    on_shutdown=[redis.aclose],  # the app owns the client; closed after the plugins stopped
)


if __name__ == "__main__":
    import json
    import subprocess
    import sys
    from pathlib import Path

    from litestar.testing import TestClient

    def watch(client: TestClient[Litestar], task_id: str) -> list[dict[str, object]]:
        """The job's events over the websocket, until it completes."""
        with client.websocket_connect(f"/reports/{task_id}/events") as ws:
            events = [json.loads(ws.receive_text(timeout=30))]
            while events[-1]["type"] != "task.completed":
                events.append(json.loads(ws.receive_text(timeout=30)))
        return events

    worker = subprocess.Popen(
        [sys.executable, "-m", "litestar", "--app", "realtime_redis:app", "queues", "run"],
        cwd=Path(__file__).resolve().parent,
        env={**os.environ, "REDIS_URL": REDIS_URL},
        stdout=subprocess.DEVNULL,
    )
    try:
        with TestClient(app) as client:
            task_id = client.post("/reports").text
            live = watch(client, task_id)  # published by the worker process, delivered through Redis
            reopened = watch(client, task_id)  # after the job finished: its stored history
            progress = client.get(f"/reports/{task_id}").json()["progress"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert [event["id"] for event in reopened] == [event["id"] for event in live]
    print("live from the worker process: " + " -> ".join(str(event["type"]) for event in live))
    print(f"reopened after the job: {len(reopened)} events again; progress on the record: {progress['percent']}%")
