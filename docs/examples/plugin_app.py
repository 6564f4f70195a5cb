"""The configuration seed's plugin snippet, as written, plus a handler using the QueueService dependency.

Run it with ``cd docs/examples && uv run python plugin_app.py``.
"""

from litestar import Litestar, post
from litestar.params import FromPath

from app.tasks import transcode_video
from litestar_queues import QueueConfig, QueuePlugin, QueueService
from litestar_queues.litestar import NamedDependency

queue_config = QueueConfig(
    queue_backend="memory",
    execution_backend="local",
    in_app_worker=True,
    task_modules=("app.tasks",),
)


@post("/videos/{video_id:str}/transcode")
async def transcode(video_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> dict[str, str]:
    outcome = await queue_service.enqueue(transcode_video, video_id)
    record = await queue_service.wait_for(outcome.record.id, timeout=10)
    return {"task_id": record.id, "status": record.status.value}


app = Litestar(plugins=[QueuePlugin(config=queue_config)], route_handlers=[transcode])


if __name__ == "__main__":
    from litestar.testing import TestClient

    with TestClient(app) as client:
        response = client.post("/videos/v-42/transcode").json()
        assert response["status"] == "completed"
        assert isinstance(app.state.queue_service, QueueService)
        print(f"transcoded v-42 in task {response['task_id']}")
