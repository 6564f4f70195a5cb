"""Inside a Litestar app next to Advanced Alchemy's plugin: discovery by bind key, the lifespan order (every plugin
order), a transactional enqueue on the request's own session, per-attempt sessions, and read replicas."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from advanced_alchemy.config import RoutingConfig
from advanced_alchemy.extensions.litestar import (
    SQLAlchemyAsyncConfig,
    SQLAlchemyInitPlugin,
    SQLAlchemyPlugin,
    SQLAlchemySyncConfig,
)
from litestar import Litestar, post
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.exceptions import ClientException
from litestar.params import FromPath
from litestar.testing import TestClient
from sqlalchemy import Column, Integer, MetaData, String, Table, event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from litestar_queues import (
    QueueConfig,
    QueueService,
    TaskExecutionContext,
    TaskStatus,
    WorkerConfig,
    default_registry,
    task,
)
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig, QueueTables
from litestar_queues.errors import ConfigurationError
from litestar_queues.litestar import NamedDependency, QueuePlugin

FAST = WorkerConfig(poll_interval=0.05, heartbeat_interval=0.05, stale_threshold=1.0, maintenance_interval=0.5)
TIMELINE: list[str] = []
"""What happened, in order: task and SQL markers, engine disposals."""
ALCHEMY: list[SQLAlchemyAsyncConfig] = []
"""The test's Advanced Alchemy config: where it keeps the engine in ``app.state`` (it numbers the keys of every
further config in a process)."""


@asynccontextmanager
async def db_session(context: TaskExecutionContext) -> AsyncIterator[AsyncSession]:
    """The attempt's own session, from the engine Advanced Alchemy keeps in the app's state; committed on success."""
    async with AsyncSession(context.state[ALCHEMY[-1].engine_app_state_key]) as session, session.begin():
        yield session


@task("aa_plugin_tests.record_greeting", dependencies={"db_session": db_session})
async def record_greeting(name: str, pause: float, db_session: AsyncSession) -> str:
    await asyncio.sleep(pause)  # still running when the app shuts down
    await db_session.execute(text("INSERT INTO greetings (name) VALUES (:name)"), {"name": name})
    TIMELINE.append("task wrote")
    return name


@pytest.fixture(autouse=True, scope="module")
def _forget_tasks() -> Iterator[None]:
    yield
    for registered in list(default_registry):
        if registered.name.startswith("aa_plugin_tests."):
            default_registry.unregister(registered.name)


@pytest.fixture(autouse=True)
def _timeline() -> None:
    TIMELINE.clear()


@post("/greetings/{name:str}")
async def greet(
    name: FromPath[str], db_session: NamedDependency[AsyncSession], queue_service: NamedDependency[QueueService]
) -> dict[str, str]:
    """The app's own write and the job commit together (Advanced Alchemy's autocommit handler)."""
    await db_session.execute(text("INSERT INTO people (name) VALUES (:name)"), {"name": name})
    outcome = await queue_service.enqueue(record_greeting.using(session=db_session, key=f"greet:{name}"), name, 0.3)
    if name == "nobody":
        raise ClientException("no such person: the request's transaction rolls back, the job with it")
    return {"id": outcome.id}


@post("/queued-greetings/{name:str}")
async def greet_later(name: FromPath[str], queue_service: NamedDependency[QueueService]) -> dict[str, str]:
    """An enqueue of the queue's own (no request session)."""
    outcome = await queue_service.enqueue(record_greeting, name, 0)
    return {"id": outcome.id}


def _app_tables(metadata: MetaData) -> None:
    Table("people", metadata, Column("name", String(50), primary_key=True))
    Table("greetings", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))


def _alchemy(url: str, bind_key: str | None = None, **settings: Any) -> SQLAlchemyAsyncConfig:
    """An app database whose metadata (tables created at startup) is its own for this test."""
    key = bind_key or f"t{uuid.uuid4().hex[:8]}"
    metadata = MetaData()
    _app_tables(metadata)
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        bind_key=key,
        metadata=metadata,
        create_all=True,
        before_send_handler="autocommit",
        **settings,
    )
    ALCHEMY.append(config)
    return config


