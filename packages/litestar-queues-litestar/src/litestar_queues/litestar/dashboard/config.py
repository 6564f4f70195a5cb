"""``DashboardConfig``: where the dashboard is mounted, who may open it, and what it may change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from litestar_queues.errors import ConfigurationError

__all__ = ("DashboardConfig",)


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    """The web dashboard of ``QueueConfig(dashboard=DashboardConfig(...))``, mounted by ``QueuePlugin``.

    Attributes:
        path: Where it is mounted, e.g. ``"/queues"``.
        guards: Litestar guards every dashboard route runs (pages, actions, live events, assets). Without any, the
            app logs a warning at startup: anyone who reaches the app can read and change its queues.
        read_only: Show everything, change nothing: no action is offered and the action routes do not exist.
        title: Shown in the page header and the browser tab.
        page_size: Jobs per page of the job list (1 to 500).
        count_limit: Counts per status and queue on the overview stop above this (shown as ``10,000+``), so the
            overview reads a bounded number of index entries however many records are kept.
        bulk_limit: Most jobs one bulk retry or cancel changes (the newest matching ones); run it again for more.
        csrf_secret: Signs the dashboard's CSRF tokens. ``None`` draws a random secret per process: set one when
            several processes serve the app, or a form shown by one process is refused by another.
        live: Stream progress and events of the jobs shown to the browser (Server-Sent Events) when the app's
            events go through Litestar Channels; pages are complete without it.
    """

    path: str = "/queues"
    guards: Sequence[Any] = ()
    read_only: bool = False
    title: str = "litestar-queues"
    page_size: int = 50
    count_limit: int = 10_000
    bulk_limit: int = 1_000
    csrf_secret: str | None = None
    live: bool = True

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path != self.path.strip() or "?" in self.path:
            raise ConfigurationError(
                f"DashboardConfig.path must be an absolute URL path like '/queues', got {self.path!r}"
            )
        if not 1 <= self.page_size <= 500:
            raise ConfigurationError(f"DashboardConfig.page_size must be between 1 and 500, got {self.page_size}")
        for name in ("count_limit", "bulk_limit"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"DashboardConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.csrf_secret is not None and len(self.csrf_secret) < 16:
            raise ConfigurationError("DashboardConfig.csrf_secret must be at least 16 characters long")
        object.__setattr__(self, "guards", tuple(self.guards))

    @property
    def base(self) -> str:
        """``path`` without a trailing slash (``""`` when mounted at ``/``), to join sub-paths to."""
        return self.path.rstrip("/")
