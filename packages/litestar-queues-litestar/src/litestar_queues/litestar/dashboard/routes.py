"""The dashboard's routes: pages (GET), actions (POST, CSRF-protected), live events (Server-Sent Events) and its
assets, in one Litestar ``Router`` that carries the configured guards.

Every route reads and changes the queues through the app's ``QueueService`` only, so the dashboard works the same
on every backend. Litestar inspects the handlers' signatures at runtime, so this module keeps real annotations.
"""

import json
import secrets
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.enums import MediaType, RequestEncodingType
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.params import Body, FromPath
from litestar.response import Redirect, ServerSentEvent
from litestar.static_files import create_static_files_router

from litestar_queues import QueueConfig, QueueService, TaskStatus
from litestar_queues.errors import DuplicateTaskError, QueueError, RecordNotFoundError
from litestar_queues.events import QueueChannels
from litestar_queues.litestar.dashboard.config import DashboardConfig
from litestar_queues.litestar.dashboard.views import JobFilter, create_engine, load_overview
from litestar_queues.litestar.streaming import find_channels_plugin, sse_queue_events
from litestar_queues.records import is_record_id
from litestar_queues.service import CANCELLABLE, RETRYABLE

__all__ = ("CSRF_COOKIE", "Dashboard", "create_dashboard_router")

CSRF_COOKIE = "litestar_queues_csrf"
"""The cookie of the dashboard's own CSRF tokens (scoped to the dashboard's path)."""

EVENT_HISTORY = 50
"""Recent events replayed per job when a page subscribes (when the Channels backend keeps history)."""

_NOTICES = {
    "retried": "The job is pending again.",
    "cancelled": "The job is cancelled.",
    "cancel_requested": "Cancellation requested: the worker running the job will stop it.",
    "enqueued": "The job is enqueued.",
    "existing": "A job with the same dedup key is active: this is that job, nothing was enqueued.",
    "paused": "The queue is paused: workers start none of its jobs until it is resumed.",
    "already_paused": "The queue was paused already.",
    "resumed": "The queue is resumed.",
    "not_paused": "The queue was not paused.",
    "bulk_retry": "{count} job(s) are pending again.",
    "bulk_cancel": "{count} job(s) cancelled or asked to stop.",
    "nothing": "No job matched: nothing changed.",
}
"""Messages shown after an action redirects (the query string names one; no text of the request is echoed)."""

_QUEUE_ACTIONS = {"pause": ("paused", "already_paused"), "resume": ("resumed", "not_paused")}
"""The notices of a queue action: when it changed the queue, and when it did not."""

_Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _allow_everything(connection: Any, channels: list[str]) -> bool:
    """The dashboard's guards have already decided who may watch."""
    del connection, channels
    return True


class Dashboard:
    """One app's dashboard: its settings, templates, and where its ``QueueService`` lives on ``app.state``."""

    __slots__ = ("config", "engine", "state_key")

    def __init__(self, config: DashboardConfig, queue_config: QueueConfig) -> None:
        """Prepare the dashboard of ``queue_config``'s service (nothing is mounted yet)."""
        self.config = config
        self.state_key = queue_config.queue_service_state_key
        self.engine = create_engine()

    def service(self, request: Request[Any, Any, Any]) -> QueueService:
        """The app's opened ``QueueService``."""
        service: QueueService = request.app.state[self.state_key]
        return service

    def live(self, request: Request[Any, Any, Any]) -> bool:
        """Whether pages can stream events: enabled here, events published, and Litestar Channels to read them."""
        return (
            self.config.live
            and self.service(request).publisher.enabled
            and find_channels_plugin(request.app) is not None
        )

    def url(self, path: str = "/") -> str:
        """The URL of a dashboard path (``"/jobs"`` -> ``"/queues/jobs"``)."""
        return f"{self.config.base}{path}"

    def render(
        self, request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
    ) -> Response[str]:
        """Render a page of the dashboard."""
        notice = request.query_params.get("notice")
        message = _NOTICES.get(notice or "")
        if message is not None:
            raw_count = request.query_params.get("count", "")
            message = message.format(count=int(raw_count) if raw_count.isdigit() else "Some")
        html = self.engine.get_template(template).render(
            request=request,
            config=self.config,
            base=self.config.base,
            live=self.live(request),
            notice=message,
            **context,
        )
        return Response(html, media_type=MediaType.HTML, status_code=status_code)

    def error(self, request: Request[Any, Any, Any], status_code: int, message: str) -> Response[str]:
        """A page saying what went wrong, with the HTTP status of it."""
        return self.render(request, "error.html", status_code=status_code, message=message, page="error")

    def back(self, path: str, notice: str, **query: Any) -> Redirect:
        """Redirect after an action (303: the browser GETs the page), naming the notice to show there."""
        separator = "&" if "?" in path else "?"
        extra = "".join(f"&{name}={value}" for name, value in query.items())
        return Redirect(f"{self.url(path)}{separator}notice={notice}{extra}", status_code=303)


