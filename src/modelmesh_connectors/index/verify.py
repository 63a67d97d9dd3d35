"""The pure per-file checks of the trust core: one file's bytes in, a verified object out.

Each function takes bytes, the trusted root (or the pin from a parent file) and returns a
typed, verified object or raises a :class:`~modelmesh_connectors.errors.TrustError`; none
keeps state across files (that is :class:`~modelmesh_connectors.index.trust.TrustedState`)
and none opens a file, a socket or reads the clock. The audit uses them one by one. Every
name is re-exported by :mod:`~modelmesh_connectors.index.trust`.
"""

from __future__ import annotations

__all__ = [
    "anchor_identity",
    "check_archive",
    "check_expiry",
    "check_pinned",
    "release_digest",
    "trust_root_id",
    "verify_anchor_root",
    "verify_bin_node",
    "verify_group_node",
    "verify_index_top",
    "verify_next_root",
    "verify_release",
    "verify_release_signed",
    "verify_timestamp",
    "verify_timestamp_payload",
]

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from modelmesh_connectors._internal.digest import (
    check_bytes,
    check_digest,
    check_length,
    sha256_hex,
)
from modelmesh_connectors.errors import (
    ExpiredError,
    PolicyError,
    RollbackError,
    RootRotationError,
    SignatureError,
)
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    parse_envelope,
    verify_threshold,
)
from modelmesh_connectors.index.metadata import (
    BinNode,
    GroupNode,
    IndexTop,
    MetadataError,
    MetaRef,
    Publisher,
    Release,
    RoleSpec,
    Root,
    Timestamp,
    format_time,
    parse_bin,
    parse_group,
    parse_index_top,
    parse_release,
    parse_root,
    parse_timestamp,
)

# -- pure per-file checks ------------------------------------------------------


def _explained(root: Root, role: str) -> dict[str, Any]:
    """Arguments that let a threshold error name who signed, and for which role the root
    lists each signing key (a file signed with another role's key says so)."""
    roles: dict[str, tuple[str, ...]] = {
        "the root role": root.root.keyids,
        "the index role": root.index.keyids,
        "the timestamp role": root.timestamp.keyids,
    }
    for publisher in root.publishers:
        roles[f"publisher {publisher.name}"] = publisher.keyids
    return {"role": role, "roles": roles, "listed_by": f"root v{root.version}"}


def _verify_role(
    env: Envelope,
    expected_type: str,
    root: Root,
    role: RoleSpec | Publisher,
    label: str,
    what: str,
) -> frozenset[str]:
    """Check that a threshold of ``role`` (as ``root`` lists it) signed ``env``.

    Returns:
        The key IDs whose valid signatures counted.

    Raises:
        SignatureError: Wrong payload type or threshold not met; the message names who
            signed and for which role ``root`` lists each signing key.
    """
    return verify_threshold(
        env,
        expected_type=expected_type,
        keys=root.keys,
        keyids=role.keyids,
        threshold=role.threshold,
        what=what,
        **_explained(root, label),
    )


def _envelope(data: bytes | Mapping[str, Any] | Envelope, what: str) -> Envelope:
    if isinstance(data, Envelope):
        return data
    try:
        return parse_envelope(data)
    except SignatureError as e:
        raise SignatureError(f"{what}: {e.message}") from e


def check_pinned(data: bytes, ref: MetaRef, what: str) -> None:
    """Check bytes against the hash and length their signed parent pins.

    Args:
        data: The received bytes.
        ref: The pin from the parent file.
        what: Names the file in error messages.

    Raises:
        LengthMismatchError: The size differs.
        HashMismatchError: The SHA-256 differs.
    """
    # Checked before parsing: bytes that are not the pinned ones never reach a parser
    # (mix-and-match of files from different index states, tampered mirrors).
    check_bytes(data, sha256=ref.sha256, length=ref.length, what=what)


def check_expiry(
    what: str, expires: datetime, now: datetime, grace: timedelta = timedelta(0)
) -> bool:
    """Check that signed metadata has not expired at ``now``.

    A file is expired from its ``expires`` instant on. Within ``grace`` after that it is
    still accepted, and the function says so, for the caller to log.

    Args:
        what: Names the file in error messages.
        expires: The file's expiry.
        now: The reference time (aware).
        grace: Tolerated lateness (zero by default).

    Returns:
        True when the file is expired but within the grace period; False when not expired.

    Raises:
        ExpiredError: Expired beyond the grace period (freeze attack or stale mirror).
    """
    if now < expires:
        return False
    if now < expires + grace:
        return True
    raise ExpiredError(
        f"{what}: expired at {format_time(expires)}, reference time is {format_time(now)}",
        hint="the index may be stale or frozen; ask its operator to refresh it",
    )


