"""The events seed's Channels setup and websocket route, as written, in a runnable app, with the authorization hook
of docs/realtime.md: only the user who enqueued a job may watch it.

Run it with ``cd docs/examples && uv run python realtime_websocket.py``. (Litestar 2.25 prefers
``task_id: FromPath[str]``; the seed's ``task_id: str`` works and emits a deprecation warning.) The user is a
request header here, for brevity; a real app reads ``connection.user``, set by its authentication.
"""

from typing import Any

from litestar import Litestar, Request, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection, WebSocket
from litestar.params import FromPath

from app.tasks import transcode_video
from litestar_queues import QueueConfig, QueuePlugin, QueueService
from litestar_queues.events import QueueChannels, QueueEventConfig, stream_queue_events
from litestar_queues.litestar import NamedDependency

channels = ChannelsPlugin(MemoryChannelsBackend(history=100), arbitrary_channels_allowed=True)

config = QueueConfig(
    event_config=QueueEventConfig(
        enabled=True,
        channels_backend=channels,
        publish_global_lifecycle=True,
    ),
)


def user_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.headers.get("x-user")


async def may_watch(connection: ASGIConnection[Any, Any, Any, Any], channels: list[str]) -> bool:
    """Only the user who enqueued a job may watch it."""
    service: QueueService = connection.app.state.queue_service
    record = await service.get_task(connection.path_params["task_id"])
    return (
        record is not None
        and channels == [QueueChannels.task(record.id)]
        and record.metadata.get("user") == user_of(connection)
    )


@websocket("/jobs/{task_id:str}/events")
async def task_events(socket: WebSocket, task_id: str) -> None:
    await stream_queue_events(socket, [QueueChannels.task(task_id)])


@post("/videos/{video_id:str}/transcode")
async def transcode(request: Request, video_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> str:
    job = transcode_video.using(metadata={"user": user_of(request)})
    return (await queue_service.enqueue(job, video_id)).record.id


app = Litestar(
    route_handlers=[task_events, transcode],
    plugins=[channels, QueuePlugin(config=config, authorize_channels=may_watch)],
)


if __name__ == "__main__":
    import json

    from litestar.exceptions import WebSocketDisconnect
    from litestar.testing import TestClient

    with TestClient(app) as client:
        task_id = client.post("/videos/v-42/transcode", headers={"x-user": "ada"}).text
        try:
            with client.websocket_connect(f"/jobs/{task_id}/events", headers={"x-user": "eve"}) as ws:
                ws.receive_text(timeout=10)
        except WebSocketDisconnect as refused:
            print(f"eve: close {refused.code}")
        with client.websocket_connect(f"/jobs/{task_id}/events", headers={"x-user": "ada"}) as ws:
            events = [json.loads(ws.receive_text(timeout=10))]
            while events[-1]["type"] != "task.completed":
                events.append(json.loads(ws.receive_text(timeout=10)))
        types = [event["type"] for event in events]
        assert types == ["task.started", "task.log", "task.progress", "task.event", "task.completed"], types
        print("ada: " + " -> ".join(types))
