"""The app's own Textual messages, as dataclasses (Message.__post_init__ sets them up)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from infertop.engine.backends.server.metrics import ServerMetrics


@dataclass
class BatchSelected(Message):
    """The user picked the batch size whose figures the panels show."""

    batch_size: int


@dataclass
class ServerScraped(Message):
    """A scrape of the server's /metrics finished (posted from the scraping thread)."""

    metrics: ServerMetrics | None
