"""``QueueConfig`` and ``WorkerConfig``, and how a backend name or URL becomes a backend."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from litestar_queues.backend import BackendConfig, QueueBackend
from litestar_queues.clock import Clock, SystemClock
from litestar_queues.errors import ConfigurationError
from litestar_queues.events.config import QueueEventConfig
from litestar_queues.instrumentation import Instrumentation
from litestar_queues.limits import check_int, check_name, check_seconds
from litestar_queues.targets import ExecutionConfig
from litestar_queues.task import check_dependency_names

if TYPE_CHECKING:
    from litestar_queues.context import TaskDependency
    from litestar_queues.litestar.dashboard import DashboardConfig

__all__ = (
    "BUILTIN_EXECUTION_BACKENDS",
    "QueueConfig",
    "WorkerConfig",
    "backend_config",
    "default_worker_id",
    "redact_url",
    "resolve_backend",
)

BUILTIN_EXECUTION_BACKENDS = frozenset({"local", "immediate"})

# scheme -> (module, config class, what to install)
_URL_BACKENDS: dict[str, tuple[str, str, str]] = {
    "memory": ("litestar_queues.backends.memory", "MemoryBackendConfig", "litestar-queues"),
    "redis": ("litestar_queues.backends.redis", "RedisBackendConfig", "litestar-queues[redis]"),
    "rediss": ("litestar_queues.backends.redis", "RedisBackendConfig", "litestar-queues[redis]"),
    "valkey": ("litestar_queues.backends.valkey", "ValkeyBackendConfig", "litestar-queues[valkey]"),
    "valkeys": ("litestar_queues.backends.valkey", "ValkeyBackendConfig", "litestar-queues[valkey]"),
    "redis+cluster": ("litestar_queues.backends.redis", "RedisBackendConfig", "litestar-queues[redis]"),
    "rediss+cluster": ("litestar_queues.backends.redis", "RedisBackendConfig", "litestar-queues[redis]"),
    "valkey+cluster": ("litestar_queues.backends.valkey", "ValkeyBackendConfig", "litestar-queues[valkey]"),
    "valkeys+cluster": ("litestar_queues.backends.valkey", "ValkeyBackendConfig", "litestar-queues[valkey]"),
    "postgresql": ("litestar_queues.backends.sqlspec", "SQLSpecBackendConfig", "litestar-queues[sqlspec]"),
    "postgres": ("litestar_queues.backends.sqlspec", "SQLSpecBackendConfig", "litestar-queues[sqlspec]"),
    "sqlite": ("litestar_queues.backends.sqlspec", "SQLSpecBackendConfig", "litestar-queues[sqlspec]"),
    "mysql": ("litestar_queues.backends.sqlspec", "SQLSpecBackendConfig", "litestar-queues[sqlspec]"),
    "mariadb": ("litestar_queues.backends.sqlspec", "SQLSpecBackendConfig", "litestar-queues[sqlspec]"),
}


def default_worker_id() -> str:
    """A worker id unique across hosts: ``worker-<host>-<pid>-<random>``."""
    return f"worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def redact_url(url: str) -> str:
    """Return ``url`` with its password (in the user part or a ``password=`` query parameter) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            name = user.split(":", 1)[0]
            netloc = f"{name}:***@{host}" if name else f"***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else item
        for item in parts.query.split("&")
        if item
        for name in (item.split("=", 1)[0],)
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing to hide (and urlunsplit would drop the "//" of "sqlite:///x.db")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _provider(url: str) -> tuple[str, str, str, str]:
    """The scheme, module, config class and install hint of the backend a name or URL names.

    Raises:
        ConfigurationError: unknown name or scheme.
    """
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else url.lower()
    try:
        return (scheme, *_URL_BACKENDS[scheme])
    except KeyError:
        known = ", ".join(sorted({"memory", *(f"{s}://" for s in _URL_BACKENDS if s != "memory")}))
        raise ConfigurationError(
            f"unknown queue backend {redact_url(url)!r}; use one of: {known}, or a typed config"
        ) from None


