"""Full audit of a published index: every file a client could ever fetch, verified.

Where a client checks only the path to the package it wants, the audit walks the whole
tree: every root in the chain, the timestamp, the index top, every group and bin node,
every release envelope, and every archive (hash, length, and its ``.zip.sig`` being
byte-identical to the release embedded in the bin). It reports every failure instead of
stopping at the first, using the same checks as the client (:mod:`trust`).

A file the walk needs that is not there is reported as **missing** (an error: a client
following that reference fails). The timestamp's history (FORMAT.md §3) is walked too: each
``history/`` file the current timestamp reaches through its ``previous`` links must be there
and be the timestamp its link names.

Over 600 lines on purpose: one walk over one tree, whose steps (roots, timestamp and history,
top, nodes, releases, archives, orphans) share the report and the set of files reached; split,
each part would need the walk's state handed back and forth.

Besides errors it reports *warnings*: things a client accepts but a publisher should not
leave behind. A **stray signature** is one by a key that is not authorised for the file
(not a key of its role, or of a publisher covering the release) or one that does not
verify: it counts for nothing, so a signer who believes it added to a threshold did not,
and a planted signature hides among real ones. An **orphan** is a file in the index
that nothing the current timestamp pins refers to (a leftover of a crashed or rebased
publish — ``gc`` removes those after a grace period —, a file planted for a later attack, a
misplaced archive); it is looked for only when every check passed (below a failed file,
every pinned file would look unreferenced).
Superseded ``meta/`` nodes whose name is their content's hash are expected (clients
mid-update may still fetch them) and not reported.

(Length: about 700 lines, over the house's 600, because the walk is one class whose methods
share the findings list and the set of referenced paths; split, they would pass both around.)

Files are read through one callable, ``read(relpath) -> bytes``, which raises
:class:`~modelmesh_connectors.errors.NotFoundError` for a missing file; a local directory
and a remote index differ only in that callable.
"""

from __future__ import annotations

__all__ = [
    "AuditReport",
    "Finding",
    "Reader",
    "audit_directory",
    "audit_index",
    "audit_storage",
    "directory_files",
    "directory_reader",
    "stray_signatures",
]

import hashlib
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelmesh_connectors.errors import (
    ConnectorError,
    DownloadError,
    NotFoundError,
)
from modelmesh_connectors.index.envelope import Envelope, parse_envelope
from modelmesh_connectors.index.keys import PublicKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    IndexTop,
    Release,
    Root,
    Timestamp,
    archive_path,
    format_time,
    history_path,
)
from modelmesh_connectors.index.trust import (
    check_archive,
    check_expiry,
    verify_anchor_root,
    verify_bin_node,
    verify_group_node,
    verify_history_link,
    verify_index_top,
    verify_next_root,
    verify_release,
    verify_timestamp,
)
from modelmesh_connectors.publish.catalogue import CATALOGUE_FILE
from modelmesh_connectors.publish.storage import Storage
from modelmesh_connectors.publish.stores import open_storage

Reader = Callable[[str], bytes]
_MAX_ROOT_VERSIONS = 10_000  # root files walked at most; bounds a hostile endless chain
_LOCK_NAME = ".modelmesh-publish.lock"  # the publisher's lock file (repository.LOCK_NAME)
_META_NODE = re.compile(r"meta/([0-9a-f]{64})\.json")
_MAX_HISTORY = 1_000_000  # history links walked at most; bounds a hostile endless chain
MISSING = "missing: "  # how a missing referenced file's finding starts
ORPHAN = "orphan: "  # how an unreferenced file's warning starts


