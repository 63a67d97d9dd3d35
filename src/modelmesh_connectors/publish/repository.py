"""The publisher side: creates and changes a signed index directory (FORMAT.md §1).

Every change follows one order so that a client reading during a publish sees either the
old index state or the new one, never a mix: new immutable files first (archive,
``.zip.sig``, bin, group, index top: content-addressed, never overwritten), then
``timestamp.json`` **last**, through a temporary file and ``os.replace``. Before anything
becomes visible, the new state is run through the client's own trust core
(:mod:`trust`), so the publisher can never publish what a client would reject.

Concurrent publishers are serialised by a lock file next to the index. Root changes are
staged as files that several key holders sign in turn (:func:`root_sign`) before
:func:`root_publish` checks the rotation rules and adds ``root/<N+1>.json``.

After a rotation, releases signed only by keys the newest root dropped no longer verify.
:func:`refresh_index` (and the first :func:`publish` or :func:`yank` after the rotation)
re-signs those the index role had signed with the current index keys: new bins, groups and
top, the ``.zip.sig`` files replaced by the new envelopes (the archives never change). A
release of a namespace-scoped publisher is re-signed only with that publisher's current keys
(:func:`resign_releases`); until then the index refuses to be rewritten.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_INDEX_EXPIRY",
    "DEFAULT_TIMESTAMP_EXPIRY",
    "LOCK_NAME",
    "MEDIUM_INDEX_MAX_PACKAGES",
    "SMALL_INDEX_MAX_PACKAGES",
    "ManifestLike",
    "PackageInfoLike",
    "PublisherSpec",
    "RepositoryState",
    "init_repository",
    "load_state",
    "publish",
    "refresh_index",
    "refresh_timestamp",
    "resign_releases",
    "root_init",
    "root_publish",
    "root_rotate",
    "root_sign",
    "sharding_level",
    "yank",
]

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from filelock import FileLock, Timeout
from packaging.version import InvalidVersion, Version

from modelmesh_connectors.errors import (
    PublishError,
    SignatureError,
    TrustError,
)
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    parse_envelope,
    sign,
    verify_threshold,
)
from modelmesh_connectors.index.keys import PublicKey, SigningKey
from modelmesh_connectors.index.metadata import (
    DEFAULT_RUNTIMES,
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    MetadataError,
    MetaRef,
    Publisher,
    Release,
    ReleaseConnector,
    RoleSpec,
    Root,
    Timestamp,
    archive_path,
    name_hash,
    parse_release,
    parse_root,
)
from modelmesh_connectors.index.trust import (
    TrustedState,
    check_expiry,
    verify_anchor_root,
    verify_bin_node,
    verify_group_node,
    verify_index_top,
    verify_next_root,
    verify_release,
    verify_timestamp,
)
from modelmesh_connectors.package.package import inspect_archive

DEFAULT_INDEX_EXPIRY = timedelta(days=365)  # how long a signed index top stays valid
DEFAULT_TIMESTAMP_EXPIRY = timedelta(days=7)  # how long timestamp.json stays valid
LOCK_NAME = ".modelmesh-publish.lock"  # lock file in the index directory
_LOCK_TIMEOUT = 60.0  # seconds to wait for another publisher
_COPY_CHUNK = 1024 * 1024  # bytes per read when copying an archive
_MAX_LISTED = 10  # releases named in one error message
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


# -- package inspection seam ---------------------------------------------------


class ManifestLike(Protocol):
    """What publishing needs from a package manifest."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def requires_modelmesh(self) -> str | None: ...
    @property
    def connectors(self) -> Sequence[Any]: ...  # each with ``.id`` and ``.type.value``


class PackageInfoLike(Protocol):
    """What publishing needs from :func:`modelmesh_connectors.package.package.inspect_archive`."""

    @property
    def manifest(self) -> ManifestLike: ...
    @property
    def sha256(self) -> str: ...
    @property
    def length(self) -> int: ...


Inspector = Callable[[Path], PackageInfoLike]


def _default_inspector(path: Path) -> PackageInfoLike:
    return inspect_archive(path)


# -- small file helpers ---------------------------------------------------------


