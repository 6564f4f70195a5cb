"""``open()`` against a database that cannot be reached fails within ``connect_timeout`` with
``BackendUnavailableError`` naming the backend, the driver and the URL without its password."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from litestar_queues.backends.sqlspec import SQLSpecBackendConfig
from litestar_queues.errors import BackendUnavailableError, ConfigurationError

pytestmark = pytest.mark.anyio

URLS = {
    "asyncpg": "postgresql+asyncpg://queue:s3cret@127.0.0.1:{port}/jobs",
    "psycopg": "postgresql+psycopg://queue:s3cret@127.0.0.1:{port}/jobs",
    "asyncmy": "mysql://queue:s3cret@127.0.0.1:{port}/jobs",
}


async def _open_error(url: str) -> BackendUnavailableError:
    backend = SQLSpecBackendConfig.from_url(url, connect_timeout=1).create_backend()
    with anyio.fail_after(30), pytest.raises(BackendUnavailableError) as raised:  # the bound: never a hang
        await backend.open()
    await backend.close()
    return raised.value


@pytest.mark.parametrize("driver", sorted(URLS))
async def test_a_server_that_never_answers_fails_open_within_the_connect_timeout(driver: str, silent_port: int) -> None:
    url = URLS[driver].format(port=silent_port)
    message = str(await _open_error(url))
    assert message == (
        f"sqlspec backend ({driver}) at {url.replace('s3cret', '***')} cannot be reached: no answer within 1s"
    )


@pytest.mark.parametrize("driver", sorted(URLS))
async def test_a_refused_connection_fails_open_with_the_drivers_reason(driver: str, closed_port: int) -> None:
    url = URLS[driver].format(port=closed_port)
    message = str(await _open_error(url))
    assert message.startswith(f"sqlspec backend ({driver}) at {url.replace('s3cret', '***')} cannot be reached: ")
    assert "refused" in message.lower() or "can't connect" in message.lower()
    assert "s3cret" not in message and "\n" not in message


async def test_an_unknown_postgresql_role_fails_open_naming_the_backend(closed_port: int) -> None:
    from litestar_queues.testing.servers import server_url

    url = server_url("LQ_POSTGRES_DSN").replace("postgresql://postgres@", "postgresql://nobody_here:pw@", 1)
    message = str(await _open_error(url))
    assert message.startswith("sqlspec backend (asyncpg) at postgresql://nobody_here:***@")
    assert 'role "nobody_here" does not exist' in message


async def test_a_sqlite_file_in_a_missing_folder_fails_open_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = SQLSpecBackendConfig.from_url("sqlite:///tmp/jobs.db").create_backend()
    with pytest.raises(ConfigurationError) as raised:
        await backend.open()
    assert str(raised.value) == (
        f"sqlspec backend (aiosqlite) at sqlite:///tmp/jobs.db: the folder {tmp_path}/tmp of the database file does "
        "not exist ('tmp/jobs.db' is relative to the working directory; for the absolute path /tmp/jobs.db use "
        "four slashes: sqlite:////tmp/jobs.db)"
    )
    assert not list(tmp_path.iterdir()), "nothing was created"


def test_connect_timeout_must_be_a_positive_number() -> None:
    with pytest.raises(ConfigurationError, match="connect_timeout must be positive, got 0"):
        SQLSpecBackendConfig.from_url("sqlite:///jobs.db", connect_timeout=0)
