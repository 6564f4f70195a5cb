"""Google Cloud Run jobs as an execution target: ``CloudRunExecutionConfig`` and the container entry point
``litestar-queues-cloudrun-worker`` (see the Cloud Run page of the docs)."""

from litestar_queues.execution.cloudrun.client import CloudRunApiError, CloudRunClient, CloudRunNotFoundError
from litestar_queues.execution.cloudrun.config import CloudRunExecutionConfig
from litestar_queues.execution.cloudrun.container import ExitCode
from litestar_queues.execution.cloudrun.target import CloudRunTarget

__all__ = (
    "CloudRunApiError",
    "CloudRunClient",
    "CloudRunExecutionConfig",
    "CloudRunNotFoundError",
    "CloudRunTarget",
    "ExitCode",
)
