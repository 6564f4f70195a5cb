"""What the backend accepts as its database, turned into one ``AsyncEngine``.

An Advanced Alchemy ``SQLAlchemyAsyncConfig`` (the application's, also a framework subclass such as Litestar's),
an ``async_sessionmaker`` bound to an engine, or an ``AsyncEngine``. With read replicas (AA's ``routing_config``)
the config's engine is the primary's: every queue statement goes there, so status and result reads never see a
lagging replica. Synchronous configurations are refused with the reason.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import sessionmaker

from advanced_alchemy.config import SQLAlchemyAsyncConfig, SQLAlchemySyncConfig
from litestar_queues.errors import ConfigurationError

__all__ = ("FAMILIES", "check_alchemy", "engine_of")

FAMILIES = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql", "mariadb": "mysql"}
"""SQLAlchemy dialect names the backend speaks, by the family of statements it uses."""
_ACCEPTED = (
    "an Advanced Alchemy SQLAlchemyAsyncConfig, an async_sessionmaker bound to an AsyncEngine, or an AsyncEngine"
)
_ASYNC_URLS = "postgresql+asyncpg://, postgresql+psycopg://, sqlite+aiosqlite:/// or mysql+asyncmy://"


def check_alchemy(alchemy: Any) -> None:
    """Refuse, at the point of the mistake, what the backend cannot use.

    Raises:
        ConfigurationError: A synchronous configuration, engine or session maker, or something else entirely.
    """
    if alchemy is None or isinstance(alchemy, (SQLAlchemyAsyncConfig, AsyncEngine)):
        return
    if isinstance(alchemy, async_sessionmaker):
        if not isinstance(alchemy.kw.get("bind"), AsyncEngine):
            msg = "the async_sessionmaker given as alchemy= must be bound to an AsyncEngine (bind=engine)"
            raise ConfigurationError(msg)
        return
    if isinstance(alchemy, (SQLAlchemySyncConfig, Engine, sessionmaker)):
        msg = (
            f"the Advanced Alchemy queue backend needs an async database setup, got a synchronous "
            f"{type(alchemy).__name__}: use SQLAlchemyAsyncConfig (or an AsyncEngine) with an async driver "
            f"({_ASYNC_URLS})"
        )
        raise ConfigurationError(msg)
    msg = f"alchemy= takes {_ACCEPTED}; got {type(alchemy).__name__}"
    raise ConfigurationError(msg)


def engine_of(alchemy: Any) -> tuple[AsyncEngine, bool]:
    """Return the engine of ``alchemy`` (checked by :func:`check_alchemy`) and whether the backend disposes it.

    An Advanced Alchemy config's engine is disposed when the backend closes (after the worker drained): outside
    the application's lifespan (``litestar queues run``) nobody else would, and inside it Advanced Alchemy
    disposes it again after the queue stopped, which is harmless. An engine or session maker given directly
    stays its owner's.

    Raises:
        ConfigurationError: The engine's database is not PostgreSQL, SQLite or MySQL/MariaDB.
    """
    if isinstance(alchemy, SQLAlchemyAsyncConfig):
        engine, dispose = alchemy.get_engine(), True
    elif isinstance(alchemy, async_sessionmaker):
        engine, dispose = alchemy.kw["bind"], False
    else:
        engine, dispose = alchemy, False
    if engine.dialect.name not in FAMILIES:
        msg = f"the queue backend supports PostgreSQL, SQLite and MySQL/MariaDB, not {engine.dialect.name}"
        raise ConfigurationError(msg)
    return engine, dispose
