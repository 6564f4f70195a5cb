"""``QueuePlugin``: wires a ``QueueConfig`` into a Litestar app — dependency, app state, lifespan and CLI.

Litestar inspects the dependency provider's signature at runtime, so this module keeps real (not
postponed) annotations.
"""

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Protocol, cast, runtime_checkable

from click import Group
from litestar import Litestar, Router
from litestar.channels import ChannelsPlugin
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.plugins import CLIPlugin, InitPlugin

from litestar_queues import BackendConfig, QueueConfig, QueueService
from litestar_queues.errors import ConfigurationError, QueueError
from litestar_queues.events import QueueEventPublisher
from litestar_queues.litestar.authorization import ChannelAuthorizer
from litestar_queues.litestar.runtime import QueueRuntime, event_channels

__all__ = ("AppBoundBackendConfig", "QueuePlugin", "get_queue_plugin")

logger = logging.getLogger("litestar_queues.litestar")


class QueuePlugin(InitPlugin, CLIPlugin):
    """Run litestar-queues inside a Litestar application.

    The plugin

    * registers the ``QueueService`` dependency (``queue_service: NamedDependency[QueueService]`` in handlers;
      the key is ``QueueConfig.queue_service_dependency_key``);
    * on startup opens the service (connecting the backend and importing ``task_modules``), initialises
      schedules, starts an in-app worker when ``in_app_worker=True``, and stores the service, worker, event
      publisher and Channels backend on ``app.state`` under the configured keys;
    * on shutdown drains the worker (``WorkerConfig.drain_timeout``) and closes everything;
    * adds the ``litestar queues`` command group;
    * mounts the web dashboard when ``QueueConfig.dashboard`` is a ``DashboardConfig`` (``docs/dashboard.md``),
      and warns at startup when it has no guards.

    Its lifespan is registered after every other plugin has initialised, whatever their order in
    ``Litestar(plugins=[...])``: the queue starts last and stops first, so tasks running while it drains still
    have the database engines, Channels and clients other plugins' lifespans manage. A backend configuration that
    takes its database from another plugin (``AdvancedAlchemyBackendConfig()`` without ``alchemy``) finds it then,
    and running tasks see ``app.state`` as ``TaskExecutionContext.state``.

    Nothing is opened before the app's lifespan starts, so a server that forks or spawns several web workers
    gives each process its own service and its own in-app worker.
    """

    __slots__ = ("_authorize_channels", "_channels", "_config")

    def __init__(
        self, config: QueueConfig | None = None, *, authorize_channels: ChannelAuthorizer | None = None
    ) -> None:
        """Create the plugin.

        Args:
            config: The queue configuration; ``QueueConfig()`` (memory backend, in-app worker) when ``None``.
            authorize_channels: The default authorization hook of ``stream_queue_events`` and
                ``sse_queue_events`` in this app: ``authorize(connection, channels) -> bool`` (sync or async).
                ``None`` allows every subscription.

        Raises:
            ConfigurationError: ``event_config.channels_backend`` is not a Litestar Channels plugin or backend.
        """
        self._config = config if config is not None else QueueConfig()
        self._authorize_channels = authorize_channels
        self._channels = event_channels(self._config)

    @property
    def config(self) -> QueueConfig:
        """The queue configuration."""
        return self._config

    @property
    def channels(self) -> ChannelsPlugin | None:
        """The ``ChannelsPlugin`` queue events are published through (``None`` when events do not use Channels)."""
        return self._channels

    @property
    def authorize_channels(self) -> ChannelAuthorizer | None:
        """The app's default subscription authorization hook."""
        return self._authorize_channels

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Register the dependency and signature names; the lifespan follows once every plugin initialised.

        Raises:
            ConfigurationError: the dependency key is taken.
        """
        key = self._config.queue_service_dependency_key
        if key in app_config.dependencies:
            raise ConfigurationError(
                f"the app already has a dependency named {key!r}; choose another name with "
                "QueueConfig(queue_service_dependency_key=...)"
            )
        app_config.dependencies[key] = Provide(
            _service_provider(self._config.queue_service_state_key), sync_to_thread=False
        )
        app_config.signature_namespace.update(
            {
                "NamedDependency": NamedDependency,
                "QueueService": QueueService,
                "QueueEventPublisher": QueueEventPublisher,
            }
        )
        channels = self._channels
        if channels is not None and channels not in app_config.plugins:
            # Not registered by the app: this plugin owns it. Its lifespan goes before ours so it outlives ours.
            app_config.lifespan.append(channels)
        dashboard = self._config.dashboard
        if dashboard is not None:
            app_config.route_handlers.append(self._dashboard_router(dashboard, own_csrf=app_config.csrf_config is None))
        app_config.plugins.append(_AfterEveryPlugin(self))
        return app_config

    def _finish_init(self, app_config: AppConfig) -> None:
        """Once every plugin initialised: let the backend configuration find what it takes from the app, then
        register the lifespan (after every lifespan other plugins registered)."""
        backend = self._config.queue_backend
        if isinstance(backend, AppBoundBackendConfig):
            self._config = dataclasses.replace(self._config, queue_backend=backend.for_app(app_config))
        app_config.lifespan.append(self._lifespan)

    def _dashboard_router(self, dashboard: object, *, own_csrf: bool) -> Router:
        from litestar_queues.litestar.dashboard.config import DashboardConfig  # noqa: PLC0415 - only with a dashboard
        from litestar_queues.litestar.dashboard.routes import create_dashboard_router  # noqa: PLC0415 - needs jinja2

        if not isinstance(dashboard, DashboardConfig):
            raise ConfigurationError(
                f"QueueConfig.dashboard must be a DashboardConfig, got {type(dashboard).__name__}: "
                "from litestar_queues.litestar import DashboardConfig"
            )
        return create_dashboard_router(dashboard, self._config, own_csrf=own_csrf)

    def on_cli_init(self, cli: Group) -> None:
        """Add the ``queues`` command group to the ``litestar`` CLI."""
        from litestar_queues.litestar.cli import queues_group  # noqa: PLC0415 - only the CLI needs click commands

        cli.add_command(queues_group)

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        config = self._config
        if config.dashboard is not None and not config.dashboard.guards:
            mode = "read" if config.dashboard.read_only else "read and change"
            logger.warning(
                "the litestar-queues dashboard at %s has no guards: anyone who can reach this app can %s its queues "
                "(pass DashboardConfig(guards=[...]); see docs/dashboard.md)",
                config.dashboard.path,
                mode,
            )
        async with AsyncExitStack() as stack:
            try:
                runtime = await stack.enter_async_context(
                    QueueRuntime(config, start_worker=config.in_app_worker, state=app.state)
                )
            except QueueError as exc:  # the server's own report of the failed startup is a traceback
                logger.error("litestar-queues could not start: %s", exc)
                raise
            service = cast("QueueService", runtime.service)
            values = {
                config.queue_service_state_key: service,
                config.queue_worker_state_key: runtime.worker,
                config.queue_event_publisher_state_key: service.publisher,
                config.channels_backend_state_key: config.event_config.channels_backend,
            }
            for state_key, value in values.items():
                app.state[state_key] = value
            try:
                yield
            finally:
                for state_key in values:
                    app.state.pop(state_key, None)


@runtime_checkable
class AppBoundBackendConfig(Protocol):
    """A backend configuration that takes something from the application, e.g. the database of another plugin."""

    def for_app(self, app_config: AppConfig) -> BackendConfig:
        """This configuration completed from ``app_config`` (every plugin has initialised by then).

        Raises:
            ConfigurationError: The app lacks what the configuration needs.
        """
        ...


class _AfterEveryPlugin(InitPlugin):
    """Runs the ``QueuePlugin``'s last initialisation step once no plugin follows it in the app's list.

    Litestar initialises plugins in list order, including the plugins that ``on_app_init`` hooks append (Advanced
    Alchemy's ``SQLAlchemyPlugin`` appends its ``SQLAlchemyInitPlugin``, which registers the engine's lifespan). A
    step that is not last yet appends a fresh one behind the newcomers and stays as it is, inert: removing it would
    make Litestar skip the plugin after it.
    """

    __slots__ = ("_plugin",)

    def __init__(self, plugin: QueuePlugin) -> None:
        self._plugin = plugin

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if app_config.plugins[-1] is self:
            self._plugin._finish_init(app_config)
        else:
            app_config.plugins.append(_AfterEveryPlugin(self._plugin))
        return app_config


def _service_provider(state_key: str) -> Callable[[State], QueueService]:
    def provide_queue_service(state: State) -> QueueService:
        try:
            return cast("QueueService", state[state_key])
        except KeyError:
            raise RuntimeError(
                "the QueueService is not running: it is opened by the app's lifespan (use the test client as a "
                "context manager, or run the app with a server)"
            ) from None

    return provide_queue_service


def get_queue_plugin(app: Litestar) -> QueuePlugin:
    """Return the app's ``QueuePlugin``.

    Raises:
        KeyError: the app has no ``QueuePlugin``.
    """
    return app.plugins.get(QueuePlugin)
