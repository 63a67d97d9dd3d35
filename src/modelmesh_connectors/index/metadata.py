"""Typed index metadata and its strict parsers (FORMAT.md §3).

The paths and sharding rules live in :mod:`~modelmesh_connectors.index.layout`, the strict
field reader and the time format in :mod:`~modelmesh_connectors.index.fields`; their names
are re-exported here, where callers have always found them.

These parsers run only on bytes whose signature (or pinning hash) was already checked
(verify, then parse); they are strict anyway: exact key sets, checked types (a bool is
not an int), fixed-length lowercase hex, positive versions and ``Z`` timestamps. A
lenient parser would let two clients read one signed file two ways.

Each type's ``to_payload()`` gives the deterministic bytes the publisher signs or stores.

One module, over 600 lines, on purpose: one strict parser and one ``to_payload`` per file
kind of FORMAT.md §3 (root, timestamp, index top, group, bin, release); each kind's parser
and serialiser are read side by side, and the kinds share the same idioms.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_RUNTIMES",
    "RUNTIMES",
    "SHARDING_LEVELS",
    "SPEC_VERSION",
    "BinNode",
    "BinRelease",
    "GroupNode",
    "IndexTop",
    "InvalidNameError",
    "MetaRef",
    "MetadataError",
    "Publisher",
    "Release",
    "ReleaseConnector",
    "RoleSpec",
    "Root",
    "Timestamp",
    "TimestampLink",
    "archive_path",
    "bin_prefix",
    "connector_namespace",
    "format_time",
    "group_prefix",
    "history_path",
    "name_hash",
    "parse_bin",
    "parse_group",
    "parse_index_top",
    "parse_release",
    "parse_root",
    "parse_time",
    "parse_timestamp",
]

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import (
    SignatureError,
)
from modelmesh_connectors.index.envelope import (
    Envelope,
    canonical_json,
    parse_envelope,
)
from modelmesh_connectors.index.fields import (
    SPEC_VERSION,
    FieldReader,
    MetadataError,
    format_time,
    load_payload,
    parse_time,
    utc_seconds,
)
from modelmesh_connectors.index.keys import InvalidKeyError, PublicKey
from modelmesh_connectors.index.layout import (
    MAX_NAME_LEN,
    NAME_RE,
    PREFIX_LENGTHS,
    SHARDING_LEVELS,
    InvalidNameError,
    MetaRef,
    archive_path,
    bin_prefix,
    group_prefix,
    name_hash,
)

ROLE_NAMES = ("root", "index", "timestamp")

_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+!_-]*")
_MAX_VERSION_LEN = 64  # characters
_SEGMENT = r"[a-z0-9]+(?:[-_][a-z0-9]+)*"
_NAMESPACE_RE = re.compile(_SEGMENT)
_CONNECTOR_ID_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
_MAX_CONNECTOR_ID_LEN = 200  # characters
_CONNECTOR_TYPE_RE = re.compile(r"[a-z][a-z0-9_-]*")
_MAX_CONNECTOR_TYPE_LEN = 64  # characters
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_PUBLISHER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RUNTIMES = ("node", "python")  # sorted: the runtimes a release may declare (FORMAT.md §3)
# What a release without "runtimes" declares (every spec 1 release before the field).
DEFAULT_RUNTIMES: tuple[str, ...] = ("python",)
_RUNTIME_RE = re.compile(r"[a-z][a-z0-9]*")


def connector_namespace(connector_id: str) -> str:
    """Return the namespace (first dot-separated segment) of a connector ID."""
    return connector_id.split(".", 1)[0]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


# -- root ----------------------------------------------------------------------


class RoleSpec(Frozen):
    """Who may sign one role's files.

    Args:
        keyids: Key IDs of the role (unique, each in ``Root.keys``).
        threshold: How many of them must sign (1 ≤ threshold ≤ len(keyids)).
    """

    __slots__ = ("keyids", "threshold")

    keyids: tuple[str, ...]
    threshold: int

    def __init__(self, keyids: tuple[str, ...], threshold: int) -> None:
        object.__setattr__(self, "keyids", keyids)
        object.__setattr__(self, "threshold", threshold)

    def to_json_obj(self) -> dict[str, Any]:
        """Return the JSON form ``{"keyids": [...], "threshold": n}``."""
        return {"keyids": list(self.keyids), "threshold": self.threshold}


class Publisher(Frozen):
    """A third party allowed to sign releases of connectors in its namespaces.

    Args:
        name: Display name of the publisher.
        keyids: Its key IDs.
        threshold: How many must sign a release.
        namespaces: Connector ID namespaces (first ID segment) it may publish.
    """

    __slots__ = ("keyids", "name", "namespaces", "threshold")

    name: str
    keyids: tuple[str, ...]
    threshold: int
    namespaces: tuple[str, ...]

    def __init__(
        self,
        name: str,
        keyids: tuple[str, ...],
        threshold: int,
        namespaces: tuple[str, ...],
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "keyids", keyids)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "namespaces", namespaces)

    def covers(self, connector_id: str) -> bool:
        """Tell whether ``connector_id``'s namespace is one of this publisher's."""
        return connector_namespace(connector_id) in self.namespaces

    def to_json_obj(self) -> dict[str, Any]:
        """Return the JSON form used in root.json."""
        return {
            "name": self.name,
            "keyids": list(self.keyids),
            "threshold": self.threshold,
            "namespaces": list(self.namespaces),
        }


class Root(Frozen):
    """The root of trust: keys, roles and publishers (``root/N.json``).

    Args:
        version: Root version N (≥ 1).
        expires: Expiry, aware datetime (normalized to UTC, whole seconds).
        keys: Public keys by key ID.
        root: The root role.
        index: The index role.
        timestamp: The timestamp role.
        publishers: Scoped third-party release signers.
    """

    __slots__ = ("expires", "index", "keys", "publishers", "root", "timestamp", "version")

    version: int
    expires: datetime
    keys: Mapping[str, PublicKey]
    root: RoleSpec
    index: RoleSpec
    timestamp: RoleSpec
    publishers: tuple[Publisher, ...]

    def __init__(
        self,
        version: int,
        expires: datetime,
        keys: Mapping[str, PublicKey],
        root: RoleSpec,
        index: RoleSpec,
        timestamp: RoleSpec,
        publishers: tuple[Publisher, ...] = (),
    ) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "expires", expires)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "timestamp", timestamp)
        object.__setattr__(self, "publishers", publishers)
        self.__post_init__()

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires", utc_seconds(self.expires))
        object.__setattr__(self, "keys", _frozen(self.keys))

    def role(self, name: str) -> RoleSpec:
        """Return the role called ``name`` (``root``, ``index`` or ``timestamp``).

        Raises:
            KeyError: No such role.
        """
        if name not in ROLE_NAMES:
            raise KeyError(name)
        spec: RoleSpec = getattr(self, name)
        return spec

    def to_payload(self) -> bytes:
        """Return the deterministic payload bytes to sign."""
        obj: dict[str, Any] = {
            "type": "root",
            "spec": SPEC_VERSION,
            "version": self.version,
            "expires": format_time(self.expires),
            "keys": {
                kid: {"keytype": "ed25519", "public": key.public_hex}
                for kid, key in self.keys.items()
            },
            "roles": {name: self.role(name).to_json_obj() for name in ROLE_NAMES},
        }
        if self.publishers:
            obj["publishers"] = [p.to_json_obj() for p in self.publishers]
        return canonical_json(obj)


def _role_keyids(
    r: FieldReader, value: Any, field: str, keys: Mapping[str, PublicKey]
) -> tuple[str, ...]:
    ids = r.array(value, field, nonempty=True)
    out: list[str] = []
    for i, kid in enumerate(ids):
        kid = r.hex64(kid, f"{field}[{i}]")
        # A key listed twice would be counted twice by a naive threshold check.
        if kid in out:
            raise r.fail(field, f"key ID {kid} is listed twice")
        if kid not in keys:
            raise r.fail(field, f"key ID {kid} is not in 'keys'")
        out.append(kid)
    return tuple(out)


def _threshold(r: FieldReader, value: Any, field: str, count: int) -> int:
    threshold = r.integer(value, field)
    if threshold > count:
        raise r.fail(
            field,
            f"expected a threshold between 1 and {count} (the number of keys), got {threshold}",
        )
    return threshold


def parse_root(payload: bytes, what: str = "root") -> Root:
    """Parse a root payload.

    Args:
        payload: The verified payload bytes.
        what: Names the file in error messages, e.g. ``"root/2.json"``.

    Returns:
        The root.

    Raises:
        MetadataError: Any deviation from FORMAT.md §3 root, including a key ID that is not
            the SHA-256 of its key, duplicate or unknown role key IDs, or a bad threshold.
    """
    r = FieldReader(what)
    obj = r.obj(
        load_payload(payload, what, "root"),
        "root",
        frozenset({"type", "spec", "version", "expires", "keys", "roles"}),
        frozenset({"publishers"}),
    )
    r.spec(obj)
    version = r.integer(obj["version"], "version")
    expires = r.time(obj["expires"], "expires")
    keys: dict[str, PublicKey] = {}
    for kid, entry in r.mapping(obj["keys"], "keys").items():
        field = f"keys.{kid:.16}"
        r.hex64(kid, "keys")
        entry = r.obj(entry, field, frozenset({"keytype", "public"}))
        if entry["keytype"] != "ed25519":
            raise r.fail(f"{field}.keytype", f"expected 'ed25519', got {entry['keytype']!r:.40}")
        try:
            key = PublicKey.from_hex(entry["public"])
        except InvalidKeyError as e:
            raise r.fail(f"{field}.public", e.message) from e
        # An ID that is not the key's hash would let one key count twice under two IDs.
        if key.keyid != kid:
            raise r.fail(field, f"key ID {kid} is not the SHA-256 of its key ({key.keyid})")
        keys[kid] = key
    roles_obj = r.obj(obj["roles"], "roles", frozenset(ROLE_NAMES))
    roles: dict[str, RoleSpec] = {}
    for name in ROLE_NAMES:
        field = f"roles.{name}"
        role = r.obj(roles_obj[name], field, frozenset({"keyids", "threshold"}))
        keyids = _role_keyids(r, role["keyids"], f"{field}.keyids", keys)
        roles[name] = RoleSpec(
            keyids, _threshold(r, role["threshold"], f"{field}.threshold", len(keyids))
        )
    publishers: list[Publisher] = []
    for i, entry in enumerate(r.array(obj.get("publishers", []), "publishers")):
        field = f"publishers[{i}]"
        p = r.obj(entry, field, frozenset({"name", "keyids", "threshold", "namespaces"}))
        name = r.text(p["name"], f"{field}.name", _PUBLISHER_NAME_RE, 100, "a publisher name")
        if any(q.name == name for q in publishers):
            raise r.fail(f"{field}.name", f"publisher name {name!r} is used twice")
        keyids = _role_keyids(r, p["keyids"], f"{field}.keyids", keys)
        threshold = _threshold(r, p["threshold"], f"{field}.threshold", len(keyids))
        namespaces: list[str] = []
        for j, ns in enumerate(r.array(p["namespaces"], f"{field}.namespaces", nonempty=True)):
            ns = r.text(ns, f"{field}.namespaces[{j}]", _NAMESPACE_RE, 100, "a connector namespace")
            if ns in namespaces:
                raise r.fail(f"{field}.namespaces", f"namespace {ns!r} is listed twice")
            namespaces.append(ns)
        publishers.append(Publisher(name, keyids, threshold, tuple(namespaces)))
    return Root(
        version=version,
        expires=expires,
        keys=keys,
        root=roles["root"],
        index=roles["index"],
        timestamp=roles["timestamp"],
        publishers=tuple(publishers),
    )


# -- timestamp and index top ---------------------------------------------------


class TimestampLink(Frozen):
    """The timestamp a newer one replaces: its version and the hash of its signed payload.

    Every timestamp file is also stored, create-only, as ``history/<version>-<sha256>.json``
    (FORMAT.md §3 history), so a client can walk from a new timestamp back to the one it
    trusts. The payload is hashed (not the file), so a re-signature of one payload is one
    link, as it is one timestamp for rollback protection.

    Args:
        version: The replaced timestamp's version.
        sha256: Lowercase hex SHA-256 of its exact payload bytes.
    """

    __slots__ = ("sha256", "version")

    version: int
    sha256: str

    def __init__(self, version: int, sha256: str) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "sha256", sha256)

    @property
    def path(self) -> str:
        """The history file ``history/<version>-<sha256>.json``."""
        return history_path(self.version, self.sha256)

    def to_json_obj(self) -> dict[str, Any]:
        """Return ``{"version", "sha256"}``."""
        return {"version": self.version, "sha256": self.sha256}

    @classmethod
    def of(cls, version: int, payload: bytes) -> TimestampLink:
        """Link to the timestamp of version ``version`` whose payload bytes are ``payload``."""
        return cls(version, hashlib.sha256(payload).hexdigest())


def history_path(version: int, sha256: str) -> str:
    """``history/<version>-<sha256>.json``: where a timestamp file is kept for good."""
    return f"history/{version}-{sha256}.json"


class Timestamp(Frozen):
    """The freshness file (``timestamp.json``) pinning the current index top.

    Args:
        version: Timestamp version (≥ 1).
        expires: Expiry (normalized to UTC, whole seconds).
        index_version: Version of the pinned index top.
        index: Hash and length of the pinned index top file.
        previous: The timestamp this one replaces (None for the first one, and in
            timestamps written before history existed).
    """

    __slots__ = ("expires", "index", "index_version", "previous", "version")

    version: int
    expires: datetime
    index_version: int
    index: MetaRef
    previous: TimestampLink | None

    def __init__(
        self,
        version: int,
        expires: datetime,
        index_version: int,
        index: MetaRef,
        previous: TimestampLink | None = None,
    ) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "expires", expires)
        object.__setattr__(self, "index_version", index_version)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "previous", previous)
        self.__post_init__()

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires", utc_seconds(self.expires))

    def to_payload(self) -> bytes:
        """Return the deterministic payload bytes to sign."""
        obj: dict[str, Any] = {
            "type": "timestamp",
            "spec": SPEC_VERSION,
            "version": self.version,
            "expires": format_time(self.expires),
            "index": {"version": self.index_version, **self.index.to_json_obj()},
        }
        if self.previous is not None:
            obj["previous"] = self.previous.to_json_obj()
        return canonical_json(obj)


def parse_timestamp(payload: bytes, what: str = "timestamp.json") -> Timestamp:
    """Parse a timestamp payload.

    Args:
        payload: The verified payload bytes.
        what: Names the file in error messages.

    Returns:
        The timestamp.

    Raises:
        MetadataError: Any deviation from FORMAT.md §3 timestamp.
    """
    r = FieldReader(what)
    obj = r.obj(
        load_payload(payload, what, "timestamp"),
        "timestamp",
        frozenset({"type", "spec", "version", "expires", "index"}),
        frozenset({"previous"}),
    )
    r.spec(obj)
    index = r.obj(obj["index"], "index", frozenset({"version", "sha256", "length"}))
    version = r.integer(obj["version"], "version")
    previous: TimestampLink | None = None
    if "previous" in obj:
        link = r.obj(obj["previous"], "previous", frozenset({"version", "sha256"}))
        previous = TimestampLink(
            r.integer(link["version"], "previous.version"),
            r.hex64(link["sha256"], "previous.sha256"),
        )
        if previous.version >= version:
            raise r.fail(
                "previous.version",
                f"expected a version below {version}, got {previous.version}",
            )
    return Timestamp(
        version=version,
        expires=r.time(obj["expires"], "expires"),
        index_version=r.integer(index["version"], "index.version"),
        index=MetaRef(
            r.hex64(index["sha256"], "index.sha256"), r.integer(index["length"], "index.length")
        ),
        previous=previous,
    )


class IndexTop(Frozen):
    """The index top: group prefix → group node pin, and the fan-out of the tree.

    Args:
        version: Index version (≥ 1).
        expires: Expiry (normalized to UTC, whole seconds).
        groups: Group prefix (``group_chars`` hex characters) → pin of the group node.
        group_chars: Hex characters of ``sha256(name)`` in a group prefix.
        bin_chars: Hex characters of ``sha256(name)`` in a bin prefix;
            ``(group_chars, bin_chars)`` is one of :data:`SHARDING_LEVELS`.
        packages: How many package names the tree holds (lets a publisher choose the
            fan-out without reading every bin); None in tops written before it existed.
    """

    __slots__ = ("bin_chars", "expires", "group_chars", "groups", "packages", "version")

    version: int
    expires: datetime
    groups: Mapping[str, MetaRef]
    group_chars: int
    bin_chars: int
    packages: int | None

    def __init__(
        self,
        version: int,
        expires: datetime,
        groups: Mapping[str, MetaRef],
        group_chars: int,
        bin_chars: int,
        packages: int | None = None,
    ) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "expires", expires)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "group_chars", group_chars)
        object.__setattr__(self, "bin_chars", bin_chars)
        object.__setattr__(self, "packages", packages)
        self.__post_init__()

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires", utc_seconds(self.expires))
        object.__setattr__(self, "groups", _frozen(self.groups))

    @property
    def level(self) -> tuple[int, int]:
        """``(group_chars, bin_chars)``."""
        return self.group_chars, self.bin_chars

    def group_prefix(self, name: str) -> str:
        """Return the prefix of the group holding ``name`` in this index.

        Raises:
            InvalidNameError: ``name`` is not normalized.
        """
        return group_prefix(name, self.group_chars)

    def bin_prefix(self, name: str) -> str:
        """Return the prefix of the bin holding ``name`` in this index.

        Raises:
            InvalidNameError: ``name`` is not normalized.
        """
        return bin_prefix(name, self.bin_chars)

    def to_payload(self) -> bytes:
        """Return the deterministic payload bytes to sign."""
        obj: dict[str, Any] = {
            "type": "index",
            "spec": SPEC_VERSION,
            "version": self.version,
            "expires": format_time(self.expires),
            "group_chars": self.group_chars,
            "bin_chars": self.bin_chars,
            "groups": {p: ref.to_json_obj() for p, ref in self.groups.items()},
        }
        if self.packages is not None:
            obj["packages"] = self.packages
        return canonical_json(obj)


def parse_index_top(payload: bytes, what: str = "index top") -> IndexTop:
    """Parse an index top payload.

    Args:
        payload: The verified payload bytes.
        what: Names the file in error messages.

    Returns:
        The index top.

    Raises:
        MetadataError: Any deviation from FORMAT.md §3 index top, including a
            ``(group_chars, bin_chars)`` pair not in :data:`SHARDING_LEVELS` or a group
            prefix that is not ``group_chars`` hex characters.
    """
    r = FieldReader(what)
    obj = r.obj(
        load_payload(payload, what, "index"),
        "index",
        frozenset({"type", "spec", "version", "expires", "group_chars", "bin_chars", "groups"}),
        frozenset({"packages"}),
    )
    r.spec(obj)
    group_chars = r.integer(obj["group_chars"], "group_chars", minimum=0)
    bin_chars = r.integer(obj["bin_chars"], "bin_chars", minimum=0)
    if (group_chars, bin_chars) not in SHARDING_LEVELS:
        raise r.fail(
            "group_chars, bin_chars",
            f"expected one of {', '.join(map(str, SHARDING_LEVELS))}, "
            f"got ({group_chars}, {bin_chars})",
        )
    groups: dict[str, MetaRef] = {}
    for prefix, ref in r.mapping(obj["groups"], "groups").items():
        r.prefix(prefix, "groups", frozenset({group_chars}))
        groups[prefix] = r.meta_ref(ref, f"groups.{prefix}")
    return IndexTop(
        version=r.integer(obj["version"], "version"),
        expires=r.time(obj["expires"], "expires"),
        groups=groups,
        group_chars=group_chars,
        bin_chars=bin_chars,
        packages=r.integer(obj["packages"], "packages", minimum=0) if "packages" in obj else None,
    )


# -- group and bin nodes -------------------------------------------------------


class GroupNode(Frozen):
    """A group node: bin prefix → bin node pin, for one group prefix.

    Args:
        prefix: The index top's ``group_chars`` lowercase hex characters (may be ``""``).
        bins: Bin prefix (``bin_chars`` hex characters starting with ``prefix``) → pin of
            the bin node.
    """

    __slots__ = ("bins", "prefix")

    prefix: str
    bins: Mapping[str, MetaRef]

    def __init__(self, prefix: str, bins: Mapping[str, MetaRef]) -> None:
        object.__setattr__(self, "prefix", prefix)
        object.__setattr__(self, "bins", bins)
        self.__post_init__()

    def __post_init__(self) -> None:
        object.__setattr__(self, "bins", _frozen(self.bins))

    def to_payload(self) -> bytes:
        """Return the deterministic file bytes."""
        return canonical_json(
            {
                "type": "group",
                "prefix": self.prefix,
                "bins": {p: ref.to_json_obj() for p, ref in self.bins.items()},
            }
        )


def parse_group(data: bytes, what: str = "group node") -> GroupNode:
    """Parse a group node.

    Args:
        data: The file bytes, already checked against their pin.
        what: Names the file in error messages.

    Returns:
        The group node.

    Raises:
        MetadataError: Any deviation from FORMAT.md §3, including a bin prefix that does
            not extend the group prefix. (Whether the prefix lengths are the ones the index
            top declares is checked by :func:`~modelmesh_connectors.index.trust.verify_group_node`.)
    """
    r = FieldReader(what)
    obj = r.obj(load_payload(data, what, "group"), "group", frozenset({"type", "prefix", "bins"}))
    prefix = r.prefix(obj["prefix"], "prefix", PREFIX_LENGTHS)
    bins: dict[str, MetaRef] = {}
    for bp, ref in r.mapping(obj["bins"], "bins").items():
        r.prefix(bp, "bins", PREFIX_LENGTHS)
        if not bp.startswith(prefix):
            raise r.fail("bins", f"bin prefix {bp} does not start with group prefix {prefix}")
        bins[bp] = r.meta_ref(ref, f"bins.{bp}")
    return GroupNode(prefix, bins)


class BinRelease(Frozen):
    """One release entry of a package in a bin.

    Args:
        version: Release version.
        release: The release envelope (same object as the archive's ``.zip.sig``).
        yanked: Whether the release is withdrawn from resolution.
        yanked_reason: Why, when yanked; None otherwise.
    """

    __slots__ = ("release", "version", "yanked", "yanked_reason")

    version: str
    release: Envelope
    yanked: bool
    yanked_reason: str | None

    def __init__(
        self,
        version: str,
        release: Envelope,
        yanked: bool = False,
        yanked_reason: str | None = None,
    ) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "release", release)
        object.__setattr__(self, "yanked", yanked)
        object.__setattr__(self, "yanked_reason", yanked_reason)

    def to_json_obj(self) -> dict[str, Any]:
        """Return the JSON form used in bin nodes."""
        return {
            "version": self.version,
            "release": self.release.to_json_obj(),
            "yanked": self.yanked,
            "yanked_reason": self.yanked_reason,
        }


class BinNode(Frozen):
    """A bin node: every package whose name hash starts with ``prefix``, with its releases.

    Args:
        prefix: The index top's ``bin_chars`` lowercase hex characters (may be ``""``).
        packages: Package name → its releases in publication order.
    """

    __slots__ = ("packages", "prefix")

    prefix: str
    packages: Mapping[str, tuple[BinRelease, ...]]

    def __init__(self, prefix: str, packages: Mapping[str, tuple[BinRelease, ...]]) -> None:
        object.__setattr__(self, "prefix", prefix)
        object.__setattr__(self, "packages", packages)
        self.__post_init__()

    def __post_init__(self) -> None:
        object.__setattr__(self, "packages", _frozen(self.packages))

    def to_payload(self) -> bytes:
        """Return the deterministic file bytes."""
        return canonical_json(
            {
                "type": "bin",
                "prefix": self.prefix,
                "packages": {
                    name: [e.to_json_obj() for e in entries]
                    for name, entries in self.packages.items()
                },
            }
        )


def parse_bin(data: bytes, what: str = "bin node") -> BinNode:
    """Parse a bin node.

    Args:
        data: The file bytes, already checked against their pin.
        what: Names the file in error messages.

    Returns:
        The bin node. The embedded release envelopes are parsed but not verified.

    Raises:
        MetadataError: Any deviation from FORMAT.md §3, including a package whose name hash
            does not start with the bin prefix, a version listed twice, or a malformed
            embedded envelope.
    """
    r = FieldReader(what)
    obj = r.obj(load_payload(data, what, "bin"), "bin", frozenset({"type", "prefix", "packages"}))
    prefix = r.prefix(obj["prefix"], "prefix", PREFIX_LENGTHS)
    packages: dict[str, tuple[BinRelease, ...]] = {}
    for name, entries in r.mapping(obj["packages"], "packages").items():
        try:
            h = name_hash(name)
        except InvalidNameError as e:
            raise r.fail("packages", e.message) from e
        # A package filed under the wrong bin could shadow a lookup path.
        if not h.startswith(prefix):
            raise r.fail(
                f"packages.{name}",
                f"name hash {h[: max(len(prefix), 4)]}… does not start with bin prefix {prefix!r}",
            )
        releases: list[BinRelease] = []
        versions: set[str] = set()
        for i, entry in enumerate(r.array(entries, f"packages.{name}", nonempty=True)):
            # Each check first as a plain test; only a value that fails it goes through the
            # reader, which decides and names the field (a bin holds every release of its
            # packages: field names built for every entry cost more than the checks).
            item = entry
            if type(item) is not dict or item.keys() != _BIN_ENTRY_FIELDS:
                item = r.obj(entry, f"packages.{name}[{i}]", _BIN_ENTRY_FIELDS)
            version = item["version"]
            if not (
                type(version) is str
                and len(version) <= _MAX_VERSION_LEN
                and _VERSION_RE.fullmatch(version)
            ):
                version = r.text(
                    version,
                    f"packages.{name}[{i}].version",
                    _VERSION_RE,
                    _MAX_VERSION_LEN,
                    "a version",
                )
            if version in versions:
                raise r.fail(f"packages.{name}", f"version {version} is listed twice")
            versions.add(version)
            release = item["release"]
            if not isinstance(release, Mapping):
                release = r.mapping(release, f"packages.{name}[{i}].release")
            try:
                env = parse_envelope(release)
            except SignatureError as exc:
                raise r.fail(f"packages.{name}[{i}].release", exc.message) from exc
            yanked = item["yanked"]
            if type(yanked) is not bool:
                yanked = r.boolean(yanked, f"packages.{name}[{i}].yanked")
            reason = item["yanked_reason"]
            if reason is not None:
                field = f"packages.{name}[{i}]"
                reason = r.text(reason, f"{field}.yanked_reason")
                if not yanked:
                    raise r.fail(
                        f"{field}.yanked_reason", "expected null for a release that is not yanked"
                    )
            releases.append(BinRelease(version, env, yanked, reason))
        packages[name] = tuple(releases)
    return BinNode(prefix, packages)


# -- release -------------------------------------------------------------------


class ReleaseConnector(Frozen):
    """One connector a release declares.

    Args:
        id: Connector ID, e.g. ``acme.audit-log.v1``; its first segment is the namespace.
        type: Connector type, e.g. ``observability``.
    """

    __slots__ = ("id", "type")

    id: str
    type: str

    def __init__(self, id: str, type: str) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "type", type)

    @property
    def namespace(self) -> str:
        """The first segment of the ID."""
        return connector_namespace(self.id)


class Release(Frozen):
    """A release attestation binding name, version, file, hash and length.

    Args:
        name: Normalized package name.
        version: Release version.
        file: Index-relative archive path (always ``archives/<name>/<name>-<version>.zip``).
        sha256: Archive SHA-256.
        length: Archive size in bytes.
        requires_modelmesh: The ModelMesh version specifier, or None.
        connectors: Connectors the package declares.
        runtimes: The runtimes every connector has an entry point for, sorted
            (``python``, ``node``); the payload omits the field when it is ``("python",)``,
            so a Python-only release keeps the bytes (and readers) of spec 1.
    """

    __slots__ = (
        "connectors",
        "file",
        "length",
        "name",
        "requires_modelmesh",
        "runtimes",
        "sha256",
        "version",
    )

    name: str
    version: str
    file: str
    sha256: str
    length: int
    requires_modelmesh: str | None
    connectors: tuple[ReleaseConnector, ...]
    runtimes: tuple[str, ...]

    def __init__(
        self,
        name: str,
        version: str,
        file: str,
        sha256: str,
        length: int,
        requires_modelmesh: str | None,
        connectors: tuple[ReleaseConnector, ...] = (),
        runtimes: tuple[str, ...] = DEFAULT_RUNTIMES,
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "file", file)
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "requires_modelmesh", requires_modelmesh)
        object.__setattr__(self, "connectors", connectors)
        object.__setattr__(self, "runtimes", runtimes)

    def to_payload(self) -> bytes:
        """Return the deterministic payload bytes to sign."""
        payload: dict[str, Any] = {
            "type": "release",
            "spec": SPEC_VERSION,
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "length": self.length,
            "requires_modelmesh": self.requires_modelmesh,
            "connectors": [{"id": c.id, "type": c.type} for c in self.connectors],
        }
        if self.runtimes != DEFAULT_RUNTIMES:
            payload["runtimes"] = list(self.runtimes)
        return canonical_json(payload)


def parse_release(payload: bytes, what: str = "release") -> Release:
    """Parse a release payload.

    Args:
        payload: The verified payload bytes.
        what: Names the file in error messages.

    Returns:
        The release.

    Raises:
        MetadataError: Any deviation from FORMAT.md §3 release, including a ``file`` other
            than ``archives/<name>/<name>-<version>.zip`` or a connector ID listed twice.
    """
    obj = load_payload(payload, what, "release")
    plain = _plain_release(obj)
    if plain is not None:
        return plain
    return _read_release(obj, what)


_RELEASE_FIELDS = frozenset(
    {
        "type",
        "spec",
        "name",
        "version",
        "file",
        "sha256",
        "length",
        "requires_modelmesh",
        "connectors",
    }
)
_CONNECTOR_FIELDS = frozenset({"id", "type"})
_BIN_ENTRY_FIELDS = frozenset({"version", "release", "yanked", "yanked_reason"})
_MAX_REQUIRES_LEN = 200  # characters of requires_modelmesh


def _plain_release(obj: Mapping[str, Any]) -> Release | None:
    """The release of a payload whose every field is plainly valid, else ``None``.

    The hot path of every resolve (one per package per run): the same checks as
    :func:`_read_release`, written as one expression per field with no error wording, for a
    payload without ``runtimes``. It only ever accepts what :func:`_read_release` accepts,
    with the same result (``tests/unit/test_metadata.py`` compares the two on mutated
    payloads); anything else, valid or not, goes to :func:`_read_release`, which decides and
    words the error. A more lenient fast path would let two readers read one signed release
    two ways.
    """
    if obj.keys() != _RELEASE_FIELDS:
        return None
    name, version, file = obj["name"], obj["version"], obj["file"]
    sha256, length, spec = obj["sha256"], obj["length"], obj["spec"]
    requires, listed = obj["requires_modelmesh"], obj["connectors"]
    # type(x) is int: JSON gives exact ints, and a bool (an int subclass) is not one.
    if not (
        type(spec) is int
        and spec == SPEC_VERSION
        and type(name) is str
        and len(name) <= MAX_NAME_LEN
        and NAME_RE.fullmatch(name)
        and type(version) is str
        and len(version) <= _MAX_VERSION_LEN
        and _VERSION_RE.fullmatch(version)
        and type(file) is str
        and file == archive_path(name, version)
        and type(sha256) is str
        and len(sha256) == 64
        and _HEX64_RE.fullmatch(sha256)
        and type(length) is int
        and length >= 1
        and (
            requires is None
            or (
                type(requires) is str
                and 0 < len(requires) <= _MAX_REQUIRES_LEN
                and requires.isprintable()
            )
        )
        and type(listed) is list
        and listed
    ):
        return None
    connectors: list[ReleaseConnector] = []
    seen: set[str] = set()
    for entry in listed:
        if type(entry) is not dict or entry.keys() != _CONNECTOR_FIELDS:
            return None
        cid, ctype = entry["id"], entry["type"]
        if not (
            type(cid) is str
            and len(cid) <= _MAX_CONNECTOR_ID_LEN
            and _CONNECTOR_ID_RE.fullmatch(cid)
            and cid not in seen
            and type(ctype) is str
            and len(ctype) <= _MAX_CONNECTOR_TYPE_LEN
            and _CONNECTOR_TYPE_RE.fullmatch(ctype)
        ):
            return None
        seen.add(cid)
        connectors.append(ReleaseConnector(cid, ctype))
    return Release(name, version, file, sha256, length, requires, tuple(connectors))


def _read_release(obj: Mapping[str, Any], what: str) -> Release:
    """:func:`parse_release` field by field, naming the first field that is wrong."""
    r = FieldReader(what)
    obj = r.obj(
        obj,
        "release",
        frozenset(
            {
                "type",
                "spec",
                "name",
                "version",
                "file",
                "sha256",
                "length",
                "requires_modelmesh",
                "connectors",
            }
        ),
        frozenset({"runtimes"}),
    )
    r.spec(obj)
    name = r.text(obj["name"], "name", NAME_RE, MAX_NAME_LEN, "a normalized package name")
    version = r.text(obj["version"], "version", _VERSION_RE, _MAX_VERSION_LEN, "a version")
    file = r.text(obj["file"], "file", None, 1000, "an archive path")
    # The path is fully determined by name and version, so a signed release can never
    # point a client at another file (or outside the index with '..').
    if file != archive_path(name, version):
        raise r.fail("file", f"expected {archive_path(name, version)!r}, got {file!r:.120}")
    requires = obj["requires_modelmesh"]
    if requires is not None:
        requires = r.text(
            requires, "requires_modelmesh", None, _MAX_REQUIRES_LEN, "a version specifier"
        )
    connectors: list[ReleaseConnector] = []
    for i, entry in enumerate(r.array(obj["connectors"], "connectors", nonempty=True)):
        field_ = f"connectors[{i}]"
        c = r.obj(entry, field_, frozenset({"id", "type"}))
        cid = r.text(
            c["id"],
            f"{field_}.id",
            _CONNECTOR_ID_RE,
            _MAX_CONNECTOR_ID_LEN,
            "a connector ID like vendor.name.v1",
        )
        if any(x.id == cid for x in connectors):
            raise r.fail("connectors", f"connector ID {cid} is listed twice")
        ctype = r.text(
            c["type"],
            f"{field_}.type",
            _CONNECTOR_TYPE_RE,
            _MAX_CONNECTOR_TYPE_LEN,
            "a connector type",
        )
        connectors.append(ReleaseConnector(cid, ctype))
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES
    if "runtimes" in obj:
        listed = r.array(obj["runtimes"], "runtimes", nonempty=True)
        runtimes = tuple(
            r.text(x, f"runtimes[{i}]", _RUNTIME_RE, 16, "a runtime name")
            for i, x in enumerate(listed)
        )
        # One spelling per set (sorted, distinct, known): two readers agree on what it says.
        if list(runtimes) != sorted(set(runtimes)) or not set(runtimes) <= set(RUNTIMES):
            raise r.fail(
                "runtimes",
                f"expected distinct names from {list(RUNTIMES)} in sorted order, got "
                f"{list(runtimes)!r:.120}",
            )
        if runtimes == DEFAULT_RUNTIMES:
            raise r.fail("runtimes", '["python"] is the default and is written by omission')
    return Release(
        name=name,
        version=version,
        file=file,
        sha256=r.hex64(obj["sha256"], "sha256"),
        length=r.integer(obj["length"], "length"),
        requires_modelmesh=requires,
        connectors=tuple(connectors),
        runtimes=runtimes,
    )
