"""The audit log sink: every observability call becomes one numbered JSON line in a file.

Line shape: ``{"seq": <1, 2, … per sink instance>, "at": <UTC ISO time of writing>,
"kind": "event" | "request" | "stats" | "trace", "data": <the call's argument as JSON>}``.
Secret-looking keys (``api_key``, ``token`` …) are always masked; message content
(``content``, ``prompt`` …) is masked when ``redact`` is on.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from modelmesh.interfaces.observability import (
    AggregateStats,
    ObservabilityConnector,
    RequestLogEntry,
    RoutingEvent,
    TraceEntry,
)

from .config import AuditLogConfig
from .encoding import to_jsonable
from .redaction import redact

__all__ = ["AuditLog"]


class AuditLog(ObservabilityConnector):
    """Observability connector appending numbered JSON lines to an audit file.

    Connector ID: ``acme.audit-log.v1``. The file is opened lazily on the first
    write, in append mode and line-buffered (no fsync); a lock keeps lines whole and
    makes ``seq`` follow file order across threads. Parent directories are created as
    needed. ``seq`` restarts at 1 for each new sink instance.

    Args:
        config: Optional mapping with keys ``path`` (default ``$ACME_AUDIT_LOG_PATH``,
            else ``./modelmesh-audit.jsonl``), ``redact`` (bool, default false) and
            ``redact_keys`` (list of keys treated as message content).

    Raises:
        InvalidAuditLogConfig: if *config* is malformed.
    """

    CONNECTOR_ID: str = "acme.audit-log.v1"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._config = AuditLogConfig.from_mapping(config, os.environ)
        self._masked_keys = self._config.masked_keys
        self._lock = threading.Lock()
        self._seq = 0
        self._file: IO[str] | None = None
        self._finalizer: weakref.finalize[[], AuditLog] | None = None

    @property
    def config(self) -> AuditLogConfig:
        """The validated configuration."""
        return self._config

    @property
    def path(self) -> Path:
        """The audit file's path."""
        return self._config.path

    @property
    def last_seq(self) -> int:
        """The sequence number of the last line written (0 before any)."""
        with self._lock:
            return self._seq

    def emit(self, event: RoutingEvent) -> None:
        """Append a routing event as an ``"event"`` line."""
        self._write("event", event)

    def log(self, entry: RequestLogEntry) -> None:
        """Append a request log entry as a ``"request"`` line."""
        self._write("request", entry)

    def flush(self, stats: dict[str, AggregateStats]) -> None:
        """Append a statistics flush (scope → stats) as one ``"stats"`` line."""
        self._write("stats", stats)

    def trace(self, entry: TraceEntry) -> None:
        """Append a trace entry as a ``"trace"`` line."""
        self._write("trace", entry)

    def close(self) -> None:
        """Close the file; a later write opens it again and keeps numbering."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._file = None
            self._finalizer = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, kind: str, data: object) -> None:
        payload = redact(to_jsonable(data), self._masked_keys)
        with self._lock:
            if self._file is None:
                self._config.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self._config.path.open("a", encoding="utf-8", buffering=1)
                # Closes the handle if the sink is dropped unclosed (no ResourceWarning).
                self._finalizer = weakref.finalize(self, self._file.close)
            self._seq += 1
            record = {
                "seq": self._seq,
                "at": datetime.now(UTC).isoformat(),
                "kind": kind,
                "data": payload,
            }
            self._file.write(json.dumps(record, allow_nan=False, ensure_ascii=False) + "\n")
