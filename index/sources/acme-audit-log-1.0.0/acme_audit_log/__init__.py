"""Append-only JSONL audit log for ModelMesh (connector ``acme.audit-log.v1``)."""

from __future__ import annotations

from .sink import AuditLog

__all__ = ["AuditLog"]
