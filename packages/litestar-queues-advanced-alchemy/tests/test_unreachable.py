"""``open()`` against a database that cannot be reached fails within ``connect_timeout`` with
``BackendUnavailableError`` naming the backend, the driver and the URL without its password."""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from litestar_queues.backends.advanced_alchemy import AdvancedAlchemyBackendConfig
from litestar_queues.errors import BackendUnavailableError, ConfigurationError

pytestmark = pytest.mark.anyio

URLS = {
    "asyncpg": "postgresql+asyncpg://queue:s3cret@127.0.0.1:{port}/jobs",
    "psycopg": "postgresql+psycopg://queue:s3cret@127.0.0.1:{port}/jobs",
    "asyncmy": "mysql+asyncmy://queue:s3cret@127.0.0.1:{port}/jobs",
}


async def _open_error(url: str) -> str:
    engine = create_async_engine(url)
    backend = AdvancedAlchemyBackendConfig(alchemy=engine, connect_timeout=1).create_backend()
    try:
        with anyio.fail_after(30), pytest.raises(BackendUnavailableError) as raised:  # the bound: never a hang
            await backend.open()
    finally:
        await backend.close()
        await engine.dispose()
    return str(raised.value)


@pytest.mark.parametrize("driver", sorted(URLS))
async def test_a_server_that_never_answers_fails_open_within_the_connect_timeout(driver: str, silent_port: int) -> None:
    url = URLS[driver].format(port=silent_port)
    assert await _open_error(url) == (
        f"advanced_alchemy backend ({driver}) at {url.replace('s3cret', '***')} cannot be reached: no answer within 1s"
    )


@pytest.mark.parametrize("driver", sorted(URLS))
async def test_a_refused_connection_fails_open_with_the_drivers_reason(driver: str, closed_port: int) -> None:
    url = URLS[driver].format(port=closed_port)
    message = await _open_error(url)
    assert message.startswith(
        f"advanced_alchemy backend ({driver}) at {url.replace('s3cret', '***')} cannot be reached: "
    )
    assert "refused" in message.lower() or "can't connect" in message.lower(), message
    assert "s3cret" not in message and "\n" not in message


def test_connect_timeout_must_be_a_positive_number() -> None:
    with pytest.raises(ConfigurationError, match="connect_timeout must be positive, got 0"):
        AdvancedAlchemyBackendConfig(alchemy=create_async_engine("sqlite+aiosqlite://"), connect_timeout=0)
