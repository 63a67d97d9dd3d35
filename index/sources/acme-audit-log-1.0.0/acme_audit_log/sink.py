"""The audit log sink: every observability call becomes one JSON line in a file.

Line shape: ``{"at": <UTC ISO time of writing>, "kind": "event" | "request" | "stats" |
"trace", "data": <the call's argument as JSON>}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import weakref
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
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

__all__ = ["DEFAULT_PATH", "PATH_ENV_VAR", "AuditLog"]

PATH_ENV_VAR = "ACME_AUDIT_LOG_PATH"
DEFAULT_PATH = "modelmesh-audit.jsonl"


def _default(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):  # datetime too: it subclasses date
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


class AuditLog(ObservabilityConnector):
    """Observability connector appending JSON lines to an audit file.

    Connector ID: ``acme.audit-log.v1``. The file is opened lazily on the first
    write, in append mode and line-buffered (no fsync); a lock keeps lines from
    concurrent threads whole. Parent directories are created as needed.

    Args:
        config: Optional mapping with key ``path``; without it the path comes from
            ``$ACME_AUDIT_LOG_PATH``, else ``./modelmesh-audit.jsonl``.

    Raises:
        ValueError: if *config* has a key other than ``path`` or a non-path value.
    """

    CONNECTOR_ID: str = "acme.audit-log.v1"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = config or {}
        unknown = sorted(str(key) for key in config if key != "path")
        if unknown:
            raise ValueError(f"unknown audit log config key(s) {unknown}: expected only 'path'")
        path = config.get("path") or os.environ.get(PATH_ENV_VAR) or DEFAULT_PATH
        if not isinstance(path, str | os.PathLike):
            raise ValueError(f"audit log 'path' must be a string, got {path!r}")
        self._path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._finalizer: weakref.finalize[[], AuditLog] | None = None

    @property
    def path(self) -> Path:
        """The audit file's path."""
        return self._path

    def emit(self, event: RoutingEvent) -> None:
        """Append a routing event as a ``"event"`` line."""
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
        """Close the file; a later write opens it again."""
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
        record = {"at": datetime.now(UTC).isoformat(), "kind": kind, "data": data}
        try:
            line = json.dumps(record, default=_default)
        except (TypeError, ValueError):
            # e.g. a dict with tuple keys: keep the line, lose the structure.
            line = json.dumps({**record, "data": repr(data)})
        with self._lock:
            if self._file is None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self._path.open("a", encoding="utf-8", buffering=1)
                # Closes the handle if the sink is dropped unclosed (no ResourceWarning).
                self._finalizer = weakref.finalize(self, self._file.close)
            self._file.write(line + "\n")
