"""Table, index and channel names derived from one validated prefix, quoted for each SQL family.

Names are never taken from records: the only user input that reaches DDL or DML text is the table
prefix, and it is validated against a strict pattern before it is quoted. That keeps every
statement a constant string per backend instance (cacheable, preparable) and injection-free.
"""

from __future__ import annotations

from typing import Literal

from litestar_queues.errors import ConfigurationError
from litestar_queues.sql.prefix import DEFAULT_TABLE_PREFIX
from litestar_queues.sql.prefix import validate_table_prefix as validate_sql_table_prefix

__all__ = ("DEFAULT_TABLE_PREFIX", "Family", "TableNames", "validate_table_prefix")

Family = Literal["postgres", "sqlite", "mysql"]
"""The SQL families this backend speaks; drivers map onto them (asyncpg and psycopg are both ``postgres``)."""


def validate_table_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid SQL table prefix (:func:`litestar_queues.sql.prefix.validate_table_prefix`)
    that SQLSpec's migrations can carry.

    Raises:
        ConfigurationError: The prefix is invalid; or one of its ``_``-separated segments is all digits (SQLSpec
            reads the first numeric segment of an extension migration name as its version).
    """
    validate_sql_table_prefix(prefix)
    if any(segment.isdigit() for segment in prefix.split("_")):
        msg = f"table_prefix {prefix!r} must not contain an all-digit segment between underscores"
        raise ConfigurationError(msg)
    return prefix


def _quote(identifier: str, family: Family) -> str:
    return f"`{identifier}`" if family == "mysql" else f'"{identifier}"'


class TableNames:
    """Every name the backend uses, raw and quoted for one SQL family."""

    __slots__ = (
        "events",
        "events_raw",
        "extension",
        "family",
        "finish_channel",
        "locks",
        "locks_raw",
        "pauses",
        "pauses_raw",
        "prefix",
        "tasks",
        "tasks_raw",
        "wakeup_channel",
        "workers",
        "workers_raw",
    )

    def __init__(self, prefix: str, family: Family) -> None:
        """Derive the names for ``prefix`` (validated here) in ``family``'s quoting."""
        self.prefix = validate_table_prefix(prefix)
        self.family: Family = family
        self.tasks_raw = f"{prefix}tasks"
        self.workers_raw = f"{prefix}workers"
        self.locks_raw = f"{prefix}locks"
        self.pauses_raw = f"{prefix}queue_pauses"
        self.events_raw = f"{prefix}events"
        self.tasks = _quote(self.tasks_raw, family)
        self.workers = _quote(self.workers_raw, family)
        self.locks = _quote(self.locks_raw, family)
        self.pauses = _quote(self.pauses_raw, family)
        self.events = _quote(self.events_raw, family)
        self.wakeup_channel = f"{prefix}wakeup"
        """PostgreSQL NOTIFY channel announcing new pending work; the payload is the queue name."""
        self.finish_channel = f"{prefix}finish"
        """PostgreSQL NOTIFY channel announcing terminal records; the payload is the record id."""
        self.extension = prefix.rstrip("_")
        """The SQLSpec migration extension name: versions are recorded as ``ext_<extension>_0001``."""

    def index(self, suffix: str) -> str:
        """Return the quoted name of the index ``<prefix><suffix>``."""
        return _quote(f"{self.prefix}{suffix}", self.family)

    def quote(self, identifier: str) -> str:
        """Quote a name this module derived (never pass user input)."""
        return _quote(identifier, self.family)
