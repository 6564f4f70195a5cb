"""The web dashboard: queues, jobs, workers and schedules in a browser, mounted by ``QueuePlugin`` when
``QueueConfig(dashboard=DashboardConfig(...))`` asks for it (see ``docs/dashboard.md``)."""

from litestar_queues.litestar.dashboard.config import DashboardConfig

__all__ = ("DashboardConfig",)
