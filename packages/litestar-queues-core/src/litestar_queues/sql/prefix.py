"""The table prefix of a SQL backend: one rule for every SQL backend, since their tables are alike."""

from __future__ import annotations

import re

from litestar_queues.errors import ConfigurationError

__all__ = ("DEFAULT_TABLE_PREFIX", "MAX_PREFIX_LENGTH", "validate_table_prefix")

DEFAULT_TABLE_PREFIX = "litestar_queues_"
MAX_PREFIX_LENGTH = 40
"""Longest prefix whose derived index names stay within PostgreSQL's 63 and MySQL's 64 characters."""

_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def validate_table_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can prefix table, index and channel names on every supported database.

    Lower case only: MySQL's table-name case sensitivity follows the server's file system, so mixed case would
    name different tables on Linux and macOS.

    Raises:
        ConfigurationError: The prefix is empty, too long, or not ``[a-z][a-z0-9_]*``.
    """
    if not _PREFIX_PATTERN.fullmatch(prefix) or len(prefix) > MAX_PREFIX_LENGTH:
        msg = (
            f"table_prefix {prefix!r} must match [a-z][a-z0-9_]* and be at most {MAX_PREFIX_LENGTH} characters "
            f"(it prefixes table, index and channel names), e.g. {DEFAULT_TABLE_PREFIX!r}"
        )
        raise ConfigurationError(msg)
    return prefix
