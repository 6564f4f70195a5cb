"""The events seed's Channels setup and websocket route, as written, in a runnable app.

Run it with ``cd docs/examples && uv run python realtime_websocket.py``. (Litestar 2.25 prefers
``task_id: FromPath[str]``; the seed's ``task_id: str`` works and emits a deprecation warning.)
"""

from litestar import Litestar, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import WebSocket
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


@websocket("/jobs/{task_id:str}/events")
async def task_events(socket: WebSocket, task_id: str) -> None:
    await stream_queue_events(socket, [QueueChannels.task(task_id)])


@post("/videos/{video_id:str}/transcode")
async def transcode(video_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(transcode_video, video_id)).record.id


app = Litestar(route_handlers=[task_events, transcode], plugins=[channels, QueuePlugin(config=config)])


if __name__ == "__main__":
    import json

    from litestar.testing import TestClient

    with TestClient(app) as client:
        task_id = client.post("/videos/v-42/transcode").text
        with client.websocket_connect(f"/jobs/{task_id}/events") as ws:
            events = [json.loads(ws.receive_text(timeout=10))]
            while events[-1]["type"] != "task.completed":
                events.append(json.loads(ws.receive_text(timeout=10)))
        types = [event["type"] for event in events]
        assert types == ["task.started", "task.log", "task.progress", "task.event", "task.completed"], types
        print(" -> ".join(types))
