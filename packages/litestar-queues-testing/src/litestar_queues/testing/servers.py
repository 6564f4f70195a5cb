"""Addresses of the real servers (Redis, Valkey, PostgreSQL, MariaDB) that server-backed tests run against.

The repository's ``scripts/servers.sh up`` starts the servers and writes their addresses to an env file
(``LQ_REDIS_URL``, ``LQ_VALKEY_URL``, ``LQ_POSTGRES_DSN``, ``LQ_MARIADB_DSN``, ...); ``bash scripts/test.sh`` does
both and sources it. Third parties can point the same variables at servers of their own.
"""

import os

import pytest

__all__ = ("server_url",)

_FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in _FALSE_VALUES


def server_url(env_var: str) -> str:
    """Return the address of a test server, read from an environment variable.

    A missing server must never pass unnoticed: on CI (the ``CI`` environment variable is set to anything but an
    empty or false-like value) the calling test fails; on a developer's machine it is skipped with a message that
    says how to start the servers. Call it from a test or a fixture; at module level it skips the whole module.

    Args:
        env_var: Name of the environment variable that holds the URL or DSN, e.g. ``"LQ_REDIS_URL"``.

    Returns:
        The variable's value, stripped of surrounding whitespace.

    Example:
        .. code-block:: python

            @pytest.fixture
            def redis_url() -> str:
                return server_url("LQ_REDIS_URL")
    """
    value = os.environ.get(env_var, "").strip()
    if value:
        return value
    message = (
        f"{env_var} is not set, so there is no server to test against. Start the test servers with "
        f'`scripts/servers.sh up` and `source "$(scripts/servers.sh envfile)"`, or run the whole suite with '
        f"`bash scripts/test.sh`, which does both."
    )
    if _running_in_ci():
        pytest.fail(f"{message} CI never skips server tests.", pytrace=False)
    pytest.skip(f"SERVER NOT AVAILABLE: {message}", allow_module_level=True)
