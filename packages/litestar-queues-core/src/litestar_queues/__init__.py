"""Durable task queues, workers, schedules and realtime job events for Litestar applications."""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from typing import TYPE_CHECKING, Any

from litestar_queues.backend import BackendConfig, Capability, QueueBackend
from litestar_queues.clock import Clock, SystemClock, utc_now
from litestar_queues.config import QueueConfig, WorkerConfig
from litestar_queues.context import TaskDependency, TaskExecutionContext, current_task_context
from litestar_queues.errors import (
    BackendUnavailableError,
    ConfigurationError,
    DuplicateTaskError,
    NonRetryableError,
    QueueError,
    RecordNotFoundError,
    RecordStateError,
    SerializationError,
    TaskFailedError,
    TaskNotFoundError,
    TaskTimeoutError,
    UnsupportedOperation,
)
from litestar_queues.lazy import load_lazy
from litestar_queues.records import (
    EnqueueOutcome,
    Lease,
    LeaseState,
    Outcome,
    QueueStatistics,
    RecordFilter,
    RecordPage,
    TaskError,
    TaskProgress,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from litestar_queues.scheduler import ScheduleInfo
from litestar_queues.service import EnqueueRequest, QueueService
from litestar_queues.task import Schedule, Task, TaskOptions, TaskRegistry, default_registry, task
from litestar_queues.worker import Worker

if TYPE_CHECKING:
    from litestar_queues.litestar import DashboardConfig, NamedDependency
    from litestar_queues.litestar.plugin import QueuePlugin

__all__ = (
    "BackendConfig",
    "BackendUnavailableError",
    "Capability",
    "Clock",
    "ConfigurationError",
    "DashboardConfig",
    "DuplicateTaskError",
    "EnqueueOutcome",
    "EnqueueRequest",
    "Lease",
    "LeaseState",
    "NamedDependency",
    "NonRetryableError",
    "Outcome",
    "QueueBackend",
    "QueueConfig",
    "QueueError",
    "QueuePlugin",
    "QueueService",
    "QueueStatistics",
    "RecordFilter",
    "RecordNotFoundError",
    "RecordPage",
    "RecordStateError",
    "Schedule",
    "ScheduleInfo",
    "SerializationError",
    "SystemClock",
    "Task",
    "TaskDependency",
    "TaskError",
    "TaskExecutionContext",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskOptions",
    "TaskProgress",
    "TaskRecord",
    "TaskRegistry",
    "TaskStatus",
    "TaskTimeoutError",
    "UnsupportedOperation",
    "Worker",
    "WorkerConfig",
    "WorkerInfo",
    "current_task_context",
    "default_registry",
    "task",
    "utc_now",
)

_LAZY = {
    "DashboardConfig": "litestar_queues.litestar.dashboard",
    "NamedDependency": "litestar_queues.litestar",
    "QueuePlugin": "litestar_queues.litestar.plugin",
}


def __getattr__(name: str) -> Any:
    return load_lazy(__name__, name, _LAZY)
