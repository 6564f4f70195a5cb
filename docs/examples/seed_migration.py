"""The migration guide's task, per-call overrides and schedules, run as written on the memory backend.

Adapted only where the seed names a deployment choice this example does not make: ``execution_backend="local"``
instead of ``"cloudrun"`` (the task as written, on Cloud Run, is ``cloudrun_app.py``).
"""

from __future__ import annotations

import asyncio

from litestar_queues import QueueConfig, QueueService, TaskStatus, Worker, task
from litestar_queues.events import publish_task_log, publish_task_progress


@task(
    "files.process",
    queue="files",
    retries=3,
    timeout=600,
    execution_backend="local",
    execution_profile="worker-heavy",
    description="Process an uploaded file.",
    log_level="info",
)
async def process_file(file_id: str, *, _job_id: str) -> dict[str, str]:
    await publish_task_progress(current=1, total=3, message="started")
    await publish_task_log("file processing started", payload={"file_id": file_id})
    return {"task_id": str(_job_id), "file_id": file_id}


@task(
    "maintenance.cleanup",
    cron="0 2 * * *",
    timezone="UTC",
    description="Remove expired queue records.",
    log_level="debug",
)
async def cleanup() -> None: ...


@task(
    "integrations.sync",
    interval=300,
    initial_delay=60,
    jitter=30,
    max_instances=1,
)
async def sync_external_data() -> None: ...


async def main() -> None:
    async with QueueService(QueueConfig(queue_backend="memory", execution_backend="local")) as queue_service:
        file_id = "f-1"
        result = await queue_service.enqueue(  # type: ignore[call-arg]
            process_file.using(key=f"file:{file_id}", priority=10),
            file_id,
            quiet_success=True,
        )
        assert result.record.metadata == {
            "description": "Process an uploaded file.",
            "log_level": "info",
            "quiet_success": True,
        }
        scheduled = await queue_service.initialize_schedules()
        assert {"integrations.sync", "maintenance.cleanup"} <= {record.task_name for record in scheduled}
        cleanup_record = next(r for r in scheduled if r.task_name == "maintenance.cleanup")
        assert cleanup_record.metadata["description"] == "Remove expired queue records."
        assert cleanup_record.metadata["schedule"]["cron"] == "0 2 * * *"

        await Worker(queue_service).run_until_idle()
        record = await queue_service.wait_for(result.id, timeout=5)
        assert record.status is TaskStatus.COMPLETED
        assert record.result == {"task_id": result.id, "file_id": "f-1"}
        print(record.result, [s.task_name for s in await queue_service.schedules()])


if __name__ == "__main__":
    asyncio.run(main())
