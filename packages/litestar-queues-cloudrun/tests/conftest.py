from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import pytest

from litestar_queues.execution.cloudrun.testing import CloudRunEmulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emulator() -> AsyncIterator[CloudRunEmulator]:
    async with CloudRunEmulator(project="demo", region="europe-west1") as running:
        # a container that prints the record id of its environment
        script = "import os; print(os.environ.get('LITESTAR_QUEUES_RECORD_ID'))"
        running.add_job("worker", [sys.executable, "-c", script])
        yield running
