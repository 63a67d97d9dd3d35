"""Creating an index, publishing releases (one or many at once), yanking, refreshing the timestamp.

Each function is a *set of changes* run through the publish protocol
(:func:`~modelmesh_connectors.publish.commit.commit`): planned on the current state, uploaded
create-only, made visible by one compare-and-swap of ``timestamp.json``, re-planned when
another publisher got there first. A bulk publish (:func:`publish_many`) is one plan: each
affected node is rewritten once and one timestamp publishes all its releases.
:func:`fold_releases` is that one plan's bin-folding step, shared with the ingest job's
commit (:mod:`~modelmesh_connectors.publish.batch`).
"""

from __future__ import annotations

__all__ = [
    "Inspector",
    "ManifestLike",
    "PackageInfoLike",
    "fold_releases",
    "init_repository",
    "publish",
    "publish_many",
    "refresh_timestamp",
    "yank",
]

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from modelmesh_connectors.errors import PublishError
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    DEFAULT_RUNTIMES,
    BinNode,
    BinRelease,
    IndexTop,
    MetadataError,
    MetaRef,
    Release,
    ReleaseConnector,
    Timestamp,
    TimestampLink,
    archive_path,
    name_hash,
    parse_release,
)
from modelmesh_connectors.index.trust import check_expiry, verify_anchor_root, verify_release
from modelmesh_connectors.package.package import inspect_archive
from modelmesh_connectors.publish.commit import commit
from modelmesh_connectors.publish.plan import Plan, check_new_state, plan_timestamp, plan_tree
from modelmesh_connectors.publish.resign import resign_for_write, resigned_bin, with_bins
from modelmesh_connectors.publish.state import (
    DEFAULT_INDEX_EXPIRY,
    DEFAULT_TIMESTAMP_EXPIRY,
    RepositoryState,
    sharding_level,
    signing_keys,
    utc_now,
)
from modelmesh_connectors.publish.storage import Storage
from modelmesh_connectors.publish.stores import open_storage

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


# -- creating an index ---------------------------------------------------------