def _queue(bind_key: str | None, **settings: Any) -> QueuePlugin:
    backend = AdvancedAlchemyBackendConfig(bind_key=bind_key, **settings)
    # No schedules: other test modules may have registered scheduled tasks in the default registry.
    return QueuePlugin(QueueConfig(queue_backend=backend, worker=FAST, initialize_schedules=False))


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _status(client: TestClient[Litestar], record_id: str) -> TaskStatus | None:
    async def read() -> TaskStatus | None:
        record = await client.app.state["queue_service"].get_task(record_id)
        return None if record is None else record.status

    return client.blocking_portal.call(read)


ORDERS = [
    pytest.param(order, init, id=f"{'+'.join(order)}{'-init' if init else ''}")
    for init in (False, True)
    for order in itertools.permutations(("alchemy", "queue", "channels"))
    if not init or order.index("channels") == 2
]


@pytest.mark.parametrize(("order", "init_plugin"), ORDERS)
def test_the_worker_drains_before_the_engine_is_disposed_whatever_the_plugin_order(
    tmp_path: Path, order: tuple[str, ...], init_plugin: bool
) -> None:
    alchemy = _alchemy(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    engine = alchemy.get_engine()
    tasks_table = QueueTables(alchemy.metadata).tasks
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: TIMELINE.append("engine disposed"))

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def queue_sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if tasks_table.name in statement:
            TIMELINE.append("queue sql")

    plugins = {
        "alchemy": (SQLAlchemyInitPlugin if init_plugin else SQLAlchemyPlugin)(config=alchemy),
        "queue": _queue(alchemy.bind_key),
        "channels": ChannelsPlugin(MemoryChannelsBackend(), arbitrary_channels_allowed=True),
    }
    app = Litestar([greet], plugins=[plugins[name] for name in order])
    with TestClient(app) as client:
        response = client.post("/greetings/ada")
        assert response.status_code == 201, response.text
        record_id = response.json()["id"]
        _wait(lambda: _status(client, record_id) is TaskStatus.RUNNING)
        del TIMELINE[:]  # from here on: the shutdown
    first_disposal = TIMELINE.index("engine disposed")
    assert "task wrote" in TIMELINE[:first_disposal], TIMELINE
    assert "queue sql" not in TIMELINE[first_disposal:], f"the queue used the engine after its disposal: {TIMELINE}"
    assert engine.pool.checkedin() == 0, "nothing reopened the pool after the disposal"
    with TestClient(Litestar([], plugins=[SQLAlchemyPlugin(config=alchemy), _queue(alchemy.bind_key)])) as client:
        assert _status(client, record_id) is TaskStatus.COMPLETED


