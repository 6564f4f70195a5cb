"""The events seed, run as written on the memory backend: publish helpers, channels, and the test-sink assertion."""

from __future__ import annotations

import asyncio

from litestar_queues import QueueConfig, QueueService, Worker, task
from litestar_queues.events import (
    InMemoryQueueEventSink,
    QueueChannels,
    QueueEventConfig,
    publish_task_event,
    publish_task_log,
    publish_task_progress,
)


@task("videos.transcode")
async def transcode_video(video_id: str) -> None:
    await publish_task_log("Transcode started", payload={"video_id": video_id})
    await publish_task_progress(current=1, total=4, message="Fetched source")
    await publish_task_event("task.event", message="Preview ready", payload={"video_id": video_id})


@task("videos.noop")
async def noop() -> None: ...


async def main() -> None:
    sink = InMemoryQueueEventSink()
    config = QueueConfig(event_config=QueueEventConfig(enabled=True, sink=sink))
    async with QueueService(config) as service:
        plain = await service.enqueue(noop)
        await Worker(service).run_until_idle()
        # After task execution:
        assert [event.type for event in sink.events] == ["task.started", "task.completed"]

        sink.clear()
        video = await service.enqueue(transcode_video, "v-42")
        await Worker(service).run_until_idle()
        assert [event.type for event in sink.events] == [
            "task.started",
            "task.log",
            "task.progress",
            "task.event",
            "task.completed",
        ]
        assert all(channels == (QueueChannels.task(video.id),) for _, channels in sink.published)
        wire = sink.events[2].to_json().decode()
        assert '"progressPercent":25.0' in wire
        assert '"payload":null' in wire
        print(f"{plain.id}: 2 events; {video.id}: {len(sink.events)} events")
        print(wire)


if __name__ == "__main__":
    asyncio.run(main())
