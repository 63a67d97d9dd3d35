"""Where a registered connector came from: a value carried from the loader to the registry."""

from __future__ import annotations

__all__ = ["Origin"]


class Origin:
    """Where a registered connector came from (an immutable value).

    A plain class rather than a frozen dataclass: it is built for every built-in on each
    ``ConnectorRegistry()``, and ``dataclasses`` (with ``inspect``) would cost every ModelMesh
    start-up ~8 ms. Equality, hashing and ``repr`` are those of the dataclass it replaces.

    Attributes:
        kind: ``builtin``, ``local`` (a directory or zip on disk), ``package`` (verified
            from an index or signed URL) or ``runtime`` (``register`` called by code).
        detail: Human description (path, ``name@version``, URL).
        signed_by: Key IDs that signed the package's release, when verified.
    """

    __slots__ = ("detail", "kind", "signed_by")

    kind: str
    detail: str
    signed_by: tuple[str, ...]

    def __init__(self, kind: str, detail: str, signed_by: tuple[str, ...] = ()) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "signed_by", signed_by)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Origin is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Origin is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Origin)
        return (self.kind, self.detail, self.signed_by) == (
            other.kind,
            other.detail,
            other.signed_by,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.detail, self.signed_by))

    def __repr__(self) -> str:
        return f"Origin(kind={self.kind!r}, detail={self.detail!r}, signed_by={self.signed_by!r})"

    def __str__(self) -> str:
        text = f"{self.kind} {self.detail}".strip()
        if self.signed_by:
            text += " signed by " + ", ".join(k[:16] for k in self.signed_by)
        return text
