"""Garbage collection: remove what no recent timestamp reaches, and only that.

Superseded ``meta/`` nodes, and the archives, signatures and history files left by an
interrupted or rebased publish, pile up (55× the live size after 1,000 publishes).
:func:`collect_garbage` removes a file only when **both** hold:

* no timestamp of the last ``grace`` reaches it — the current one, every one that was
  replaced less than ``grace`` ago, and every one not yet expired (a reader holding an older
  timestamp keeps finding its whole tree);
* it was written more than ``grace`` ago (a publisher uploading right now is never robbed).

Each removal is a delete-if-unchanged, so a file rewritten meanwhile is left alone. The
root chain, ``timestamp.json`` and the history of the current timestamp are never removed;
history files of timestamps that lost a compare-and-swap are. The default grace (8 days) is
longer than a timestamp's default validity (7 days).
"""

from __future__ import annotations

__all__ = ["DEFAULT_GC_GRACE", "MIN_GC_GRACE", "GcReport", "collect_garbage"]

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelmesh_connectors.errors import ConnectorError, PublishError
from modelmesh_connectors.index.envelope import parse_envelope
from modelmesh_connectors.index.metadata import (
    Timestamp,
    TimestampLink,
    archive_path,
    parse_bin,
    parse_group,
    parse_index_top,
)
from modelmesh_connectors.index.trust import verify_history_link
from modelmesh_connectors.publish.state import load_state, utc_now
from modelmesh_connectors.publish.storage import Listed, Storage
from modelmesh_connectors.publish.stores import open_storage

DEFAULT_GC_GRACE = timedelta(days=8)  # longer than the default timestamp validity (7 days)
MIN_GC_GRACE = timedelta(hours=1)  # far longer than any publish takes
_HISTORY_FILE = re.compile(r"history/([1-9][0-9]*)-([0-9a-f]{64})\.json")


@dataclass(frozen=True)
class GcReport:
    """What a collection did (or, dry, would do).

    Attributes:
        timestamps: How many timestamps' trees were kept (the current one included).
        removed: Files deleted (or that would be, in a dry run).
        changed: Files left because they changed or vanished before the delete.
        young: Unreferenced files kept because they are newer than the grace period.
        kept: Files kept because a recent timestamp reaches them.
    """

    timestamps: int
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    young: tuple[str, ...]
    kept: int

    def to_json_obj(self) -> dict[str, Any]:
        """A JSON-compatible summary."""
        return {
            "timestamps": self.timestamps,
            "removed": list(self.removed),
            "changed": list(self.changed),
            "young": list(self.young),
            "kept": self.kept,
        }


def collect_garbage(
    location: str | os.PathLike[str] | Storage,
    *,
    grace: timedelta = DEFAULT_GC_GRACE,
    now: datetime | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Remove the files no timestamp of the last ``grace`` reaches (module docstring).

    Args:
        location: The index (directory, ``s3://bucket/prefix/`` or a storage).
        grace: How far back timestamps are honoured, and how old a file must be.
        now: Reference time (default: the current time).
        dry_run: Only report what would be removed.

    Returns:
        The report.

    Raises:
        PublishError: ``grace`` is shorter than :data:`MIN_GC_GRACE`.
        StorageError: The store fails.
        TrustError: The current index fails verification (nothing is removed).
    """
    if grace < MIN_GC_GRACE:
        raise PublishError(
            f"gc --grace: expected at least {MIN_GC_GRACE}, got {grace}",
            hint="a grace shorter than a publish or a reader's timestamp breaks them",
        )
    now = utc_now(now)
    cutoff = now - grace
    storage = open_storage(location)
    listing = {entry.key: entry for entry in storage.list()}
    state = load_state(storage)  # verified: never collect on a state we cannot trust
    walk = _Walk(storage, listing)
    current = state.timestamp
    own = TimestampLink.of(current.version, parse_envelope(state.timestamp_bytes).payload)
    walk.keep(own.path)
    walk.keep_tree(current)
    kept_trees = 1
    # Versions with several history files (lost races) or above the current one are
    # ambiguous: the chain must be walked down to them to tell which one it passes through.
    by_version: dict[int, int] = {}
    for key in listing:
        if (m := _HISTORY_FILE.fullmatch(key)) is not None:
            by_version[int(m.group(1))] = by_version.get(int(m.group(1)), 0) + 1
    ambiguous = [v for v, n in by_version.items() if n > 1 and v <= current.version]
    lowest_ambiguous = min(ambiguous, default=current.version + 1)
    link, replaced_at = current.previous, listing.get(own.path)
    trees = True
    while link is not None and (trees or link.version >= lowest_ambiguous):
        data = walk.read(link.path)
        if data is None:
            break  # history missing: keep what the walk found so far ('verify' reports it)
        try:
            older = verify_history_link(link, data)
        except ConnectorError:
            break
        walk.keep(link.path)
        recent = replaced_at is None or replaced_at.modified >= cutoff
        if trees and (recent or older.expires > now):
            walk.keep_tree(older)
            kept_trees += 1
        else:
            trees = False
        replaced_at = listing.get(link.path)
        link = older.previous
    removed: list[str] = []
    changed: list[str] = []
    young: list[str] = []
    for key, entry in sorted(listing.items()):
        if key in walk.reached or key == "timestamp.json" or key.startswith("root/"):
            continue
        m = _HISTORY_FILE.fullmatch(key)
        if m is not None and int(m.group(1)) < lowest_ambiguous and not _above(m, current):
            continue  # the only timestamp of its version: part of the chain, kept for good
        if entry.modified >= cutoff:
            young.append(key)
            continue
        if dry_run:
            removed.append(key)
            continue
        tag = entry.tag
        if tag is None:
            stored = storage.read(key)
            if stored is None:
                changed.append(key)
                continue
            tag = stored.tag
        (removed if storage.delete(key, tag) else changed).append(key)
    return GcReport(kept_trees, tuple(removed), tuple(changed), tuple(young), len(walk.reached))


def _above(m: re.Match[str], current: Timestamp) -> bool:
    return int(m.group(1)) > current.version


class _Walk:
    """The set of files the kept timestamps reach (each node parsed once)."""

    def __init__(self, storage: Storage, listing: dict[str, Listed]) -> None:
        self.storage = storage
        self.listing = listing
        self.reached: set[str] = set()

    def keep(self, path: str) -> None:
        self.reached.add(path)

    def read(self, path: str) -> bytes | None:
        stored = self.storage.read(path)
        return None if stored is None else stored.data

    def keep_tree(self, timestamp: Timestamp) -> None:
        top_path = timestamp.index.path
        if top_path in self.reached:
            return
        self.keep(top_path)
        data = self.read(top_path)
        if data is None:
            return
        try:
            top = parse_index_top(parse_envelope(data).payload, top_path)
        except ConnectorError:
            return  # unreadable: nothing below it can be found either
        self._groups(ref.path for ref in top.groups.values())

    def _groups(self, paths: Iterable[str]) -> None:
        for path in paths:
            if path in self.reached:
                continue
            self.keep(path)
            data = self.read(path)
            if data is None:
                continue
            try:
                group = parse_group(data, path)
            except ConnectorError:
                continue
            for ref in group.bins.values():
                self._bin(ref.path)

    def _bin(self, path: str) -> None:
        if path in self.reached:
            return
        self.keep(path)
        data = self.read(path)
        if data is None:
            return
        try:
            node = parse_bin(data, path)
        except ConnectorError:
            return
        for name, entries in node.packages.items():
            for entry in entries:
                file = archive_path(name, entry.version)
                self.reached.update((file, file + ".sig"))
