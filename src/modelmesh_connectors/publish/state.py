"""The publisher's view of an index: its verified current state, read through the storage seam.

:func:`load_state` reads the root chain, ``timestamp.json`` *with its version tag* (what the
compare-and-swap of the publish protocol compares against), and the index top it pins, and
verifies them with the client's own trust core. Group and bin nodes are read on demand.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_INDEX_EXPIRY",
    "DEFAULT_TIMESTAMP_EXPIRY",
    "MEDIUM_INDEX_MAX_PACKAGES",
    "SMALL_INDEX_MAX_PACKAGES",
    "RepositoryState",
    "current_bin",
    "existing_bins",
    "load_root_chain",
    "load_state",
    "package_count",
    "read_bin",
    "read_group",
    "read_required",
    "sharding_level",
    "signing_keys",
    "utc_now",
]

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from modelmesh_connectors.errors import PublishError, SignatureError
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import BinNode, GroupNode, IndexTop, Root, Timestamp
from modelmesh_connectors.index.trust import (
    verify_anchor_root,
    verify_bin_node,
    verify_group_node,
    verify_index_top,
    verify_next_root,
    verify_timestamp,
)
from modelmesh_connectors.publish.storage import Storage
from modelmesh_connectors.publish.stores import open_storage

DEFAULT_INDEX_EXPIRY = timedelta(days=365)  # how long a signed index top stays valid
DEFAULT_TIMESTAMP_EXPIRY = timedelta(days=7)  # how long timestamp.json stays valid
_ROOT_FILE = re.compile(r"root/([1-9][0-9]{0,8})\.json")
_T = TypeVar("_T")

# Sharding level by package count (FORMAT.md §3 fan-out). Up to 256 packages one bin is
# still small (a few hundred KiB at most) and a cold install of N packages costs N+5 requests
# instead of 3N+4; up to 16384, 256 bins of at most ~64 packages each; beyond, 256 × 256 bins
# so a lookup in a 100k index still fetches only a few tens of KiB.
SMALL_INDEX_MAX_PACKAGES = 256  # packages: (group_chars, bin_chars) = (0, 0) up to this
MEDIUM_INDEX_MAX_PACKAGES = 16384  # packages: (0, 2) up to this, (2, 4) above


def sharding_level(packages: int) -> tuple[int, int]:
    """Return the ``(group_chars, bin_chars)`` a publisher uses for an index of this size.

    Args:
        packages: Number of distinct package names in the index.

    Returns:
        One of :data:`~modelmesh_connectors.index.metadata.SHARDING_LEVELS`.
    """
    if packages <= SMALL_INDEX_MAX_PACKAGES:
        return (0, 0)
    if packages <= MEDIUM_INDEX_MAX_PACKAGES:
        return (0, 2)
    return (2, 4)


def utc_now(now: datetime | None) -> datetime:
    """``now``, or the current time; a naive ``now`` is misuse (ValueError)."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
    return now


def signing_keys(keys: SigningKey | Sequence[SigningKey]) -> tuple[SigningKey, ...]:
    """One key or several as a tuple (anything with the :class:`SigningKey` interface).

    Raises:
        ValueError: No key.
    """
    out = (keys,) if isinstance(keys, SigningKey) or not isinstance(keys, Sequence) else tuple(keys)
    if not out:
        raise ValueError("expected at least one signing key")
    return out


def read_required(storage: Storage, key: str) -> bytes:
    """The bytes of an index file that must exist.

    Raises:
        PublishError: It does not (or cannot be read).
    """
    stored = storage.read(key)
    if stored is None:
        raise PublishError(
            f"index {storage.location}: {key} is missing",
            hint="is this an index created by 'init'? ('verify' lists missing files)",
        )
    return stored.data


@dataclass(frozen=True)
class RepositoryState:
    """The verified current state of an index (expiries not checked).

    Attributes:
        storage: Where the index is.
        roots: Bytes of ``root/1.json`` … ``root/N.json``.
        root: The newest root (N).
        timestamp: The current timestamp.
        timestamp_bytes: Its file bytes.
        timestamp_tag: Its storage version tag (the compare-and-swap compares it).
        top: The index top it pins.
        top_bytes: The top's file bytes.
        stale_signatures: True when the timestamp or top is signed only by keys of an
            older root (after a key rotation; refresh them).
    """

    storage: Storage
    roots: tuple[bytes, ...]
    root: Root
    timestamp: Timestamp
    timestamp_bytes: bytes
    timestamp_tag: str
    top: IndexTop
    top_bytes: bytes
    stale_signatures: bool
    _meta: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    _nodes: dict[str, GroupNode | BinNode] = field(default_factory=dict, compare=False, repr=False)

    def read(self, key: str) -> bytes:
        """An index file that must exist; ``meta/`` files are read once per state (they are
        content-addressed, so a cached copy is never stale)."""
        data = self._meta.get(key)
        if data is None:
            data = read_required(self.storage, key)
            if key.startswith("meta/"):
                self._meta[key] = data
        return data

    @property
    def directory(self) -> Path:
        """The index directory (local storage only).

        Raises:
            PublishError: The index is not in a local directory.
        """
        directory = getattr(self.storage, "directory", None)
        if not isinstance(directory, Path):
            raise PublishError(f"index {self.storage.location}: not a local directory")
        return directory


