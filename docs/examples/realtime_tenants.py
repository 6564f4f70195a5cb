"""Server-Sent Events and websockets for jobs, restricted per tenant by one authorization hook.

Run it with ``cd docs/examples && uv run python realtime_tenants.py``.
"""

from typing import Any

from litestar import Litestar, Request, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection, WebSocket
from litestar.params import FromPath
from litestar.response import ServerSentEvent

from litestar_queues import QueueConfig, QueuePlugin, QueueService, task
from litestar_queues.events import (
    QueueChannels,
    QueueEventConfig,
    publish_task_progress,
    sse_queue_events,
    stream_queue_events,
)
from litestar_queues.litestar import NamedDependency


@task("exports.csv")
async def export_csv(tenant: str, rows: int) -> int:
    await publish_task_progress(current=rows, total=rows, message="exported")
    return rows


def tenant_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """Who is asking. A real app reads ``connection.user`` set by its authentication middleware."""
    return connection.headers.get("x-tenant")


async def same_tenant(connection: ASGIConnection[Any, Any, Any, Any], channels: list[str]) -> bool:
    """Allow a job's events only to the tenant the job was enqueued for."""
    service: QueueService = connection.app.state.queue_service
    record = await service.get_task(connection.path_params["task_id"])
    return (
        record is not None
        and channels == [QueueChannels.task(record.id)]
        and record.kwargs["tenant"] == tenant_of(connection)
    )


@post("/exports")
async def start_export(request: Request, queue_service: NamedDependency[QueueService]) -> str:
    return (await queue_service.enqueue(export_csv, tenant=tenant_of(request) or "", rows=10)).record.id


@websocket("/exports/{task_id:str}/events")
async def export_events(socket: WebSocket, task_id: FromPath[str]) -> None:
    await stream_queue_events(socket, [QueueChannels.task(task_id)])


@get("/exports/{task_id:str}/events/sse")
async def export_events_sse(request: Request, task_id: FromPath[str]) -> ServerSentEvent:
    return await sse_queue_events(request, [QueueChannels.task(task_id)])


channels = ChannelsPlugin(MemoryChannelsBackend(history=100), arbitrary_channels_allowed=True)
queue_config = QueueConfig(event_config=QueueEventConfig(enabled=True, channels_backend=channels))
app = Litestar(
    route_handlers=[start_export, export_events, export_events_sse],
    plugins=[channels, QueuePlugin(config=queue_config, authorize_channels=same_tenant)],
)


if __name__ == "__main__":
    import json

    from litestar.exceptions import WebSocketDisconnect
    from litestar.testing import TestClient

    with TestClient(app) as client:
        task_id = client.post("/exports", headers={"x-tenant": "acme"}).text
        assert client.get(f"/exports/{task_id}/events/sse", headers={"x-tenant": "globex"}).status_code == 403
        try:
            with client.websocket_connect(f"/exports/{task_id}/events", headers={"x-tenant": "globex"}) as ws:
                ws.receive_text(timeout=5)
            raise AssertionError("globex must not see acme's export")
        except WebSocketDisconnect as refused:
            code = refused.code
        assert code == 1008
        with client.websocket_connect(f"/exports/{task_id}/events", headers={"x-tenant": "acme"}) as ws:
            events = [json.loads(ws.receive_text(timeout=10)) for _ in range(3)]
        assert [event["type"] for event in events] == ["task.started", "task.progress", "task.completed"]
        print("globex: 403 / close 1008; acme:", ", ".join(event["type"] for event in events))
