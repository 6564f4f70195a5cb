"""Every conformance area in one class."""

from __future__ import annotations

from litestar_queues.testing.conformance.cancellation import CancelConformance
from litestar_queues.testing.conformance.capabilities import CapabilityConformance
from litestar_queues.testing.conformance.claiming import ClaimConformance
from litestar_queues.testing.conformance.concurrency import ConcurrencyConformance
from litestar_queues.testing.conformance.dedup import DedupConformance
from litestar_queues.testing.conformance.enqueue import EnqueueConformance
from litestar_queues.testing.conformance.expiry import ExpiryConformance
from litestar_queues.testing.conformance.fencing import FencingConformance
from litestar_queues.testing.conformance.history import EventHistoryConformance
from litestar_queues.testing.conformance.leases import LeaseConformance
from litestar_queues.testing.conformance.locks import LockConformance
from litestar_queues.testing.conformance.pausing import PauseConformance
from litestar_queues.testing.conformance.progress import ProgressConformance
from litestar_queues.testing.conformance.pruning import PruneConformance
from litestar_queues.testing.conformance.queries import QueryConformance
from litestar_queues.testing.conformance.queues import ManyQueuesConformance
from litestar_queues.testing.conformance.requeue import RequeueConformance
from litestar_queues.testing.conformance.results import ResultConformance
from litestar_queues.testing.conformance.retries import RetryConformance
from litestar_queues.testing.conformance.round_trip import RecordRoundTripConformance
from litestar_queues.testing.conformance.schedule_slots import ScheduleSlotConformance
from litestar_queues.testing.conformance.statistics import StatisticsConformance
from litestar_queues.testing.conformance.transactions import TransactionConformance
from litestar_queues.testing.conformance.transfer import TransferConformance
from litestar_queues.testing.conformance.undecodable import UndecodableConformance
from litestar_queues.testing.conformance.wakeups import WakeupConformance
from litestar_queues.testing.conformance.workers import WorkerRegistryConformance

__all__ = ("BackendConformance",)


class BackendConformance(
    EnqueueConformance,
    DedupConformance,
    ScheduleSlotConformance,
    ClaimConformance,
    ConcurrencyConformance,
    LeaseConformance,
    FencingConformance,
    TransferConformance,
    RetryConformance,
    ProgressConformance,
    CancelConformance,
    RequeueConformance,
    ExpiryConformance,
    PruneConformance,
    QueryConformance,
    ManyQueuesConformance,
    StatisticsConformance,
    PauseConformance,
    WorkerRegistryConformance,
    LockConformance,
    ResultConformance,
    RecordRoundTripConformance,
    UndecodableConformance,
    WakeupConformance,
    TransactionConformance,
    EventHistoryConformance,
    CapabilityConformance,
):
    """The whole conformance suite: subclass it as ``Test<YourBackend>`` and provide a ``backend`` fixture.

    The fixture yields an opened backend over empty storage. Optionally provide ``second_backend``,
    another backend instance over the same storage, to run the cross-connection tests, and ``corrupt_record``
    (see :class:`UndecodableConformance`) to run the undecodable-record tests; a backend declaring
    ``TRANSACTIONAL_ENQUEUE`` also provides ``caller_transaction`` (see :class:`TransactionConformance`).
    """
