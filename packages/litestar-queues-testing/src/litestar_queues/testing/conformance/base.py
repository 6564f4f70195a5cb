"""Fixtures every conformance area shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pytest

from litestar_queues.backend import QueueBackend
from litestar_queues.clock import utc_now

__all__ = ("ConformanceBase", "optional_fixture")


class ConformanceBase:
    """Base of the conformance areas: runs their async tests with anyio on asyncio.

    Subclasses (or a ``conftest.py``) provide a ``backend`` fixture yielding an opened backend over empty
    storage, and may provide ``second_backend`` (another connection to the same storage) for the
    cross-connection tests and ``corrupt_record`` for the undecodable-record tests, which skip without them.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    @pytest.fixture
    def anyio_backend(self) -> str:
        """Run the suite on asyncio (override to run it on another anyio backend)."""
        return "asyncio"

    @pytest.fixture
    def now(self) -> datetime:
        """The real current time: every test's moments are offsets of seconds to hours from it."""
        return utc_now()

    @pytest.fixture
    def cross_connection_backend(self, request: pytest.FixtureRequest) -> QueueBackend:
        """The user's ``second_backend`` fixture (wherever it is defined), or skip the cross-connection test."""
        backend: QueueBackend = optional_fixture(
            request,
            "second_backend",
            "cross-connection test: define a `second_backend` fixture (a second backend instance over the same "
            "storage as `backend`) to run it",
        )
        return backend


def optional_fixture(request: pytest.FixtureRequest, name: str, skip_reason: str) -> Any:
    """The value of the user's fixture ``name`` (wherever it is defined), or skip the test with ``skip_reason``."""
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        pytest.skip(skip_reason)
