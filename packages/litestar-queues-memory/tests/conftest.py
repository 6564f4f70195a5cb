from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from litestar_queues.backends.memory import MemoryBackend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def memory() -> AsyncIterator[MemoryBackend]:
    async with MemoryBackend() as backend:
        yield backend