def verify_anchor_root(data: bytes, what: str = "trusted root") -> Root:
    """Verify a root trusted out of band (the shipped anchor or the local copy).

    It must carry a threshold of signatures of its *own* root role. Its expiry is not
    checked here: an expired anchor is only a starting point for the root walk.

    Args:
        data: The root file bytes.
        what: Names the file in error messages.

    Returns:
        The root.

    Raises:
        SignatureError: Malformed envelope, wrong payload type, or threshold not met.
        MetadataError: The payload is not a valid root.
    """
    env = _envelope(data, what)
    if env.payload_type != ROOT_TYPE:
        raise SignatureError(
            f"{what}: expected payload type {ROOT_TYPE!r}, got {env.payload_type!r}"
        )
    # The anchor names its own keys, so it is parsed before it can be verified; it is
    # trusted because it came out of band, the self-signature only proves it is whole.
    root = parse_root(env.payload, what)
    _verify_role(env, ROOT_TYPE, root, root.root, "the root role", f"{what} (own root role)")
    return root


def trust_root_id(data: bytes, what: str = "trusted root") -> str:
    """The identity of a shipped trust root: what the client's stored state is keyed by.

    It is the SHA-256 of the anchor's signed payload (its version, keys, roles, thresholds
    and publishers), not of the envelope: adding a signature to the same root keeps the
    identity, any change to what it trusts makes a new one. It is computed from the
    *shipped anchor*, never from a root reached by rotation, so every mirror, the bundle and
    offline mode of one index share one rollback reference for as long as the deployment
    ships the same anchor, whatever the mirror list says (stops a stale mirror listed first
    from starting the client with no reference).

    Args:
        data: The shipped root file bytes.
        what: Names the file in error messages.

    Returns:
        64 lowercase hex characters.

    Raises:
        SignatureError: Malformed envelope, wrong payload type, or not signed by a threshold
            of its own root role (exactly as :func:`verify_anchor_root`).
        MetadataError: The payload is not a valid root.
    """
    return anchor_identity(data, what)[1]


def anchor_identity(data: bytes, what: str = "trusted root") -> tuple[Root, str]:
    """:func:`verify_anchor_root` and :func:`trust_root_id` with one signature check.

    Returns:
        The root and its identity.

    Raises:
        SignatureError, MetadataError: as :func:`trust_root_id`.
    """
    root = verify_anchor_root(data, what)
    return root, sha256_hex(_envelope(data, what).payload)


def verify_next_root(trusted: Root, data: bytes, what: str | None = None) -> Root:
    """Verify root version N+1 against trusted root N.

    Args:
        trusted: The trusted root N.
        data: The bytes of ``root/<N+1>.json``.
        what: Names the file in error messages (default ``root/<N+1>.json``).

    Returns:
        The new root.

    Raises:
        SignatureError: Malformed envelope, wrong payload type, or the threshold of root
            N's root role or of the new root's own root role is not met.
        MetadataError: The payload is not a valid root.
        RootRotationError: Its version is not exactly N+1 (skipped or repeated version).
    """
    what = what or f"root/{trusted.version + 1}.json"
    env = _envelope(data, what)
    # The old root's keys vouch for the new one before its payload is even parsed.
    _verify_role(
        env,
        ROOT_TYPE,
        trusted,
        trusted.root,
        "the root role",
        f"{what} (root role of trusted root version {trusted.version})",
    )
    new = parse_root(env.payload, what)
    # Its own keys must sign too, so a rotation cannot hand trust to keys nobody holds.
    _verify_role(env, ROOT_TYPE, new, new.root, "the root role", f"{what} (its own root role)")
    if new.version != trusted.version + 1:
        raise RootRotationError(
            f"{what}: expected root version {trusted.version + 1}, got {new.version} "
            f"({'repeated or older' if new.version <= trusted.version else 'skipped'} version)"
        )
    return new


def verify_timestamp_payload(root: Root, data: bytes, what: str) -> tuple[Timestamp, bytes]:
    """As :func:`verify_timestamp`, also returning the exact signed payload bytes.

    Raises:
        SignatureError, MetadataError: as :func:`verify_timestamp`.
    """
    env = _envelope(data, what)
    _verify_role(env, TIMESTAMP_TYPE, root, root.timestamp, "the timestamp role", what)
    return parse_timestamp(env.payload, what), env.payload


