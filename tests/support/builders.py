"""Test-side builders: throw-away keys and signed index files with chosen contents.

Everything is built in memory from freshly generated keys (never the maintainer keys).
The functions are small and composable so that attack tests can sign anything with any
key, at any version and expiry; :func:`build_index` assembles a complete, consistent
index (the base of the repository simulator).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    canonical_json,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    MetaRef,
    Publisher,
    Release,
    ReleaseConnector,
    RoleSpec,
    Root,
    Timestamp,
    archive_path,
    bin_prefix,
    parse_group,
    parse_index_top,
    parse_timestamp,
)
from modelmesh_connectors.index.trust import TrustedState
from modelmesh_connectors.publish.repository import sharding_level

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FAR = NOW + 365 * DAY  # default expiry of every builder


def make_key() -> SigningKey:
    """A fresh throw-away Ed25519 key."""
    return SigningKey.generate()


def make_keys(n: int) -> list[SigningKey]:
    """``n`` fresh keys."""
    return [SigningKey.generate() for _ in range(n)]


@dataclass
class PublisherKeys:
    """A publisher's keys and scope."""

    name: str
    keys: list[SigningKey]
    namespaces: tuple[str, ...]
    threshold: int = 1


@dataclass
class KeySet:
    """The keys of every role of one root version."""

    root: list[SigningKey]
    index: list[SigningKey]
    timestamp: list[SigningKey]
    root_threshold: int = 1
    index_threshold: int = 1
    timestamp_threshold: int = 1
    publishers: list[PublisherKeys] = field(default_factory=list)

    @classmethod
    def generate(
        cls,
        *,
        root: int = 1,
        index: int = 1,
        timestamp: int = 1,
        root_threshold: int = 1,
        index_threshold: int = 1,
        timestamp_threshold: int = 1,
    ) -> KeySet:
        """Fresh keys for each role."""
        return cls(
            make_keys(root),
            make_keys(index),
            make_keys(timestamp),
            root_threshold,
            index_threshold,
            timestamp_threshold,
        )


def make_root(keys: KeySet, *, version: int = 1, expires: datetime = FAR) -> Root:
    """A root listing ``keys`` (and their publishers)."""
    all_keys = {
        k.keyid: k.public
        for k in [*keys.root, *keys.index, *keys.timestamp]
        + [k for p in keys.publishers for k in p.keys]
    }
    return Root(
        version=version,
        expires=expires,
        keys=all_keys,
        root=RoleSpec(tuple(k.keyid for k in keys.root), keys.root_threshold),
        index=RoleSpec(tuple(k.keyid for k in keys.index), keys.index_threshold),
        timestamp=RoleSpec(tuple(k.keyid for k in keys.timestamp), keys.timestamp_threshold),
        publishers=tuple(
            Publisher(p.name, tuple(k.keyid for k in p.keys), p.threshold, p.namespaces)
            for p in keys.publishers
        ),
    )


def envelope_bytes(payload_type: str, payload: bytes, signers: Iterable[SigningKey]) -> bytes:
    """Sign ``payload`` as ``payload_type`` and serialise the envelope."""
    return sign(payload_type, payload, signers).to_bytes()


def raw_envelope(
    payload_type: str, payload: bytes, signatures: Sequence[tuple[str, bytes]]
) -> bytes:
    """An envelope with arbitrary (keyid, sig) entries, e.g. duplicates or bad signatures."""
    return canonical_json(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [
                {"keyid": kid, "sig": base64.b64encode(sig).decode()} for kid, sig in signatures
            ],
        }
    )


def signed_root(root: Root | bytes, signers: Iterable[SigningKey]) -> bytes:
    """Root envelope bytes (``root`` may be raw payload bytes for malformed payloads)."""
    payload = root if isinstance(root, bytes) else root.to_payload()
    return envelope_bytes(ROOT_TYPE, payload, signers)


def root_bytes(keys: KeySet, *, version: int = 1, expires: datetime = FAR) -> bytes:
    """A root for ``keys`` signed by its own root keys."""
    return signed_root(make_root(keys, version=version, expires=expires), keys.root)


def make_top(
    *,
    version: int = 1,
    expires: datetime = FAR,
    groups: Mapping[str, MetaRef] | None = None,
    level: tuple[int, int] = (0, 0),
) -> IndexTop:
    """An index top with fan-out ``level`` = (group_chars, bin_chars)."""
    return IndexTop(version, expires, dict(groups or {}), *level)


