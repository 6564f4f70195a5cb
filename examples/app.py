"""A small job-runner app: enqueue a report from a form and watch it build live.

Run it:  ``bash scripts/example.sh``  (or ``uv run uvicorn examples.app:app``) and open http://127.0.0.1:8000.

* ``POST /api/jobs`` enqueues ``reports.build`` and returns its id and the token that lets the caller watch it.
* ``GET /api/jobs/{id}`` returns the record: status, attempts, result or error.
* ``WS /api/jobs/{id}/events?token=...`` streams the job's events (progress, logs, lifecycle) as JSON messages.
* ``GET /api/jobs/{id}/events/sse?token=...`` streams the same events as Server-Sent Events.
* ``GET /api/reports`` lists the reports the task stored in the app's database (Advanced Alchemy), each with a
  database session of its attempt's own.

Who may watch a job is decided by one authorization hook (``may_watch``): only whoever created the job, who got
its token. Several web processes must share the secret the tokens are signed with: set
``LITESTAR_QUEUES_EXAMPLE_SECRET`` (else each process makes up its own).

Every event of a job is stored in the queue backend's event history (``QueueEventConfig(history=True)``) and its
latest progress on its record, so a page reopened after the job finished shows its whole log and a full bar.

By default the queue lives in memory and an in-app worker runs the jobs. One environment variable switches the
queue backend: ``LITESTAR_QUEUES_BACKEND=advanced-alchemy`` keeps the jobs in the app's own database, next to the
reports (or ``sqlite:///jobs.db``, ``redis://...``, ``valkey://...``, ``postgresql://...``). With a Redis or Valkey
URL the events travel through Redis streams on the same server too, so workers in other processes reach the page
live::

    LITESTAR_QUEUES_BACKEND=redis://localhost:6379/0 LITESTAR_QUEUES_IN_APP_WORKER=0 uvicorn examples.app:app
    LITESTAR_QUEUES_BACKEND=redis://localhost:6379/0 litestar --app examples.app:app queues run

(``LITESTAR_QUEUES_IN_APP_WORKER=0`` leaves the work to the ``queues run`` processes.) With another backend the events
stay in the process that runs the job: a separate worker's job is seen through its stored history and its record.
"""

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, MediaType, Request, get, post, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.connection import ASGIConnection, WebSocket
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import File, ServerSentEvent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from examples.database import Report, alchemy
from examples.tasks import build_report
from litestar_queues import BackendConfig, QueueConfig, QueuePlugin, QueueService, TaskRecord
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig
from litestar_queues.events import QueueChannels, QueueEventConfig, sse_queue_events, stream_queue_events
from litestar_queues.litestar import NamedDependency

STATIC = Path(__file__).parent / "static"
EVENT_HISTORY = 200
"""Events a page opened late gets (a job's stored events, the most recent ones)."""
SECRET = os.environ.get("LITESTAR_QUEUES_EXAMPLE_SECRET", "").encode() or secrets.token_bytes(32)
"""Signs the tokens that let a job's creator watch it."""


def events_token(job_id: str) -> str:
    """The token that lets its holder watch the job's events: given to whoever created the job."""
    return hmac.new(SECRET, job_id.encode(), "sha256").hexdigest()


def may_watch(connection: ASGIConnection[Any, Any, Any, Any], channels: list[str]) -> bool:
    """The authorization hook of the event streams: a job's own channel, for the holder of its token."""
    job_id = connection.path_params.get("job_id", "")
    token = connection.query_params.get("token", "")
    return channels == [QueueChannels.task(job_id)] and hmac.compare_digest(token, events_token(job_id))


class JobRequest(msgspec.Struct):
    """What the form sends."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    steps: Annotated[int, msgspec.Meta(ge=1, le=5)] = 5
    step_seconds: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.5


class JobView(msgspec.Struct):
    """A job as the page sees it."""

    id: str
    status: str
    attempts: int
    result: Any = None
    error: str | None = None
    progress: float | None = None
    """The percentage of the latest progress the job reported (kept on its record)."""
    step: str | None = None
    """Its message."""
    events_token: str | None = None
    """Only in the answer to the job's creator: pass it as ``?token=`` to the event streams."""

    @classmethod
    def of(cls, record: TaskRecord) -> "JobView":
        """Summarise a queue record."""
        error = f"{record.error.type}: {record.error.message}" if record.error else None
        progress = record.progress
        return cls(
            record.id,
            record.status.value,
            record.attempts,
            record.result,
            error,
            progress=None if progress is None else progress.percent,
            step=None if progress is None else progress.message,
        )


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def index() -> File:
    """The page: a form, then the job's live progress."""
    return File(STATIC / "index.html", content_disposition_type="inline")


