"""The local record of what was last trusted, one record per trust root.

Layout below the cache root::

    metadata/trust-<id>/origin.txt          "trust-root:<identity>" (claims the directory)
    metadata/trust-<id>/.lock               sidecar lock taken by every write
    metadata/trust-<id>/roots/<N>.json      the root chain walked beyond the anchor, exact bytes
    metadata/trust-<id>/timestamp.json      last trusted timestamp, exact bytes
    metadata/trust-<id>/index.json          last trusted index top, exact bytes
    metadata/trust-<id>/nodes/<sha256>.json group and bin nodes, content-addressed
    metadata/trust-<id>/state.json          {"last_refresh": "<RFC 3339 UTC>"}
    metadata/trust-<id>/verified-releases.json  release envelopes verified under a root

``<identity>`` is :func:`~modelmesh_connectors.index.trust.trust_root_id` of the shipped anchor
(the SHA-256 of its signed payload) and ``<id>`` its first 16 hex characters. The record is
keyed by the trust root, never by a URL: every mirror of one index, its ``bundle:`` and
offline mode share one rollback reference whatever the order or set of mirrors (keyed by
the first mirror's URL, a reordered mirror list started the client with no reference and a
stale but validly signed mirror rolled it back). Two different trust roots never share a
record.

Earlier versions keyed the record by the first index URL (``metadata/<origin-id>/`` with
the normalized URL in ``origin.txt``, ``<origin-id>`` the first 16 hex characters of the
sha256 of that URL; see :meth:`MetadataStore.origin`). Those directories are only read, to
migrate their rollback reference after it re-verifies from the anchor (see
:class:`~modelmesh_connectors.client.updater.IndexView`); they are never written again.

Signed files are kept as the exact bytes received, so the trust core re-verifies them on
every load rather than trusting this directory. Every write is a temp file plus
``os.replace`` (atomic on POSIX) under the record's ``FileLock``; readers need no lock.
``state.json`` alone is moved into place after the old copy is removed (see
:meth:`OriginMetadata.record_refresh`): a reader that finds none refreshes online.
The time of the last successful online refresh is stored as data in ``state.json``, never
inferred from file modification times (which copies, backups and clock changes alter).

One module, over 600 lines, on purpose: it is the one owner of the directory layout above;
the trust-root records and the legacy URL-keyed ones share every read, write and lock path,
and a split would put two writers on one directory.
"""

from __future__ import annotations

__all__ = [
    "MetadataStore",
    "OriginMetadata",
    "normalize_index_url",
    "origin_id",
    "trust_root_dir",
]

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Set
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from modelmesh_connectors._internal.digest import check_bytes, check_digest, sha256_hex
from modelmesh_connectors._internal.files import SidecarLock, write_atomic, write_temp
from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors.errors import (
    CacheError,
    HashMismatchError,
    InvalidInput,
    LengthMismatchError,
)
from modelmesh_connectors.index.envelope import strict_json

if TYPE_CHECKING:
    from modelmesh_connectors.index.metadata import MetaRef

_logger = logging.getLogger("modelmesh_connectors.client.state")

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_ORIGIN_FILE: Final = "origin.txt"
_STATE_FILE: Final = "state.json"
_VERIFIED_FILE: Final = "verified-releases.json"
_MAX_VERIFIED: Final = 20_000  # remembered release digests (~2 MiB); beyond, the oldest go
_NODES_DIR: Final = "nodes"
_ROOTS_DIR: Final = "roots"  # roots/<N>.json: the chain walked beyond the anchor
_TRUST_PREFIX: Final = "trust-"  # metadata/trust-<id>: the record of one trust root
_TRUST_CLAIM: Final = "trust-root:"  # origin.txt of such a record: "trust-root:<identity>"

_Role = Literal["timestamp", "index"]


