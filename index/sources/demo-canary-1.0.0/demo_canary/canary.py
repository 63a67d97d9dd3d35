"""The canary's connector: a valid observability connector that does nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelmesh.interfaces.observability import (
    AggregateStats,
    ObservabilityConnector,
    RequestLogEntry,
    RoutingEvent,
    TraceEntry,
)

__all__ = ["Canary"]


class Canary(ObservabilityConnector):
    """No-op observability connector; its package's import is what the tests watch.

    Connector ID: ``demo.canary.v1``.

    Args:
        config: Accepted and ignored.
    """

    CONNECTOR_ID: str = "demo.canary.v1"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._config = dict(config or {})

    def emit(self, event: RoutingEvent) -> None:
        """Ignore a routing event."""

    def log(self, entry: RequestLogEntry) -> None:
        """Ignore a request log entry."""

    def flush(self, stats: dict[str, AggregateStats]) -> None:
        """Ignore a statistics flush."""

    def trace(self, entry: TraceEntry) -> None:
        """Ignore a trace entry."""
