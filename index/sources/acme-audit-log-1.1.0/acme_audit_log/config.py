"""Configuration of the audit log, parsed from ModelMesh's plain mapping and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_REDACT_KEYS",
    "PATH_ENV_VAR",
    "SECRET_KEYS",
    "AuditLogConfig",
    "InvalidAuditLogConfig",
]

PATH_ENV_VAR = "ACME_AUDIT_LOG_PATH"
DEFAULT_PATH = "modelmesh-audit.jsonl"
DEFAULT_REDACT_KEYS = frozenset({"completion", "content", "input", "prompt", "text"})
"""Keys whose values are message content, masked when ``redact`` is on."""
SECRET_KEYS = frozenset({"api_key", "authorization", "password", "secret", "token"})
"""Keys whose values are always masked, whatever ``redact`` says."""

_KNOWN_KEYS = frozenset({"path", "redact", "redact_keys"})


class InvalidAuditLogConfig(ValueError):
    """The audit log's configuration mapping holds an unknown key or a bad value."""


@dataclass(frozen=True)
class AuditLogConfig:
    """Settings of one :class:`~.sink.AuditLog`.

    Attributes:
        path: The JSONL file lines are appended to.
        redact: Whether to mask message content (values under ``redact_keys``).
        redact_keys: Lower-case mapping keys treated as message content.
    """

    path: Path = Path(DEFAULT_PATH)  # relative paths resolve against the working directory
    redact: bool = False  # mask message content
    redact_keys: frozenset[str] = DEFAULT_REDACT_KEYS  # matched case-insensitively

    @property
    def masked_keys(self) -> frozenset[str]:
        """Every key whose value is masked: secrets always, content when ``redact``."""
        return SECRET_KEYS | self.redact_keys if self.redact else SECRET_KEYS

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any] | None, environ: Mapping[str, str]
    ) -> AuditLogConfig:
        """Build a configuration; the path falls back to ``$ACME_AUDIT_LOG_PATH``.

        Args:
            raw: The connector's configuration, or ``None`` for defaults.
            environ: The environment to read ``ACME_AUDIT_LOG_PATH`` from.

        Returns:
            The validated configuration.

        Raises:
            InvalidAuditLogConfig: if a key is unknown or a value has the wrong type.
        """
        raw = raw if raw is not None else {}
        if not isinstance(raw, Mapping):
            raise InvalidAuditLogConfig(
                f"audit log config must be a mapping, got {type(raw).__name__}"
            )
        unknown = sorted(str(key) for key in raw if key not in _KNOWN_KEYS)
        if unknown:
            raise InvalidAuditLogConfig(
                f"unknown audit log config key(s) {unknown}: expected some of {sorted(_KNOWN_KEYS)}"
            )
        path = raw.get("path") or environ.get(PATH_ENV_VAR) or DEFAULT_PATH
        if not isinstance(path, str | os.PathLike):
            raise InvalidAuditLogConfig(f"audit log 'path' must be a string, got {path!r}")
        redact = raw.get("redact", False)
        if not isinstance(redact, bool):
            raise InvalidAuditLogConfig(f"audit log 'redact' must be true or false, got {redact!r}")
        keys = raw.get("redact_keys", DEFAULT_REDACT_KEYS)
        if isinstance(keys, str) or not all(isinstance(key, str) for key in keys):
            raise InvalidAuditLogConfig(
                f"audit log 'redact_keys' must be a list of strings, got {keys!r}"
            )
        return cls(
            path=Path(path),
            redact=redact,
            redact_keys=frozenset(key.lower() for key in keys),
        )