@post("/api/jobs")
async def create_job(data: JSONBody[JobRequest], queue_service: NamedDependency[QueueService]) -> JobView:
    """Enqueue a report; the answer carries the token that lets the caller watch it."""
    outcome = await queue_service.enqueue(build_report, data.title, steps=data.steps, step_seconds=data.step_seconds)
    return msgspec.structs.replace(JobView.of(outcome.record), events_token=events_token(outcome.id))


@get("/api/jobs/{job_id:str}")
async def get_job(job_id: FromPath[str], queue_service: NamedDependency[QueueService]) -> JobView:
    """The job's current state."""
    record = await queue_service.get_task(job_id)
    if record is None:
        raise NotFoundException(f"no job {job_id}")
    return JobView.of(record)


@get("/api/reports")
async def list_reports(db_session: NamedDependency[AsyncSession]) -> list[dict[str, object]]:
    """The reports built so far, newest first."""
    reports = await db_session.scalars(select(Report).order_by(Report.id.desc()).limit(50))
    return [{"job": report.job_id, "title": report.title, "pages": report.pages} for report in reports]


@websocket("/api/jobs/{job_id:str}/events")
async def job_events(socket: WebSocket, job_id: FromPath[str]) -> None:
    """The job's events, live, over a websocket (``may_watch`` decides first: a refusal closes it with 1008)."""
    await stream_queue_events(socket, [QueueChannels.task(job_id)], history=EVENT_HISTORY)


@get("/api/jobs/{job_id:str}/events/sse")
async def job_events_sse(request: Request, job_id: FromPath[str]) -> ServerSentEvent:
    """The job's events as Server-Sent Events (resumes after ``Last-Event-ID``; a refusal is a 403)."""
    return await sse_queue_events(request, [QueueChannels.task(job_id)], history=EVENT_HISTORY)


def event_transport(backend_url: str) -> tuple[ChannelsPlugin, list[Callable[[], Awaitable[None]]]]:
    """The Channels the events travel through, and what to close on shutdown.

    Redis streams on the queue's own server for a Redis or Valkey URL (processes sharing the queue share the
    events), else in-process memory.
    """
    scheme, _, rest = backend_url.partition("://")
    if scheme in ("redis", "rediss", "valkey", "valkeys"):
        # Imported only here: redis-py is installed with litestar-queues[redis], not with every backend.
        from litestar.channels.backends.redis import RedisChannelsStreamBackend  # noqa: PLC0415
        from redis.asyncio import Redis  # noqa: PLC0415

        redis = Redis.from_url(f"{scheme.replace('valkey', 'redis')}://{rest}")
        streams = RedisChannelsStreamBackend(history=EVENT_HISTORY, redis=redis, stream_ttl=timedelta(minutes=10))
        return ChannelsPlugin(streams, arbitrary_channels_allowed=True), [redis.aclose]
    return ChannelsPlugin(MemoryChannelsBackend(history=EVENT_HISTORY), arbitrary_channels_allowed=True), []


def queue_backend(setting: str) -> str | BackendConfig:
    """``advanced-alchemy``: the app's own database (its Advanced Alchemy config, found by the plugin); else a name
    or URL."""
    return AdvancedAlchemyBackendConfig(create_tables=True) if setting == "advanced-alchemy" else setting


def create_app() -> Litestar:
    """Build the app from the environment."""
    backend_url = os.environ.get("LITESTAR_QUEUES_BACKEND", "memory")
    channels, close_transport = event_transport(backend_url)
    queue_config = QueueConfig(
        queue_backend=queue_backend(backend_url),
        in_app_worker=os.environ.get("LITESTAR_QUEUES_IN_APP_WORKER", "1") != "0",
        task_modules=("examples.tasks",),
        event_config=QueueEventConfig(enabled=True, channels_backend=channels, history=True),
    )
    return Litestar(
        route_handlers=[index, create_job, get_job, list_reports, job_events, job_events_sse],
        plugins=[
            channels,
            SQLAlchemyPlugin(config=alchemy),
            QueuePlugin(config=queue_config, authorize_channels=may_watch),
        ],
        on_shutdown=close_transport,  # after the plugins stopped using it
    )


app = create_app()