def normalize_index_url(url: str) -> str:
    """The canonical form of an index URL, used to key local state.

    Lower-cases scheme and host, drops a default port, user info (never
    written to disk) and the fragment, and ends the path with ``/``.

    Args:
        url: An absolute index URL (``https://…``, ``http://…`` or ``file://…``).

    Returns:
        The normalized URL.

    Raises:
        InvalidInput: The URL has no scheme, or an HTTP(S) URL has no host or a bad port.
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"invalid index URL {redact_url(url)!r}: {exc}") from None
    if not scheme:
        raise InvalidInput(f"expected an absolute index URL with a scheme, got {redact_url(url)!r}")
    if scheme in _DEFAULT_PORTS and not host:
        raise InvalidInput(f"expected an index URL with a host, got {redact_url(url)!r}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def origin_id(url: str) -> str:
    """The directory name of an index origin: 16 hex chars of sha256(normalized URL).

    Args:
        url: The index URL.

    Returns:
        16 lowercase hex characters.

    Raises:
        InvalidInput: See :func:`normalize_index_url`.
    """
    return hashlib.sha256(normalize_index_url(url).encode("utf-8")).hexdigest()[:16]


def trust_root_dir(identity: str) -> str:
    """The directory name of a trust root's record: ``trust-`` + 16 hex chars of its identity.

    Args:
        identity: :func:`~modelmesh_connectors.index.trust.trust_root_id` of the shipped anchor.

    Returns:
        ``trust-<16 lowercase hex>``.

    Raises:
        InvalidInput: ``identity`` is not 64 lowercase hex characters.
    """
    if not isinstance(identity, str) or _HEX_DIGEST.fullmatch(identity) is None:
        raise InvalidInput(
            f"expected a trust root identity (64 lowercase hex), got {identity!r:.80}"
        )
    return _TRUST_PREFIX + identity[:16]


class OriginMetadata:
    """Stored metadata of one trust root (or, read-only, of a legacy URL-keyed origin).

    Get it from :meth:`MetadataStore.trust_root` (or :meth:`MetadataStore.origin`).

    Reads need no lock; every write takes the origin's lock. Hold
    :meth:`locked` around a read-check-write sequence to make it atomic with
    respect to other processes (writes inside it re-enter the same lock).
    """

    def __init__(self, directory: Path, identity: str, *, lock_timeout: float) -> None:
        self._directory = directory
        self._url = identity
        # Set once origin.txt was read and names this origin: a run's many reads then
        # check it once, not once per file (the claim is written once and never changed).
        self._claim_seen = False
        # One lock object per origin: reentrant within a thread, exclusive across
        # threads (each thread holds its own descriptor) and processes.
        self._lock = SidecarLock(
            directory / ".lock",
            timeout=lock_timeout,
            what="metadata lock",
            hint="another modelmesh-connectors process is refreshing this index; "
            "wait for it to finish or raise the lock timeout",
        )

    @property
    def identity(self) -> str:
        """What the directory is claimed for: ``trust-root:<identity>``, or a legacy URL."""
        return self._url

    @property
    def url(self) -> str:
        """The normalized index URL of a legacy origin (else the same as :attr:`identity`)."""
        return self._url

    @property
    def is_legacy(self) -> bool:
        """True for a URL-keyed directory of an earlier version (read only to migrate it)."""
        return not self._url.startswith(_TRUST_CLAIM)

    @property
    def directory(self) -> Path:
        """``root/metadata/trust-<id>`` (or a legacy ``root/metadata/<origin-id>``)."""
        return self._directory

    # -- locking -----------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the origin's lock (reentrant in one thread).

        Raises:
            LockTimeoutError: Another process held the lock longer than the timeout.
            CacheError: The directory or lock file cannot be created.
        """
        with self._lock.held():
            self._claim_directory()
            yield

    # -- signed files, exact bytes -----------------------------------------------

    def save_root_version(self, version: int, data: bytes) -> None:
        """Store root ``version`` (walked beyond the shipped anchor) as its exact bytes.

        The chain is kept whole so every run re-verifies it from the anchor.

        Raises:
            LockTimeoutError: The origin lock was held too long.
            CacheError: The file cannot be written.
        """
        if isinstance(version, bool) or version < 1:
            raise ValueError(f"root version must be >= 1, got {version!r}")
        with self.locked():
            self._write(self._directory / _ROOTS_DIR / f"{version}.json", data)

    def load_root_versions(self) -> list[tuple[int, bytes]]:
        """Stored root versions and their bytes, in version order (unverified).

        Raises:
            CacheError: A file exists but cannot be read, or the directory belongs to
                another origin.
        """
        directory = self._directory / _ROOTS_DIR
        try:
            names = [p.name for p in directory.iterdir()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CacheError(f"cannot list {directory}: {exc}") from exc
        out: list[tuple[int, bytes]] = []
        for name in names:
            stem, dot, ext = name.partition(".")
            if ext != "json" or not dot or not stem.isdigit() or len(stem) > 9:
                continue  # temp files and anything else are not roots
            data = self._read(directory / name)
            if data is not None:
                out.append((int(stem), data))
        return sorted(out)

    def load_timestamp(self) -> bytes | None:
        """The last trusted timestamp's exact bytes, or ``None``.

        Raises:
            CacheError: As for :meth:`load_root_versions`.
        """
        return self._load("timestamp")

    def save_timestamp(self, data: bytes) -> None:
        """Store the newly trusted timestamp's exact bytes.

        Raises:
            LockTimeoutError: The origin lock was held too long.
            CacheError: The file cannot be written.
        """
        self._save("timestamp", data)

    def load_index(self) -> bytes | None:
        """The last trusted index top's exact bytes, or ``None``.

        Raises:
            CacheError: As for :meth:`load_root_versions`.
        """
        return self._load("index")

    def save_index(self, data: bytes) -> None:
        """Store the newly trusted index top's exact bytes.

        Raises:
            LockTimeoutError: The origin lock was held too long.
            CacheError: The file cannot be written.
        """
        self._save("index", data)

    # -- content-addressed nodes ---------------------------------------------------

    def load_node(self, sha256: str, length: int | None = None) -> bytes | None:
        """A stored node whose bytes hash to ``sha256`` (and have ``length``), or ``None``.

        A corrupt node is a miss: it is removed (under the lock) and a warning logged.

        Args:
            sha256: Lowercase hex sha256 pinned by the parent node.
            length: Size in bytes pinned by the parent node, if known.

        Returns:
            The verified bytes, or ``None``.

        Raises:
            InvalidInput: ``sha256`` is not 64 lowercase hex characters.
            LockTimeoutError: Removing a corrupt node waited too long for the lock.
            CacheError: The node cannot be read or removed.
        """
        path = self._node_path(sha256)
        data = self._read(path)
        if data is None:
            return None
        problem = _node_problem(data, sha256, length)
        if problem is None:
            return data
        with self.locked():
            data = self._read(path)
            if data is not None and _node_problem(data, sha256, length) is None:
                return data  # replaced by a good copy meanwhile
            if data is not None:
                _logger.warning("removing corrupt metadata node %s: %s", path, problem)
                _unlink(path)
        return None

    def has_node(self, ref: MetaRef) -> bool:
        """Whether a node file of the pinned size is stored (not re-hashed: a hint only).

        Raises:
            InvalidInput: ``ref.sha256`` is not 64 lowercase hex characters.
        """
        try:
            return self._node_path(ref.sha256).stat().st_size == ref.length
        except OSError:
            return False

    def save_node(self, sha256: str, data: bytes) -> None:
        """Store a node under its hash (atomically, under the lock).

        Args:
            sha256: The sha256 the parent pinned; ``data`` must hash to it.
            data: The node's exact bytes.

        Raises:
            InvalidInput: ``sha256`` is not 64 lowercase hex characters.
            HashMismatchError: ``data`` does not hash to ``sha256`` (stops
                caching wrong bytes under a trusted name).
            LockTimeoutError: The origin lock was held too long.
            CacheError: The file cannot be written.
        """
        path = self._node_path(sha256)
        check_digest(f"metadata node {path.name} (not stored)", sha256, sha256_hex(data))
        existing = self._read(path)
        if existing is not None and sha256_hex(existing) == sha256:
            return
        # No lock and no fsync: the file is content-addressed (any concurrent writer writes
        # the same bytes, and the rename is atomic) and re-hashed on every read, so a write
        # lost in a crash is only a cache miss.
        self._ensure_directory()
        try:
            write_atomic(path, data, durable=False)
        except OSError as exc:
            raise CacheError(f"cannot write {path}: {exc}") from exc

    def nodes(self) -> list[str]:
        """The digests of the stored nodes (not re-verified), sorted.

        Raises:
            CacheError: The nodes directory cannot be listed.
        """
        directory = self._directory / _NODES_DIR
        try:
            if not directory.is_dir():
                return []
            names = [p.name.removesuffix(".json") for p in directory.glob("*.json")]
        except OSError as exc:
            raise CacheError(f"cannot list {directory}: {exc}") from exc
        return sorted(n for n in names if _HEX_DIGEST.fullmatch(n))

    def copy_nodes_to(self, target: OriginMetadata) -> list[str]:
        """Copy every stored node whose bytes hash to its name into ``target`` (migration).

        Nothing is written here: a corrupt node is skipped, not removed.

        Args:
            target: The record to copy into.

        Returns:
            The copied digests, sorted.

        Raises:
            LockTimeoutError, CacheError: ``target`` cannot be written.
        """
        copied: list[str] = []
        for digest in self.nodes():
            data = self._read(self._node_path(digest))
            if data is None or sha256_hex(data) != digest:
                continue
            target.save_node(digest, data)
            copied.append(digest)
        return copied

    def prune_nodes(self, keep: Set[str]) -> list[str]:
        """Remove every stored node whose digest is not in ``keep``.

        Args:
            keep: Digests to keep (those reachable from the trusted index top).

        Returns:
            The removed digests, sorted.

        Raises:
            LockTimeoutError: The origin lock was held too long.
            CacheError: A node cannot be removed.
        """
        removed: list[str] = []
        with self.locked():
            for digest in self.nodes():
                if digest not in keep:
                    _unlink(self._node_path(digest))
                    removed.append(digest)
        return removed

    # -- refresh time --------------------------------------------------------------

    def last_refresh(self) -> datetime | None:
        """When the last successful online refresh finished (UTC), or ``None``.

        An unreadable or malformed ``state.json`` counts as never refreshed
        (a warning is logged): the caller then refreshes or reports staleness.

        Raises:
            CacheError: The directory belongs to another origin.
        """
        path = self._directory / _STATE_FILE
        self._check_claim()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _logger.warning("cannot read %s (%s); treating the index as never refreshed", path, exc)
            return None
        try:
            state = strict_json(data)  # a duplicated key is malformed, not last-wins
            value = state["last_refresh"]
            if not isinstance(value, str):
                raise TypeError(f"last_refresh is {type(value).__name__}, expected a string")
            when = datetime.fromisoformat(value)
            if when.tzinfo is None:
                raise ValueError("last_refresh has no time zone")
        except (ValueError, TypeError, KeyError) as exc:
            _logger.warning("ignoring malformed %s: %s", path, exc)
            return None
        return when.astimezone(UTC)

    def record_refresh(self, when: datetime) -> None:
        """Record the time of a successful online refresh (atomically, under the lock).

        Args:
            when: A time-zone-aware time, normally "now" as read by the caller.

        Raises:
            ValueError: ``when`` is naive.
            LockTimeoutError: The origin lock was held too long.
            CacheError: The file cannot be written.
        """
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("record_refresh() needs a time-zone-aware datetime")
        stamp = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
        data = json.dumps({"last_refresh": stamp}, indent=1).encode("utf-8") + b"\n"
        path = self._directory / _STATE_FILE
        with self.locked():
            # Not fsynced: losing the last refresh time only costs one extra online check.
            # Moved into a free name, not renamed over the old file: on ext4, a rename that
            # replaces a file flushes the new file's data to disk first (auto_da_alloc), the
            # very wait durable=False is meant to skip (0.3-2 ms of every online run). A
            # reader between the unlink and the rename finds no file, which reads as "never
            # refreshed": one extra online check, never a fresher state than was recorded.
            self._write(path, data, durable=False, replace=False)

    # -- releases verified under a root (FORMAT.md §4 step 6) -------------------------

    def load_verified_releases(self, root_identity: str) -> dict[str, frozenset[str]]:
        """Release digests verified under ``root_identity`` and their signers (may be empty).

        Under another root, or unreadable or malformed, the record is empty (a warning is
        logged for a malformed one): every release is then verified in full again. It is
        only ever consulted for envelopes reached by hash from the verified index top.

        Raises:
            CacheError: The directory belongs to another origin.
        """
        data = self._read_optional(self._directory / _VERIFIED_FILE)
        if data is None:
            return {}
        try:
            obj = strict_json(data)
            if not isinstance(obj, dict) or obj.get("root") != root_identity:
                return {}
            releases = obj["releases"]
            if not isinstance(releases, dict):
                raise TypeError("releases is not an object")
            out: dict[str, frozenset[str]] = {}
            for digest, signers in releases.items():
                if not _HEX_DIGEST.fullmatch(digest) or not isinstance(signers, list):
                    raise TypeError(f"entry {digest!r:.80} is malformed")
                if not signers or not all(
                    isinstance(k, str) and _HEX_DIGEST.fullmatch(k) for k in signers
                ):
                    raise TypeError(f"signers of {digest[:16]} are malformed")
                out[digest] = frozenset(signers)
        except (ValueError, TypeError, KeyError) as exc:
            _logger.warning("ignoring malformed %s: %s", self._directory / _VERIFIED_FILE, exc)
            return {}
        return out

    def save_verified_releases(
        self, root_identity: str, entries: dict[str, frozenset[str]]
    ) -> None:
        """Replace the record with ``entries`` (verified under ``root_identity``).

        Not locked and not fsynced: a lost or concurrent write only costs a later run one
        signature check per release (the last writer wins).

        Raises:
            CacheError: The file cannot be written.
        """
        items = list(entries.items())[-_MAX_VERIFIED:]
        obj = {"root": root_identity, "releases": {d: sorted(k) for d, k in items}}
        data = json.dumps(obj, separators=(",", ":")).encode("ascii") + b"\n"
        self._ensure_directory()
        try:
            write_atomic(self._directory / _VERIFIED_FILE, data, durable=False)
        except OSError as exc:
            raise CacheError(f"cannot write {self._directory / _VERIFIED_FILE}: {exc}") from exc

    # -- internals -----------------------------------------------------------------

    def _read_optional(self, path: Path) -> bytes | None:
        """The file's bytes, or ``None`` if it is missing or unreadable (logged)."""
        try:
            return self._read(path)
        except CacheError as exc:
            _logger.warning("%s", exc)
            return None

    def _role_path(self, role: _Role) -> Path:
        return self._directory / f"{role}.json"

    def _node_path(self, sha256: str) -> Path:
        # Digests become file names: strict validation stops path traversal.
        if not isinstance(sha256, str) or _HEX_DIGEST.fullmatch(sha256) is None:
            raise InvalidInput(f"expected a lowercase hex sha256 (64 characters), got {sha256!r}")
        return self._directory / _NODES_DIR / f"{sha256}.json"

    def _load(self, role: _Role) -> bytes | None:
        return self._read(self._role_path(role))

    def _save(self, role: _Role, data: bytes) -> None:
        with self.locked():
            self._write(self._role_path(role), data)

    def _read(self, path: Path) -> bytes | None:
        self._check_claim()
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"cannot read {path}: {exc}") from exc

    def _write(
        self, path: Path, data: bytes, *, durable: bool = True, replace: bool = True
    ) -> None:
        # Called under the lock: temp files of this name are leftovers of a dead writer.
        directory = path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for leftover in directory.glob(f".{path.name}.*.tmp"):
                _logger.info("removing leftover of an interrupted write: %s", leftover)
                leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot prepare {directory}: {exc}") from exc
        if replace:
            _atomic_write(path, data, durable=durable)
            return
        try:
            tmp = write_temp(path, data, durable=durable)
        except OSError as exc:
            raise CacheError(f"cannot write {path}: {exc}") from exc
        try:
            path.unlink(missing_ok=True)
            # Under the lock no other writer can put a file back at ``path`` meanwhile.
            os.rename(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CacheError(f"cannot write {path}: {exc}") from exc

    def _ensure_directory(self) -> None:
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create {self._directory}: {exc}") from exc

    def _claim_directory(self) -> None:
        """Under the lock: write origin.txt, or check it names this origin."""
        if self._claim_seen:
            return
        if self._stored_origin() is None:
            # Not fsynced: it only names the origin; a lost copy is written again.
            _atomic_write(
                self._directory / _ORIGIN_FILE, (self._url + "\n").encode("utf-8"), durable=False
            )
        else:
            self._check_claim()

    def _check_claim(self) -> None:
        if self._claim_seen:
            return
        stored = self._stored_origin()
        if stored == self._url:
            self._claim_seen = True
        elif stored is not None:
            # 64-bit directory names make this a corruption, not a collision, in practice.
            raise CacheError(
                f"metadata directory {self._directory} belongs to {stored!r}, "
                f"expected {self._url!r}",
                hint=f"remove {self._directory} to reset the stored state of this index",
            )

    def _stored_origin(self) -> str | None:
        path = self._directory / _ORIGIN_FILE
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CacheError(f"cannot read {path}: {exc}") from exc


class MetadataStore:
    """Per-origin stores of trusted metadata below ``root/metadata``.

    Args:
        root: The cache root (see :func:`~modelmesh_connectors.client.cache.default_cache_dir`).
        lock_timeout: Seconds to wait for another process holding an origin's
            lock (``float("inf")`` waits forever).

    Raises:
        ValueError: ``lock_timeout`` is negative or NaN.
    """

    def __init__(self, root: Path, *, lock_timeout: float = 60.0) -> None:
        if not lock_timeout >= 0:
            raise ValueError(f"lock_timeout must be >= 0 seconds, got {lock_timeout!r}")
        self._root = Path(root)
        self._base = self._root / "metadata"
        self._lock_timeout = lock_timeout
        self._origins: dict[str, OriginMetadata] = {}
        self._guard = threading.Lock()

    @property
    def root(self) -> Path:
        """The cache root given to the constructor."""
        return self._root

    def trust_root(self, identity: str) -> OriginMetadata:
        """The record of one trust root (the same object for the same identity).

        Every mirror, bundle and offline run of the index this root anchors shares it:
        it holds the one rollback reference of that trust root.

        Args:
            identity: :func:`~modelmesh_connectors.index.trust.trust_root_id` of the shipped anchor.

        Returns:
            Its :class:`OriginMetadata`; nothing is created on disk until a write.

        Raises:
            InvalidInput: ``identity`` is not 64 lowercase hex characters.
        """
        name = trust_root_dir(identity)
        with self._guard:
            found = self._origins.get(name)
            if found is None:
                found = OriginMetadata(
                    self._base / name, _TRUST_CLAIM + identity, lock_timeout=self._lock_timeout
                )
                self._origins[name] = found
            return found

    def trust_roots(self) -> list[OriginMetadata]:
        """Every trust root with a stored record, sorted by identity.

        Raises:
            CacheError: The metadata directory cannot be listed.
        """
        found: list[OriginMetadata] = []
        for directory in self._directories():
            if not directory.name.startswith(_TRUST_PREFIX):
                continue
            claim = _read_claim(directory) or ""
            identity = claim.removeprefix(_TRUST_CLAIM)
            if (
                claim.startswith(_TRUST_CLAIM)
                and _HEX_DIGEST.fullmatch(identity)
                and trust_root_dir(identity) == directory.name
            ):
                found.append(self.trust_root(identity))
        return sorted(found, key=lambda origin: origin.identity)

    def origin(self, index_url: str) -> OriginMetadata:
        """The legacy URL-keyed store of one index origin (earlier versions' layout).

        Read it only to migrate its rollback reference (after re-verifying it from the
        anchor): state keyed by a URL is what let a reordered mirror list lose the
        reference. New state lives in :meth:`trust_root`.

        Args:
            index_url: The index URL.

        Returns:
            Its :class:`OriginMetadata`; nothing is created on disk until a write.

        Raises:
            InvalidInput: See :func:`normalize_index_url`.
        """
        url = normalize_index_url(index_url)
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
        with self._guard:
            found = self._origins.get(key)
            if found is None:
                found = OriginMetadata(self._base / key, url, lock_timeout=self._lock_timeout)
                self._origins[key] = found
            return found

    def origins(self) -> list[OriginMetadata]:
        """Every legacy URL-keyed origin with stored state, sorted by URL (migration input).

        Raises:
            CacheError: The metadata directory cannot be listed.
        """
        found: list[OriginMetadata] = []
        for directory in self._directories():
            if directory.name.startswith(_TRUST_PREFIX):
                continue
            url = _read_claim(directory)
            if url is None:
                continue
            try:
                if origin_id(url) != directory.name:
                    continue
            except InvalidInput:
                continue
            found.append(self.origin(url))
        return sorted(found, key=lambda origin: origin.url)

    def _directories(self) -> list[Path]:
        try:
            if not self._base.is_dir():
                return []
            return sorted(p for p in self._base.iterdir() if p.is_dir())
        except OSError as exc:
            raise CacheError(f"cannot list {self._base}: {exc}") from exc


def _read_claim(directory: Path) -> str | None:
    try:
        return (directory / _ORIGIN_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _node_problem(data: bytes, sha256: str, length: int | None) -> str | None:
    try:
        check_bytes(data, sha256=sha256, length=length, what="metadata node")
    except (HashMismatchError, LengthMismatchError) as exc:
        return exc.message
    return None


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot remove {path}: {exc}") from exc


def _atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    try:
        write_atomic(path, data, durable=durable)
    except OSError as exc:
        raise CacheError(f"cannot write {path}: {exc}") from exc