def signed_top(top: IndexTop | bytes, signers: Iterable[SigningKey]) -> bytes:
    """Index top envelope bytes."""
    payload = top if isinstance(top, bytes) else top.to_payload()
    return envelope_bytes(INDEX_TYPE, payload, signers)


def make_timestamp(
    top_bytes: bytes,
    *,
    version: int = 1,
    index_version: int = 1,
    expires: datetime = FAR,
) -> Timestamp:
    """A timestamp pinning ``top_bytes`` as index version ``index_version``."""
    return Timestamp(version, expires, index_version, MetaRef.of(top_bytes))


def signed_timestamp(ts: Timestamp | bytes, signers: Iterable[SigningKey]) -> bytes:
    """Timestamp envelope bytes."""
    payload = ts if isinstance(ts, bytes) else ts.to_payload()
    return envelope_bytes(TIMESTAMP_TYPE, payload, signers)


DEFAULT_CONNECTORS: tuple[tuple[str, str], ...] = (("acme.audit-log.v1", "observability"),)


def make_release(
    name: str = "acme-audit-log",
    version: str = "1.0.0",
    *,
    archive: bytes = b"PK fake archive",
    connectors: Sequence[tuple[str, str]] = DEFAULT_CONNECTORS,
    requires_modelmesh: str | None = ">=0.1.1,<0.2",
) -> Release:
    """A release for ``archive`` bytes."""
    return Release(
        name=name,
        version=version,
        file=archive_path(name, version),
        sha256=hashlib.sha256(archive).hexdigest(),
        length=len(archive),
        requires_modelmesh=requires_modelmesh,
        connectors=tuple(ReleaseConnector(i, t) for i, t in connectors),
    )


def signed_release(release: Release | bytes, signers: Iterable[SigningKey]) -> Envelope:
    """A release envelope."""
    payload = release if isinstance(release, bytes) else release.to_payload()
    return sign(RELEASE_TYPE, payload, signers)


@dataclass
class ReleaseSpec:
    """One release to put in :func:`build_index`."""

    name: str
    version: str
    archive: bytes = b""
    connectors: Sequence[tuple[str, str]] = DEFAULT_CONNECTORS
    signers: Sequence[SigningKey] | None = None  # default: the index keys
    yanked: bool = False
    yanked_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.archive:
            self.archive = f"archive of {self.name} {self.version}".encode()


@dataclass
class IndexBundle:
    """A complete signed index in memory."""

    keys: KeySet
    root: bytes
    timestamp: bytes
    top: bytes
    files: dict[str, bytes]  # index-relative path -> bytes, everything a server would host

    @property
    def index_top(self) -> IndexTop:
        """The parsed index top (its fan-out gives the prefixes of a name)."""
        return parse_index_top(parse_envelope(self.top).payload)

    def group_prefix(self, name: str) -> str:
        """The group prefix of package ``name`` in this index."""
        return self.index_top.group_prefix(name)

    def bin_prefix(self, name: str) -> str:
        """The bin prefix of package ``name`` in this index."""
        return self.index_top.bin_prefix(name)

    def group_bytes(self, name: str) -> bytes:
        """The group node file on the path of package ``name``."""
        return self.files[self.index_top.groups[self.group_prefix(name)].path]

    def bin_bytes(self, name: str) -> bytes:
        """The bin node file on the path of package ``name``."""
        group = parse_group(self.group_bytes(name))
        return self.files[group.bins[self.bin_prefix(name)].path]


