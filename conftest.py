"""Fixtures for every test in the repository."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Undo root-logger changes a test made.

    A Litestar app started in-process configures the root logger with a queue handler bound to the stream of the
    moment (pytest's capture); left in place, later tests would log into that closed stream.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