@dataclass(frozen=True)
class Finding:
    """The outcome of one check.

    Attributes:
        path: Index-relative file the check is about.
        ok: Whether it passed (a warning passes).
        message: What was checked, or what was expected and what was seen.
        warning: Passed, but worth acting on (a stray signature, an orphan file).
    """

    path: str
    ok: bool
    message: str
    warning: bool = False

    @property
    def level(self) -> str:
        """``"error"``, ``"warning"`` or ``"ok"``."""
        return "error" if not self.ok else "warning" if self.warning else "ok"

    def to_json_obj(self) -> dict[str, Any]:
        """Return ``{"path", "ok", "level", "message"}``."""
        return {"path": self.path, "ok": self.ok, "level": self.level, "message": self.message}


@dataclass(frozen=True)
class AuditReport:
    """Every finding of an audit, in the order the checks ran.

    Attributes:
        findings: All findings, passed and failed.
    """

    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(f.ok for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The failed findings."""
        return tuple(f for f in self.findings if not f.ok)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings that passed with a warning (stray signatures, orphan files)."""
        return tuple(f for f in self.findings if f.ok and f.warning)

    @property
    def missing(self) -> tuple[str, ...]:
        """Files something refers to that are not there (errors)."""
        return tuple(f.path for f in self.findings if not f.ok and f.message.startswith(MISSING))

    @property
    def orphans(self) -> tuple[str, ...]:
        """Files nothing the current timestamp reaches refers to (warnings; see ``gc``)."""
        return tuple(f.path for f in self.findings if f.warning and f.message.startswith(ORPHAN))

    def to_json_obj(self) -> dict[str, Any]:
        """Return a JSON-compatible summary with every finding."""
        return {
            "ok": self.ok,
            "checked": len(self.findings),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "missing": list(self.missing),
            "orphans": list(self.orphans),
            "findings": [f.to_json_obj() for f in self.findings],
        }

    def to_json(self) -> str:
        """Return :meth:`to_json_obj` as indented JSON text."""
        return json.dumps(self.to_json_obj(), indent=2, sort_keys=True)


def directory_reader(directory: str | os.PathLike[str]) -> Reader:
    """Build a reader for a local index directory.

    Args:
        directory: The index directory.

    Returns:
        ``read(relpath) -> bytes`` raising :class:`NotFoundError` for a missing file and
        :class:`DownloadError` for any other read failure or a path leaving the directory.
    """
    base = Path(directory).resolve()

    def read(rel: str) -> bytes:
        path = (base / rel).resolve()
        # Paths come from validated metadata, but a reader must never leave its index.
        if not path.is_relative_to(base):
            raise DownloadError(f"{rel}: expected a path inside {base}")
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise NotFoundError(f"{rel}: no such file in {base}") from e
        except OSError as e:
            raise DownloadError(f"{rel}: cannot read from {base}: {e.strerror or e}") from e

    return read


def directory_files(directory: str | os.PathLike[str]) -> list[str]:
    """Every regular file under an index directory, as index-relative POSIX paths.

    Symbolic links are listed too (as files) and never followed into directories.
    """
    base = Path(directory)
    out: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(base):
        for name in filenames:
            out.append((Path(dirpath) / name).relative_to(base).as_posix())
    return sorted(out)


def stray_signatures(
    envelope: Envelope, keys: Mapping[str, PublicKey], authorised: Collection[str], role: str
) -> list[str]:
    """Describe the signatures on ``envelope`` that count for nothing.

    Args:
        envelope: A parsed envelope (already verified to meet its threshold or not).
        keys: Public keys by key ID.
        authorised: The key IDs whose signatures may count for this file.
        role: Names the authorised keys in messages (``"the timestamp role"``).

    Returns:
        One message per stray signature: a key outside ``authorised``, a signature by an
        authorised key that does not verify, or a second signature by one key.
    """
    out: list[str] = []
    seen: set[str] = set()
    signed = envelope.pae()
    for entry in envelope.signatures:
        if entry.keyid in seen:
            out.append(f"key {entry.keyid} signed twice (the second signature counts for nothing)")
            continue
        seen.add(entry.keyid)
        key = keys.get(entry.keyid)
        if entry.keyid not in authorised or key is None:
            out.append(
                f"stray signature by key {entry.keyid}: expected a key of {role} "
                f"({', '.join(sorted(authorised))}); it counts for nothing"
            )
        elif not key.verify(entry.sig, signed):
            out.append(f"signature by key {entry.keyid} of {role} does not verify")
    return out


class _Audit:
    def __init__(
        self, read: Reader, now: datetime, grace: timedelta, trusted_root: bytes | None
    ) -> None:
        self.read = read
        self.now = now
        self.grace = grace
        self.trusted_root = trusted_root
        self.findings: list[Finding] = []
        self.referenced: set[str] = set()  # every path the walk asked for
        self.ts_bytes = b""

    def ok(self, path: str, message: str) -> None:
        self.findings.append(Finding(path, True, message))

    def error(self, path: str, message: str) -> None:
        self.findings.append(Finding(path, False, message))

    def warn(self, path: str, message: str) -> None:
        self.findings.append(Finding(path, True, message, warning=True))

    def strays(
        self,
        path: str,
        envelope: Envelope,
        keys: Mapping[str, PublicKey],
        authorised: Collection[str],
        role: str,
    ) -> None:
        for message in stray_signatures(envelope, keys, authorised, role):
            self.warn(path, message)

    def read_tracked(self, path: str) -> bytes:
        self.referenced.add(path)
        return self.read(path)

    def fetch(self, path: str, referrer: str = "the index") -> bytes | None:
        try:
            return self.read_tracked(path)
        except NotFoundError:
            self.error(path, f"{MISSING}{referrer} refers to it, but it is not there")
            return None
        except ConnectorError as e:
            self.error(path, f"cannot read: {e.message}")
            return None

    def expiry(self, path: str, what: str, expires: datetime) -> None:
        try:
            in_grace = check_expiry(what, expires, self.now, self.grace)
        except ConnectorError as e:
            self.error(path, e.message)
            return
        state = "expired, accepted within the grace period" if in_grace else "not expired"
        self.ok(path, f"{what}: {state} (expires {format_time(expires)})")

    # -- roots -----------------------------------------------------------------

    def roots(self) -> Root | None:
        first = self.fetch("root/1.json")
        if first is None:
            return None
        try:
            root = verify_anchor_root(first, "root/1.json")
        except ConnectorError as e:
            self.error("root/1.json", e.message)
            return None
        if root.version != 1:
            self.error("root/1.json", f"expected root version 1, got {root.version}")
            return None
        self.ok("root/1.json", "root version 1 is signed by a threshold of its own root keys")
        first_env = parse_envelope(first)
        self.strays("root/1.json", first_env, root.keys, root.root.keyids, "root 1's root role")
        chain = [root]
        payloads = [first_env.payload]
        broken_at: str | None = None
        for n in range(2, _MAX_ROOT_VERSIONS + 1):
            rel = f"root/{n}.json"
            try:
                data = self.read_tracked(rel)
            except NotFoundError:
                self.referenced.discard(rel)
                break
            except ConnectorError as e:
                self.error(rel, f"cannot read: {e.message}")
                broken_at = broken_at or rel
                continue
            if broken_at is not None:
                self.error(rel, f"cannot be verified: the root chain is broken at {broken_at}")
                continue
            try:
                new = verify_next_root(chain[-1], data, rel)
            except ConnectorError as e:
                self.error(rel, e.message)
                broken_at = rel
                continue
            envelope = parse_envelope(data)
            # Root N+1 is signed by root N's root keys and its own: both count.
            self.strays(
                rel,
                envelope,
                {**chain[-1].keys, **new.keys},
                {*chain[-1].root.keyids, *new.root.keyids},
                f"root {n - 1}'s or root {n}'s root role",
            )
            chain.append(new)
            payloads.append(envelope.payload)
            self.ok(rel, f"root version {n} is signed by root {n - 1}'s and its own root keys")
        else:
            self.error(
                f"root/{_MAX_ROOT_VERSIONS + 1}.json",
                f"expected at most {_MAX_ROOT_VERSIONS} root versions, got more",
            )
        latest = chain[-1]
        self.expiry(f"root/{latest.version}.json", f"root version {latest.version}", latest.expires)
        if self.trusted_root is not None:
            self.compare_trusted_root(self.trusted_root, chain, payloads)
        return latest

    def compare_trusted_root(
        self, trusted_bytes: bytes, chain: list[Root], payloads: list[bytes]
    ) -> None:
        try:
            trusted = verify_anchor_root(trusted_bytes, "trusted root")
            trusted_payload = parse_envelope(trusted_bytes).payload
        except ConnectorError as e:
            self.error("trusted root", e.message)
            return
        rel = f"root/{trusted.version}.json"
        if trusted.version > len(chain):
            self.error(
                rel,
                f"trusted root is version {trusted.version}, but the index's verified chain "
                f"ends at version {len(chain)}",
            )
        elif payloads[trusted.version - 1] != trusted_payload:
            # Another chain with the same version numbers: not the index we trust.
            self.error(rel, "expected the trusted root's payload, got a different root")
        else:
            self.ok(rel, f"matches the trusted root (version {trusted.version})")

    # -- timestamp and top ------------------------------------------------------

    def timestamp(self, root: Root) -> Timestamp | None:
        data = self.fetch("timestamp.json")
        if data is None:
            return None
        self.ts_bytes = data
        try:
            ts = verify_timestamp(root, data)
        except ConnectorError as e:
            self.error("timestamp.json", e.message)
            return None
        self.ok(
            "timestamp.json",
            f"timestamp version {ts.version} is signed by the timestamp role and pins index "
            f"version {ts.index_version}",
        )
        self.strays(
            "timestamp.json",
            parse_envelope(data),
            root.keys,
            root.timestamp.keyids,
            "the timestamp role",
        )
        self.expiry("timestamp.json", "timestamp.json", ts.expires)
        return ts

    def top(self, root: Root, ts: Timestamp) -> IndexTop | None:
        rel = ts.index.path
        data = self.fetch(rel)
        if data is None:
            return None
        try:
            top = verify_index_top(root, ts, data, f"index top {rel}")
        except ConnectorError as e:
            self.error(rel, e.message)
            return None
        self.ok(rel, f"index top version {top.version} matches the timestamp pin and is signed")
        self.strays(rel, parse_envelope(data), root.keys, root.index.keyids, "the index role")
        self.expiry(rel, f"index top {rel}", top.expires)
        return top

    def history(self, ts: Timestamp, ts_bytes: bytes) -> None:
        """Walk the ``previous`` links back from the current timestamp (FORMAT.md §3)."""
        own = history_path(ts.version, hashlib.sha256(parse_envelope(ts_bytes).payload).hexdigest())
        if ts.previous is not None or self.has(own):
            # The current timestamp's own copy: written with it (absent only before history).
            data = self.fetch(own, "timestamp.json (its history copy)")
            # The payload is the timestamp (a re-signature of one payload is the same one).
            if data is not None and _payload(data) != _payload(ts_bytes):
                self.error(own, "expected the timestamp of timestamp.json, got another one")
        link, child = ts.previous, f"timestamp version {ts.version}"
        walked = 0
        while link is not None and walked < _MAX_HISTORY:
            walked += 1
            data = self.fetch(link.path, child)
            if data is None:
                return
            try:
                older = verify_history_link(link, data)
            except ConnectorError as e:
                self.error(link.path, e.message)
                return
            link, child = older.previous, f"timestamp version {older.version}"
        if walked:
            self.ok("history/", f"{walked} earlier timestamp(s) link up to the current one")

    def has(self, path: str) -> bool:
        try:
            self.read(path)
        except ConnectorError:
            return False
        return True

    # -- tree ------------------------------------------------------------------

    def tree(self, root: Root, top: IndexTop) -> None:
        packages = 0
        for gp, ref in sorted(top.groups.items()):
            data = self.fetch(ref.path, "the index top")
            if data is None:
                continue
            try:
                group = verify_group_node(
                    ref, gp, data, group_chars=top.group_chars, bin_chars=top.bin_chars
                )
            except ConnectorError as e:
                self.error(ref.path, e.message)
                continue
            self.ok(ref.path, f"group {gp!r} matches its pin ({len(group.bins)} bins)")
            for bp, bref in sorted(group.bins.items()):
                bdata = self.fetch(bref.path, f"group {gp!r}")
                if bdata is None:
                    continue
                try:
                    node = verify_bin_node(bref, bp, bdata)
                except ConnectorError as e:
                    self.error(bref.path, e.message)
                    continue
                self.ok(bref.path, f"bin {bp!r} matches its pin ({len(node.packages)} packages)")
                packages += len(node.packages)
                self.releases(root, bref.path, node)
        complete = not any(not f.ok for f in self.findings)
        if complete and top.packages is not None and top.packages != packages:
            self.error(
                "index top",
                f"expected the {top.packages} packages the top counts, got {packages} in its bins",
            )

    def releases(self, root: Root, bin_path: str, node: BinNode) -> None:
        for name, entries in sorted(node.packages.items()):
            for entry in entries:
                file = archive_path(name, entry.version)
                sig_path = f"{file}.sig"
                self.referenced.update((file, sig_path))  # listed, even if not verified
                label = f"release {name} {entry.version}"
                try:
                    release = verify_release(root, entry.release, f"{label} in {bin_path}")
                except ConnectorError as e:
                    self.error(bin_path, e.message)
                    continue
                if release.name != name or release.version != entry.version:
                    self.error(
                        bin_path,
                        f"bin entry {name} {entry.version}: expected a release of {name} "
                        f"{entry.version}, got one of {release.name} {release.version}",
                    )
                    continue
                yanked = f" (yanked: {entry.yanked_reason})" if entry.yanked else ""
                self.ok(bin_path, f"{label} is signed by the index role or its publisher{yanked}")
                self.strays(
                    bin_path,
                    entry.release,
                    root.keys,
                    _release_signers(root, release),
                    f"the index role or a publisher covering {label}",
                )
                sig = self.fetch(sig_path, bin_path)
                if sig is not None:
                    if sig == entry.release.to_bytes():
                        self.ok(sig_path, f"{label}: identical to the release in {bin_path}")
                    else:
                        self.error(
                            sig_path,
                            f"{label}: expected the bytes of the release embedded in "
                            f"{bin_path}, got other bytes",
                        )
                archive = self.fetch(release.file, bin_path)
                if archive is not None:
                    try:
                        check_archive(
                            release,
                            sha256=hashlib.sha256(archive).hexdigest(),
                            length=len(archive),
                        )
                    except ConnectorError as e:
                        self.error(release.file, e.message)
                    else:
                        self.ok(release.file, f"{label}: sha256 and length match the release")

    def orphans(self, files: Iterable[str]) -> None:
        for rel in sorted(set(files) - self.referenced - {_LOCK_NAME}):
            if rel == CATALOGUE_FILE:
                continue  # the catalogue page: unsigned, informational, never read by a client
            if (m := _META_NODE.fullmatch(rel)) is not None:
                try:
                    data = self.read(rel)
                except ConnectorError:
                    data = None
                if data is not None and hashlib.sha256(data).hexdigest() == m.group(1):
                    # A superseded node, kept for clients that read during a publish; named
                    # by its own hash, it is only ever fetched through a pin: harmless.
                    continue
            self.warn(
                rel,
                f"{ORPHAN}nothing the current timestamp pins refers to this file (left by an "
                "interrupted publish, misplaced, or planted?)",
            )


def _payload(data: bytes) -> bytes | None:
    try:
        return parse_envelope(data).payload
    except ConnectorError:
        return None


def _release_signers(root: Root, release: Release) -> set[str]:
    """Key IDs whose signature may count on ``release``: the index role's and those of
    every publisher whose namespaces cover all its connectors."""
    keyids = set(root.index.keyids)
    for publisher in root.publishers:
        if all(publisher.covers(c.id) for c in release.connectors):
            keyids.update(publisher.keyids)
    return keyids


def audit_index(
    read: Reader,
    *,
    now: datetime,
    trusted_root: bytes | None = None,
    expiry_grace: timedelta = timedelta(0),
    files: Iterable[str] | None = None,
) -> AuditReport:
    """Audit a whole index through ``read``.

    Args:
        read: ``read(relpath) -> bytes``; raises :class:`NotFoundError` for a missing file
            (other :class:`ConnectorError` failures are reported as findings).
        now: Reference time for expiry checks (aware).
        trusted_root: Root file bytes the index must agree with (e.g. ``keys/root.json``);
            its version in the index's chain must have the same payload.
        expiry_grace: Tolerated lateness of expiries (reported, not failed).
        files: Every file the index holds (index-relative paths), when they can be listed
            (a local directory): those nothing refers to are reported as orphans (when
            every other check passed).

    Returns:
        The report; ``report.ok`` is False if any check failed. Stray signatures and
        orphan files are warnings (``report.warnings``): they do not fail it.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
    audit = _Audit(read, now, expiry_grace, trusted_root)
    root = audit.roots()
    top: IndexTop | None = None
    if root is not None:
        ts = audit.timestamp(root)
        if ts is not None:
            audit.history(ts, audit.ts_bytes)
            top = audit.top(root, ts)
            if top is not None:
                audit.tree(root, top)
    if files is not None and top is not None and not any(not f.ok for f in audit.findings):
        # Only after a complete walk: below a file that failed, every pinned file would
        # look unreferenced (the report has failed already; fix that first).
        audit.orphans(files)
    return AuditReport(tuple(audit.findings))


def audit_directory(
    directory: str | os.PathLike[str],
    *,
    now: datetime | None = None,
    trusted_root: bytes | None = None,
    expiry_grace: timedelta = timedelta(0),
) -> AuditReport:
    """Audit a local index directory (see :func:`audit_index`).

    Args:
        directory: The index directory.
        now: Reference time (default: the current time).
        trusted_root: Root file bytes the index must agree with.
        expiry_grace: Tolerated lateness of expiries.

    Returns:
        The report, with orphan files (listed from the directory) as warnings.
    """
    return audit_index(
        directory_reader(directory),
        now=now or datetime.now(UTC),
        trusted_root=trusted_root,
        expiry_grace=expiry_grace,
        files=directory_files(directory),
    )


def storage_reader(storage: Storage) -> Reader:
    """A reader over the storage seam (:class:`NotFoundError` for a missing file)."""

    def read(rel: str) -> bytes:
        stored = storage.read(rel)
        if stored is None:
            raise NotFoundError(f"{rel}: no such file in {storage.location}")
        return stored.data

    return read


def audit_storage(
    location: str | os.PathLike[str] | Storage,
    *,
    now: datetime | None = None,
    trusted_root: bytes | None = None,
    expiry_grace: timedelta = timedelta(0),
) -> AuditReport:
    """Audit an index through the storage seam (a directory or ``s3://bucket/prefix/``).

    Args:
        location: The index.
        now: Reference time (default: the current time).
        trusted_root: Root file bytes the index must agree with.
        expiry_grace: Tolerated lateness of expiries.

    Returns:
        The report, with missing files as errors and orphans (listed from the store) as
        warnings.

    Raises:
        StorageError: The store cannot be listed.
    """
    storage = open_storage(location)
    return audit_index(
        storage_reader(storage),
        now=now or datetime.now(UTC),
        trusted_root=trusted_root,
        expiry_grace=expiry_grace,
        files=[entry.key for entry in storage.list()],
    )
