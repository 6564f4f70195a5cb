"""The events seed's task, as written: it publishes a log, a progress and a custom event."""

from litestar_queues import task
from litestar_queues.events import publish_task_event, publish_task_log, publish_task_progress


@task("videos.transcode")
async def transcode_video(video_id: str) -> None:
    await publish_task_log("Transcode started", payload={"video_id": video_id})
    await publish_task_progress(current=1, total=4, message="Fetched source")
    await publish_task_event("task.event", message="Preview ready", payload={"video_id": video_id})
