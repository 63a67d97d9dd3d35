"""Trust roots: staging a root, collecting signatures, rotating, publishing root N+1.

Root changes are staged as files that several key holders sign in turn (:func:`root_sign`)
before :func:`root_publish` checks the rotation rules and adds ``root/<N+1>.json``
create-only: of two racing root publishers exactly one wins, and a published root never
changes. After a rotation that changed the index or timestamp keys, run ``refresh`` with the
new keys (:func:`~modelmesh_connectors.publish.resign.refresh_index`).
"""

from __future__ import annotations

__all__ = ["PublisherSpec", "root_init", "root_publish", "root_rotate", "root_sign"]

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from modelmesh_connectors._internal.files import write_atomic
from modelmesh_connectors.errors import PublishError, SignatureError
from modelmesh_connectors.index.envelope import ROOT_TYPE, Envelope, parse_envelope
from modelmesh_connectors.index.keys import PublicKey, SigningKey
from modelmesh_connectors.index.metadata import (
    MetadataError,
    Publisher,
    RoleSpec,
    Root,
    parse_root,
)
from modelmesh_connectors.index.trust import check_expiry, verify_next_root
from modelmesh_connectors.publish.state import load_root_chain, utc_now
from modelmesh_connectors.publish.storage import Storage
from modelmesh_connectors.publish.stores import open_storage

_MAX_LISTED = 10  # key IDs named in one error message


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


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
    index: str | os.PathLike[str] | Storage | None = None,
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
        _, roots = load_root_chain(open_storage(index))
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
    try:
        # The staged file is the publisher's own (outside any index): atomic, durable.
        write_atomic(path, signed.to_bytes())
    except OSError as e:
        raise PublishError(f"staged root {path}: cannot write: {e.strerror or e}") from e
    return signed


def root_rotate(
    directory: str | os.PathLike[str] | Storage,
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
    _, roots = load_root_chain(open_storage(directory))
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
    directory: str | os.PathLike[str] | Storage,
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
        directory: The index (directory, ``s3://bucket/prefix/`` or a storage).
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
    now = utc_now(now)
    if isinstance(staged, bytes):
        data = staged
    else:
        try:
            data = Path(staged).read_bytes()
        except OSError as e:
            raise PublishError(f"staged root {staged}: cannot read: {e.strerror or e}") from e
    storage = open_storage(directory)
    storage.ensure_conditions()
    _, roots = load_root_chain(storage)
    what = f"root/{roots[-1].version + 1}.json"
    new = verify_next_root(roots[-1], data, what)
    check_expiry(what, new.expires, now)
    # Create-only is the whole protocol here: a root never changes, and of two racing
    # publishers of root N+1 exactly one succeeds.
    if not storage.create(what, data):
        existing = storage.read(what)
        if existing is None or existing.data != data:
            raise PublishError(
                f"index {storage.location}: {what} exists with other content (another root "
                "was published first)",
                hint="stage the rotation again from the index's current root ('root rotate')",
            )
    storage.flush()
    return new
