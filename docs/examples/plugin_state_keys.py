"""The configuration seed's dependency and state keys snippet, as written, with a handler asking for ``jobs``.

Run it with ``cd docs/examples && uv run python plugin_state_keys.py``.
"""

from litestar import Litestar, get

from litestar_queues import QueueConfig, QueuePlugin, QueueService
from litestar_queues.litestar import NamedDependency

config = QueueConfig(
    queue_service_dependency_key="jobs",
    queue_service_state_key="jobs_service",
    queue_worker_state_key="jobs_worker",
)


@get("/jobs/workers")
async def live_workers(jobs: NamedDependency[QueueService]) -> list[str]:
    return [worker.id for worker in await jobs.list_workers()]


app = Litestar(route_handlers=[live_workers], plugins=[QueuePlugin(config=config)])


if __name__ == "__main__":
    from litestar.testing import TestClient

    with TestClient(app) as client:
        assert client.get("/jobs/workers").json() == [app.state.jobs_worker.id]
        assert app.state.jobs_service is not None
        print("jobs_service and jobs_worker are on app.state; handlers ask for `jobs`")
