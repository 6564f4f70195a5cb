"""The ``litestar queues`` CLI group, added to the ``litestar`` command by ``QueuePlugin``."""

from litestar_queues.litestar.cli.group import queues_group

__all__ = ("queues_group",)
