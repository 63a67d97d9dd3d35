"""Re-signing releases after a key rotation, and refreshing the index top.

After a root rotation, releases signed only by keys the newest root dropped no longer
verify. :func:`refresh_index` (and the first publish or yank after the rotation) re-signs
those the index role had signed with the current index keys: new bins, groups and top, the
``.zip.sig`` files replaced by the new envelopes (the archives never change). A release of a
namespace-scoped publisher is re-signed only with that publisher's current keys
(:func:`resign_releases`); until then the index refuses to be rewritten.

Both run through the publish protocol (:func:`~modelmesh_connectors.publish.commit.commit`).
"""

from __future__ import annotations

__all__ = [
    "Resigned",
    "refresh_index",
    "resign_for_write",
    "resign_releases",
    "with_bins",
]

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelmesh_connectors.errors import PublishError, SignatureError, TrustError
from modelmesh_connectors.index.envelope import RELEASE_TYPE, Envelope, sign, verify_threshold
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    IndexTop,
    MetadataError,
    Release,
    Root,
    parse_release,
)
from modelmesh_connectors.index.trust import verify_anchor_root, verify_next_root, verify_release
from modelmesh_connectors.publish.commit import commit
from modelmesh_connectors.publish.plan import Plan, plan_tree
from modelmesh_connectors.publish.state import (
    DEFAULT_INDEX_EXPIRY,
    DEFAULT_TIMESTAMP_EXPIRY,
    RepositoryState,
    current_bin,
    read_bin,
    read_group,
    signing_keys,
    utc_now,
)
from modelmesh_connectors.publish.storage import Storage

_MAX_LISTED = 10  # releases named in one error message


@dataclass(frozen=True)
class Resigned:
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
    only_bins: frozenset[str] | None = None,
) -> Resigned:
    """Re-sign every release of the index that no longer verifies under the newest root.

    A release the index role signed (under an older root) is re-signed with
    ``index_keys``; one a publisher signed only with ``release_keys`` (for the packages in
    ``names``, or all when None), which must then verify under the newest root. With
    ``only_bins``, only those bins' releases are looked at.

    Raises:
        PublishError: A release cannot be re-signed (its publisher's keys were rotated and
            no ``release_keys`` were given for it, or no role of any root ever signed it);
            nothing was written.
        SignatureError, PolicyError: ``release_keys`` do not make a named package's release
            verify, or ``index_keys`` do not meet the index threshold.
    """
    roots = _roots(state)
    root = roots[-1]
    bins: dict[str, BinNode] = {}
    sigs: list[tuple[str, bytes]] = []
    resigned: list[Release] = []
    refused: list[str] = []
    for gp in sorted(state.top.groups):
        if only_bins is not None and all(gp != bp[: state.top.group_chars] for bp in only_bins):
            continue
        group = read_group(state, gp)
        for bp in sorted(group.bins):
            if only_bins is not None and bp not in only_bins:
                continue
            node = read_bin(state, group, bp)
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
            f"index {state.storage.location}: {len(refused)} release(s) no longer verify under "
            f"root {root.version} and the index keys may not re-sign them: {_listing(refused)}",
            hint="re-sign a publisher's releases with its current key ('modelmesh-connectors "
            "resign --release-key ...'), or list its old key again in a new root",
        )
    return Resigned(bins, tuple(sigs), tuple(resigned))


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


def resigned_bin(state: RepositoryState, resigned: Resigned | None, prefix: str) -> BinNode:
    """The bin ``prefix``, with its re-signed envelopes when it has any."""
    if resigned is not None and prefix in resigned.bins:
        return resigned.bins[prefix]
    return current_bin(state, prefix)


def resign_for_write(
    state: RepositoryState, index_keys: Sequence[SigningKey], prefixes: Sequence[str]
) -> tuple[Resigned, bool]:
    """What publish and yank re-sign before changing the bins ``prefixes``.

    On the first index write after a root rotation (the timestamp or top is signed by a
    key of an older root) the whole index is re-signed and checked; otherwise only the bin
    being changed (a publisher-only rotation is caught there, and by :func:`refresh_index`).

    Returns:
        The re-signed bins and whether every release must be checked.
    """
    if state.stale_signatures:
        return _resign(state, index_keys=index_keys), True
    return _resign(state, index_keys=index_keys, only_bins=frozenset(prefixes)), False


def _roots(state: RepositoryState) -> list[Root]:
    roots = [verify_anchor_root(state.roots[0], "root/1.json")]
    for n, data in enumerate(state.roots[1:], start=2):
        roots.append(verify_next_root(roots[-1], data, f"root/{n}.json"))
    return roots


def with_bins(resigned: Resigned, nodes: Sequence[BinNode]) -> list[BinNode]:
    """The re-signed bins with ``nodes`` (which already hold their re-signed entries)."""
    changed = {node.prefix for node in nodes}
    return [*(b for b in resigned.bins.values() if b.prefix not in changed), *nodes]


def refresh_index(
    directory: str | os.PathLike[str] | Storage,
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
        directory: The index (directory, ``s3://…`` or a storage).
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
    now = utc_now(now)
    ikeys, tkeys = signing_keys(index_keys), signing_keys(timestamp_keys)

    def changes(state: RepositoryState) -> Plan:
        resigned = _resign(state, index_keys=ikeys)
        return plan_tree(
            state,
            now=now,
            index_keys=ikeys,
            timestamp_keys=tkeys,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=list(resigned.bins.values()),
            signatures=resigned.signatures,
            check_all=True,
        )

    plan = commit(directory, changes).plan
    assert plan is not None
    return plan.top


def resign_releases(
    directory: str | os.PathLike[str] | Storage,
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
        directory: The index (directory, ``s3://…`` or a storage).
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
    now = utc_now(now)
    ikeys, tkeys = signing_keys(index_keys), signing_keys(timestamp_keys)
    rkeys = signing_keys(release_keys)
    done: list[tuple[Release, ...]] = []

    def changes(state: RepositoryState) -> Plan | None:
        if name is not None and name not in current_bin(state, state.top.bin_prefix(name)).packages:
            raise PublishError(f"{name} is not published in index {state.storage.location}")
        resigned = _resign(
            state,
            index_keys=ikeys,
            release_keys=rkeys,
            names=None if name is None else frozenset([name]),
        )
        done[:] = [resigned.releases]
        if not resigned.releases:
            return None
        return plan_tree(
            state,
            now=now,
            index_keys=ikeys,
            timestamp_keys=tkeys,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=list(resigned.bins.values()),
            signatures=resigned.signatures,
            check_all=True,
        )

    commit(directory, changes)
    return done[0] if done else ()
