"""Worker placement: this web app only enqueues; ``litestar queues run`` works (docs/deployment.md).

    $ LITESTAR_APP=app.asgi:app litestar queues run --drain-timeout 30

Both processes need the same shared backend, e.g. ``LITESTAR_QUEUES_BACKEND=sqlite:///jobs.db``.
"""

import os

from litestar import Litestar, post
from litestar.params import FromPath

from app.tasks import transcode_video
from litestar_queues import QueueConfig, QueuePlugin, QueueService
from litestar_queues.litestar import NamedDependency

queue_config = QueueConfig(
    queue_backend=os.environ.get("LITESTAR_QUEUES_BACKEND", "memory"),
    in_app_worker=False,
    task_modules=("app.tasks",),
)


@post("/videos/{video_id:str}/transcode")
async def transcode(video_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> dict[str, str]:
    outcome = await queue_service.enqueue(transcode_video, video_id)
    return {"task_id": outcome.record.id}


app = Litestar(route_handlers=[transcode], plugins=[QueuePlugin(config=queue_config)])
