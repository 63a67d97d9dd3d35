"""Append-only JSONL audit log for ModelMesh (connector ``acme.audit-log.v1``)."""

from __future__ import annotations

from .config import AuditLogConfig, InvalidAuditLogConfig
from .encoding import JSONValue, to_jsonable
from .redaction import REDACTED, redact
from .sink import AuditLog

__all__ = [
    "REDACTED",
    "AuditLog",
    "AuditLogConfig",
    "InvalidAuditLogConfig",
    "JSONValue",
    "redact",
    "to_jsonable",
]