def load_root_chain(storage: Storage) -> tuple[tuple[bytes, ...], list[Root]]:
    """Read and verify ``root/1.json`` … ``root/N.json`` (one listing, N reads).

    Raises:
        PublishError: ``root/1.json`` is missing or a version in the chain is.
        TrustError: A root fails verification.
    """
    versions = sorted(
        int(m.group(1))
        for entry in storage.list("root/")
        if (m := _ROOT_FILE.fullmatch(entry.key)) is not None
    )
    if not versions or versions[0] != 1:
        read_required(storage, "root/1.json")  # names the missing file
    roots_bytes: list[bytes] = []
    roots: list[Root] = []
    for n in range(1, (versions[-1] if versions else 1) + 1):
        rel = f"root/{n}.json"
        data = read_required(storage, rel)
        roots.append(
            verify_anchor_root(data, rel) if n == 1 else verify_next_root(roots[-1], data, rel)
        )
        roots_bytes.append(data)
    return tuple(roots_bytes), roots


def load_state(location: str | os.PathLike[str] | Storage) -> RepositoryState:
    """Read and verify an index's root chain, timestamp and index top.

    Signatures are checked; expiries are not (a publisher must be able to refresh an
    expired index). A timestamp or top signed by keys of an older root is accepted and
    flagged, so it can be re-signed after a rotation.

    Args:
        location: The index (directory, ``s3://…`` or a :class:`Storage`).

    Returns:
        The state.

    Raises:
        PublishError: A file is missing or unreadable.
        TrustError: A file fails verification.
    """
    storage = open_storage(location)
    ts = storage.read("timestamp.json")
    roots_bytes, roots = load_root_chain(storage)
    if ts is None:
        read_required(storage, "timestamp.json")
        raise AssertionError("unreachable")  # pragma: no cover
    ts_bytes = ts.data
    timestamp, ts_root = _verify_with_chain(
        roots, lambda r: verify_timestamp(r, ts_bytes, "timestamp.json")
    )
    top_bytes = read_required(storage, timestamp.index.path)
    top, top_root = _verify_with_chain(
        roots, lambda r: verify_index_top(r, timestamp, top_bytes, timestamp.index.path)
    )
    return RepositoryState(
        storage=storage,
        roots=roots_bytes,
        root=roots[-1],
        timestamp=timestamp,
        timestamp_bytes=ts_bytes,
        timestamp_tag=ts.tag,
        top=top,
        top_bytes=top_bytes,
        stale_signatures=ts_root is not roots[-1] or top_root is not roots[-1],
    )


def _verify_with_chain(roots: list[Root], check: Callable[[Root], _T]) -> tuple[_T, Root]:
    """Verify with the newest root whose keys signed the file (newest first)."""
    first_error: SignatureError | None = None
    for root in reversed(roots):
        try:
            return check(root), root
        except SignatureError as e:
            first_error = first_error or e
    if first_error is None:
        raise RuntimeError("empty root chain")
    raise first_error


def read_group(state: RepositoryState, prefix: str) -> GroupNode:
    """The verified group node ``prefix`` of the current top (empty when it has none)."""
    top = state.top
    ref = top.groups.get(prefix)
    if ref is None:
        return GroupNode(prefix, {})
    # Verified once per state: a group of 256 bins takes milliseconds to parse.
    node = state._nodes.get(ref.path)
    if not isinstance(node, GroupNode):
        node = verify_group_node(
            ref, prefix, state.read(ref.path), group_chars=top.group_chars, bin_chars=top.bin_chars
        )
        state._nodes[ref.path] = node
    return node


def read_bin(state: RepositoryState, group: GroupNode, prefix: str) -> BinNode:
    """The verified bin node ``prefix`` of ``group`` (empty when the group has none)."""
    ref = group.bins.get(prefix)
    if ref is None:
        return BinNode(prefix, {})
    node = state._nodes.get(ref.path)
    if not isinstance(node, BinNode):
        node = verify_bin_node(ref, prefix, state.read(ref.path))
        state._nodes[ref.path] = node
    return node


def current_bin(state: RepositoryState, prefix: str) -> BinNode:
    """The bin ``prefix`` of the current tree (two reads at most)."""
    return read_bin(state, read_group(state, prefix[: state.top.group_chars]), prefix)


def existing_bins(state: RepositoryState) -> Iterator[tuple[GroupNode, str]]:
    """Every (group, bin prefix) of the current tree, in prefix order."""
    for gp in sorted(state.top.groups):
        group = read_group(state, gp)
        for bp in sorted(group.bins):
            yield group, bp


def package_count(state: RepositoryState) -> int:
    """How many package names the current tree holds.

    Read from the signed top; a top written before it carried the count is counted once by
    reading every bin (the next top records it).
    """
    if state.top.packages is not None:
        return state.top.packages
    return sum(len(read_bin(state, g, bp).packages) for g, bp in existing_bins(state))
