"""The storage seam: the five primitives the publish protocol needs, and nothing more.

Every index-changing command runs over one :class:`Storage` (FORMAT.md §1, docs/HOSTING.md):

* :meth:`Storage.read` — a file's bytes and its *version tag* (an ETag, a content hash);
* :meth:`Storage.create` — create-if-absent (``If-None-Match: *``): immutable files;
* :meth:`Storage.replace` — replace-if-unchanged (``If-Match: <tag>``): ``timestamp.json``;
* :meth:`Storage.list` — every file under a prefix, with its tag and modification time;
* :meth:`Storage.delete` — delete-if-unchanged: garbage collection.

The protocol is only as safe as these conditions: a store that silently accepts a second
create or a stale replace turns two racing publishers into one lost release. So before the
first write, :meth:`Storage.ensure_conditions` *proves* the backend enforces them (a
create-twice and a stale replace must both be refused) and refuses to go on otherwise.

Backends: :class:`~modelmesh_connectors.publish.local_storage.LocalStorage` (a directory) and
:class:`~modelmesh_connectors.publish.s3_storage.S3Storage` (S3-compatible object storage);
:func:`~modelmesh_connectors.publish.stores.open_storage` picks one from a location string.
"""

from __future__ import annotations

__all__ = [
    "IMMUTABLE_CACHE_CONTROL",
    "TIMESTAMP_CACHE_CONTROL",
    "Listed",
    "Storage",
    "Stored",
    "cache_control",
    "prove_conditions",
]

import abc
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from modelmesh_connectors.errors import StorageError

# docs/HOSTING.md "Cache-Control per path": only timestamp.json changes in place; every other
# file is immutable once written (content-addressed, or versioned by its name).
TIMESTAMP_CACHE_CONTROL = "no-cache"  # revalidate every time: freshness lives here
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"  # a year: never changes


def cache_control(key: str) -> str:
    """The ``Cache-Control`` an index file is served with (docs/HOSTING.md)."""
    return TIMESTAMP_CACHE_CONTROL if key == "timestamp.json" else IMMUTABLE_CACHE_CONTROL


@dataclass(frozen=True)
class Stored:
    """A file's bytes and the version tag a conditional write compares against.

    Attributes:
        data: The exact bytes.
        tag: Opaque version tag (S3 ETag, or SHA-256 of the bytes for a directory).
    """

    data: bytes
    tag: str


@dataclass(frozen=True)
class Listed:
    """One file of a listing.

    Attributes:
        key: Index-relative path (``meta/<sha256>.json``).
        modified: When it was last written (aware).
        tag: Its version tag when the listing carries it (S3), else None (read it).
    """

    key: str
    modified: datetime
    tag: str | None


class Storage(abc.ABC):
    """Where an index lives: a directory or an object-store prefix.

    Keys are index-relative POSIX paths (``timestamp.json``, ``archives/a/a-1.zip``).
    Every method raises :class:`StorageError` for a failure of the store itself; a failed
    *condition* is a return value, never an exception, because losing a race is normal.
    """

    def __init__(self) -> None:
        self._conditions_proven = False
        self.reads = 0  # read and list calls made (benchmarks, tests)
        self.writes = 0  # create, replace and delete calls made

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the index is, for messages (a path or ``s3://bucket/prefix/``)."""

    @abc.abstractmethod
    def read(self, key: str) -> Stored | None:
        """Return the file's bytes and tag, or None when it does not exist."""

    @abc.abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Create the file if absent; return False (and change nothing) if it exists."""

    @abc.abstractmethod
    def replace(self, key: str, data: bytes, tag: str | None) -> str | None:
        """Write the file if its current tag is ``tag`` (None: if it does not exist).

        Returns:
            The new tag, or None when the condition failed (nothing written).
        """

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[Listed]:
        """Every file whose key starts with ``prefix`` (in no particular order)."""

    @abc.abstractmethod
    def delete(self, key: str, tag: str) -> bool:
        """Delete the file if its current tag is ``tag``; False when it changed or is gone."""

    def flush(self) -> None:  # noqa: B027 - most stores are durable on every write
        """Make every file created so far durable (before ``timestamp.json`` names them).

        Object stores are durable when a write is acknowledged: nothing to do. A directory
        batches its fsyncs here (one round for a bulk publish instead of one per file).
        """

    def _probe_storage(self) -> Storage:
        """The storage the condition probe writes to (a backend may point it elsewhere)."""
        return self

    def _probe_key(self) -> str:
        return f".modelmesh-probe-{secrets.token_hex(8)}"

    def ensure_conditions(self) -> None:
        """Prove once per instance that conditional writes are enforced (see module doc).

        Raises:
            StorageError: The store accepted a second create or a stale replace, naming
                which; nothing may be published there.
        """
        if not self._conditions_proven:
            prove_conditions(self._probe_storage(), self._probe_key(), self.location)
            self._conditions_proven = True


def prove_conditions(storage: Storage, key: str, location: str) -> None:
    """Write a probe file twice and replace it with a stale tag; both must be refused.

    The probe is removed afterwards (also when the store fails the test).

    Args:
        storage: Where to write the probe.
        key: The probe's key (a name no index file has).
        location: Names the store in the error.

    Raises:
        StorageError: A condition was ignored, or the probe could not be written.
    """
    problems: list[str] = []
    if not storage.create(key, b"probe 1"):
        raise StorageError(f"{location}: cannot prove conditional writes: probe {key} exists")
    try:
        if storage.create(key, b"probe 2"):
            problems.append("a second create of one file succeeded (If-None-Match ignored)")
        stale = "0" * 32
        if storage.replace(key, b"probe 3", stale) is not None:
            problems.append("a replace with a stale version tag succeeded (If-Match ignored)")
    finally:
        current = storage.read(key)
        if current is not None:
            storage.delete(key, current.tag)
    if problems:
        raise StorageError(
            f"{location}: refusing to publish: this store does not enforce conditional writes: "
            + "; ".join(problems),
            hint="racing publishers would silently lose releases here; use a store that "
            "supports If-None-Match/If-Match on writes (AWS S3, or moto >= 5.2.5), or a "
            "local directory",
        )