def init_repository(
    directory: str | os.PathLike[str] | Storage,
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
        directory: The index: a directory (created if missing), ``s3://bucket/prefix/``, or
            a storage; it must hold no index yet.
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
        PublishError: The location already holds an index, or cannot be written, or the
            root is not version 1.
        StorageError: The store does not enforce conditional writes.
        SignatureError: The root is not self-signed, or the keys do not meet a threshold.
        MetadataError: The root is invalid.
        ExpiredError: The root is already expired.
    """
    now = utc_now(now)
    root = verify_anchor_root(root_envelope_bytes, "root/1.json")
    if root.version != 1:
        raise PublishError(f"root/1.json: expected root version 1, got {root.version}")
    check_expiry("root/1.json", root.expires, now)
    top = IndexTop(1, now + index_expiry, {}, *sharding_level(0), packages=0)
    top_bytes = sign(INDEX_TYPE, top.to_payload(), signing_keys(index_keys)).to_bytes()
    top_ref = MetaRef.of(top_bytes)
    timestamp = Timestamp(1, now + timestamp_expiry, 1, top_ref)
    ts_bytes = sign(TIMESTAMP_TYPE, timestamp.to_payload(), signing_keys(timestamp_keys)).to_bytes()
    check_new_state((root_envelope_bytes,), now, ts_bytes, top_bytes, ())
    if not isinstance(directory, Storage) and "://" not in os.fspath(directory):
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PublishError(
                f"index {directory}: cannot create directory: {e.strerror or e}"
            ) from e
    storage = open_storage(directory)
    storage.ensure_conditions()
    for rel in ("timestamp.json", "root/1.json"):
        if storage.read(rel) is not None:
            raise PublishError(
                f"index {storage.location}: {rel} exists; refusing to initialise over an index"
            )
    history = TimestampLink.of(1, timestamp.to_payload()).path
    for rel, data in (
        ("root/1.json", root_envelope_bytes),
        (top_ref.path, top_bytes),
        (history, ts_bytes),
    ):
        if not storage.create(rel, data):
            existing = storage.read(rel)
            if existing is None or existing.data != data:
                raise PublishError(f"index {storage.location}: {rel} exists with other content")
    storage.flush()
    # Last, and create-only: of two racing inits exactly one makes the index exist.
    if storage.replace("timestamp.json", ts_bytes, None) is None:
        raise PublishError(
            f"index {storage.location}: timestamp.json appeared meanwhile (another init?)"
        )
    return timestamp


# -- publishing ----------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """An archive read, inspected and turned into a release, ready to sign."""

    source: str
    release: Release
    data: bytes


def _copy_for_inspection(src: Path, into: Path) -> tuple[Path, bytes]:
    """Read ``src`` and copy it into the directory ``into`` (outside the index)."""

    def cannot(e: OSError, what: str) -> PublishError:
        return PublishError(f"{src}: {what}: {e.strerror or e}")

    try:
        data = src.read_bytes()
    except OSError as e:
        raise cannot(e, "cannot read the archive") from e
    copy = into / f"{hashlib.sha256(os.fsencode(src)).hexdigest()[:16]}.zip"
    try:
        copy.write_bytes(data)
    except OSError as e:
        raise cannot(e, "cannot copy the archive to inspect it") from e
    return copy, data


def _prepare(archive: str | os.PathLike[str], scratch: Path, inspector: Inspector) -> _Prepared:
    # The *copy* is inspected, and the copy's bytes are published: the bytes checked are
    # the bytes published, whatever happens to the source meanwhile.
    copy, data = _copy_for_inspection(Path(archive), scratch)
    sha256, length = hashlib.sha256(data).hexdigest(), len(data)
    info = inspector(copy)
    if info.sha256 != sha256 or info.length != length:
        raise PublishError(
            f"{archive}: inspected sha256 {info.sha256} ({info.length} bytes) is not "
            f"the copied sha256 {sha256} ({length} bytes)"
        )
    return _Prepared(os.fspath(archive), _release_from(info, sha256, length), data)


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
    directory: str | os.PathLike[str] | Storage,
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
    """Publish a package archive (:func:`publish_many` with one archive).

    The archive is first copied (outside the index) and the *copy* is inspected, so the
    bytes checked are the bytes published. The release is signed by ``release_keys`` (a
    publisher's keys) or else by ``index_keys``, and verified with the root's rules before
    anything is written.

    Args:
        directory: The index (directory, ``s3://bucket/prefix/`` or a storage).
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
        PublishConflictError: Other publishers won every attempt.
        PackageError: The archive is not a valid package (from the inspector).
        SignatureError: The keys do not meet a threshold.
        PolicyError: The publisher keys do not cover every connector's namespace.
        ExpiredError: The root is expired.
        TrustError: The current index fails verification.
    """
    return publish_many(
        directory,
        [archive],
        index_keys=index_keys,
        timestamp_keys=timestamp_keys,
        release_keys=release_keys,
        now=now,
        index_expiry=index_expiry,
        timestamp_expiry=timestamp_expiry,
        inspect=inspect,
    )[0]


def publish_many(
    directory: str | os.PathLike[str] | Storage,
    archives: Sequence[str | os.PathLike[str]],
    *,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    release_keys: SigningKey | Sequence[SigningKey] | None = None,
    now: datetime | None = None,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
    inspect: Inspector | None = None,
) -> tuple[Release, ...]:
    """Publish several archives as one change: one plan, each node rewritten once, one
    timestamp (all or nothing).

    Args:
        directory: The index (directory, ``s3://bucket/prefix/`` or a storage).
        archives: The package ``.zip`` files (distinct name and version each).
        index_keys, timestamp_keys, release_keys, now, index_expiry, timestamp_expiry,
            inspect: As for :func:`publish`.

    Returns:
        The published releases, in the order of ``archives``.

    Raises:
        PublishError: No archive, two archives of one name and version, or as
            :func:`publish` (nothing is published then).
        PublishConflictError, PackageError, SignatureError, PolicyError, ExpiredError,
            TrustError: As :func:`publish`.
    """
    if not archives:
        raise PublishError("nothing to publish: expected at least one archive")
    now = utc_now(now)
    inspector = inspect or _default_inspector
    ikeys, tkeys = signing_keys(index_keys), signing_keys(timestamp_keys)
    signers = signing_keys(release_keys) if release_keys is not None else ikeys
    storage = open_storage(directory)
    storage.ensure_conditions()  # a wrong --index fails before the archives are read
    with tempfile.TemporaryDirectory(prefix="modelmesh-publish-") as scratch:
        prepared = [_prepare(a, Path(scratch), inspector) for a in archives]
    seen: dict[tuple[str, str], str] = {}
    for p in prepared:
        key = (p.release.name, p.release.version)
        if key in seen:
            raise PublishError(
                f"{p.source} and {seen[key]} are both {key[0]} {key[1]}; publish each version once"
            )
        seen[key] = p.source
    # Signing does not depend on the index state: done once, whatever the retries.
    envelopes = [sign(RELEASE_TYPE, p.release.to_payload(), signers) for p in prepared]

    def admit(i: int, existing: tuple[BinRelease, ...]) -> bool:
        name, version = prepared[i].release.name, prepared[i].release.version
        for entry in existing:
            if _same_version(entry.version, version):
                raise PublishError(
                    f"{name} {version} is already published (as {entry.version}); "
                    "published versions never change",
                    hint="bump the version in modelmesh-package.yaml",
                )
        return True

    def changes(state: RepositoryState) -> Plan | None:
        check_expiry(f"root/{state.root.version}.json", state.root.expires, now)
        for p, envelope in zip(prepared, envelopes, strict=True):
            verify_release(state.root, envelope, f"release {p.release.name} {p.release.version}")
        plan, _ = fold_releases(
            state,
            [(p.release, e, p.data) for p, e in zip(prepared, envelopes, strict=True)],
            admit=admit,
            index_keys=ikeys,
            timestamp_keys=tkeys,
            now=now,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
        )
        return plan  # never None: every release is admitted, or admit raised

    commit(storage, changes)
    return tuple(p.release for p in prepared)


def fold_releases(
    state: RepositoryState,
    releases: Sequence[tuple[Release, Envelope, bytes]],
    *,
    admit: Callable[[int, tuple[BinRelease, ...]], bool],
    index_keys: Sequence[SigningKey],
    timestamp_keys: Sequence[SigningKey],
    now: datetime,
    index_expiry: timedelta,
    timestamp_expiry: timedelta,
) -> tuple[Plan | None, list[int]]:
    """Fold signed releases into new bins and plan the new tree: one new index top, one
    timestamp, each affected node rewritten once (the step :func:`publish_many` and the
    ingest job's :func:`~modelmesh_connectors.publish.batch.commit_releases` share).

    Bins the change touches are re-signed first where the index key rotated
    (:func:`~modelmesh_connectors.publish.resign.resign_for_write`). Releases are visited
    bin by bin (in bin order; in the order given within a bin); ``admit`` decides on each,
    seeing what the bin lists for that name so far (releases admitted earlier in this call
    included), and may raise to refuse the whole change.

    Args:
        state: The verified state the change is planned on.
        releases: ``(release, its signed envelope, the archive bytes)`` for each candidate;
            the caller has verified each envelope against ``state.root``.
        admit: ``admit(i, listed)``: True to add ``releases[i]``, False to leave it out.
        index_keys: Key(s) meeting the index threshold.
        timestamp_keys: Key(s) meeting the timestamp threshold.
        now: Reference time.
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.

    Returns:
        The plan, its archives and ``.sig`` files uploaded first (None when nothing was
        admitted and no bin needed re-signing), and the indices admitted, in fold order.

    Raises:
        PublishError: A bin must be re-signed by a publisher first, or as ``admit`` raises.
        SignatureError, TrustError: As :func:`~modelmesh_connectors.publish.plan.plan_tree`.
    """
    by_bin: dict[str, list[int]] = {}
    for i, (release, _envelope, _data) in enumerate(releases):
        by_bin.setdefault(state.top.bin_prefix(release.name), []).append(i)
    resigned, check_all = resign_for_write(state, index_keys, sorted(by_bin))
    nodes: list[BinNode] = []
    admitted: list[int] = []
    for bp, members in sorted(by_bin.items()):
        packages = dict(resigned_bin(state, resigned, bp).packages)
        for i in members:
            release, envelope, _data = releases[i]
            existing = packages.get(release.name, ())
            if admit(i, existing):
                packages[release.name] = (
                    *existing,
                    BinRelease(release.version, envelope, False, None),
                )
                admitted.append(i)
        nodes.append(BinNode(bp, packages))
    if not admitted and not resigned.bins:
        return None, admitted
    plan = plan_tree(
        state,
        now=now,
        index_keys=index_keys,
        timestamp_keys=timestamp_keys,
        index_expiry=index_expiry,
        timestamp_expiry=timestamp_expiry,
        new_bins=with_bins(resigned, nodes),
        signatures=resigned.signatures,
        check_all=check_all,
    )
    files: list[tuple[str, bytes]] = []
    for i in sorted(admitted):  # uploads in the order given
        release, envelope, data = releases[i]
        files += [(release.file, data), (release.file + ".sig", envelope.to_bytes())]
    return plan.with_uploads_first(files), admitted


def yank(
    directory: str | os.PathLike[str] | Storage,
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
        directory: The index (directory, ``s3://bucket/prefix/`` or a storage).
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
    now = utc_now(now)
    if not isinstance(reason, str) or not reason.strip() or not reason.isprintable():
        raise PublishError(f"yank reason: expected non-empty printable text, got {reason!r:.80}")
    name_hash(name)  # InvalidNameError before reading anything
    ikeys, tkeys = signing_keys(index_keys), signing_keys(timestamp_keys)

    def changes(state: RepositoryState) -> Plan:
        bp = state.top.bin_prefix(name)
        resigned, check_all = resign_for_write(state, ikeys, [bp])
        node = resigned_bin(state, resigned, bp)
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
        return plan_tree(
            state,
            now=now,
            index_keys=ikeys,
            timestamp_keys=tkeys,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=with_bins(resigned, [BinNode(bp, packages)]),
            signatures=resigned.signatures,
            check_all=check_all,
        )

    commit(directory, changes)


def refresh_timestamp(
    directory: str | os.PathLike[str] | Storage,
    timestamp_keys: SigningKey | Sequence[SigningKey],
    expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
    *,
    now: datetime | None = None,
) -> Timestamp:
    """Re-sign ``timestamp.json`` with a higher version and a new expiry, same pin.

    The scheduled job of a hosted index (docs/HOSTING.md): it needs only the timestamp key.

    Args:
        directory: The index (directory, ``s3://bucket/prefix/`` or a storage).
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
    now = utc_now(now)
    tkeys = signing_keys(timestamp_keys)

    def changes(state: RepositoryState) -> Plan:
        # Same pin: the new timestamp names the current top (its version and bytes).
        timestamp, ts_bytes, history = plan_timestamp(
            state,
            now=now,
            timestamp_keys=tkeys,
            timestamp_expiry=expiry,
            top=state.top,
            top_ref=state.timestamp.index,
        )
        check_new_state(state.roots, now, ts_bytes, state.top_bytes, ())
        return Plan((history,), (), ts_bytes, timestamp, state.top)

    plan = commit(directory, changes).plan
    if plan is None:  # pragma: no cover - changes always plans
        raise RuntimeError("refresh_timestamp planned nothing")
    return plan.timestamp
