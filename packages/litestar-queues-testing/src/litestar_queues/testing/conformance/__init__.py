"""The backend conformance suite: one mixin per area of the contract, and all of them together."""

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
from litestar_queues.testing.conformance.suite import BackendConformance
from litestar_queues.testing.conformance.transactions import TransactionConformance
from litestar_queues.testing.conformance.transfer import TransferConformance
from litestar_queues.testing.conformance.undecodable import UndecodableConformance
from litestar_queues.testing.conformance.wakeups import WakeupConformance
from litestar_queues.testing.conformance.workers import WorkerRegistryConformance

__all__ = (
    "BackendConformance",
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
)
