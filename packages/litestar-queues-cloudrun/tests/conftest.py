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
        # a container that prints its environment's ids and exits with the code it is given
        script = "import os, sys; print(os.environ.get('LITESTAR_QUEUES_RECORD_ID')); sys.exit(int(os.environ.get('EXIT', '0')))"
        running.add_job("worker", [sys.executable, "-c", script])
        yield running
