"""Define tasks, run a worker, enqueue work, and print live events and results — on the memory backend.

Run it with ``uv run python examples/quickstart.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from litestar_queues import QueueConfig, QueueService, TaskExecutionContext, TaskStatus, Worker, WorkerConfig, task
from litestar_queues.events import QueueEvent, QueueEventConfig, publish_task_log, publish_task_progress


@task("quickstart.resize", retries=2, retry_backoff=0.1, timeout=10)
async def resize(image: str, sizes: list[int]) -> dict[str, list[int]]:
    """Pretend to resize an image into several sizes, reporting progress."""
    await publish_task_log(f"resizing {image}", payload={"image": image})
    for done, size in enumerate(sizes, start=1):
        await asyncio.sleep(0.01)  # the real work would go here
        await publish_task_progress(current=done, total=len(sizes), message=f"{size}px done")
    return {image: sizes}


@task("quickstart.flaky", retries=1, retry_backoff=0)
async def flaky(*, _task_context: TaskExecutionContext | None = None) -> str:
    """Fails on its first attempt and succeeds on the retry."""
    attempt = _task_context.attempt if _task_context is not None else 1
    if attempt == 1:
        raise ConnectionError("the upstream API blinked")
    return f"succeeded on attempt {attempt}"


class PrintingSink:
    """An event sink that prints every event as it happens."""

    def __init__(self) -> None:
        self.events: list[QueueEvent] = []

    async def publish(self, event: QueueEvent, channels: Sequence[str]) -> None:
        self.events.append(event)
        progress = f" {event.progress_percent:g}%" if event.progress_percent is not None else ""
        print(
            f"  event {event.type:<15} task={event.task_name} attempt={event.attempt}{progress} {event.message or ''}"
        )


async def main() -> PrintingSink:
    sink = PrintingSink()
    config = QueueConfig(
        queue_backend="memory",
        worker=WorkerConfig(concurrency=4, poll_interval=0.1),
        event_config=QueueEventConfig(enabled=True, sink=sink),
    )
    async with QueueService(config) as service:
        worker = Worker(service)
        await worker.start()
        image = await service.enqueue(resize, "cat.png", [64, 128, 256])
        retried = await service.enqueue(flaky)
        resized = await service.result(image.id, timeout=10)
        second_try = await service.result(retried.id, timeout=10)
        print("results:", resized, "|", second_try)
        assert resized == {"cat.png": [64, 128, 256]}
        assert second_try == "succeeded on attempt 2"
        stats = await service.get_statistics()
        print("completed:", stats.counts[TaskStatus.COMPLETED])
        await worker.stop()
    return sink


if __name__ == "__main__":
    asyncio.run(main())
