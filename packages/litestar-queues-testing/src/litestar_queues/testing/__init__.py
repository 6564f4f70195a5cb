"""Conformance test suite and test helpers for litestar-queues backends."""

import pytest

# Before the suite is imported, so pytest explains its failing asserts (values compared), not just their messages.
pytest.register_assert_rewrite("litestar_queues.testing.conformance", "litestar_queues.testing.sql")

from litestar_queues.testing.conformance import (  # noqa: E402
    BackendConformance,
    CancelConformance,
    CapabilityConformance,
    ClaimConformance,
    ConcurrencyConformance,
    DedupConformance,
    EnqueueConformance,
    EventHistoryConformance,
    ExpiryConformance,
    FencingConformance,
    LeaseConformance,
    LockConformance,
    ManyQueuesConformance,
    PauseConformance,
    ProgressConformance,
    PruneConformance,
    QueryConformance,
    RecordRoundTripConformance,
    RequeueConformance,
    ResultConformance,
    RetryConformance,
    ScheduleSlotConformance,
    StatisticsConformance,
    TransactionConformance,
    TransferConformance,
    UndecodableConformance,
    WakeupConformance,
    WorkerRegistryConformance,
)
from litestar_queues.testing.conformance.support import CallerTransaction  # noqa: E402
from litestar_queues.testing.helpers import assert_enqueued, assert_not_enqueued, enqueued, run_until_empty  # noqa: E402
from litestar_queues.testing.servers import server_url  # noqa: E402

__all__ = (
    "BackendConformance",
    "CallerTransaction",
    "CancelConformance",
    "CapabilityConformance",
    "ClaimConformance",
    "ConcurrencyConformance",
    "DedupConformance",
    "EnqueueConformance",
    "EventHistoryConformance",
    "ExpiryConformance",
    "FencingConformance",
    "LeaseConformance",
    "LockConformance",
    "ManyQueuesConformance",
    "PauseConformance",
    "ProgressConformance",
    "PruneConformance",
    "QueryConformance",
    "RecordRoundTripConformance",
    "RequeueConformance",
    "ResultConformance",
    "RetryConformance",
    "ScheduleSlotConformance",
    "StatisticsConformance",
    "TransactionConformance",
    "TransferConformance",
    "UndecodableConformance",
    "WakeupConformance",
    "WorkerRegistryConformance",
    "assert_enqueued",
    "assert_not_enqueued",
    "enqueued",
    "run_until_empty",
    "server_url",
)
