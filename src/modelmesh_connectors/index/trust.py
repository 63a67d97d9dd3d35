"""The sans-I/O trust core: decides whether index bytes can be trusted.

Modelled on python-tuf's ``trusted_metadata_set.py``. Everything here takes bytes, the
trusted state and the reference time as arguments and returns a verified, typed object
or raises a :class:`~modelmesh_connectors.errors.TrustError`. Nothing here opens a file
or a socket or reads the clock, so every attack is a short unit test.

Two layers:

* pure per-file checks in :mod:`~modelmesh_connectors.index.verify` (re-exported here:
  :func:`verify_anchor_root`, :func:`verify_next_root`,
  :func:`verify_timestamp`, :func:`verify_index_top`, :func:`verify_group_node`,
  :func:`verify_bin_node`, :func:`verify_release`, :func:`check_expiry`,
  :func:`check_pinned`, :func:`check_archive`), which the audit uses one by one;
* :class:`TrustedState`, which adds what needs memory across files: update order,
  rollback protection, the bounded root walk and expiry, exactly as a client update
  (FORMAT.md §4) needs them.

Over 600 lines on purpose: :class:`TrustedState` is one state machine (root walk →
timestamp and its history → index top → nodes → releases) whose checks read each other's
fields; split, its invariants would be spread over several files.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_HISTORY_WALK",
    "DEFAULT_MAX_ROOT_ROTATIONS",
    "HistoryReader",
    "TrustedState",
    "VerifiedReleases",
    "anchor_identity",
    "check_archive",
    "check_expiry",
    "check_pinned",
    "release_digest",
    "trust_root_id",
    "verify_anchor_root",
    "verify_bin_node",
    "verify_group_node",
    "verify_history_link",
    "verify_index_top",
    "verify_next_root",
    "verify_release",
    "verify_release_signed",
    "verify_timestamp",
]

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from modelmesh_connectors.errors import (
    ForkError,
    HashMismatchError,
    PolicyError,
    ResolutionError,
    RollbackError,
    RootRotationError,
    TrustError,
)
from modelmesh_connectors.index.envelope import (
    RELEASE_TYPE,
    Envelope,
)
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    MetadataError,
    MetaRef,
    Release,
    Root,
    Timestamp,
    TimestampLink,
    parse_release,
    parse_timestamp,
)
from modelmesh_connectors.index.verify import (
    _envelope,
    anchor_identity,
    check_archive,
    check_expiry,
    check_pinned,
    release_digest,
    trust_root_id,
    verify_anchor_root,
    verify_bin_node,
    verify_group_node,
    verify_index_top,
    verify_next_root,
    verify_release,
    verify_release_signed,
    verify_timestamp,
    verify_timestamp_payload,
)

DEFAULT_MAX_ROOT_ROTATIONS = 32  # new root versions accepted per update (FORMAT.md §3)
DEFAULT_MAX_HISTORY_WALK = 1024  # history links followed per update (FORMAT.md §3 history)

HistoryReader = Callable[[TimestampLink], bytes]
"""Returns the bytes of ``history/<version>-<sha256>.json`` for a link (the caller's I/O)."""
_HEX_RE = re.compile(r"[0-9a-f]*")


# -- history -------------------------------------------------------------------


def verify_history_link(link: TimestampLink, data: bytes) -> Timestamp:
    """Check a history file against the link that names it, and parse it.

    No signature is checked: the link comes from a verified timestamp (or from a file
    checked this way), so the hash chain authenticates every file back from it, even one
    signed by keys rotated out since.

    Args:
        link: The ``previous`` link naming the file.
        data: The bytes of ``history/<version>-<sha256>.json``.

    Returns:
        The timestamp it holds.

    Raises:
        SignatureError: Not an envelope.
        HashMismatchError: Its payload is not the one the link names.
        MetadataError: Not a timestamp of the linked version.
    """
    what = link.path
    payload = _envelope(data, what).payload
    digest = hashlib.sha256(payload).hexdigest()
    if digest != link.sha256:
        raise HashMismatchError(
            f"sha256 mismatch for {what}: expected payload {link.sha256}, got {digest}"
        )
    ts = parse_timestamp(payload, what)
    if ts.version != link.version:
        raise MetadataError(f"{what}: expected timestamp version {link.version}, got {ts.version}")
    return ts


def _check_extends(
    old: Timestamp,
    old_payload: bytes,
    new: Timestamp,
    history: HistoryReader | None,
    max_walk: int,
) -> None:
    """Raise :class:`ForkError` unless ``new`` extends ``old`` (see update_timestamp)."""
    if new.previous is None:
        if old.previous is not None:
            raise ForkError(
                f"timestamp.json: version {new.version} names no predecessor, but the trusted "
                f"version {old.version} is part of a history (history dropped: a fork?)"
            )
        return  # an index written before history existed
    link = new.previous
    for _ in range(max_walk):
        if link.version <= old.version or history is None:
            break
        ts = verify_history_link(link, history(link))
        if ts.previous is None:
            raise ForkError(
                f"timestamp.json: version {new.version}'s history starts at version "
                f"{ts.version}, after the trusted version {old.version}: not the history "
                "this client trusts"
            )
        link = ts.previous
    else:
        return  # a gap longer than the walk: accepted unchecked (FORMAT.md §3 limits)
    if link.version > old.version:
        return  # no history reader: the gap is not checked
    trusted = hashlib.sha256(old_payload).hexdigest()
    if link.version != old.version or link.sha256 != trusted:
        raise ForkError(
            f"timestamp.json: version {new.version} extends timestamp version {link.version} "
            f"(payload sha256 {link.sha256}), but this client trusts version {old.version} "
            f"(payload sha256 {trusted}): the index showed two different histories",
            hint="a publisher wrote without a compare-and-swap, or the server is compromised; "
            "compare the index's history/ with the timestamps clients hold",
        )


class VerifiedReleases:
    """Release envelopes whose signatures were verified under one trusted root.

    FORMAT.md §4 step 6: an envelope embedded in a bin node is reached by hash from the
    verified index top (top → group → bin, each pinned by sha256 and length), so its bytes
    are exactly what the index role signed. Its own signatures are checked the first time
    it is accepted under a root; after that, an envelope with the same
    :func:`release_digest` under the same root (:attr:`TrustedState.root_identity`) is
    accepted by hash equality with the signers recorded then. The payload is still parsed
    and bound to its bin entry on every use, and the archive is still hashed on every use.

    This is a value: the I/O shell loads it from the trust root's record and saves
    :attr:`added` back; nothing here reads or writes a file.

    Args:
        root_identity: The :attr:`TrustedState.root_identity` the entries were verified
            under; entries of any other root are never consulted.
        entries: Release digest → the key IDs whose signatures met a threshold.
    """

    def __init__(
        self, root_identity: str, entries: Mapping[str, frozenset[str]] | None = None
    ) -> None:
        self.root_identity = root_identity
        self._entries: dict[str, frozenset[str]] = dict(entries or {})
        self.added: dict[str, frozenset[str]] = {}  # verified in this run, to be saved

    def get(self, digest: str) -> frozenset[str] | None:
        """The signers recorded for ``digest``, or ``None`` if it was never verified."""
        return self._entries.get(digest)

    def add(self, digest: str, signers: frozenset[str]) -> None:
        """Record a release envelope that has just passed full verification."""
        self._entries[digest] = signers
        self.added[digest] = signers

    def entries(self) -> dict[str, frozenset[str]]:
        """Every recorded digest and its signers."""
        return dict(self._entries)


# -- stateful update -----------------------------------------------------------


class TrustedState:
    """The trusted metadata of one client update, fed bytes in FORMAT.md §4 order.

    Order of calls: :meth:`update_root` for each new root version; optionally
    :meth:`load_trusted_timestamp` and :meth:`load_trusted_index` with the previously
    trusted local copies (the rollback reference; discard them if they fail: after a key
    rotation they are no longer signed by trusted keys); :meth:`update_timestamp` with the
    fetched timestamp; :meth:`update_index` when the pinned top differs from the cached
    one (or :meth:`load_trusted_index` with the cached top when it is the pinned one);
    then :meth:`verify_group`, :meth:`verify_bin` and :meth:`verify_release`.

    Every method either commits its result or raises and leaves the state unchanged.

    Args:
        root_bytes: The trusted root (shipped anchor or local copy); it must carry a
            threshold of signatures of its own root role. Its expiry is checked only once
            the root walk is over. Or a :class:`Root` that :func:`verify_anchor_root`
            returned for those bytes (a client building several states in one run checks
            the anchor once).
        now: Reference time for every expiry check (aware).
        expiry_grace: Tolerated lateness of expiries; files accepted thanks to it are
            listed in :attr:`expired_in_grace`.
        max_root_rotations: Most new root versions accepted in one update.

    Raises:
        SignatureError: The anchor is malformed or not signed by its own root role.
        MetadataError: The anchor is not a valid root.
        ValueError: ``now`` is naive or ``expiry_grace`` is negative.
    """

    def __init__(
        self,
        root_bytes: bytes | Root,
        now: datetime,
        *,
        expiry_grace: timedelta = timedelta(0),
        max_root_rotations: int = DEFAULT_MAX_ROOT_ROTATIONS,
    ) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
        if expiry_grace < timedelta(0):
            raise ValueError(f"expiry_grace: expected >= 0, got {expiry_grace}")
        self._now = now
        self._grace = expiry_grace
        self._max_rotations = max_root_rotations
        self._root = root_bytes if isinstance(root_bytes, Root) else verify_anchor_root(root_bytes)
        self._walk_start = self._root
        self._identity: tuple[Root, str] | None = None
        self._rotations = 0
        self._root_final = False
        self._timestamp: Timestamp | None = None
        self._timestamp_payload = b""
        self._index: IndexTop | None = None
        self._index_ref: MetaRef | None = None
        self._index_updated = False
        self._groups: dict[str, GroupNode] = {}
        self._in_grace: dict[str, datetime] = {}

    # -- views ---------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The reference time."""
        return self._now

    @property
    def root(self) -> Root:
        """The trusted root."""
        return self._root

    @property
    def root_identity(self) -> str:
        """SHA-256 of the trusted root's payload (its keys, roles, publishers, version).

        Keys :class:`VerifiedReleases`: any change to who may sign releases makes a new
        identity, so releases verified under an older root are verified again.
        """
        if self._identity is None or self._identity[0] is not self._root:
            self._identity = (self._root, hashlib.sha256(self._root.to_payload()).hexdigest())
        return self._identity[1]

    @property
    def timestamp(self) -> Timestamp | None:
        """The trusted timestamp, if one was loaded."""
        return self._timestamp

    @property
    def index(self) -> IndexTop | None:
        """The trusted index top, if one was loaded (it may predate the current timestamp)."""
        return self._index

    @property
    def expired_in_grace(self) -> list[tuple[str, datetime]]:
        """Files accepted only thanks to ``expiry_grace``: (name, expiry), for logging."""
        return list(self._in_grace.items())

    # -- internals -----------------------------------------------------------

    def _expiry(self, what: str, expires: datetime) -> None:
        if check_expiry(what, expires, self._now, self._grace):
            self._in_grace[what] = expires

    def _root_name(self) -> str:
        return f"root/{self._root.version}.json"

    def _finish_root_walk(self) -> None:
        self._root_final = True

    def _require_timestamp(self) -> Timestamp:
        if self._timestamp is None:
            raise RuntimeError("no timestamp loaded: call update_timestamp first")
        return self._timestamp

    def _current_index(self) -> IndexTop:
        ts = self._require_timestamp()
        if self._index is None or self._index_ref != ts.index:
            raise RuntimeError(
                "the index top pinned by the current timestamp is not loaded: call update_index"
            )
        # Checked on every use, so a client running on local copies (offline) still
        # notices a frozen index.
        self._expiry(self._root_name(), self._root.expires)
        self._expiry("timestamp.json", ts.expires)
        self._expiry(f"index top {ts.index.path}", self._index.expires)
        return self._index

    # -- root ----------------------------------------------------------------

    def update_root(self, data: bytes) -> Root:
        """Accept root version N+1 (FORMAT.md §3 rotation rules).

        Args:
            data: The bytes of ``root/<N+1>.json``.

        Returns:
            The new trusted root.

        Raises:
            RuntimeError: A timestamp was already loaded (the walk is over).
            RootRotationError: More than ``max_root_rotations`` steps (the roots accepted
                so far stay trusted), or a skipped or repeated version.
            SignatureError: Not signed by a threshold of the trusted root's root role and
                of its own root role, or malformed, or not a root.
            MetadataError: Not a valid root.

        On a bad version the whole walk fails: the trusted root goes back to the one the
        walk started from, so a client persists new roots only after a successful walk.
        """
        if self._root_final:
            raise RuntimeError("cannot update the root after the timestamp was loaded")
        if self._rotations >= self._max_rotations:
            # Bounds the work a server can demand with an endless chain of roots.
            raise RootRotationError(
                f"root/{self._root.version + 1}.json: expected at most {self._max_rotations} "
                f"new root versions in one update, got more (bounded walk)"
            )
        try:
            new = verify_next_root(self._root, data)
        except TrustError:
            self._root = self._walk_start
            self._rotations = 0
            raise
        self._root = new
        self._rotations += 1
        return new

    # -- timestamp -----------------------------------------------------------

    def load_trusted_timestamp(self, data: bytes) -> Timestamp:
        """Load the previously trusted local timestamp as the rollback reference.

        Signatures are checked with the current root; expiry is not (an expired copy is
        still a valid lower bound). Ends the root walk.

        Args:
            data: The local ``timestamp.json`` bytes.

        Returns:
            The timestamp.

        Raises:
            RuntimeError: A timestamp is already loaded.
            SignatureError: Not signed by the timestamp role (e.g. after a key rotation).
            MetadataError: Not a valid timestamp.
        """
        if self._timestamp is not None:
            raise RuntimeError("a timestamp is already loaded")
        self._finish_root_walk()
        ts, payload = verify_timestamp_payload(self._root, data, "trusted timestamp.json")
        self._timestamp, self._timestamp_payload = ts, payload
        return ts

    def update_timestamp(
        self,
        data: bytes,
        *,
        history: HistoryReader | None = None,
        max_history_walk: int = DEFAULT_MAX_HISTORY_WALK,
    ) -> Timestamp:
        """Accept a newly fetched timestamp. Ends the root walk.

        A newer timestamp must extend the trusted one (FORMAT.md §3 history): the next
        version names the trusted one's payload hash as ``previous``; across a gap, the
        links are followed through ``history`` back to the trusted version. Another
        predecessor at that version means the server showed this client two different
        histories: :class:`ForkError`. Without ``history`` (or past ``max_history_walk``
        links) a gap is accepted unchecked.

        Args:
            data: The fetched ``timestamp.json`` bytes.
            history: Reads one history file (for gaps); None skips gap checks.
            max_history_walk: Most history links followed.

        Returns:
            The new trusted timestamp.

        Raises:
            RuntimeError: The index top was already updated in this session.
            ExpiredError: The trusted root or the timestamp is expired (beyond grace).
            SignatureError: Malformed, wrong type, or timestamp-role threshold not met.
            MetadataError: Not a valid timestamp.
            RollbackError: Lower version than trusted, same version with other payload
                bytes, or a lower pinned index version (or same with another hash).
            ForkError: The new timestamp does not extend the trusted one.
            HashMismatchError: A history file is not the one its link names.
            Exception: Whatever ``history`` raises (e.g. a download error).
        """
        if self._index_updated:
            raise RuntimeError("cannot update the timestamp after the index top was updated")
        self._finish_root_walk()
        # After the walk the root must be fresh: an expired root may list stolen keys.
        self._expiry(self._root_name(), self._root.expires)
        new, payload = verify_timestamp_payload(self._root, data, "timestamp.json")
        old = self._timestamp
        if old is not None:
            if new.version < old.version:
                raise RollbackError(
                    f"timestamp.json: version {new.version} is lower than trusted version "
                    f"{old.version} (rollback)"
                )
            if new.version == old.version and payload != self._timestamp_payload:
                raise RollbackError(
                    f"timestamp.json: version {new.version} equals the trusted version but "
                    f"its content differs (a signer reused a version number)"
                )
            if new.index_version < old.index_version:
                raise RollbackError(
                    f"timestamp.json: pins index version {new.index_version}, lower than "
                    f"trusted index version {old.index_version} (rollback)"
                )
            if new.index_version == old.index_version and new.index != old.index:
                raise RollbackError(
                    f"timestamp.json: pins index version {new.index_version} with sha256 "
                    f"{new.index.sha256}, but the trusted index version "
                    f"{old.index_version} has sha256 {old.index.sha256}"
                )
            if new.version > old.version:
                _check_extends(old, self._timestamp_payload, new, history, max_history_walk)
        self._expiry("timestamp.json", new.expires)
        self._timestamp, self._timestamp_payload = new, payload
        if self._index_ref != new.index:
            self._groups.clear()
        return new

    # -- index top -----------------------------------------------------------

    def load_trusted_index(self, data: bytes) -> IndexTop:
        """Load the cached index top pinned by the current timestamp (no expiry check).

        Use it with the local copy after :meth:`load_trusted_timestamp` (as the rollback
        reference) or after :meth:`update_timestamp` when the new pin is the cached file.

        Args:
            data: The cached ``meta/<sha256>.json`` bytes.

        Returns:
            The index top.

        Raises:
            RuntimeError: No timestamp loaded, or an index top already loaded.
            LengthMismatchError, HashMismatchError: Not the pinned file.
            SignatureError: Index-role threshold not met.
            MetadataError: Not a valid index top, or version above the pinned one.
            RollbackError: Version below the pinned one.
        """
        ts = self._require_timestamp()
        if self._index is not None:
            raise RuntimeError("an index top is already loaded")
        top = verify_index_top(self._root, ts, data, f"trusted index top {ts.index.path}")
        self._index, self._index_ref = top, ts.index
        self._groups.clear()
        return top

    def update_index(self, data: bytes) -> IndexTop:
        """Accept a newly fetched index top pinned by the current timestamp.

        Args:
            data: The fetched ``meta/<sha256>.json`` bytes.

        Returns:
            The new trusted index top.

        Raises:
            RuntimeError: No timestamp loaded.
            ExpiredError: The timestamp or the top is expired (beyond grace).
            LengthMismatchError, HashMismatchError: Not the pinned file (checked first).
            SignatureError: Malformed, wrong type, or index-role threshold not met.
            MetadataError: Not a valid index top, or version above the pinned one.
            RollbackError: Version below the pinned one or the trusted one, or the trusted
                version with other bytes.
        """
        ts = self._require_timestamp()
        self._expiry("timestamp.json", ts.expires)
        what = f"index top {ts.index.path}"
        top = verify_index_top(self._root, ts, data, what)
        old = self._index
        if old is not None:
            if top.version < old.version:
                raise RollbackError(
                    f"{what}: version {top.version} is lower than trusted version "
                    f"{old.version} (rollback)"
                )
            if top.version == old.version and self._index_ref != ts.index:
                raise RollbackError(
                    f"{what}: version {top.version} equals the trusted version but its "
                    f"bytes differ (a signer reused a version number)"
                )
        self._expiry(what, top.expires)
        self._index, self._index_ref = top, ts.index
        self._index_updated = True
        self._groups.clear()
        return top

    # -- nodes and releases ---------------------------------------------------

    def verify_group(self, prefix: str, data: bytes) -> GroupNode:
        """Verify the group node that the current index top pins under ``prefix``.

        Args:
            prefix: The top's ``group_chars`` hex characters (``index.group_prefix(name)``).
            data: The fetched ``meta/<sha256>.json`` bytes.

        Returns:
            The group node.

        Raises:
            RuntimeError: The current index top is not loaded.
            ValueError: ``prefix`` is not ``group_chars`` lowercase hex characters.
            ExpiredError: Root, timestamp or index top expired (beyond grace).
            ResolutionError: The index top has no group ``prefix`` (no such package).
            LengthMismatchError, HashMismatchError: Not the pinned bytes (checked first).
            MetadataError: Not a valid group node, another prefix, or prefix lengths other
                than the top's ``group_chars`` and ``bin_chars``.
        """
        top = self._current_index()
        if len(prefix) != top.group_chars or not _HEX_RE.fullmatch(prefix):
            raise ValueError(
                f"group prefix: expected {top.group_chars} lowercase hex characters (the "
                f"index top's group_chars), got {prefix!r}"
            )
        ref = top.groups.get(prefix)
        if ref is None:
            raise ResolutionError(f"index top version {top.version} has no group {prefix!r}")
        group = verify_group_node(
            ref, prefix, data, group_chars=top.group_chars, bin_chars=top.bin_chars
        )
        self._groups[prefix] = group
        return group

    def verify_bin(self, group: GroupNode, prefix: str, data: bytes) -> BinNode:
        """Verify the bin node that ``group`` pins under ``prefix``.

        Args:
            group: A group returned by :meth:`verify_group` for the current index top.
            prefix: The top's ``bin_chars`` hex characters (``index.bin_prefix(name)``).
            data: The fetched ``meta/<sha256>.json`` bytes.

        Returns:
            The bin node.

        Raises:
            RuntimeError: ``group`` was not verified against the current index top.
            ValueError: ``prefix`` is not ``bin_chars`` lowercase hex characters.
            ExpiredError: Root, timestamp or index top expired (beyond grace).
            ResolutionError: The group has no bin ``prefix`` (no such package).
            LengthMismatchError, HashMismatchError: Not the pinned bytes (checked first).
            MetadataError: Not a valid bin node, or another prefix.
        """
        top = self._current_index()
        if len(prefix) != top.bin_chars or not _HEX_RE.fullmatch(prefix):
            raise ValueError(
                f"bin prefix: expected {top.bin_chars} lowercase hex characters (the index "
                f"top's bin_chars), got {prefix!r}"
            )
        # Only a group verified against the current top may lead to a bin: a group kept
        # from an older index state would mix two states (mix-and-match).
        if self._groups.get(group.prefix) is not group:
            raise RuntimeError("group was not verified against the current index top")
        ref = group.bins.get(prefix)
        if ref is None:
            raise ResolutionError(f"group {group.prefix!r} has no bin {prefix!r}")
        return verify_bin_node(ref, prefix, data)

    def verify_release(self, envelope: bytes | Mapping[str, Any] | Envelope) -> Release:
        """Verify a release attestation with the trusted root (see :func:`verify_release`).

        Ends the root walk; the root must not be expired.

        Args:
            envelope: ``.zip.sig`` bytes or an embedded envelope.

        Returns:
            The release.

        Raises:
            ExpiredError: The trusted root is expired (beyond grace).
            SignatureError: No index-role or publisher threshold, malformed, wrong type.
            MetadataError: Not a valid release.
            PolicyError: A publisher signed a connector outside its namespaces.
        """
        return self.verify_release_signed(envelope)[0]

    def verify_release_signed(
        self, envelope: bytes | Mapping[str, Any] | Envelope
    ) -> tuple[Release, frozenset[str]]:
        """As :meth:`verify_release`, also returning the key IDs that met the threshold."""
        self._finish_root_walk()
        self._expiry(self._root_name(), self._root.expires)
        return verify_release_signed(self._root, envelope)

    def verify_bin_release(self, name: str, entry: BinRelease) -> Release:
        """Verify a bin entry's release and that it is the release the bin says it is.

        Args:
            name: The package name the entry is listed under.
            entry: The entry from a verified bin node.

        Returns:
            The release.

        Raises:
            ExpiredError, SignatureError, MetadataError: As :meth:`verify_release`.
            PolicyError: As :meth:`verify_release`, or the signed name or version is not
                the one the bin lists (a valid release moved to another entry).
        """
        return self.verify_bin_release_signed(name, entry)[0]

    def verify_bin_release_signed(
        self, name: str, entry: BinRelease, *, verified: VerifiedReleases | None = None
    ) -> tuple[Release, frozenset[str]]:
        """As :meth:`verify_bin_release`, also returning the key IDs that met the threshold.

        Args:
            name: The package name the entry is listed under.
            entry: The entry from a verified bin node (its bytes are pinned by hash from
                the verified index top: only a bin from :meth:`verify_bin` may be passed).
            verified: Releases verified before under a root. When its root identity is
                this state's and it holds the entry's :func:`release_digest`, the
                signatures are not checked again (FORMAT.md §4 step 6); every release that
                passes full verification here is added to it.

        Raises:
            As :meth:`verify_bin_release`.
        """
        if verified is not None and verified.root_identity != self.root_identity:
            verified = None  # recorded under another root: its keys may have changed
        digest = release_digest(entry.release) if verified is not None else ""
        known = verified.get(digest) if verified is not None else None
        if known is not None:
            self._finish_root_walk()
            if not self._now < self._root.expires:  # named only when it matters (per release)
                self._expiry(self._root_name(), self._root.expires)
            if entry.release.payload_type != RELEASE_TYPE:  # cannot be: it was verified
                raise RuntimeError("a verified release digest names a non-release envelope")
            release, signers = parse_release(entry.release.payload), known
        else:
            release, signers = self.verify_release_signed(entry.release)
            if verified is not None:
                verified.add(digest, signers)
        if release.name != name or release.version != entry.version:
            raise PolicyError(
                f"bin entry {name} {entry.version}: expected a release of {name} "
                f"{entry.version}, got a release of {release.name} {release.version}"
            )
        return release, signers
