"""``connectors.lock``: exactly which archive every package entry resolves to.

With ``locked: true`` the loader installs only what the lock pins: a different version, or
the same version with a different hash from any source (even a trusted mirror), is an error.
Pinning is all-or-nothing: a package missing from the lock fails the load.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .atomic_write import write_atomic
from .credentials import redact_url
from .errors import ConfigError, HashMismatchError, ResolutionError

if TYPE_CHECKING:
    from .loader import ResolvedArchive

__all__ = ["LockEntry", "LockFile", "LockPolicy"]


class LockPolicy(Protocol):
    """What the loader asks of a lock while resolving."""

    def pinned_version(self, name: str) -> str | None:
        """The pinned version of ``name`` (raise if pins are all-or-nothing)."""
        ...

    def check(self, resolved: ResolvedArchive) -> None:
        """Refuse a resolution the lock does not allow."""
        ...

    def check_complete(self, resolved: Sequence[ResolvedArchive]) -> None:
        """Refuse a set of resolutions the lock does not cover."""
        ...


_FORMAT = 1


@dataclass(frozen=True)
class LockEntry:
    """One pinned package."""

    name: str
    version: str
    sha256: str
    length: int | None
    spec: str
    source: str
    signed_by: tuple[str, ...]

    def to_json_obj(self) -> dict[str, Any]:
        """JSON form (stable key order)."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "length": self.length,
            "spec": self.spec,
            "source": self.source,
            "signed_by": list(self.signed_by),
        }


def _spec_text(resolved: ResolvedArchive) -> str:
    spec = resolved.spec
    text = getattr(spec, "text", None)
    if text is None:
        # A lock file is committed and shared: credentials in the URL never go into it.
        text = redact_url(str(getattr(spec, "url", "")))
    return str(text)


@dataclass(frozen=True)
class LockFile:
    """A parsed lock file."""

    entries: tuple[LockEntry, ...]
    path: Path | None = None

    @classmethod
    def from_resolved(cls, resolved: Sequence[ResolvedArchive]) -> LockFile:
        """Pin what a resolution chose."""
        entries = [
            LockEntry(
                r.name,
                r.version,
                r.sha256,
                r.length,
                _spec_text(r),
                redact_url(r.source),
                r.signed_by,
            )
            for r in resolved
        ]
        return cls(tuple(sorted(entries, key=lambda e: e.name)))

    def to_bytes(self) -> bytes:
        """Readable, diff-friendly JSON: one package per block, sorted by name."""
        doc = {
            "lock-version": _FORMAT,
            "generated-by": "modelmesh-connectors lock; do not edit by hand",
            "packages": [e.to_json_obj() for e in self.entries],
        }
        return (json.dumps(doc, indent=2) + "\n").encode()

    def write(self, path: Path) -> None:
        """Write atomically."""
        try:
            write_atomic(path, self.to_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot write the lock file {path}: {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> LockFile:
        """Read and validate a lock file.

        Raises:
            ConfigError: missing or malformed, naming the problem.
        """
        try:
            doc = json.loads(path.read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read the lock file: {exc}",
                hint="run 'modelmesh-connectors lock --config FILE' first",
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"{path}: lock file is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("lock-version") != _FORMAT:
            raise ConfigError(f"{path}: not a lock file of format {_FORMAT}")
        entries: list[LockEntry] = []
        for i, raw in enumerate(doc.get("packages", [])):
            try:
                entries.append(
                    LockEntry(
                        str(raw["name"]),
                        str(raw["version"]),
                        str(raw["sha256"]),
                        None if raw["length"] is None else int(raw["length"]),
                        str(raw["spec"]),
                        str(raw["source"]),
                        tuple(str(k) for k in raw["signed_by"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: packages[{i}] is malformed: {exc!r}") from exc
        return cls(tuple(entries), path)

    def _entry(self, name: str) -> LockEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        where = self.path or "the lock file"
        raise ResolutionError(
            f"{name} is not pinned in {where} (locked mode pins all or nothing)",
            hint="run 'modelmesh-connectors lock --config FILE --upgrade' to add it",
        )

    def pinned_version(self, name: str) -> str:
        """The version the lock pins for ``name``."""
        return self._entry(name).version

    def check(self, resolved: ResolvedArchive) -> None:
        """Refuse anything but exactly the pinned archive.

        Raises:
            ResolutionError: not pinned, or another version.
            HashMismatchError: the pinned version with another hash, from any source.
        """
        entry = self._entry(resolved.name)
        if entry.version != resolved.version:
            raise ResolutionError(
                f"{resolved.name}: the lock pins {entry.version} but {resolved.version} was "
                "resolved",
                hint="run 'modelmesh-connectors lock --upgrade NAME' to move the pin",
            )
        if entry.sha256 != resolved.sha256:
            raise HashMismatchError(
                f"{resolved.name} {resolved.version}: the lock pins sha256 {entry.sha256} but "
                f"{resolved.source} offers {resolved.sha256}"
            )

    def check_complete(self, resolved: Sequence[ResolvedArchive]) -> None:
        """Every resolved package must be pinned (checked one by one in :meth:`check`)."""
        for item in resolved:
            self._entry(item.name)