def build_index(
    keys: KeySet,
    releases: Sequence[ReleaseSpec] = (),
    *,
    root: bytes | None = None,
    extra_roots: Sequence[bytes] = (),
    top_version: int = 1,
    timestamp_version: int = 1,
    top_expires: datetime = FAR,
    timestamp_expires: datetime = FAR,
    level: tuple[int, int] | None = None,
) -> IndexBundle:
    """Build a consistent index holding ``releases``.

    Args:
        keys: Keys of the newest root (they sign top, timestamp and default releases).
        releases: Releases to publish.
        root: ``root/1.json`` bytes (default: a root for ``keys``).
        extra_roots: ``root/2.json`` … bytes, in order.
        top_version: Index top version (also pinned by the timestamp).
        timestamp_version: Timestamp version.
        top_expires: Index top expiry.
        timestamp_expires: Timestamp expiry.
        level: Fan-out (group_chars, bin_chars); default: the publisher's choice for the
            number of package names (:func:`repository.sharding_level`).

    Returns:
        The bundle; ``files`` holds every file at its index path.
    """
    if level is None:
        level = sharding_level(len({spec.name for spec in releases}))
    group_chars, bin_chars = level
    files: dict[str, bytes] = {}
    root = root if root is not None else root_bytes(keys)
    files["root/1.json"] = root
    for n, data in enumerate(extra_roots, start=2):
        files[f"root/{n}.json"] = data
    packages: dict[str, dict[str, list[BinRelease]]] = {}
    for spec in releases:
        release = make_release(
            spec.name, spec.version, archive=spec.archive, connectors=spec.connectors
        )
        env = signed_release(release, spec.signers if spec.signers is not None else keys.index)
        files[release.file] = spec.archive
        files[release.file + ".sig"] = env.to_bytes()
        bp = bin_prefix(spec.name, bin_chars)
        packages.setdefault(bp, {}).setdefault(spec.name, []).append(
            BinRelease(spec.version, env, spec.yanked, spec.yanked_reason)
        )
    bins_by_group: dict[str, dict[str, MetaRef]] = {}
    for bp, pkgs in packages.items():
        data = BinNode(bp, {n: tuple(e) for n, e in pkgs.items()}).to_payload()
        ref = MetaRef.of(data)
        files[ref.path] = data
        bins_by_group.setdefault(bp[:group_chars], {})[bp] = ref
    groups: dict[str, MetaRef] = {}
    for gp, bins in bins_by_group.items():
        data = GroupNode(gp, bins).to_payload()
        ref = MetaRef.of(data)
        files[ref.path] = data
        groups[gp] = ref
    top = signed_top(
        make_top(version=top_version, expires=top_expires, groups=groups, level=level), keys.index
    )
    files[MetaRef.of(top).path] = top
    ts = signed_timestamp(
        make_timestamp(
            top, version=timestamp_version, index_version=top_version, expires=timestamp_expires
        ),
        keys.timestamp,
    )
    files["timestamp.json"] = ts
    return IndexBundle(keys, root, ts, top, files)


def client_update(bundle: IndexBundle, now: datetime = NOW, **kwargs: Any) -> TrustedState:
    """Run a client update over ``bundle`` (root walk, timestamp, top) and return the state."""
    state = TrustedState(bundle.root, now, **kwargs)
    n = 2
    while f"root/{n}.json" in bundle.files:
        state.update_root(bundle.files[f"root/{n}.json"])
        n += 1
    state.update_timestamp(bundle.timestamp)
    state.update_index(bundle.top)
    return state


def payload_dict(obj: Root | Timestamp | IndexTop | Release) -> dict[str, Any]:
    """The payload of ``obj`` as a mutable dict (to craft malformed variants)."""
    result: dict[str, Any] = json.loads(obj.to_payload())
    return result


def to_payload(obj: Mapping[str, Any]) -> bytes:
    """Serialise a (possibly malformed) payload dict."""
    return canonical_json(dict(obj))


def with_bin(bundle: IndexBundle, node: BinNode, *, keys: KeySet | None = None) -> IndexBundle:
    """Return ``bundle`` with bin ``node`` put in place and group, top and timestamp re-signed.

    The top and timestamp versions are bumped by one; old files stay in ``files`` (as on a
    real server). Use it to hand-craft bins the publisher would never write.
    """
    keys = keys or bundle.keys
    files = dict(bundle.files)
    top = parse_index_top(parse_envelope(bundle.top).payload)
    ts = parse_timestamp(parse_envelope(bundle.timestamp).payload)
    gp = node.prefix[: top.group_chars]
    old_group = parse_group(files[top.groups[gp].path]) if gp in top.groups else GroupNode(gp, {})
    bin_data = node.to_payload()
    files[MetaRef.of(bin_data).path] = bin_data
    group_data = GroupNode(gp, {**old_group.bins, node.prefix: MetaRef.of(bin_data)}).to_payload()
    files[MetaRef.of(group_data).path] = group_data
    new_top = signed_top(
        make_top(
            version=top.version + 1,
            expires=top.expires,
            groups={**top.groups, gp: MetaRef.of(group_data)},
            level=top.level,
        ),
        keys.index,
    )
    files[MetaRef.of(new_top).path] = new_top
    new_ts = signed_timestamp(
        make_timestamp(
            new_top, version=ts.version + 1, index_version=top.version + 1, expires=ts.expires
        ),
        keys.timestamp,
    )
    files["timestamp.json"] = new_ts
    return IndexBundle(keys, bundle.root, new_ts, new_top, files)
