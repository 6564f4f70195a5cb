"""The queue in the app's own database (Advanced Alchemy): a job enqueued in the request's transaction, and a database
session per attempt.

Run it: ``uv run python docs/examples/advanced_alchemy_app.py`` (SQLite in a temporary directory).
"""

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, post
from litestar.exceptions import ClientException
from litestar.params import FromPath
from litestar.testing import TestClient
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from litestar_queues import QueueConfig, QueuePlugin, QueueService, TaskExecutionContext, task
from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig, QueueTables
from litestar_queues.litestar import NamedDependency


class User(BigIntAuditBase):
    __tablename__ = "docs_user"

    email: Mapped[str] = mapped_column(String(200), unique=True)
    welcomed: Mapped[bool] = mapped_column(default=False)


DATABASE = Path(tempfile.mkdtemp()) / "app.db"
alchemy = SQLAlchemyAsyncConfig(
    connection_string=f"sqlite+aiosqlite:///{DATABASE}",
    create_all=True,  # the app's tables, and the queue's (they are on the same metadata)
    before_send_handler="autocommit",  # a request's session commits when the response is 2xx, else rolls back
)


@asynccontextmanager
async def db_session(context: TaskExecutionContext) -> AsyncIterator[AsyncSession]:
    """One session per attempt: committed when the task returns, rolled back when it raises (then it retries)."""
    del context  # (context.state is the app's state, context.record the job)
    async with alchemy.get_session() as session, session.begin():
        yield session


@task("users.welcome", retries=3, dependencies={"db_session": db_session})
async def send_welcome(user_id: int, db_session: AsyncSession) -> str:
    """Mark the user welcomed (a real app would send an email here)."""
    user = await db_session.get_one(User, user_id)
    user.welcomed = True
    return user.email


@post("/users/{email:str}")
async def sign_up(
    email: FromPath[str], db_session: NamedDependency[AsyncSession], queue_service: NamedDependency[QueueService]
) -> dict[str, object]:
    """Create a user and enqueue its welcome in the same transaction: both are stored, or neither is."""
    user = User(email=email)
    db_session.add(user)
    await db_session.flush()  # the user's id
    outcome = await queue_service.enqueue(send_welcome.using(session=db_session, key=f"welcome:{email}"), user.id)
    if email.endswith(".invalid"):
        raise ClientException("no such domain")  # the request's transaction rolls back: no user, no job
    return {"user": user.id, "job": outcome.id}


app = Litestar(
    [sign_up],
    plugins=[
        SQLAlchemyPlugin(config=alchemy),
        QueuePlugin(QueueConfig(queue_backend=AdvancedAlchemyBackendConfig())),  # finds the config above
    ],
)


async def _welcomed() -> list[tuple[str, bool]]:
    async with alchemy.get_session() as session:
        return [(user.email, user.welcomed) for user in await session.scalars(select(User).order_by(User.id))]


async def _jobs() -> int:
    async with alchemy.get_session() as session:
        table = QueueTables(alchemy.metadata).tasks
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


if __name__ == "__main__":
    with TestClient(app) as client:
        created = client.post("/users/ada@example.com").json()
        refused = client.post("/users/bob@example.invalid")
        service: QueueService = app.state["queue_service"]
        job = client.blocking_portal.call(service.wait_for, created["job"], 10)
        print(f"job {job.status.value}: {job.result}; refused sign-up: HTTP {refused.status_code}")
        assert job.result == "ada@example.com" and refused.status_code == 400
        users = client.blocking_portal.call(_welcomed)
        print(f"users: {users}; jobs stored: {client.blocking_portal.call(_jobs)}")
        assert users == [("ada@example.com", True)], "the rolled back sign-up left neither a user nor a job"
        assert client.blocking_portal.call(_jobs) == 1