def test_the_request_session_enqueues_in_its_transaction(tmp_path: Path) -> None:
    alchemy = _alchemy(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    app = Litestar([greet], plugins=[_queue(alchemy.bind_key), SQLAlchemyPlugin(config=alchemy)])
    with TestClient(app) as client:
        ok = client.post("/greetings/grace")
        assert ok.status_code == 201
        assert client.post("/greetings/nobody").status_code == 400
        _wait(lambda: _status(client, ok.json()["id"]) is TaskStatus.COMPLETED)
        service: QueueService = client.app.state["queue_service"]
        records = client.blocking_portal.call(service.list_tasks)
        assert [record.args for record in records.records] == [["grace", 0.3]], "the rolled back job is gone"

        async def rows(sql: str) -> list[Any]:
            async with alchemy.get_session() as session:
                return list((await session.execute(text(sql))).scalars())

        assert client.blocking_portal.call(rows, "SELECT name FROM people") == ["grace"]
        assert client.blocking_portal.call(rows, "SELECT name FROM greetings") == ["grace"]


def test_the_plugin_config_is_found_by_bind_key(tmp_path: Path) -> None:
    main = _alchemy(f"sqlite+aiosqlite:///{tmp_path / 'main.db'}", bind_key=None)
    jobs = _alchemy(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", bind_key=f"jobs{uuid.uuid4().hex[:6]}")
    main.session_dependency_key, main.engine_dependency_key = "main_session", "main_engine"
    main.engine_app_state_key = "main_engine"
    app = Litestar(plugins=[_queue(jobs.bind_key), SQLAlchemyPlugin(config=[main, jobs])])
    with TestClient(app) as client:
        backend = client.app.state["queue_service"].backend
        assert backend.engine is jobs.get_engine()
        assert QueueTables(jobs.metadata).tasks.name in jobs.metadata.tables
    with pytest.raises(ConfigurationError, match="found no Advanced Alchemy config with that bind_key"):
        Litestar(plugins=[_queue("nowhere"), SQLAlchemyPlugin(config=main)])
    with pytest.raises(ConfigurationError, match="found no Advanced Alchemy config"):
        Litestar(plugins=[_queue(None)])


def test_synchronous_setups_are_refused_where_they_are_given(tmp_path: Path) -> None:
    sync = SQLAlchemySyncConfig(connection_string=f"sqlite:///{tmp_path / 'sync.db'}", bind_key="sync_only")
    with pytest.raises(ConfigurationError, match="needs an async database setup"):
        AdvancedAlchemyBackendConfig(alchemy=sync)
    with pytest.raises(ConfigurationError, match="needs an async database setup"):
        Litestar(plugins=[SQLAlchemyPlugin(config=sync), _queue("sync_only")])


@pytest.mark.parametrize("path", ["/queued-greetings", "/greetings"], ids=["queue-own", "request-session"])
def test_with_read_replicas_every_queue_operation_goes_to_the_primary(tmp_path: Path, path: str) -> None:
    primary, replica = (
        f"sqlite+aiosqlite:///{tmp_path / 'primary.db'}",
        f"sqlite+aiosqlite:///{tmp_path / 'replica.db'}",
    )
    key = f"r{uuid.uuid4().hex[:8]}"
    metadata = MetaData()
    _app_tables(metadata)
    alchemy = SQLAlchemyAsyncConfig(
        routing_config=RoutingConfig(primary_connection_string=primary, read_replicas=[replica]),
        bind_key=key,
        metadata=metadata,
        create_all=True,
        before_send_handler="autocommit",
    )
    ALCHEMY.append(alchemy)
    queue = _queue(key)  # defines the queue's tables on the metadata

    async def on(url: str, work: Callable[[Any], Any]) -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                return await work(connection)
        finally:
            await engine.dispose()

    # The replica has the same tables, as a real one would, but never receives the primary's rows here.
    asyncio.run(on(replica, lambda connection: connection.run_sync(metadata.create_all)))
    if path == "/greetings":
        try:
            alchemy.create_session_maker()()
        except AttributeError as error:  # sets AsyncSession.bind, a read-only property since SQLAlchemy 2.1
            pytest.skip(f"Advanced Alchemy's RoutingAsyncSession does not work with this SQLAlchemy: {error}")
    app = Litestar([greet, greet_later], plugins=[SQLAlchemyPlugin(config=alchemy), queue])
    with TestClient(app) as client:
        response = client.post(f"{path}/lin")  # the request's session is a routing one
        assert response.status_code == 201, response.text
        record_id = response.json()["id"]
        _wait(lambda: _status(client, record_id) is TaskStatus.COMPLETED)  # reads too: a replica would not know it
    tasks = QueueTables(metadata).tasks

    async def ids(connection: Any) -> list[str]:
        return list((await connection.execute(select(tasks.c.id))).scalars())

    assert asyncio.run(on(primary, ids)) == [record_id]
    assert asyncio.run(on(replica, ids)) == []