def _read(directory: Path, rel: str) -> bytes:
    try:
        return (directory / rel).read_bytes()
    except OSError as e:
        raise PublishError(
            f"index {directory}: cannot read {rel}: {e.strerror or e}",
            hint="is this an index directory created by 'init'?",
        ) from e


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp(target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def _write_replace(directory: Path, rel: str, data: bytes) -> None:
    target = directory / rel
    try:
        tmp = _write_temp(target, data)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        raise PublishError(f"index {directory}: cannot write {rel}: {e.strerror or e}") from e


def _write_immutable(directory: Path, rel: str, data: bytes) -> None:
    """Write a file that must never change; identical existing content is kept."""
    target = directory / rel
    if target.exists():
        if target.read_bytes() == data:
            return
        raise PublishError(
            f"index {directory}: {rel} exists with other content (published files never change)"
        )
    try:
        tmp = _write_temp(target, data)
        try:
            # link() refuses to replace an existing file: no overwrite even in a race.
            os.link(tmp, target)
        finally:
            os.unlink(tmp)
        _fsync_dir(target.parent)
    except FileExistsError as e:
        raise PublishError(f"index {directory}: {rel} appeared while writing it") from e
    except OSError as e:
        raise PublishError(f"index {directory}: cannot write {rel}: {e.strerror or e}") from e


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    if not directory.is_dir():
        raise PublishError(f"index {directory}: not a directory")
    lock = FileLock(str(directory / LOCK_NAME), timeout=_LOCK_TIMEOUT)
    try:
        with lock:
            yield
    except Timeout as e:
        raise PublishError(
            f"index {directory}: another publisher held the lock for over {_LOCK_TIMEOUT:.0f} s",
            hint=f"if no publisher is running, delete {directory / LOCK_NAME}",
        ) from e


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
    return now


def _keys(keys: SigningKey | Sequence[SigningKey]) -> tuple[SigningKey, ...]:
    out = (keys,) if isinstance(keys, SigningKey) else tuple(keys)
    if not out:
        raise ValueError("expected at least one signing key")
    return out


# -- reading the current state -------------------------------------------------


@dataclass(frozen=True)
class RepositoryState:
    """The verified current state of an index directory (expiries not checked).

    Attributes:
        directory: The index directory.
        roots: Bytes of ``root/1.json`` … ``root/N.json``.
        root: The newest root (N).
        timestamp: The current timestamp.
        timestamp_bytes: Its file bytes.
        top: The index top it pins.
        top_bytes: The top's file bytes.
        stale_signatures: True when the timestamp or top is signed only by keys of an
            older root (after a key rotation; refresh them).
    """

    directory: Path
    roots: tuple[bytes, ...]
    root: Root
    timestamp: Timestamp
    timestamp_bytes: bytes
    top: IndexTop
    top_bytes: bytes
    stale_signatures: bool


def _load_root_chain(directory: Path) -> tuple[tuple[bytes, ...], list[Root]]:
    first = _read(directory, "root/1.json")
    roots_bytes = [first]
    roots = [verify_anchor_root(first, "root/1.json")]
    while True:
        rel = f"root/{roots[-1].version + 1}.json"
        if not (directory / rel).exists():
            break
        data = _read(directory, rel)
        roots.append(verify_next_root(roots[-1], data, rel))
        roots_bytes.append(data)
    return tuple(roots_bytes), roots


def load_state(directory: str | os.PathLike[str]) -> RepositoryState:
    """Read and verify an index directory's root chain, timestamp and index top.

    Signatures are checked; expiries are not (a publisher must be able to refresh an
    expired index). A timestamp or top signed by keys of an older root is accepted and
    flagged, so it can be re-signed after a rotation.

    Args:
        directory: The index directory.

    Returns:
        The state.

    Raises:
        PublishError: A file is missing or unreadable.
        TrustError: A file fails verification.
    """
    d = Path(directory)
    roots_bytes, roots = _load_root_chain(d)
    ts_bytes = _read(d, "timestamp.json")
    timestamp, ts_root = _verify_with_chain(
        roots, lambda r: verify_timestamp(r, ts_bytes, "timestamp.json")
    )
    top_bytes = _read(d, timestamp.index.path)
    top, top_root = _verify_with_chain(
        roots, lambda r: verify_index_top(r, timestamp, top_bytes, timestamp.index.path)
    )
    return RepositoryState(
        directory=d,
        roots=roots_bytes,
        root=roots[-1],
        timestamp=timestamp,
        timestamp_bytes=ts_bytes,
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


def _group(directory: Path, top: IndexTop, prefix: str) -> GroupNode:
    ref = top.groups.get(prefix)
    if ref is None:
        return GroupNode(prefix, {})
    return verify_group_node(
        ref,
        prefix,
        _read(directory, ref.path),
        group_chars=top.group_chars,
        bin_chars=top.bin_chars,
    )


def _bin(directory: Path, group: GroupNode, prefix: str) -> BinNode:
    ref = group.bins.get(prefix)
    if ref is None:
        return BinNode(prefix, {})
    return verify_bin_node(ref, prefix, _read(directory, ref.path))


# -- committing a new state ----------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A new index state, signed and checked, not yet written."""

    immutable: tuple[tuple[str, bytes], ...]  # (path, bytes): bins, groups, top
    signatures: tuple[tuple[str, bytes], ...]  # (path, bytes): re-signed .zip.sig files
    timestamp_bytes: bytes
    top: IndexTop
    timestamp: Timestamp


def _plan(
    state: RepositoryState,
    *,
    now: datetime,
    index_keys: Sequence[SigningKey],
    timestamp_keys: Sequence[SigningKey],
    index_expiry: timedelta,
    timestamp_expiry: timedelta,
    new_bins: Sequence[BinNode] = (),
    signatures: Sequence[tuple[str, bytes]] = (),
    check_all: bool = False,
) -> _Plan:
    """Build and sign the new bins (if any), their groups, a new top and a new timestamp.

    ``new_bins`` are complete bins at the current top's fan-out. When the package count
    after the change calls for another :func:`sharding_level`, every node is rebuilt from
    all packages at the new level (and every release is checked). With ``check_all``,
    every release reachable from the new top is verified (after a root change); otherwise
    only those in ``new_bins``.
    """
    d = state.directory
    level = _level_after(state, new_bins)
    rebuild = level != state.top.level
    if rebuild:
        # Nothing of the old tree is reused: every node is new and content-addressed,
        # so a client still reading the old state finds all its files untouched.
        groups: dict[str, MetaRef] = {}
        bins_to_write = _rebuilt_bins(state, new_bins, level[1])
        check_all = True
    else:
        groups = dict(state.top.groups)
        bins_to_write = list(new_bins)
    group_chars = level[0]
    writes: dict[str, bytes] = {}
    by_group: dict[str, dict[str, BinNode]] = {}
    for node in bins_to_write:
        by_group.setdefault(node.prefix[:group_chars], {})[node.prefix] = node
    checks: list[tuple[str, bytes, bytes]] = []  # (bin prefix, group bytes, bin bytes)
    for gp in sorted(by_group):
        bins = {} if rebuild else dict(_group(d, state.top, gp).bins)
        payloads: list[tuple[str, bytes]] = []
        for bp, node in sorted(by_group[gp].items()):
            bin_bytes = node.to_payload()
            bins[bp] = MetaRef.of(bin_bytes)
            writes[bins[bp].path] = bin_bytes
            payloads.append((bp, bin_bytes))
        group_bytes = GroupNode(gp, bins).to_payload()
        groups[gp] = MetaRef.of(group_bytes)
        writes[groups[gp].path] = group_bytes
        checks += [(bp, group_bytes, bin_bytes) for bp, bin_bytes in payloads]
    top = IndexTop(state.top.version + 1, now + index_expiry, groups, *level)
    top_bytes = sign(INDEX_TYPE, top.to_payload(), index_keys).to_bytes()
    top_ref = MetaRef.of(top_bytes)
    writes[top_ref.path] = top_bytes
    timestamp = Timestamp(state.timestamp.version + 1, now + timestamp_expiry, top.version, top_ref)
    ts_bytes = sign(TIMESTAMP_TYPE, timestamp.to_payload(), timestamp_keys).to_bytes()

    def read(rel: str) -> bytes:
        data = writes.get(rel)
        return data if data is not None else _read(d, rel)

    _check_new_state(
        state.roots, now, ts_bytes, top_bytes, checks, read_all=read if check_all else None
    )
    return _Plan(tuple(writes.items()), tuple(signatures), ts_bytes, top, timestamp)


def _existing_bins(state: RepositoryState) -> Iterator[tuple[GroupNode, str]]:
    """Every (group, bin prefix) of the current tree, in prefix order."""
    for gp in sorted(state.top.groups):
        group = _group(state.directory, state.top, gp)
        for bp in sorted(group.bins):
            yield group, bp


def _level_after(state: RepositoryState, new_bins: Sequence[BinNode]) -> tuple[int, int]:
    """The sharding level for the package count once ``new_bins`` replace their bins.

    Reads every group, and every bin only when the count could still be at or below the
    largest threshold (a publisher never writes an empty bin, so each bin not read counts
    as at least one package).
    """
    replaced = {node.prefix: node for node in new_bins}
    unread = [(g, bp) for g, bp in _existing_bins(state) if bp not in replaced]
    count = sum(len(node.packages) for node in replaced.values())
    if count + len(unread) > MEDIUM_INDEX_MAX_PACKAGES:
        return sharding_level(count + len(unread))
    count += sum(len(_bin(state.directory, g, bp).packages) for g, bp in unread)
    return sharding_level(count)


def _rebuilt_bins(
    state: RepositoryState, new_bins: Sequence[BinNode], bin_chars: int
) -> list[BinNode]:
    """Every package of the index after the change, regrouped into bins of ``bin_chars``."""
    replaced = {node.prefix: node for node in new_bins}
    nodes = list(replaced.values())
    nodes += [_bin(state.directory, g, bp) for g, bp in _existing_bins(state) if bp not in replaced]
    regrouped: dict[str, dict[str, tuple[BinRelease, ...]]] = {}
    for node in nodes:
        for name, entries in node.packages.items():
            regrouped.setdefault(name_hash(name)[:bin_chars], {})[name] = entries
    return [BinNode(bp, packages) for bp, packages in sorted(regrouped.items())]


def _apply(directory: Path, plan: _Plan) -> None:
    for rel, data in plan.immutable:
        _write_immutable(directory, rel, data)
    # Re-signed .zip.sig files: invisible to index clients (the bins hold the same
    # envelopes); an interrupted run re-signs to the same bytes (Ed25519 is deterministic).
    for rel, data in plan.signatures:
        _write_replace(directory, rel, data)
    # Last: only now does the new state become visible to clients.
    _write_replace(directory, "timestamp.json", plan.timestamp_bytes)


def _check_new_state(
    roots: Sequence[bytes],
    now: datetime,
    ts_bytes: bytes,
    top_bytes: bytes,
    checks: Sequence[tuple[str, bytes, bytes]],
    *,
    read_all: Callable[[str], bytes] | None = None,
) -> None:
    """Run the new state through the client's trust core before it becomes visible.

    ``checks`` lists the new bins to verify with every release in them; with ``read_all``
    (reads a file of the new state) every group, bin and release the new top reaches is.
    """
    state = TrustedState(roots[0], now, max_root_rotations=max(len(roots), 1))
    for data in roots[1:]:
        state.update_root(data)
    state.update_timestamp(ts_bytes)
    top = state.update_index(top_bytes)
    nodes: list[BinNode] = []
    if read_all is None:
        for bp, group_bytes, bin_bytes in checks:
            group = state.verify_group(bp[: top.group_chars], group_bytes)
            nodes.append(state.verify_bin(group, bp, bin_bytes))
    else:
        for gp, gref in sorted(top.groups.items()):
            group = state.verify_group(gp, read_all(gref.path))
            nodes += [
                state.verify_bin(group, bp, read_all(bref.path))
                for bp, bref in sorted(group.bins.items())
            ]
    for node in nodes:
        for name, entries in node.packages.items():
            for entry in entries:
                state.verify_bin_release(name, entry)


# -- re-signing releases after a key rotation ------------------------------------


@dataclass(frozen=True)
class _Resigned:
    """Bins whose release envelopes were re-signed, and the ``.zip.sig`` files to replace."""

    bins: dict[str, BinNode]  # bin prefix -> the node with the new envelopes
    signatures: tuple[tuple[str, bytes], ...]  # (release file + ".sig", envelope bytes)
    releases: tuple[Release, ...]


def _verifies(root: Root, name: str, entry: BinRelease) -> bool:
    try:
        release = verify_release(root, entry.release, f"release {name} {entry.version}")
    except TrustError:
        return False
    return release.name == name and release.version == entry.version


def _original_signer(roots: Sequence[Root], envelope: Envelope) -> tuple[str, Root] | None:
    """Who signed a release under an older root: ``("index", root)``, ``("publisher
    'NAME'", root)``, or None when no role or publisher of any root did (newest first)."""
    for root in reversed(roots):
        groups = [("index", root.index.keyids, root.index.threshold)]
        groups += [(f"publisher {p.name!r}", p.keyids, p.threshold) for p in root.publishers]
        for who, keyids, threshold in groups:
            try:
                verify_threshold(
                    envelope,
                    expected_type=RELEASE_TYPE,
                    keys=root.keys,
                    keyids=keyids,
                    threshold=threshold,
                    what="release",
                )
            except SignatureError:
                continue
            return who, root
    return None


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _resign(
    state: RepositoryState,
    *,
    index_keys: Sequence[SigningKey],
    release_keys: Sequence[SigningKey] | None = None,
    names: frozenset[str] | None = None,
    only_bin: str | None = None,
) -> _Resigned:
    """Re-sign every release of the index that no longer verifies under the newest root.

    A release the index role signed (under an older root) is re-signed with
    ``index_keys``; one a publisher signed only with ``release_keys`` (for the packages in
    ``names``, or all when None), which must then verify under the newest root. With
    ``only_bin``, only that bin's releases are looked at.

    Raises:
        PublishError: A release cannot be re-signed (its publisher's keys were rotated and
            no ``release_keys`` were given for it, or no role of any root ever signed it);
            nothing was written.
        SignatureError, PolicyError: ``release_keys`` do not make a named package's release
            verify, or ``index_keys`` do not meet the index threshold.
    """
    d = state.directory
    _, roots = _load_root_chain(d)
    root = roots[-1]
    bins: dict[str, BinNode] = {}
    sigs: list[tuple[str, bytes]] = []
    resigned: list[Release] = []
    refused: list[str] = []
    for gp in sorted(state.top.groups):
        if only_bin is not None and gp != only_bin[: state.top.group_chars]:
            continue
        group = _group(d, state.top, gp)
        for bp in sorted(group.bins):
            if only_bin is not None and bp != only_bin:
                continue
            node = _bin(d, group, bp)
            packages = dict(node.packages)
            changed = False
            for name, entries in node.packages.items():
                new_entries = list(entries)
                for i, entry in enumerate(entries):
                    if _verifies(root, name, entry):
                        continue
                    what = f"{name} {entry.version}"
                    signer = _original_signer(roots, entry.release)
                    if signer is None:
                        refused.append(f"{what} (signed by no role or publisher of any root)")
                        continue
                    who, old_root = signer
                    if who == "index":
                        keys: Sequence[SigningKey] = index_keys
                    elif release_keys is not None and (names is None or name in names):
                        keys = _publisher_keys(root, entry.release, release_keys)
                    else:
                        refused.append(f"{what} ({who} of root {old_root.version})")
                        continue
                    envelope = sign(RELEASE_TYPE, entry.release.payload, keys)
                    try:
                        release = verify_release(root, envelope, f"re-signed release {what}")
                    except TrustError:
                        if who == "index" or names is not None:
                            raise
                        refused.append(f"{what} ({who} of root {old_root.version})")
                        continue
                    if release.name != name or release.version != entry.version:
                        refused.append(f"{what} (signed as {release.name} {release.version})")
                        continue
                    new_entries[i] = BinRelease(
                        entry.version, envelope, entry.yanked, entry.yanked_reason
                    )
                    sigs.append((release.file + ".sig", envelope.to_bytes()))
                    resigned.append(release)
                    changed = True
                packages[name] = tuple(new_entries)
            if changed:
                bins[bp] = BinNode(bp, packages)
    if refused:
        raise PublishError(
            f"index {d}: {len(refused)} release(s) no longer verify under root "
            f"{root.version} and the index keys may not re-sign them: {_listing(refused)}",
            hint="re-sign a publisher's releases with its current key ('modelmesh-connectors "
            "resign --release-key ...'), or list its old key again in a new root",
        )
    return _Resigned(bins, tuple(sigs), tuple(resigned))


def _publisher_keys(
    root: Root, envelope: Envelope, release_keys: Sequence[SigningKey]
) -> Sequence[SigningKey]:
    """The keys among ``release_keys`` of the publishers that may sign this release.

    So that one call can re-sign the releases of several publishers, each release is signed
    only by keys of a publisher of ``root`` whose namespaces cover all its connectors; when
    no key qualifies, all of them (verification then explains the refusal).
    """
    try:
        connectors = parse_release(envelope.payload, "release").connectors
    except MetadataError:
        return release_keys
    allowed = {
        keyid
        for p in root.publishers
        if all(p.covers(c.id) for c in connectors)
        for keyid in p.keyids
    }
    return [k for k in release_keys if k.keyid in allowed] or release_keys


def _current_bin(state: RepositoryState, resigned: _Resigned | None, prefix: str) -> BinNode:
    """The bin ``prefix``, with its re-signed envelopes when it has any."""
    if resigned is not None and prefix in resigned.bins:
        return resigned.bins[prefix]
    group = _group(state.directory, state.top, prefix[: state.top.group_chars])
    return _bin(state.directory, group, prefix)


def _resign_for_write(
    state: RepositoryState, index_keys: Sequence[SigningKey], prefix: str
) -> tuple[_Resigned, bool]:
    """What :func:`publish` and :func:`yank` re-sign before changing bin ``prefix``.

    On the first index write after a root rotation (the timestamp or top is signed by a
    key of an older root) the whole index is re-signed and checked; otherwise only the bin
    being changed (a publisher-only rotation is caught there, and by :func:`refresh_index`).

    Returns:
        The re-signed bins and whether every release must be checked.
    """
    if state.stale_signatures:
        return _resign(state, index_keys=index_keys), True
    return _resign(state, index_keys=index_keys, only_bin=prefix), False


# -- creating an index ---------------------------------------------------------


def init_repository(
    directory: str | os.PathLike[str],
    root_envelope_bytes: bytes,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    *,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
    now: datetime | None = None,
) -> Timestamp:
    """Create an empty index: ``root/1.json``, an empty index top and ``timestamp.json``.

    Args:
        directory: The index directory (created if missing; must hold no index yet).
        root_envelope_bytes: A signed root of version 1 (see :func:`root_init`,
            :func:`root_sign`), self-signed by a threshold of its root role.
        index_keys: Key(s) meeting the root's index threshold.
        timestamp_keys: Key(s) meeting the root's timestamp threshold.
        index_expiry: Lifetime of the index top.
        timestamp_expiry: Lifetime of the timestamp.
        now: Reference time (default: the current time).

    Returns:
        The first timestamp.

    Raises:
        PublishError: The directory already holds an index, or cannot be written, or the
            root is not version 1.
        SignatureError: The root is not self-signed, or the keys do not meet a threshold.
        MetadataError: The root is invalid.
        ExpiredError: The root is already expired.
    """
    d = Path(directory)
    now = _now(now)
    root = verify_anchor_root(root_envelope_bytes, "root/1.json")
    if root.version != 1:
        raise PublishError(f"root/1.json: expected root version 1, got {root.version}")
    check_expiry("root/1.json", root.expires, now)
    top = IndexTop(1, now + index_expiry, {}, *sharding_level(0))
    top_bytes = sign(INDEX_TYPE, top.to_payload(), _keys(index_keys)).to_bytes()
    top_ref = MetaRef.of(top_bytes)
    timestamp = Timestamp(1, now + timestamp_expiry, 1, top_ref)
    ts_bytes = sign(TIMESTAMP_TYPE, timestamp.to_payload(), _keys(timestamp_keys)).to_bytes()
    _check_new_state((root_envelope_bytes,), now, ts_bytes, top_bytes, ())
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PublishError(f"index {d}: cannot create directory: {e.strerror or e}") from e
    with _locked(d):
        for rel in ("root", "meta", "timestamp.json"):
            if (d / rel).exists():
                raise PublishError(f"index {d}: {rel} exists; refusing to initialise over an index")
        _write_immutable(d, "root/1.json", root_envelope_bytes)
        _write_immutable(d, top_ref.path, top_bytes)
        # Last: the index exists for clients only once timestamp.json does.
        _write_replace(d, "timestamp.json", ts_bytes)
    return timestamp


# -- publishing and yanking ----------------------------------------------------


def _copy_hashing(src: Path, dst_dir: Path) -> tuple[Path, str, int]:
    """Copy ``src`` into a temp file in ``dst_dir``, hashing it; PublishError names the side."""

    def cannot(e: OSError, what: str) -> PublishError:
        return PublishError(f"{src}: {what}: {e.strerror or e}")

    try:
        f = src.open("rb")
    except OSError as e:
        raise cannot(e, "cannot read the archive") from e
    with f:
        try:
            dst_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dst_dir, prefix=".incoming-", suffix=".zip")
        except OSError as e:
            raise cannot(e, "cannot copy into the index") from e
        digest = hashlib.sha256()
        length = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        chunk = f.read(_COPY_CHUNK)
                    except OSError as e:
                        raise cannot(e, "cannot read the archive") from e
                    if not chunk:
                        break
                    digest.update(chunk)
                    length += len(chunk)
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise cannot(e, "cannot copy into the index") from e
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as e:
                    raise cannot(e, "cannot copy into the index") from e
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return Path(tmp), digest.hexdigest(), length


def _same_version(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def _release_from(info: PackageInfoLike, sha256: str, length: int) -> Release:
    m = info.manifest
    connectors = tuple(
        ReleaseConnector(str(c.id), str(getattr(c.type, "value", c.type))) for c in m.connectors
    )
    version = str(m.version)
    release = Release(
        name=m.name,
        version=version,
        file=archive_path(m.name, version),
        sha256=sha256,
        length=length,
        requires_modelmesh=None if m.requires_modelmesh is None else str(m.requires_modelmesh),
        connectors=connectors,
        runtimes=tuple(getattr(m, "runtimes", DEFAULT_RUNTIMES)),
    )
    try:
        # The same strict parser the client runs: never sign what it would reject.
        return parse_release(release.to_payload(), f"release {m.name} {version}")
    except MetadataError as e:
        raise PublishError(f"cannot publish {m.name} {version}: {e.message}") from e


def publish(
    directory: str | os.PathLike[str],
    archive: str | os.PathLike[str],
    *,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    release_keys: SigningKey | Sequence[SigningKey] | None = None,
    now: datetime | None = None,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
    inspect: Inspector | None = None,
) -> Release:
    """Publish a package archive.

    The archive is first copied into the index (hashed while copying) and the *copy* is
    inspected, so the bytes checked are the bytes published. The release is signed by
    ``release_keys`` (a publisher's keys) or else by ``index_keys``, and verified with the
    root's rules before anything is written.

    Args:
        directory: The index directory.
        archive: The package ``.zip``.
        index_keys: Key(s) meeting the index threshold (they sign the new index top).
        timestamp_keys: Key(s) meeting the timestamp threshold.
        release_keys: Publisher key(s) to sign the release with instead of the index keys.
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.
        inspect: Package inspector (default: `package.package.inspect_archive`).

    Returns:
        The published release.

    Raises:
        PublishError: The version is already published, an archive with other bytes is in
            the way, the package does not fit the index format, or files cannot be written.
        PackageError: The archive is not a valid package (from the inspector).
        SignatureError: The keys do not meet a threshold.
        PolicyError: The publisher keys do not cover every connector's namespace.
        ExpiredError: The root is expired.
        TrustError: The current index fails verification.
    """
    d = Path(directory)
    now = _now(now)
    inspector = inspect or _default_inspector
    with _locked(d):
        state = load_state(d)
        tmp, sha256, length = _copy_hashing(Path(archive), d / "archives")
        try:
            info = inspector(tmp)
            if info.sha256 != sha256 or info.length != length:
                raise PublishError(
                    f"{archive}: inspected sha256 {info.sha256} ({info.length} bytes) is not "
                    f"the copied sha256 {sha256} ({length} bytes)"
                )
            release = _release_from(info, sha256, length)
            name, version = release.name, release.version
            bp = state.top.bin_prefix(name)
            resigned, check_all = _resign_for_write(state, _keys(index_keys), bp)
            node = _current_bin(state, resigned, bp)
            existing = node.packages.get(name, ())
            for entry in existing:
                if _same_version(entry.version, version):
                    raise PublishError(
                        f"{name} {version} is already published (as {entry.version}); "
                        "published versions never change",
                        hint="bump the version in modelmesh-package.yaml",
                    )
            signers = _keys(release_keys) if release_keys is not None else _keys(index_keys)
            envelope = sign(RELEASE_TYPE, release.to_payload(), signers)
            check_expiry(f"root/{state.root.version}.json", state.root.expires, now)
            verify_release(state.root, envelope, f"release {name} {version}")
            packages = dict(node.packages)
            packages[name] = (*existing, BinRelease(version, envelope, False, None))
            # Everything is signed and checked before the first byte is written.
            plan = _plan(
                state,
                now=now,
                index_keys=_keys(index_keys),
                timestamp_keys=_keys(timestamp_keys),
                index_expiry=index_expiry,
                timestamp_expiry=timestamp_expiry,
                new_bins=_with_bin(resigned, BinNode(bp, packages)),
                signatures=resigned.signatures,
                check_all=check_all,
            )
            target = d / release.file
            if target.exists():
                if hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
                    raise PublishError(
                        f"index {d}: {release.file} exists with other bytes but is not in the "
                        "index (left by an interrupted publish?); remove it by hand"
                    )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                # link() never replaces an existing file, even in a race.
                os.link(tmp, target)
            # The .sig of an unlisted (interrupted) release may be replaced; a listed
            # release's .sig changes only when it is re-signed after a key rotation.
            _write_replace(d, release.file + ".sig", envelope.to_bytes())
            _apply(d, plan)
        except OSError as e:
            raise PublishError(f"index {d}: cannot publish {archive}: {e.strerror or e}") from e
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return release


def yank(
    directory: str | os.PathLike[str],
    name: str,
    version: str,
    reason: str,
    *,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    now: datetime | None = None,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
) -> None:
    """Mark a published release as yanked (it stays downloadable by exact pin).

    Args:
        directory: The index directory.
        name: Package name.
        version: Release version.
        reason: Why (shown to users); non-empty printable text.
        index_keys: Key(s) meeting the index threshold.
        timestamp_keys: Key(s) meeting the timestamp threshold.
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.

    Raises:
        PublishError: No such release, already yanked, or files cannot be written.
        InvalidNameError: ``name`` is not normalized.
        SignatureError: The keys do not meet a threshold.
        TrustError: The current index fails verification.
    """
    d = Path(directory)
    now = _now(now)
    if not isinstance(reason, str) or not reason.strip() or not reason.isprintable():
        raise PublishError(f"yank reason: expected non-empty printable text, got {reason!r:.80}")
    name_hash(name)  # InvalidNameError before taking the lock
    with _locked(d):
        state = load_state(d)
        bp = state.top.bin_prefix(name)
        resigned, check_all = _resign_for_write(state, _keys(index_keys), bp)
        node = _current_bin(state, resigned, bp)
        entries = node.packages.get(name, ())
        index = next((i for i, e in enumerate(entries) if e.version == version), None)
        if index is None:
            listed = ", ".join(e.version for e in entries) or "none"
            raise PublishError(f"{name} {version} is not published (versions: {listed})")
        if entries[index].yanked:
            raise PublishError(f"{name} {version} is already yanked")
        new_entries = list(entries)
        new_entries[index] = BinRelease(version, entries[index].release, True, reason)
        packages = {**node.packages, name: tuple(new_entries)}
        plan = _plan(
            state,
            now=now,
            index_keys=_keys(index_keys),
            timestamp_keys=_keys(timestamp_keys),
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=_with_bin(resigned, BinNode(bp, packages)),
            signatures=resigned.signatures,
            check_all=check_all,
        )
        _apply(d, plan)


def _with_bin(resigned: _Resigned, node: BinNode) -> list[BinNode]:
    """The re-signed bins with ``node`` (which already holds its re-signed entries)."""
    return [*(b for b in resigned.bins.values() if b.prefix != node.prefix), node]


def refresh_timestamp(
    directory: str | os.PathLike[str],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
    *,
    now: datetime | None = None,
) -> Timestamp:
    """Re-sign ``timestamp.json`` with a higher version and a new expiry, same pin.

    Args:
        directory: The index directory.
        timestamp_keys: Key(s) meeting the timestamp threshold.
        expiry: Lifetime of the new timestamp.
        now: Reference time (default: the current time).

    Returns:
        The new timestamp.

    Raises:
        PublishError: Files cannot be read or written.
        SignatureError: The keys do not meet the threshold.
        ExpiredError: The root or the index top is expired (refresh the index first).
        TrustError: The current index fails verification.
    """
    d = Path(directory)
    now = _now(now)
    with _locked(d):
        state = load_state(d)
        ts = state.timestamp
        new = Timestamp(ts.version + 1, now + expiry, ts.index_version, ts.index)
        ts_bytes = sign(TIMESTAMP_TYPE, new.to_payload(), _keys(timestamp_keys)).to_bytes()
        _check_new_state(state.roots, now, ts_bytes, state.top_bytes, ())
        _write_replace(d, "timestamp.json", ts_bytes)
    return new


def refresh_index(
    directory: str | os.PathLike[str],
    *,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    now: datetime | None = None,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
) -> IndexTop:
    """Re-sign the index top (new version and expiry) and the timestamp.

    Use it before the top expires, and after every root rotation. Every release is
    verified under the newest root; one the index role signed with keys the newest root
    dropped is re-signed with ``index_keys`` (new bin and group nodes; its ``.zip.sig``
    replaced by the new envelope, the archive unchanged). A release of a publisher whose
    keys were rotated away is refused: re-sign it with :func:`resign_releases`.

    Args:
        directory: The index directory.
        index_keys: Key(s) meeting the index threshold.
        timestamp_keys: Key(s) meeting the timestamp threshold.
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new top.
        timestamp_expiry: Lifetime of the new timestamp.

    Returns:
        The new index top.

    Raises:
        PublishError: Files cannot be read or written, or a publisher's release no longer
            verifies (nothing is written).
        SignatureError: The keys do not meet a threshold.
        TrustError: The current index fails verification.
    """
    d = Path(directory)
    now = _now(now)
    with _locked(d):
        state = load_state(d)
        resigned = _resign(state, index_keys=_keys(index_keys))
        plan = _plan(
            state,
            now=now,
            index_keys=_keys(index_keys),
            timestamp_keys=_keys(timestamp_keys),
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=list(resigned.bins.values()),
            signatures=resigned.signatures,
            check_all=True,
        )
        _apply(d, plan)
    return plan.top


def resign_releases(
    directory: str | os.PathLike[str],
    *,
    release_keys: SigningKey | Sequence[SigningKey],
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    name: str | None = None,
    now: datetime | None = None,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
) -> tuple[Release, ...]:
    """Re-sign a publisher's releases with its current keys after its keys were rotated.

    Every release (of package ``name``, or of any package when None) that no longer
    verifies under the newest root and that a publisher signed under an older root is
    re-signed with ``release_keys``; the new envelope must verify under the newest root
    (so the keys must be the publisher's, and cover its namespaces). Releases of the index
    role are re-signed with ``index_keys`` as by :func:`refresh_index`. Then a new index
    state is written, ``.zip.sig`` files replaced; releases that still verify are untouched.

    Args:
        directory: The index directory.
        release_keys: The publisher's current key(s).
        index_keys: Key(s) meeting the index threshold.
        timestamp_keys: Key(s) meeting the timestamp threshold.
        name: Only this package's releases (default: every package).
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.

    Returns:
        The re-signed releases; empty when every release verified (nothing is written).

    Raises:
        PublishError: ``name`` is not published, a release that needs re-signing is not
            covered by ``release_keys``, or files cannot be read or written.
        SignatureError, PolicyError: ``release_keys`` do not make a release of ``name``
            verify (another publisher's keys, or outside its namespaces).
        TrustError: The current index fails verification.
    """
    d = Path(directory)
    now = _now(now)
    with _locked(d):
        state = load_state(d)
        if (
            name is not None
            and name not in _current_bin(state, None, state.top.bin_prefix(name)).packages
        ):
            raise PublishError(f"{name} is not published in index {d}")
        resigned = _resign(
            state,
            index_keys=_keys(index_keys),
            release_keys=_keys(release_keys),
            names=None if name is None else frozenset([name]),
        )
        if not resigned.releases:
            return ()
        plan = _plan(
            state,
            now=now,
            index_keys=_keys(index_keys),
            timestamp_keys=_keys(timestamp_keys),
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=list(resigned.bins.values()),
            signatures=resigned.signatures,
            check_all=True,
        )
        _apply(d, plan)
    return resigned.releases


# -- root management -----------------------------------------------------------


@dataclass(frozen=True)
class PublisherSpec:
    """A publisher entry to put in a staged root.

    Args:
        name: Publisher name.
        keys: Its public keys.
        threshold: Signatures needed on a release.
        namespaces: Connector namespaces it may publish.
    """

    name: str
    keys: tuple[PublicKey, ...]
    threshold: int
    namespaces: tuple[str, ...]


def _refuse_shared_keys(groups: Sequence[tuple[str, Sequence[PublicKey]]]) -> None:
    """Raise when one key ID appears in two of the named key groups."""
    owners: dict[str, list[str]] = {}
    for name, group in groups:
        for keyid in dict.fromkeys(k.keyid for k in group):  # a key twice in one role: parse_root
            owners.setdefault(keyid, []).append(name)
    shared = {keyid: names for keyid, names in owners.items() if len(names) > 1}
    if shared:
        described = "; ".join(
            f"key {keyid} is in {' and '.join(names)}" for keyid, names in shared.items()
        )
        raise PublishError(
            f"cannot stage root: expected separate keys for each role and publisher, got "
            f"{described}",
            hint="generate a key per role ('modelmesh-connectors keygen'), or pass "
            "--allow-shared-keys (allow_shared_keys=True) if sharing is intended",
        )


def root_init(
    *,
    root_keys: Sequence[PublicKey],
    root_threshold: int,
    index_keys: Sequence[PublicKey],
    index_threshold: int,
    timestamp_keys: Sequence[PublicKey],
    timestamp_threshold: int,
    expires: datetime,
    publishers: Sequence[PublisherSpec] = (),
    version: int = 1,
    allow_shared_keys: bool = False,
) -> Envelope:
    """Stage an unsigned root from public keys and thresholds.

    Each role and each publisher gets keys of its own: one key in two places (root and
    index, index and timestamp, a publisher's key that is also an index key, two
    publishers sharing a key) joins what the roles keep apart — whoever holds it signs
    for both, and the online timestamp key that also signs the index lets a stolen server
    key publish packages. Refused unless ``allow_shared_keys`` says it is meant.

    Args:
        root_keys: Root role keys.
        root_threshold: Root role threshold.
        index_keys: Index role keys.
        index_threshold: Index role threshold.
        timestamp_keys: Timestamp role keys.
        timestamp_threshold: Timestamp role threshold.
        expires: Root expiry (aware).
        publishers: Scoped publishers.
        version: Root version (1 for a new index; N+1 for a rotation).
        allow_shared_keys: Accept one key in several roles or publishers.

    Returns:
        An envelope with no signatures yet; write ``to_bytes()`` and pass the file to
        :func:`root_sign` for each key holder.

    Raises:
        PublishError: The root would be invalid (a threshold above the number of keys,
            a key listed twice in a role, a bad namespace, …), or one key serves two
            roles or publishers and ``allow_shared_keys`` is false (naming the key and
            the roles).
    """
    keys: dict[str, PublicKey] = {}

    def ids(group: Sequence[PublicKey]) -> tuple[str, ...]:
        for key in group:
            keys[key.keyid] = key
        return tuple(key.keyid for key in group)

    roles = {
        "root": RoleSpec(ids(root_keys), root_threshold),
        "index": RoleSpec(ids(index_keys), index_threshold),
        "timestamp": RoleSpec(ids(timestamp_keys), timestamp_threshold),
    }
    scoped = tuple(
        Publisher(p.name, ids(p.keys), p.threshold, tuple(p.namespaces)) for p in publishers
    )
    # Only keys some role or publisher uses are listed: a dropped key is revoked.
    root = Root(version, expires, keys, publishers=scoped, **roles)
    payload = root.to_payload()
    try:
        parse_root(payload, f"staged root version {version}")
    except MetadataError as e:
        raise PublishError(f"cannot stage root: {e.message}") from e
    if not allow_shared_keys:
        _refuse_shared_keys(
            [
                ("root", root_keys),
                ("index", index_keys),
                ("timestamp", timestamp_keys),
                *((f"publisher {p.name!r}", p.keys) for p in publishers),
            ]
        )
    return Envelope(ROOT_TYPE, payload, ())


def root_sign(
    staged_path: str | os.PathLike[str],
    key: SigningKey,
    *,
    index: str | os.PathLike[str] | None = None,
) -> Envelope:
    """Add (or replace) one key's signature on a staged root file, in place.

    Only a key whose signature counts is accepted: a root key of the staged root, or, for
    a rotation to version N+1 with ``index`` given, a root key of the index's root N. Any
    other signature would ship in the published root as a stray one that counts for
    nothing, while the signer believes it signed (and a threshold may be short by one).

    Args:
        staged_path: The staged root file.
        key: A root key of the new root or of the current root (for a rotation).
        index: The index directory whose current root N the staged root N+1 follows;
            needed when ``key`` is a root key of root N only (a key being rotated out).

    Returns:
        The newly signed envelope (also written back atomically).

    Raises:
        PublishError: The file cannot be read or written, or ``key`` is not a root key
            of the staged root (nor of root N of ``index``); the message names the key ID
            and the root keys, and nothing is written.
        SignatureError: The file is not a root envelope.
        MetadataError: Its payload is not a valid root.
        TrustError: The root chain of ``index`` fails verification.
    """
    path = Path(staged_path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PublishError(f"staged root {path}: cannot read: {e.strerror or e}") from e
    envelope = parse_envelope(data)
    if envelope.payload_type != ROOT_TYPE:
        raise SignatureError(
            f"staged root {path}: expected payload type {ROOT_TYPE!r}, got "
            f"{envelope.payload_type!r}"
        )
    staged = parse_root(envelope.payload, f"staged root {path}")
    allowed = {f"root {staged.version}": staged.root.keyids}
    if index is not None:
        _, roots = _load_root_chain(Path(index))
        current = roots[-1]
        if staged.version == current.version + 1:
            allowed[f"root {current.version} of {index}"] = current.root.keyids
    if not any(key.keyid in keyids for keyids in allowed.values()):
        listed = "; ".join(f"{name}: {_listing(keyids)}" for name, keyids in allowed.items())
        raise PublishError(
            f"staged root {path}: expected a root key, got key {key.keyid} (root keys of "
            f"{listed}); its signature would count for nothing",
            hint="sign with a root key; for a rotation, a key of the current root signs with "
            "--index DIR"
            if index is None and staged.version > 1
            else "sign with one of the root keys listed",
        )
    signed = envelope.with_signature(key)
    _write_replace(path.parent, path.name, signed.to_bytes())
    return signed


def root_rotate(
    directory: str | os.PathLike[str],
    *,
    expires: datetime,
    root_keys: Sequence[PublicKey] | None = None,
    root_threshold: int | None = None,
    index_keys: Sequence[PublicKey] | None = None,
    index_threshold: int | None = None,
    timestamp_keys: Sequence[PublicKey] | None = None,
    timestamp_threshold: int | None = None,
    publishers: Sequence[PublisherSpec] | None = None,
    allow_shared_keys: bool = False,
) -> Envelope:
    """Stage root version N+1 from the index's current root N with the given changes.

    Arguments left as None keep root N's value. Keys no role or publisher uses any more
    are dropped, which revokes them once the new root is published.

    Args:
        directory: The index directory.
        expires: Expiry of the new root.
        root_keys, root_threshold: New root role (keys and/or threshold).
        index_keys, index_threshold: New index role.
        timestamp_keys, timestamp_threshold: New timestamp role.
        publishers: New publisher list (empty to remove all).
        allow_shared_keys: Accept one key in several roles or publishers (see
            :func:`root_init`).

    Returns:
        The unsigned staged envelope; it needs a threshold of signatures of root N's root
        role *and* of its own root role (:func:`root_sign`).

    Raises:
        PublishError: The root chain cannot be read, the new root would be invalid, or
            one key would serve two roles or publishers without ``allow_shared_keys``.
        TrustError: The root chain fails verification.
    """
    _, roots = _load_root_chain(Path(directory))
    current = roots[-1]

    def role_keys(name: str, given: Sequence[PublicKey] | None) -> Sequence[PublicKey]:
        if given is not None:
            return given
        return [current.keys[k] for k in current.role(name).keyids]

    def threshold(name: str, given: int | None) -> int:
        return given if given is not None else current.role(name).threshold

    if publishers is None:
        publishers = [
            PublisherSpec(
                p.name, tuple(current.keys[k] for k in p.keyids), p.threshold, p.namespaces
            )
            for p in current.publishers
        ]
    return root_init(
        root_keys=role_keys("root", root_keys),
        root_threshold=threshold("root", root_threshold),
        index_keys=role_keys("index", index_keys),
        index_threshold=threshold("index", index_threshold),
        timestamp_keys=role_keys("timestamp", timestamp_keys),
        timestamp_threshold=threshold("timestamp", timestamp_threshold),
        expires=expires,
        publishers=publishers,
        version=current.version + 1,
        allow_shared_keys=allow_shared_keys,
    )


def root_publish(
    directory: str | os.PathLike[str],
    staged: bytes | str | os.PathLike[str],
    *,
    now: datetime | None = None,
) -> Root:
    """Add a fully signed staged root as ``root/<N+1>.json``.

    The client's rotation rules are checked first (threshold of root N's root role and of
    its own, version exactly N+1), and the new root must not be expired. If the index or
    timestamp keys changed, run :func:`refresh_index` / :func:`refresh_timestamp` with the
    new keys next: until then clients reject the old signatures.

    Args:
        directory: The index directory.
        staged: The staged root bytes, or the path of the staged file.
        now: Reference time (default: the current time).

    Returns:
        The new root.

    Raises:
        PublishError: Files cannot be read or written, or the version exists.
        SignatureError: A threshold is not met.
        RootRotationError: The version is not N+1.
        ExpiredError: The new root is already expired.
        TrustError: The current chain fails verification.
    """
    d = Path(directory)
    now = _now(now)
    if isinstance(staged, bytes):
        data = staged
    else:
        try:
            data = Path(staged).read_bytes()
        except OSError as e:
            raise PublishError(f"staged root {staged}: cannot read: {e.strerror or e}") from e
    with _locked(d):
        _, roots = _load_root_chain(d)
        what = f"root/{roots[-1].version + 1}.json"
        new = verify_next_root(roots[-1], data, what)
        check_expiry(what, new.expires, now)
        _write_immutable(d, what, data)
    return new