def backend_config(url: str) -> BackendConfig:
    """Return the typed configuration of a backend name or URL (``"memory"``, ``redis://...``, ...).

    Raises:
        ConfigurationError: unknown name or scheme, a malformed URL, or the distribution providing it is not
            installed.
    """
    scheme, module_name, class_name, install = _provider(url)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"queue backend {redact_url(url)!r} needs {install}: pip install '{install}'") from exc
    config_class = getattr(module, class_name)
    config: BackendConfig = config_class() if scheme == "memory" else config_class.from_url(url)
    return config


def _check_backend_url(url: str) -> None:
    """Check a backend name or URL now: its scheme, and its form when the distribution providing it is installed
    (a missing one is reported when the backend is created, so a configuration can be made without it).

    Raises:
        ConfigurationError: unknown name or scheme, or a malformed URL.
    """
    _, module_name, _, _ = _provider(url)
    try:
        installed = importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:  # not even its parent package (litestar_queues.backends) is installed
        installed = False
    if installed:
        backend_config(url)


def resolve_backend(value: str | BackendConfig | QueueBackend) -> QueueBackend:
    """Turn ``"memory"``, a URL (``redis://``, ``valkey://``, ``postgresql://``, ``sqlite:///``, ``mysql://``), a typed
    backend config or a backend instance into an (unopened) backend.

    Raises:
        ConfigurationError: unknown name/scheme, or the distribution providing it is not installed.
    """
    if isinstance(value, QueueBackend):
        return value
    if isinstance(value, BackendConfig):
        return value.create_backend()
    if not isinstance(value, str):
        raise ConfigurationError(
            f"queue_backend must be a backend name, a URL or a typed backend config, got {type(value).__name__}"
        )
    return backend_config(value).create_backend()


@dataclass(kw_only=True)
class WorkerConfig:
    """How a worker claims and runs work.

    Attributes:
        batch_size: Most due records fetched per claim round trip.
        poll_interval: Seconds to sleep when idle, if the backend cannot push wakeups (and the longest
            wait even when it can: polling is the fallback truth).
        concurrency: Attempts run at once by one worker.
        heartbeat_interval: Seconds between lease renewals of running attempts (also how quickly a
            cancellation of running work is noticed).
        reconcile_interval: Seconds between reconcile passes over attempts running on remote targets.
        stale_threshold: Lease length in seconds: a running record whose worker stopped renewing it for
            this long is recovered by another worker.
        queues: Queues served; ``None`` serves ``default`` and every queue a registered task names.
        queue_concurrency: Per-queue caps on running attempts, within ``concurrency``.
        worker_id: Identity used as lease owner; unique across hosts by default.
        drain_timeout: Seconds running attempts may take to finish on shutdown before they are handed back.
        maintenance_interval: Seconds between maintenance passes (stale recovery, expiry, pruning), run by one
            worker at a time under a lock.
        retention: Seconds finished records are kept before pruning; ``None`` keeps them.
        crash_retries: Extra attempts granted, beyond ``retries``, to work whose worker died mid-attempt.
    """

    batch_size: int = 10
    poll_interval: float = 1.0
    concurrency: int = 10
    heartbeat_interval: float = 5.0
    reconcile_interval: float = 30.0
    stale_threshold: float = 30.0
    queues: tuple[str, ...] | None = None
    queue_concurrency: dict[str, int] = field(default_factory=dict)
    worker_id: str | None = None
    drain_timeout: float = 30.0
    maintenance_interval: float = 15.0
    retention: float | None = 7 * 24 * 3600.0
    crash_retries: int = 2

    def __post_init__(self) -> None:
        """Check every setting.

        Raises:
            ConfigurationError: a setting has a wrong type or value; the message names it and the value.
        """
        for name in ("batch_size", "concurrency"):
            check_int(getattr(self, name), f"WorkerConfig.{name}", minimum=1)
        check_int(self.crash_retries, "WorkerConfig.crash_retries", minimum=0)
        for name in (
            "poll_interval",
            "heartbeat_interval",
            "stale_threshold",
            "maintenance_interval",
            "reconcile_interval",
        ):
            setattr(self, name, check_seconds(getattr(self, name), f"WorkerConfig.{name}", positive=True))
        self.drain_timeout = check_seconds(self.drain_timeout, "WorkerConfig.drain_timeout")
        if self.retention is not None:
            self.retention = check_seconds(self.retention, "WorkerConfig.retention (None keeps finished records)")
        if self.heartbeat_interval >= self.stale_threshold:
            raise ConfigurationError(
                f"WorkerConfig.heartbeat_interval ({self.heartbeat_interval}s) must be shorter than stale_threshold "
                f"({self.stale_threshold}s), or running work would be recovered while its worker is alive"
            )
        if self.queues is not None:
            if isinstance(self.queues, str):  # type: ignore[unreachable]  # a common slip: ("a") is a str
                raise ConfigurationError(
                    f"WorkerConfig.queues must be a tuple of queue names, not a string: use ({self.queues!r},)"
                )
            if not isinstance(self.queues, (tuple, list)) or not self.queues:
                raise ConfigurationError(
                    f"WorkerConfig.queues must be a non-empty tuple of queue names (or None), got {self.queues!r}"
                )
            self.queues = tuple(
                dict.fromkeys(check_name(queue, "a queue name in WorkerConfig.queues") for queue in self.queues)
            )
        if not isinstance(self.queue_concurrency, dict):
            raise ConfigurationError(
                f"WorkerConfig.queue_concurrency must be a dict of queue name to cap, got {self.queue_concurrency!r}"
            )
        for queue, cap in self.queue_concurrency.items():
            check_name(queue, "a queue name in WorkerConfig.queue_concurrency")
            check_int(cap, f"WorkerConfig.queue_concurrency[{queue!r}]", minimum=1)
        if self.worker_id is not None:
            check_name(self.worker_id, "WorkerConfig.worker_id")


