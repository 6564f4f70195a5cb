"""Configuration errors say what to do."""

from __future__ import annotations

import pytest

from litestar_queues import ConfigurationError, QueueConfig, WorkerConfig
from litestar_queues.config import resolve_backend


def test_unknown_backend_name_lists_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown queue backend 'mongo://x'.*redis://"):
        resolve_backend("mongo://x")


def test_backend_of_wrong_type_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="got int"):
        resolve_backend(42)  # type: ignore[arg-type]


def test_unknown_execution_backend() -> None:
    with pytest.raises(ConfigurationError, match="unknown execution_backend 'lambda'; use one of immediate, local"):
        QueueConfig(execution_backend="lambda")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"poll_interval": 0}, "poll_interval must be positive"),
        ({"heartbeat_interval": 30, "stale_threshold": 10}, "must be shorter than stale_threshold"),
        ({"queue_concurrency": {"emails": 0}}, r"queue_concurrency\['emails'\]"),
    ],
)
def test_worker_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorkerConfig(**kwargs)  # type: ignore[arg-type]
