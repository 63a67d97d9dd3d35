"""Where a registered connector came from: a value carried from the loader to the registry."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Origin"]


@dataclass(frozen=True)
class Origin:
    """Where a registered connector came from.

    Attributes:
        kind: ``builtin``, ``local`` (a directory or zip on disk), ``package`` (verified
            from an index or signed URL) or ``runtime`` (``register`` called by code).
        detail: Human description (path, ``name@version``, URL).
        signed_by: Key IDs that signed the package's release, when verified.
    """

    kind: str
    detail: str
    signed_by: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.kind} {self.detail}".strip()
        if self.signed_by:
            text += " signed by " + ", ".join(k[:16] for k in self.signed_by)
        return text