def _filters(status: str | None, queue: str | None, task: str | None) -> JobFilter:
    """The job list's filters from a query string or form; empty values mean any.

    Raises:
        ValueError: ``status`` is no status.
    """
    return JobFilter(status=TaskStatus(status) if status else None, queue=queue or None, task_name=task or None)


def create_dashboard_router(config: DashboardConfig, queue_config: QueueConfig, *, own_csrf: bool) -> Router:
    """The dashboard's routes under ``config.path``, with ``config.guards``.

    Args:
        config: The dashboard's settings.
        queue_config: The app's queue configuration (where the service is found).
        own_csrf: Protect the actions with CSRF tokens of the dashboard's own (a cookie scoped to its path); the
            plugin passes ``False`` when the app has a ``csrf_config``, whose middleware then checks them.
    """
    dashboard = Dashboard(config, queue_config)

    @get("/")
    async def overview(request: Request[Any, Any, Any]) -> Response[str]:
        service = dashboard.service(request)
        data = await load_overview(service, count_limit=config.count_limit)
        return dashboard.render(request, "overview.html", page="overview", overview=data)

    @get("/jobs")
    async def jobs(request: Request[Any, Any, Any]) -> Response[Any]:
        service = dashboard.service(request)
        query = request.query_params
        status, cursor = query.get("status"), query.get("cursor")
        try:
            filters = _filters(status, query.get("queue"), query.get("task"))
        except ValueError:
            return dashboard.error(request, 400, f"There is no status {status!r}.")
        q = query.get("q")
        search = (q or "").strip()
        if search:
            found = await service.get_task(search) if is_record_id(search) else None
            found = found or await service.get_task_by_key(search)
            if found is not None:
                return Redirect(dashboard.url(f"/jobs/{found.id}"), status_code=303)
        page = await service.list_tasks(
            status=filters.status,
            queue=filters.queue,
            task_name=filters.task_name,
            limit=config.page_size,
            cursor=cursor or None,
        )
        return dashboard.render(
            request,
            "jobs.html",
            page="jobs",
            filters=filters,
            records=page.records,
            next_cursor=page.next_cursor,
            first_page=cursor is not None,
            search_missed=search or None,
            task_names=sorted(task.name for task in service.registry),
            now=service.clock.now(),
        )

    @get("/jobs/{job_id:str}")
    async def job(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[str]:
        service = dashboard.service(request)
        record = await service.get_task(job_id)
        if record is None:
            return dashboard.error(request, 404, f"There is no job {job_id!r} (it may have been pruned).")
        return dashboard.render(request, "job.html", page="job", job=record, now=service.clock.now())

    @get("/events")
    async def events(request: Request[Any, Any, Any]) -> Response[Any]:
        if not dashboard.live(request):
            return Response("live events need the app's queue events on Litestar Channels", status_code=404)
        asked = request.query_params.getall("job", [])
        ids = [value for value in dict.fromkeys(asked) if is_record_id(value)][: config.page_size]
        if not ids:
            return Response("name one or more jobs: ?job=<id>", status_code=400)
        stream: ServerSentEvent = await sse_queue_events(
            request, [QueueChannels.task(value) for value in ids], history=EVENT_HISTORY, authorize=_allow_everything
        )
        return stream

    handlers: list[Any] = [overview, jobs, job, events]

    if not config.read_only:

        @post("/jobs/{job_id:str}/retry")
        async def retry(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
            try:
                await dashboard.service(request).retry(job_id)
            except RecordNotFoundError:
                return dashboard.error(request, 404, f"There is no job {job_id!r}.")
            except DuplicateTaskError as exc:
                return dashboard.error(request, 409, f"The job cannot be retried: {exc}.")
            return dashboard.back(f"/jobs/{job_id}", "retried")

        @post("/jobs/{job_id:str}/cancel")
        async def cancel(request: Request[Any, Any, Any], job_id: FromPath[str]) -> Response[Any]:
            try:
                record = await dashboard.service(request).cancel(job_id)
            except RecordNotFoundError:
                return dashboard.error(request, 404, f"There is no job {job_id!r}.")
            notice = "cancel_requested" if record.status is TaskStatus.RUNNING else "cancelled"
            return dashboard.back(f"/jobs/{job_id}", notice)

        @post("/jobs/bulk")
        async def bulk(request: Request[Any, Any, Any], data: _Form) -> Response[Any]:
            action = data.get("action")
            if action not in ("retry", "cancel"):
                return dashboard.error(request, 400, "A bulk action is 'retry' or 'cancel'.")
            try:
                filters = _filters(data.get("status"), data.get("queue"), data.get("task"))
            except ValueError:
                return dashboard.error(request, 400, f"There is no status {data.get('status')!r}.")
            service = dashboard.service(request)
            statuses = RETRYABLE if action == "retry" else CANCELLABLE
            listing = f"/jobs{filters.query()}"
            if data.get("confirm") == "yes":
                change = service.retry_many if action == "retry" else service.cancel_many
                changed = await change(
                    status=filters.status, queue=filters.queue, task_name=filters.task_name, limit=config.bulk_limit
                )
                return dashboard.back(listing, f"bulk_{action}" if changed else "nothing", count=changed)
            matching = 0
            selection = service.iterate_tasks(
                statuses,
                status=filters.status,
                queue=filters.queue,
                task_name=filters.task_name,
                limit=config.bulk_limit + 1,
            )
            async for _ in selection:
                matching += 1
            if not matching:
                return dashboard.back(listing, "nothing")
            return dashboard.render(
                request,
                "confirm.html",
                page="jobs",
                action=action,
                filters=filters,
                statuses=[filters.status] if filters.status else statuses,
                matching=matching,
                limit=config.bulk_limit,
            )

        @post("/queue/{action:str}")
        async def queue_action(request: Request[Any, Any, Any], action: FromPath[str], data: _Form) -> Response[Any]:
            notices = _QUEUE_ACTIONS.get(action)
            if notices is None:
                return dashboard.error(request, 404, "A queue is paused or resumed.")
            queue = data.get("queue", "")
            if not queue:
                return dashboard.error(request, 400, f"Name the queue to {action}.")
            service = dashboard.service(request)
            change = service.pause_queue if action == "pause" else service.resume_queue
            return dashboard.back("/", notices[0] if await change(queue) else notices[1])

        @post("/enqueue")
        async def enqueue(request: Request[Any, Any, Any], data: _Form) -> Response[Any]:
            service = dashboard.service(request)
            options: dict[str, Any] = {}
            try:
                args = json.loads(data.get("args") or "[]")
                kwargs = json.loads(data.get("kwargs") or "{}")
                if not isinstance(args, list) or not isinstance(kwargs, dict):
                    raise TypeError("arguments are a JSON array, keyword arguments a JSON object")
                if data.get("queue"):
                    options["queue"] = data["queue"]
                if data.get("delay"):
                    options["delay"] = float(data["delay"])
                outcome = await service.enqueue_by_name(data.get("task", ""), args, kwargs, **options)
            except (ValueError, TypeError, QueueError) as exc:
                return dashboard.error(request, 400, f"Nothing was enqueued: {exc}")
            return dashboard.back(f"/jobs/{outcome.id}", "enqueued" if outcome.created else "existing")

        handlers += [retry, cancel, bulk, queue_action, enqueue]

    static = create_static_files_router(
        path="/static",
        directories=[Path(__file__).parent / "static"],
        include_in_schema=False,
        name=f"litestar_queues_dashboard_static{config.base.replace('/', '_')}",
    )
    middleware = []
    if own_csrf:
        csrf = CSRFConfig(
            secret=config.csrf_secret or secrets.token_hex(32),
            cookie_name=CSRF_COOKIE,
            cookie_path=config.path,
            cookie_httponly=True,
            cookie_samesite="strict",
            header_name="x-litestar-queues-csrf",
        )
        middleware.append(DefineMiddleware(CSRFMiddleware, config=csrf))
    return Router(
        path=config.path,
        route_handlers=[*handlers, static],
        guards=list(config.guards),
        middleware=middleware,
        include_in_schema=False,
    )
