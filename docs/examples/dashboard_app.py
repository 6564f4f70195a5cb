"""The dashboard, mounted by the plugin behind a guard: run it with ``python docs/examples/dashboard_app.py``.

It opens the app in process, enqueues a job, runs it, and reads the overview and the job's page as an admin would
(a guard lets in requests that carry the admin header), and shows that anyone else is refused.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.testing import TestClient

from litestar_queues import DashboardConfig, QueueConfig, QueuePlugin, QueueService, task


@task("mail.send", queue="mail")
async def send_mail(to: str) -> str:
    return f"sent to {to}"


def admins_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard: replace it with your app's own check (a session, a role)."""
    if connection.headers.get("x-admin-token") != "let-me-in":
        raise NotAuthorizedException("the queue dashboard is for admins")


config = QueueConfig(
    dashboard=DashboardConfig(path="/admin/queues", guards=[admins_only]),
    # csrf_secret=...  set one when several processes serve the app
)
app = Litestar(plugins=[QueuePlugin(config=config)])


if __name__ == "__main__":
    admin = {"x-admin-token": "let-me-in"}
    with TestClient(app) as client:
        service: QueueService = client.app.state["queue_service"]
        assert client.blocking_portal is not None
        outcome = client.blocking_portal.call(lambda: service.enqueue(send_mail, "ada@example.com"))
        client.blocking_portal.call(lambda: service.wait_for(outcome.id, timeout=10))
        overview = client.get("/admin/queues/", headers=admin)
        job = client.get(f"/admin/queues/jobs/{outcome.id}", headers=admin)
        refused = client.get("/admin/queues/")
        listed = 'data-queue="mail"' in overview.text
        shown = "sent to ada@example.com" in job.text
        print(
            f"overview {overview.status_code}, queue mail listed: {listed}; job page {job.status_code}: {shown}; "
            f"without the header {refused.status_code}"
        )
