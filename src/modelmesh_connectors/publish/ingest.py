"""The ingest job: verifies publishers' submissions and signs them into the index.

Runs where the index and timestamp signers are (an HSM, Vault, or files), on a schedule.
A run has two phases:

1. **prepare** (no lock): take at most ``per_publisher`` submissions from each publisher's
   inbox folder, round-robin, at most ``total`` in all (the rest wait for the next run);
   read each envelope and archive without following links and within caps; check the
   signature, the namespaces and the package-name owner against the root in force *now*;
   check that the archive's bytes hash to the signed sha256 and length, read it with the
   same safe zip reader the client uses (nothing from a submission is ever imported), and
   that its manifest states the signed release; stage the exact bytes in the index directory.
2. **commit** (under the index lock, :func:`batch.commit_releases`): load the index state
   again and decide each candidate against *that* root — so a key revoked, or a namespace
   moved, by a root rotation that landed during the run is honoured — then fold every
   accepted release into one index update signed once by the index and timestamp signers.

Every decision is written for the publisher's CI to read back (:mod:`inbox`): a record in
``accepted/`` or ``rejected/`` with a stable reason code (docs/PUBLISHING.md).
"""

from __future__ import annotations

__all__ = [
    "REASONS",
    "IngestLimits",
    "IngestReport",
    "IngestRun",
    "ingest",
]

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelmesh_connectors.errors import (
    PackageError,
    PolicyError,
    PublishError,
    SignatureError,
    TrustError,
)
from modelmesh_connectors.index.envelope import MAX_ENVELOPE_BYTES, parse_envelope
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import MetadataError, Publisher, Release, Root
from modelmesh_connectors.index.trust import verify_release_signed
from modelmesh_connectors.package.package import MAX_ARCHIVE_BYTES, package_from_bytes
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.batch import Candidate, Refusal, commit_releases
from modelmesh_connectors.publish.inbox import (
    ARCHIVE_NAME,
    ENVELOPE_NAME,
    SUBMISSION_ID_RE,
    SubmissionRecord,
    check_publisher_name,
    read_regular,
    release_for,
    remove_pending,
    submission_id,
    write_record,
)
from modelmesh_connectors.publish.ownership import name_owner, owned_names_hint

# Stable reason codes a publisher's CI can branch on (docs/PUBLISHING.md lists them).
REASONS = {
    "published": "listed in the index",
    "already-published": "the identical release was already listed (a replay)",
    "malformed": "the submission folder is not as `submit` writes it",
    "bad-envelope": "release.sig is not a valid release envelope",
    "unknown-publisher": "the inbox folder names no publisher of the root",
    "untrusted-signer": "not signed by a threshold of the folder's publisher's current keys",
    "namespace": "a connector outside the publisher's namespaces",
    "package-name": "the package name belongs to another publisher or the index role",
    "too-large": "the archive is over the ingest size limit",
    "mismatch": "the archive is not the one the release signs",
    "bad-archive": "the archive fails the safe package reader",
    "version-exists": "the version is published with other content",
    "version-yanked": "the version was published and yanked",
    "duplicate": "the same name and version twice in one run",
    "stray-file": "an unlisted file is in the way in the index (operator)",
}


@dataclass(frozen=True)
class IngestLimits:
    """Bounds of one ingest run.

    Attributes:
        per_publisher: Submissions taken from one publisher's folder per run (decided
            either way); the rest wait, so one publisher's flood delays only itself.
        total: Submissions taken per run, over all publishers (round-robin).
        scan_per_publisher: Folder entries looked at per publisher per run (listing cost).
        max_archive_bytes: Largest archive accepted, in bytes.
    """

    per_publisher: int = 16  # submissions per publisher per run
    total: int = 256  # submissions per run
    scan_per_publisher: int = 4096  # directory entries listed per publisher folder
    max_archive_bytes: int = MAX_ARCHIVE_BYTES  # bytes


@dataclass
class IngestReport:
    """The outcome of a run: one record per decided submission, and what waits.

    Attributes:
        published: Records of submissions now listed (or already listed).
        rejected: Records of refused submissions.
        deferred: Submissions left pending per publisher folder (over a limit).
        index_version: Version of the new index top, None when nothing was written.
    """

    published: list[SubmissionRecord] = field(default_factory=list)
    rejected: list[SubmissionRecord] = field(default_factory=list)
    deferred: dict[str, int] = field(default_factory=dict)
    index_version: int | None = None

    def to_json(self) -> str:
        """The report as JSON (records as written to the inbox)."""

        def rec(r: SubmissionRecord) -> object:
            return json.loads(r.to_json())

        return json.dumps(
            {
                "published": [rec(r) for r in self.published],
                "rejected": [rec(r) for r in self.rejected],
                "deferred": self.deferred,
                "index_version": self.index_version,
            },
            sort_keys=True,
            indent=2,
        )