def verify_timestamp(root: Root, data: bytes, what: str = "timestamp.json") -> Timestamp:
    """Verify a timestamp file's signatures and parse it (no expiry or rollback check).

    Args:
        root: The trusted root.
        data: The file bytes.
        what: Names the file in error messages.

    Returns:
        The timestamp.

    Raises:
        SignatureError: Malformed envelope, wrong type, or timestamp-role threshold not met.
        MetadataError: The payload is not a valid timestamp.
    """
    return verify_timestamp_payload(root, data, what)[0]


def verify_index_top(
    root: Root, timestamp: Timestamp, data: bytes, what: str | None = None
) -> IndexTop:
    """Verify an index top against the timestamp's pin (no expiry or rollback check).

    Args:
        root: The trusted root.
        timestamp: The verified timestamp pinning the top.
        data: The file bytes.
        what: Names the file in error messages (default ``meta/<sha256>.json``).

    Returns:
        The index top.

    Raises:
        LengthMismatchError: Size differs from the pin (checked before parsing).
        HashMismatchError: SHA-256 differs from the pin (checked before parsing).
        SignatureError: Malformed envelope, wrong type, or index-role threshold not met.
        MetadataError: The payload is not a valid index top, or its version is higher
            than the pinned one.
        RollbackError: Its version is lower than the pinned one.
    """
    what = what or f"index top {timestamp.index.path}"
    check_pinned(data, timestamp.index, what)
    env = _envelope(data, what)
    _verify_role(env, INDEX_TYPE, root, root.index, "the index role", what)
    top = parse_index_top(env.payload, what)
    if top.version < timestamp.index_version:
        raise RollbackError(
            f"{what}: version {top.version} is lower than version {timestamp.index_version} "
            f"pinned by timestamp.json (rollback)"
        )
    if top.version != timestamp.index_version:
        raise MetadataError(
            f"{what}: version {top.version} is not version {timestamp.index_version} "
            f"pinned by timestamp.json (mix-and-match)"
        )
    return top


def verify_group_node(
    ref: MetaRef,
    prefix: str,
    data: bytes,
    what: str | None = None,
    *,
    group_chars: int,
    bin_chars: int,
) -> GroupNode:
    """Verify a group node against its pin in the index top.

    Args:
        ref: The pin from the verified index top.
        prefix: The prefix the client followed (``group_chars`` hex characters).
        data: The file bytes.
        what: Names the file in error messages.
        group_chars: The verified index top's ``group_chars``.
        bin_chars: The verified index top's ``bin_chars``.

    Returns:
        The group node.

    Raises:
        LengthMismatchError: Size differs from the pin (checked before parsing).
        HashMismatchError: SHA-256 differs from the pin (checked before parsing).
        MetadataError: Not a valid group node, another prefix, a prefix that is not
            ``group_chars`` characters long, or a bin prefix that is not ``bin_chars``.
    """
    what = what or f"group {prefix!r} ({ref.path})"
    check_pinned(data, ref, what)
    group = parse_group(data, what)
    if len(group.prefix) != group_chars:
        raise MetadataError(
            f"{what}: prefix: expected {group_chars} hex characters (the index top's "
            f"group_chars), got {group.prefix!r}"
        )
    if group.prefix != prefix:
        raise MetadataError(f"{what}: prefix: expected {prefix!r}, got {group.prefix!r}")
    # A bin prefix of another length than the top declares would never be looked up
    # (or would shadow a shorter one): the tree has one fan-out, chosen by the signed top.
    for bp in group.bins:
        if len(bp) != bin_chars:
            raise MetadataError(
                f"{what}: bins: expected prefixes of {bin_chars} hex characters (the index "
                f"top's bin_chars), got {bp!r}"
            )
    return group


def verify_bin_node(ref: MetaRef, prefix: str, data: bytes, what: str | None = None) -> BinNode:
    """Verify a bin node against its pin in the group node.

    Args:
        ref: The pin from the verified group node.
        prefix: The prefix the client followed (the top's ``bin_chars`` hex characters,
            a key of the verified group node).
        data: The file bytes.
        what: Names the file in error messages.

    Returns:
        The bin node (embedded release envelopes not yet verified).

    Raises:
        LengthMismatchError: Size differs from the pin (checked before parsing).
        HashMismatchError: SHA-256 differs from the pin (checked before parsing).
        MetadataError: Not a valid bin node, or its prefix is not ``prefix``.
    """
    what = what or f"bin {prefix!r} ({ref.path})"
    check_pinned(data, ref, what)
    node = parse_bin(data, what)
    if node.prefix != prefix:
        raise MetadataError(f"{what}: prefix: expected {prefix!r}, got {node.prefix!r}")
    return node


