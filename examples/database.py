"""The example's own data, through Advanced Alchemy: finished reports, written by the task in a session per attempt.

The database is SQLite in the temporary directory unless ``LITESTAR_QUEUES_EXAMPLE_DATABASE`` names another
(any async SQLAlchemy URL: ``postgresql+asyncpg://...``, ``mysql+asyncmy://...``). With
``LITESTAR_QUEUES_BACKEND=advanced-alchemy`` the queue lives in this database too.
"""

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from litestar_queues import TaskExecutionContext

DEFAULT_DATABASE = f"sqlite+aiosqlite:///{Path(tempfile.gettempdir()) / 'litestar-queues-example.db'}"


class Report(BigIntAuditBase):
    """A report the worker built."""

    __tablename__ = "example_report"

    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    pages: Mapped[int]


alchemy = SQLAlchemyAsyncConfig(
    connection_string=os.environ.get("LITESTAR_QUEUES_EXAMPLE_DATABASE", DEFAULT_DATABASE),
    create_all=True,  # a quick start: an application with migrations runs `litestar database upgrade` instead
    before_send_handler="autocommit",
)


@asynccontextmanager
async def db_session(context: TaskExecutionContext) -> AsyncIterator[AsyncSession]:
    """A session for one attempt of a task: committed if the task returns, rolled back if it raises or is cancelled.

    It comes from the config rather than ``context.state``, so ``litestar queues run`` (no app lifespan) works too.
    """
    del context
    async with alchemy.get_session() as session, session.begin():
        yield session