@dataclass
class _Prepared:
    publisher: str
    path: Path
    candidate: Candidate


class _Reject(Exception):
    def __init__(self, reason: str, message: str, release: Release | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.release = reason, message, release


def _publisher(root: Root, name: str) -> Publisher | None:
    return next((p for p in root.publishers if p.name == name), None)


def _check_signed(root: Root, publisher: str, candidate: Candidate) -> None:
    """Raise _Reject unless ``publisher`` of ``root`` may have signed this release."""
    entry = _publisher(root, publisher)
    what = f"{candidate.release.name} {candidate.release.version}"
    if entry is None:
        raise _Reject(
            "unknown-publisher",
            f"publisher {publisher!r} is not in root version {root.version} (removed?)",
        )
    try:
        release, keyids = verify_release_signed(root, candidate.envelope, f"release {what}")
    except PolicyError as e:
        raise _Reject("namespace", e.message) from e
    except SignatureError as e:
        raise _Reject(
            "untrusted-signer",
            f"{e.message} (under root version {root.version}: a revoked or unknown key?)",
        ) from e
    except (MetadataError, TrustError) as e:
        raise _Reject("bad-envelope", e.message) from e
    if not keyids <= set(entry.keyids):
        raise _Reject(
            "untrusted-signer",
            f"release {what}: signed by keys that are not publisher {publisher!r}'s under root "
            f"version {root.version}",
        )
    if release != candidate.release:  # pragma: no cover - the same payload bytes
        raise _Reject("bad-envelope", f"release {what}: payload changed")
    # Every connector in the publisher's namespaces (checked by verify_release_signed for
    # the publisher that met the threshold: that is this one, since all keys are its own).
    owner = name_owner(root, release.name)
    if owner is None or owner.name != publisher:
        who = "the index role" if owner is None else f"publisher {owner.name!r}"
        raise _Reject(
            "package-name",
            f"package name {release.name!r} belongs to {who} under root version "
            f"{root.version}, not to {publisher!r}; {owned_names_hint(entry)}",
        )


class IngestRun:
    """One ingest run over an inbox into an index; :func:`ingest` runs both phases.

    Args:
        index: The index directory.
        inbox: The inbox directory.
        index_keys: Signer(s) meeting the index threshold.
        timestamp_keys: Signer(s) meeting the timestamp threshold.
        limits: Bounds of the run.
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.
    """

    def __init__(
        self,
        index: str | os.PathLike[str],
        inbox: str | os.PathLike[str],
        *,
        index_keys: SigningKey | Sequence[SigningKey],
        timestamp_keys: SigningKey | Sequence[SigningKey],
        limits: IngestLimits | None = None,
        now: datetime | None = None,
        index_expiry: timedelta = repository.DEFAULT_INDEX_EXPIRY,
        timestamp_expiry: timedelta = repository.DEFAULT_TIMESTAMP_EXPIRY,
    ) -> None:
        self.index, self.inbox = Path(index), Path(inbox)
        self._staging: Path | None = None
        self.index_keys, self.timestamp_keys = index_keys, timestamp_keys
        self.limits = limits or IngestLimits()
        self.now = now
        self.index_expiry, self.timestamp_expiry = index_expiry, timestamp_expiry
        self.report = IngestReport()
        self._prepared: list[_Prepared] = []

    # -- records ---------------------------------------------------------------

    def _decided(
        self,
        publisher: str,
        path: Path,
        status: str,
        reason: str,
        message: str,
        *,
        release: Release | None,
        root_version: int | None,
        index_version: int | None = None,
    ) -> None:
        record = SubmissionRecord(
            id=path.name,
            publisher=publisher,
            status=status,
            reason=reason,
            message=message,
            name=release.name if release else None,
            version=release.version if release else None,
            sha256=release.sha256 if release else None,
            root_version=root_version,
            index_version=index_version,
            decided_at=datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        )
        # The record first: a crash between the two leaves a decided submission pending,
        # decided again the same way on the next run, never a submission with no answer.
        write_record(self.inbox, record)
        remove_pending(path)
        (self.report.published if status == "published" else self.report.rejected).append(record)

    # -- phase 1 ---------------------------------------------------------------

    def _select(self) -> list[tuple[str, Path]]:
        """Round-robin over publisher folders, within the limits; count what waits."""
        pending = self.inbox / "pending"
        queues: dict[str, list[Path]] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.scandir(pending), key=lambda e: e.name):
                # A folder only, never a link: a planted link must not point ingest elsewhere.
                if not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    check_publisher_name(entry.name)
                except PublishError:
                    continue
                items: list[tuple[int, str, Path]] = []
                with os.scandir(entry.path) as it:
                    for i, sub in enumerate(it):
                        if i >= self.limits.scan_per_publisher:
                            break
                        if sub.name.startswith("."):  # a submission still being written
                            continue
                        try:
                            mtime = sub.stat(follow_symlinks=False).st_mtime_ns
                        except OSError:
                            continue
                        items.append((mtime, sub.name, Path(sub.path)))
                queues[entry.name] = [p for _, _, p in sorted(items)]
        chosen: list[tuple[str, Path]] = []
        for turn in range(self.limits.per_publisher):
            for name, queue in queues.items():
                if turn < len(queue) and len(chosen) < self.limits.total:
                    chosen.append((name, queue[turn]))
        taken: dict[str, int] = {}
        for name, _ in chosen:
            taken[name] = taken.get(name, 0) + 1
        for name, queue in queues.items():
            left = len(queue) - taken.get(name, 0)
            if left > 0:
                self.report.deferred[name] = left
        return chosen

    def prepare(self) -> None:
        """Phase 1: select, read, verify (root in force now), check and stage submissions.

        Raises:
            PublishError, TrustError: The index itself cannot be read or verified.
        """
        root = repository.load_state(self.index).root
        # Staged outside the served tree: nothing that is not part of the index ever
        # appears in it (the commit uploads the staged bytes create-only).
        staging = Path(tempfile.mkdtemp(prefix="modelmesh-ingest-"))
        self._staging = staging
        for publisher, path in self._select():
            try:
                self._prepared.append(
                    _Prepared(publisher, path, self._prepare_one(root, publisher, path, staging))
                )
            except _Reject as r:
                if SUBMISSION_ID_RE.fullmatch(path.name):
                    self._decided(
                        publisher,
                        path,
                        "rejected",
                        r.reason,
                        r.message,
                        release=r.release,
                        root_version=root.version,
                    )
                else:  # no ID the publisher could ask about: just clear it away
                    remove_pending(path)

    def _prepare_one(self, root: Root, publisher: str, path: Path, staging: Path) -> Candidate:
        try:
            mode = path.lstat().st_mode
        except OSError as e:
            raise _Reject("malformed", f"submission {path.name}: {e.strerror or e}") from e
        if not SUBMISSION_ID_RE.fullmatch(path.name) or not stat.S_ISDIR(mode):
            raise _Reject("malformed", f"submission {path.name}: expected a folder named by its ID")
        if _publisher(root, publisher) is None:
            raise _Reject(
                "unknown-publisher",
                f"inbox folder {publisher!r} names no publisher of root version {root.version}",
            )
        try:
            env_bytes = read_regular(path / ENVELOPE_NAME, MAX_ENVELOPE_BYTES, path.name)
        except PublishError as e:
            raise _Reject("malformed", e.message) from e
        if submission_id(env_bytes) != path.name:
            raise _Reject(
                "malformed",
                f"submission {path.name}: the folder's name is not the ID of its release.sig "
                f"({submission_id(env_bytes)})",
            )
        try:
            envelope = parse_envelope(env_bytes)
        except SignatureError as e:
            raise _Reject("bad-envelope", e.message) from e
        # Unverified, only to say what the submission claims in messages; verified next.
        from modelmesh_connectors.index.metadata import parse_release

        try:
            claimed = parse_release(envelope.payload, f"submission {path.name}")
        except MetadataError as e:
            raise _Reject("bad-envelope", e.message) from e
        candidate = Candidate(path.name, envelope, claimed, Path())
        try:
            _check_signed(root, publisher, candidate)
        except _Reject as r:
            r.release = claimed
            raise
        # Verified from here on: bounded by the signed length before a byte is read.
        if claimed.length > self.limits.max_archive_bytes:
            raise _Reject(
                "too-large",
                f"{claimed.name} {claimed.version}: archive of {claimed.length} bytes, limit "
                f"{self.limits.max_archive_bytes}",
                claimed,
            )
        try:
            data = read_regular(path / ARCHIVE_NAME, claimed.length, path.name)
        except PublishError as e:
            raise _Reject(
                "mismatch" if "larger" in e.message else "malformed", e.message, claimed
            ) from e
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != claimed.sha256 or len(data) != claimed.length:
            raise _Reject(
                "mismatch",
                f"{claimed.name} {claimed.version}: archive sha256 {sha256} ({len(data)} bytes), "
                f"expected the signed {claimed.sha256} ({claimed.length} bytes)",
                claimed,
            )
        try:
            # The client's own safe reader; reading is all: nothing is imported here.
            package = package_from_bytes(data, source=f"submission {path.name}")
        except PackageError as e:
            raise _Reject("bad-archive", e.message, claimed) from e
        try:
            stated = release_for(package.manifest, sha256, len(data))
        except PublishError as e:
            raise _Reject("bad-archive", e.message, claimed) from e
        if stated != claimed:
            raise _Reject(
                "mismatch",
                f"{claimed.name} {claimed.version}: the archive's manifest states "
                f"{stated.name} {stated.version} with connectors "
                f"{[c.id for c in stated.connectors]}, not what the release signs",
                claimed,
            )
        # Staged outside the index; these are the bytes hashed above and the bytes that
        # will be uploaded and served.
        fd, tmp = tempfile.mkstemp(dir=staging, prefix=".ingest-", suffix=".zip")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return Candidate(path.name, envelope, claimed, Path(tmp))

    # -- phase 2 ---------------------------------------------------------------

    def commit(self) -> IngestReport:
        """Phase 2: decide again under the lock with the root in force, fold, sign, write.

        Returns:
            The run's report.

        Raises:
            PublishError, SignatureError, TrustError: The index cannot be updated (every
                submission of the run stays pending; the next run tries again).
        """
        by_key = {p.candidate.key: p for p in self._prepared}

        def check(root: Root, c: Candidate) -> Refusal | None:
            try:
                _check_signed(root, by_key[c.key].publisher, c)
            except _Reject as r:
                return Refusal(c.key, r.reason, r.message)
            return None

        try:
            if not self._prepared:
                return self.report
            result = commit_releases(
                self.index,
                [p.candidate for p in self._prepared],
                check=check,
                index_keys=self.index_keys,
                timestamp_keys=self.timestamp_keys,
                now=self.now,
                index_expiry=self.index_expiry,
                timestamp_expiry=self.timestamp_expiry,
            )
        finally:
            for p in self._prepared:
                with contextlib.suppress(OSError):
                    p.candidate.staged.unlink()
            if self._staging is not None:
                with contextlib.suppress(OSError):
                    self._staging.rmdir()
        self.report.index_version = result.index_version
        for key in result.published:
            p = by_key[key]
            self._decided(
                p.publisher,
                p.path,
                "published",
                "published",
                f"{p.candidate.release.name} {p.candidate.release.version} is listed in index "
                f"version {result.index_version}",
                release=p.candidate.release,
                root_version=result.root_version,
                index_version=result.index_version,
            )
        for key in result.already:
            p = by_key[key]
            self._decided(
                p.publisher,
                p.path,
                "published",
                "already-published",
                f"{p.candidate.release.name} {p.candidate.release.version}: the identical "
                "release is already listed",
                release=p.candidate.release,
                root_version=result.root_version,
            )
        for refusal in result.refused:
            p = by_key[refusal.key]
            self._decided(
                p.publisher,
                p.path,
                "rejected",
                refusal.reason,
                refusal.message,
                release=p.candidate.release,
                root_version=result.root_version,
            )
        self._prepared = []
        return self.report


def ingest(
    index: str | os.PathLike[str],
    inbox: str | os.PathLike[str],
    *,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    limits: IngestLimits | None = None,
    now: datetime | None = None,
    index_expiry: timedelta = repository.DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = repository.DEFAULT_TIMESTAMP_EXPIRY,
) -> IngestReport:
    """Run both phases of :class:`IngestRun`: every decided submission gets a record.

    Args:
        index: The index directory.
        inbox: The inbox directory.
        index_keys: Signer(s) meeting the index threshold (any key reference).
        timestamp_keys: Signer(s) meeting the timestamp threshold.
        limits: Bounds of the run.
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.

    Returns:
        The report.

    Raises:
        PublishError, SignatureError, TrustError: The index cannot be read or updated.
    """
    run = IngestRun(
        index,
        inbox,
        index_keys=index_keys,
        timestamp_keys=timestamp_keys,
        limits=limits,
        now=now,
        index_expiry=index_expiry,
        timestamp_expiry=timestamp_expiry,
    )
    run.prepare()
    return run.commit()