def _signed_by_publisher(
    env: Envelope, root: Root, publisher: Publisher, what: str
) -> frozenset[str] | None:
    try:
        return _verify_role(
            env,
            RELEASE_TYPE,
            root,
            publisher,
            f"publisher {publisher.name}",
            f"{what} (publisher {publisher.name})",
        )
    except SignatureError:
        return None


def verify_release(
    root: Root,
    envelope: bytes | Mapping[str, Any] | Envelope,
    what: str = "release",
) -> Release:
    """Verify a release attestation; see :func:`verify_release_signed`."""
    return verify_release_signed(root, envelope, what)[0]


def verify_release_signed(
    root: Root,
    envelope: bytes | Mapping[str, Any] | Envelope,
    what: str = "release",
) -> tuple[Release, frozenset[str]]:
    """Verify a release attestation (a ``.zip.sig`` file or an envelope embedded in a bin).

    Accepted when a threshold of the index role signed it, or a threshold of one
    publisher whose namespaces cover the namespace of *every* connector it declares.

    Args:
        root: The trusted root.
        envelope: The envelope bytes or object.
        what: Names the file in error messages.

    Returns:
        The release and the key IDs whose valid signatures met the threshold.

    Raises:
        SignatureError: Malformed envelope, wrong type, or no role or publisher threshold.
        MetadataError: The payload is not a valid release.
        PolicyError: Signed only by publishers whose namespaces do not cover every
            connector (the message names the connector and the keys).
    """
    env = _envelope(envelope, what)
    if env.payload_type != RELEASE_TYPE:
        raise SignatureError(
            f"{what}: expected payload type {RELEASE_TYPE!r}, got {env.payload_type!r}"
        )
    try:
        index_signers = _verify_role(
            env, RELEASE_TYPE, root, root.index, "the index role", f"{what} (index role)"
        )
    except SignatureError as index_error:
        signers = [
            (p, valid)
            for p in root.publishers
            if (valid := _signed_by_publisher(env, root, p, what)) is not None
        ]
        if not signers:
            raise SignatureError(
                f"{what}: expected a threshold of signatures by the index role or by one "
                f"publisher, got neither ({index_error.message})"
            ) from None
    else:
        return parse_release(env.payload, what), index_signers
    release = parse_release(env.payload, what)
    for publisher, valid_keys in signers:
        if all(publisher.covers(c.id) for c in release.connectors):
            return release, frozenset(valid_keys)
    # A publisher may only vouch for its own namespaces: one connector outside them
    # (e.g. a squatted 'modelmesh.*' ID) and the whole release is refused.
    publisher, valid = signers[0]
    outside = next(c for c in release.connectors if not publisher.covers(c.id))
    raise PolicyError(
        f"release {release.name} {release.version}: connector {outside.id!r} (namespace "
        f"{outside.namespace!r}) is outside the namespaces {list(publisher.namespaces)} of "
        f"publisher {publisher.name!r} (key {', '.join(sorted(valid))})"
    )


def release_digest(envelope: Envelope) -> str:
    """The identity of a release envelope: SHA-256 over its signed bytes and its signatures.

    It covers the PAE (payload type and exact payload, length-prefixed) and every signature
    entry (a 64-character key ID and a 64-byte signature each, so the encoding is
    injective): two envelopes with one digest verify identically under any root. It keys
    the record of releases already verified under a root (FORMAT.md §4, step 6).

    Args:
        envelope: The parsed envelope.

    Returns:
        64 lowercase hex characters.
    """
    h = hashlib.sha256(envelope.pae())
    for entry in envelope.signatures:
        h.update(entry.keyid.encode("ascii"))
        h.update(entry.sig)
    return h.hexdigest()


def check_archive(release: Release, *, sha256: str, length: int) -> None:
    """Check a downloaded archive's measured hash and length against its release.

    Args:
        release: The verified release.
        sha256: Hex SHA-256 of the received bytes.
        length: Number of received bytes.

    Raises:
        LengthMismatchError: The length differs.
        HashMismatchError: The hash differs.
    """
    what = f"{release.name} {release.version}"
    check_length(what, release.length, length)
    check_digest(what, release.sha256, sha256)