@dataclass(kw_only=True)
class QueueConfig:
    """Everything about a queue service: storage, execution, tasks, worker, events and Litestar wiring.

    Attributes:
        queue_backend: ``"memory"``, a URL (``redis://``, ``valkey://``, ``postgresql://``, ``sqlite:///``,
            ``mysql://``), or a typed backend config such as ``RedisBackendConfig(...)``.
        execution_backend: Where attempts run by default: ``"local"`` (a worker), ``"immediate"`` (inline at
            enqueue, for tests), the name of a target in ``execution_backends``, or a typed target config such as
            ``CloudRunExecutionConfig(...)`` (which also makes it available by name).
        execution_backends: More targets that tasks may name (``@task(execution_backend="cloudrun")``) while
            the default stays ``execution_backend``.
        task_modules: Modules imported on startup so their ``@task`` decorators register.
        initialize_schedules: Create or refresh the pending record of every scheduled task on startup.
        in_app_worker: Start a worker inside the Litestar app process (plugin).
        worker: Worker settings.
        event_config: Event publishing settings.
        dependencies: Per-attempt dependencies of every task, by parameter name (see
            :data:`~litestar_queues.context.TaskDependency`): a task declaring a parameter of that name receives a
            value opened for its attempt. A task's own ``@task(dependencies=...)`` wins for the same name.
        instrumentation: Hooks around enqueues, attempts and outcome writes, such as
            ``OpenTelemetryInstrumentation()`` (``litestar-queues[opentelemetry]``); ``None`` costs nothing.
        clock: The source of time (tests inject a fake one).
        dashboard: Mount the web dashboard in the Litestar app (``DashboardConfig`` from ``litestar_queues.litestar``,
            also importable from ``litestar_queues``); ``None``, the default, mounts nothing.
    """

    queue_backend: str | BackendConfig | QueueBackend = "memory"
    execution_backend: str | ExecutionConfig = "local"
    execution_backends: tuple[ExecutionConfig, ...] = ()
    task_modules: tuple[str, ...] = ()
    initialize_schedules: bool = True
    in_app_worker: bool = True
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    event_config: QueueEventConfig = field(default_factory=QueueEventConfig)
    instrumentation: Instrumentation | None = None
    queue_service_dependency_key: str = "queue_service"
    queue_service_state_key: str = "queue_service"
    queue_worker_state_key: str = "queue_worker"
    queue_event_publisher_state_key: str = "queue_event_publisher"
    channels_backend_state_key: str = "queue_channels_backend"
    dependencies: Mapping[str, TaskDependency] = field(default_factory=dict)
    clock: Clock = field(default_factory=SystemClock)
    dashboard: DashboardConfig | None = None

    def __post_init__(self) -> None:
        """Check every setting; a backend name or URL is checked now (its scheme, and its form where the providing
        distribution is installed), not at startup.

        Raises:
            ConfigurationError: a setting has a wrong type or value; the message names it and the value.
        """
        if isinstance(self.task_modules, str):  # type: ignore[unreachable]  # a common slip: ("app.tasks") is a str
            raise ConfigurationError(
                f"QueueConfig.task_modules must be a tuple of module names, not a string: use ({self.task_modules!r},)"
            )
        if not isinstance(self.task_modules, (tuple, list)) or not all(
            isinstance(module, str) and module for module in self.task_modules
        ):
            raise ConfigurationError(
                f"QueueConfig.task_modules must be a tuple of module names, got {self.task_modules!r}"
            )
        self.task_modules = tuple(self.task_modules)
        check_dependency_names(self.dependencies, "QueueConfig")
        self.execution_backends = tuple(self.execution_backends)
        self._check_execution_backends()
        _check_type(self.worker, WorkerConfig, "QueueConfig.worker", "WorkerConfig(...)")
        _check_type(self.event_config, QueueEventConfig, "QueueConfig.event_config", "QueueEventConfig(...)")
        for name in ("initialize_schedules", "in_app_worker"):
            if type(getattr(self, name)) is not bool:
                raise ConfigurationError(f"QueueConfig.{name} must be True or False, got {getattr(self, name)!r}")
        for name in (
            "queue_service_dependency_key",
            "queue_service_state_key",
            "queue_worker_state_key",
            "queue_event_publisher_state_key",
            "channels_backend_state_key",
        ):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigurationError(f"QueueConfig.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not callable(getattr(self.clock, "now", None)):
            raise ConfigurationError(f"QueueConfig.clock must have a now() method, got {self.clock!r}")
        if isinstance(self.queue_backend, str):
            _check_backend_url(self.queue_backend)
        elif not isinstance(self.queue_backend, (BackendConfig, QueueBackend)):
            raise ConfigurationError(
                "QueueConfig.queue_backend must be a backend name, a URL or a typed backend config, "
                f"got {self.queue_backend!r}"
            )
        if self.instrumentation is not None:
            _check_type(
                self.instrumentation,
                Instrumentation,
                "QueueConfig.instrumentation",
                "an Instrumentation such as OpenTelemetryInstrumentation()",
            )

    @property
    def default_execution_backend(self) -> str:
        """The name of the target that runs tasks which name none."""
        default = self.execution_backend
        return default if isinstance(default, str) else default.name

    @property
    def execution_configs(self) -> tuple[ExecutionConfig, ...]:
        """Every configured target besides ``local`` and ``immediate``: the default's config first, if typed."""
        default = self.execution_backend
        if isinstance(default, str):
            return self.execution_backends
        return (default, *(config for config in self.execution_backends if config is not default))

    def _check_execution_backends(self) -> None:
        default = self.execution_backend
        for config in (default, *self.execution_backends):
            if not isinstance(config, (str, ExecutionConfig)) or (config is not default and isinstance(config, str)):
                raise ConfigurationError(
                    f"execution backends are names or typed target configs (such as CloudRunExecutionConfig), "
                    f"got {config!r}"
                )
        names = [config.name for config in self.execution_configs]
        for name in names:
            if name in BUILTIN_EXECUTION_BACKENDS or names.count(name) > 1:
                raise ConfigurationError(
                    f"execution backend name {name!r} is used twice (or is a built-in one); give each config its own "
                    "name"
                )
        known = sorted(BUILTIN_EXECUTION_BACKENDS.union(names))
        if self.default_execution_backend not in known:
            raise ConfigurationError(
                f"unknown execution_backend {self.default_execution_backend!r}; use one of {', '.join(known)}, or a "
                "typed config such as CloudRunExecutionConfig(...)"
            )


def _check_type(value: object, expected: type, what: str, example: str) -> None:
    if not isinstance(value, expected):
        raise ConfigurationError(f"{what} must be {example}, got {value!r} ({type(value).__name__})")
