"""The example's task: a report built in steps, publishing progress and log events as it goes, and stored with the
attempt's own database session."""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from examples.database import Report, db_session
from litestar_queues import task
from litestar_queues.events import publish_task_log, publish_task_progress

STEPS = ("collect data", "clean rows", "aggregate", "render charts", "write PDF")


@task(
    "reports.build",
    retries=1,
    timeout=300,
    description="Build a report in steps.",
    dependencies={"db_session": db_session},  # on the task: a process that only enqueues knows it is no argument
)
async def build_report(
    title: str, db_session: AsyncSession, _job_id: str, steps: int = len(STEPS), step_seconds: float = 0.5
) -> dict[str, object]:
    """Build a (pretend) report, one step at a time, and store it.

    Args:
        title: The report's title.
        db_session: The attempt's own database session: committed when the task returns.
        _job_id: The job's id (filled in by the worker).
        steps: How many steps to run (at most ``len(STEPS)``).
        step_seconds: How long each step takes.

    Returns:
        A summary of the report.
    """
    chosen = STEPS[: max(1, min(steps, len(STEPS)))]
    await publish_task_log(f"building {title!r} in {len(chosen)} steps", payload={"title": title})
    for number, step in enumerate(chosen, start=1):
        await asyncio.sleep(step_seconds)
        await publish_task_progress(current=number, total=len(chosen), message=step)
    db_session.add(Report(job_id=_job_id, title=title, pages=len(chosen) * 3))
    await publish_task_log("report ready", payload={"pages": len(chosen) * 3})
    return {"title": title, "pages": len(chosen) * 3, "steps": list(chosen)}


@task("reports.cleanup", cron="0 3 * * *", timezone="UTC", description="Forget old report files every night.")
async def cleanup_reports() -> None:
    """A nightly maintenance job: shows how schedules appear in ``litestar queues schedules``."""
    await publish_task_log("old report files removed")
