"""``connectors.lock``: exactly which archive every package entry resolves to.

With ``locked: true`` the loader installs only what the lock pins: a different version, or
the same version with a different hash from any source (even a trusted mirror), is an error.
Pinning is all-or-nothing: a package missing from the lock fails the load. That includes local
entries: a local zip is pinned by its path and sha256, and a local directory (which has no
fixed bytes) loads only when the lock names it *and* the configuration opts in with
``allow_unpinned_directories: true``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelmesh_connectors._internal.files import write_atomic
from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors.errors import (
    ConfigError,
    HashMismatchError,
    ResolutionError,
)
from modelmesh_connectors.index.envelope import strict_json

if TYPE_CHECKING:
    from modelmesh_connectors.client.resolve import ResolvedArchive

__all__ = ["LockEntry", "LockFile", "LockPolicy"]

_log = logging.getLogger("modelmesh_connectors.client.lockfile")


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

    def check_local(self, pin: LockEntry) -> None:
        """Refuse a local package (``pin``: what it is now) the lock does not allow."""
        ...


_FORMAT = 2
_READABLE = (1, 2)  # format 1 had remote archives only
KINDS = ("archive", "local-zip", "directory")


@dataclass(frozen=True)
class LockEntry:
    """One pinned package.

    Attributes:
        name: Package name (for a pin-only URL: the URL's file name).
        version: Version (``?`` for a pin-only URL).
        sha256: Archive sha256; a directory's tree digest (recorded, not enforced).
        length: Archive length in bytes, or None for a pin-only URL.
        spec: The entry as configured (a local path: relative to the config's directory).
        source: Where it came from.
        signed_by: Key IDs whose signatures met the threshold.
        kind: ``archive`` (index or URL), ``local-zip`` or ``directory``.
        path: The local path the entry names (local kinds only).
    """

    name: str
    version: str
    sha256: str
    length: int | None
    spec: str
    source: str
    signed_by: tuple[str, ...]
    kind: str = "archive"
    path: str | None = None

    def to_json_obj(self) -> dict[str, Any]:
        """JSON form (stable key order)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "path": self.path,
            "sha256": self.sha256,
            "length": self.length,
            "spec": self.spec,
            "source": self.source,
            "signed_by": list(self.signed_by),
        }


def _absolute(path: str, base: Path) -> str:
    """A normalized absolute path (no symlinks resolved: the lock names what was written)."""
    return os.path.abspath(os.path.join(base, path))


def _portable(path: str, base: Path | None) -> str:
    """``path`` relative to ``base`` when inside it (POSIX separators), else as given."""
    if base is None:
        return path
    full, root = Path(path), Path(os.path.normpath(base.absolute()))
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


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
    def from_resolved(
        cls,
        resolved: Sequence[ResolvedArchive],
        local: Sequence[LockEntry] = (),
        *,
        base: Path | None = None,
    ) -> LockFile:
        """Pin what a resolution chose, plus the local entries' pins.

        Args:
            resolved: The remote entries, resolved and verified.
            local: Pins of the local entries (``Loader.pin_local``: absolute paths).
            base: The lock file's directory; local paths inside it are written relative
                to it, so a lock committed next to its packages works from any checkout.

        Returns:
            The lock (not yet written).
        """
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
        for pin in local:
            where = _portable(pin.path or "", base)
            entries.append(replace(pin, path=where, spec=where))
        return cls(tuple(sorted(entries, key=lambda e: (e.name, e.kind, e.path or ""))))

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
            # Strict: a duplicated key (two sha256 pins for one entry) is an error, not last-wins.
            doc = strict_json(path.read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read the lock file: {exc}",
                hint="run 'modelmesh-connectors lock --config FILE' first",
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"{path}: lock file is not valid JSON: {exc}") from exc
        version = doc.get("lock-version") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or isinstance(version, bool) or version not in _READABLE:
            raise ConfigError(
                f"{path}: not a lock file of format {' or '.join(map(str, _READABLE))}"
            )
        entries: list[LockEntry] = []
        for i, raw in enumerate(doc.get("packages", [])):
            try:
                kind = str(raw.get("kind", "archive")) if version >= 2 else "archive"
                where = raw.get("path") if version >= 2 else None
                if kind not in KINDS:
                    raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
                if (kind == "archive") != (where is None):
                    raise ValueError(f"path: required for local kinds only, got {where!r}")
                entries.append(
                    LockEntry(
                        str(raw["name"]),
                        str(raw["version"]),
                        str(raw["sha256"]),
                        None if raw["length"] is None else int(raw["length"]),
                        str(raw["spec"]),
                        str(raw["source"]),
                        tuple(str(k) for k in raw["signed_by"]),
                        kind=kind,
                        path=None if where is None else str(where),
                    )
                )
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}: packages[{i}] is malformed: {exc!r}") from exc
        return cls(tuple(entries), path)

    def _entry(self, name: str) -> LockEntry:
        for entry in self.entries:
            if entry.kind == "archive" and entry.name == name:
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

    def local_entry(self, pin: LockEntry) -> LockEntry | None:
        """The entry naming the same local path (relative paths: from the lock's directory)."""
        base = self.path.parent if self.path is not None else Path.cwd()
        same_kind = (e for e in self.entries if e.kind == pin.kind and e.path is not None)
        return next((e for e in same_kind if _absolute(e.path or "", base) == pin.path), None)

    def check_local(self, pin: LockEntry) -> None:
        """Refuse a local package the lock does not pin exactly.

        ``pin`` is what the package is now (``Loader.pin_local``), with an absolute path.

        A local zip must be pinned under its path with the same sha256 and length. A
        directory must be named under its path (its content is not pinned: the loader
        allows it only with ``allow_unpinned_directories``); a changed tree is logged.

        Raises:
            ResolutionError: the path is not in the lock (as this kind).
            HashMismatchError: a local zip's bytes differ from the pinned ones.
        """
        where = self.path or "the lock file"
        entry = self.local_entry(pin)
        if entry is None:
            raise ResolutionError(
                f"{pin.kind} {pin.path} ({pin.name} {pin.version}) is not pinned in {where} "
                "(locked mode pins all or nothing, local entries included)",
                hint="run 'modelmesh-connectors lock --config FILE --upgrade' to add it",
            )
        if pin.kind == "directory":
            if entry.sha256 != pin.sha256:
                _log.warning(
                    "%s: the unpinned directory changed since it was locked (tree sha256 %s, "
                    "locked %s)",
                    pin.path,
                    pin.sha256,
                    entry.sha256,
                )
            return
        if (entry.sha256, entry.length) != (pin.sha256, pin.length):
            raise HashMismatchError(
                f"{pin.path}: the lock pins sha256 {entry.sha256} ({entry.length} bytes) but "
                f"the file has sha256 {pin.sha256} ({pin.length} bytes)",
                hint="run 'modelmesh-connectors lock --upgrade' if the change is intended",
            )
