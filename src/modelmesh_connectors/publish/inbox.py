"""The submission inbox: publishers submit signed releases; the index's ingest job signs them in.

A publisher holds only its own namespace-scoped key. :func:`submit` signs the release of an
archive with it and drops archive and envelope into the inbox, a directory the publisher can
write and the ingest job can read (docs/PUBLISHING.md)::

    INBOX/pending/<publisher>/<id>/archive.zip     the package archive
    INBOX/pending/<publisher>/<id>/release.sig     the signed release envelope (a .zip.sig)
    INBOX/accepted/<publisher>/<id>.json           written by ingest: published
    INBOX/rejected/<publisher>/<id>.json           written by ingest: why not (machine-readable)

``<publisher>`` is the publisher's name in the root; storage permissions may confine each
team to its own folder, and ingest takes at most a fixed number of submissions per folder
per run, so one team's flood cannot starve the others. Nothing here is trusted by the
ingest job: it re-reads every file without following links, caps every size, verifies the
signature against the root in force and the archive with the safe reader.

``<id>`` is the first 32 hex digits of the envelope's sha256: Ed25519 signatures are
deterministic, so submitting the same archive with the same key again is the same
submission, and a replay of a decided one is recognised.
"""

from __future__ import annotations

__all__ = [
    "ARCHIVE_NAME",
    "ENVELOPE_NAME",
    "SUBMISSION_ID_RE",
    "Submission",
    "SubmissionRecord",
    "check_publisher_name",
    "read_regular",
    "read_status",
    "release_for",
    "remove_pending",
    "submission_id",
    "submit",
    "write_record",
]

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelmesh_connectors._internal.files import write_atomic
from modelmesh_connectors.errors import PublishError, TrustError
from modelmesh_connectors.index.envelope import MAX_ENVELOPE_BYTES, RELEASE_TYPE, sign
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    MetadataError,
    Release,
    ReleaseConnector,
    archive_path,
    parse_release,
)
from modelmesh_connectors.index.trust import verify_anchor_root, verify_release_signed
from modelmesh_connectors.package.package import MAX_ARCHIVE_BYTES, package_from_bytes
from modelmesh_connectors.publish.ownership import name_owner, owned_names_hint

ARCHIVE_NAME = "archive.zip"
ENVELOPE_NAME = "release.sig"
SUBMISSION_ID_RE = re.compile(r"[0-9a-f]{32}")
_PUBLISHER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # as in root.json
_MAX_RECORD_BYTES = 64 * 1024  # a decision record is < 2 KiB


def submission_id(envelope_bytes: bytes) -> str:
    """The ID of a submission: the first 32 hex digits of its envelope's sha256."""
    return hashlib.sha256(envelope_bytes).hexdigest()[:32]


def check_publisher_name(name: str) -> str:
    """Return ``name`` if it can name a publisher folder, else raise PublishError."""
    if not isinstance(name, str) or not _PUBLISHER_RE.fullmatch(name):
        raise PublishError(
            f"publisher: expected a publisher name as in root.json, got {name!r:.80}"
        )
    return name


def read_regular(path: Path, cap: int, what: str) -> bytes:
    """Read a regular file without following a link, at most ``cap`` bytes.

    Raises:
        PublishError: Missing, a link or not a regular file, unreadable, or over ``cap``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        why = "a symbolic link" if e.errno == errno.ELOOP else (e.strerror or str(e))
        raise PublishError(f"{what}: cannot open {path.name}: {why}") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise PublishError(f"{what}: {path.name} is not a regular file")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise PublishError(f"{what}: {path.name} is larger than {cap} bytes")
    return data


def release_for(manifest: Any, sha256: str, length: int) -> Release:
    """The release a publisher signs for an archive, parsed as every client parses it.

    Args:
        manifest: The archive's validated manifest.
        sha256: The archive's sha256.
        length: Its length in bytes.

    Returns:
        The release.

    Raises:
        PublishError: The package does not fit the index format.
    """
    connectors = tuple(
        ReleaseConnector(str(c.id), str(getattr(c.type, "value", c.type)))
        for c in manifest.connectors
    )
    version = str(manifest.version)
    release = Release(
        name=manifest.name,
        version=version,
        file=archive_path(manifest.name, version),
        sha256=sha256,
        length=length,
        requires_modelmesh=None
        if manifest.requires_modelmesh is None
        else str(manifest.requires_modelmesh),
        connectors=connectors,
    )
    try:
        return parse_release(release.to_payload(), f"release {manifest.name} {version}")
    except MetadataError as e:
        raise PublishError(f"cannot submit {manifest.name} {version}: {e.message}") from e


@dataclass(frozen=True)
class Submission:
    """What :func:`submit` placed in the inbox.

    Attributes:
        id: The submission ID.
        publisher: The publisher folder.
        release: The signed release.
        path: The submission's folder.
        already: True when the identical submission was already pending (nothing written).
    """

    id: str
    publisher: str
    release: Release
    path: Path
    already: bool = False


@dataclass(frozen=True)
class SubmissionRecord:
    """The ingest job's decision on one submission, as written for the publisher's CI.

    Attributes:
        id: Submission ID.
        publisher: Publisher folder it came from.
        status: ``published``, ``rejected`` or ``pending``.
        reason: A stable code (docs/PUBLISHING.md "Rejection reasons"); ``published`` or
            ``already-published`` when accepted.
        message: What was expected and what was seen.
        name: Package name, when the envelope could be read.
        version: Package version, likewise.
        sha256: Archive sha256 named by the release, likewise.
        root_version: Version of the root the decision was made under.
        index_version: Version of the index top that lists the release (published only).
        decided_at: RFC 3339 time of the decision.
    """

    id: str
    publisher: str
    status: str
    reason: str
    message: str
    name: str | None = None
    version: str | None = None
    sha256: str | None = None
    root_version: int | None = None
    index_version: int | None = None
    decided_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys), one object."""
        obj = {k: v for k, v in asdict(self).items() if k != "extra"}
        obj.update(self.extra)
        return json.dumps(obj, sort_keys=True, indent=2) + "\n"


def write_record(inbox: Path, record: SubmissionRecord) -> Path:
    """Write a decision record (``accepted/`` or ``rejected/``) atomically; it replaces an
    earlier decision on the same submission ID.

    Returns:
        The record's path.
    """
    folder, other = (
        ("accepted", "rejected") if record.status == "published" else ("rejected", "accepted")
    )
    name = f"{record.id}.json"
    target = inbox / folder / check_publisher_name(record.publisher) / name
    write_atomic(target, record.to_json().encode("utf-8"))
    # One record per ID, the latest decision: a replay refused after a yank must not be
    # read back as the earlier "published".
    with contextlib.suppress(FileNotFoundError):
        (inbox / other / record.publisher / name).unlink()
    return target


def read_status(inbox: str | os.PathLike[str], publisher: str, sub_id: str) -> dict[str, Any]:
    """What became of a submission: its decision record, or that it is still pending.

    Args:
        inbox: The inbox directory.
        publisher: The publisher folder.
        sub_id: The submission ID (as printed by ``submit``).

    Returns:
        The record as a dict (``status`` is ``published``, ``rejected`` or ``pending``).

    Raises:
        PublishError: Bad ID or publisher name, or no such submission.
    """
    d = Path(inbox)
    check_publisher_name(publisher)
    if not SUBMISSION_ID_RE.fullmatch(sub_id):
        raise PublishError(f"submission id: expected 32 lowercase hex digits, got {sub_id!r:.80}")
    for folder in ("accepted", "rejected"):
        path = d / folder / publisher / f"{sub_id}.json"
        if path.exists():
            data = read_regular(path, _MAX_RECORD_BYTES, f"record {sub_id}")
            obj = json.loads(data)
            if isinstance(obj, dict):
                return obj
            raise PublishError(f"record {path}: expected a JSON object")
    if (d / "pending" / publisher / sub_id).is_dir():
        return {
            "id": sub_id,
            "publisher": publisher,
            "status": "pending",
            "reason": "pending",
            "message": "waiting for the next ingest run",
        }
    raise PublishError(f"no submission {sub_id} of publisher {publisher!r} in inbox {d}")


def _precheck(root_bytes: bytes, publisher: str, envelope: Any, release: Release) -> None:
    """Check a submission against a root as ingest will: signer, namespaces, name owner."""
    root = verify_anchor_root(root_bytes, "trusted root")
    matches = [p for p in root.publishers if p.name == publisher]
    if not matches:
        names = ", ".join(p.name for p in root.publishers) or "none"
        raise PublishError(
            f"publisher {publisher!r} is not in root version {root.version} (publishers: {names})"
        )
    entry = matches[0]
    _, keyids = verify_release_signed(root, envelope, f"release {release.name} {release.version}")
    if not keyids <= set(entry.keyids):
        raise PublishError(
            f"release {release.name} {release.version}: signed by keys of another role or "
            f"publisher, not by {publisher!r}"
        )
    owner = name_owner(root, release.name)
    if owner is None or owner.name != publisher:
        who = "the index role" if owner is None else f"publisher {owner.name!r}"
        raise PublishError(
            f"package name {release.name!r} belongs to {who}, not to {publisher!r}",
            hint=owned_names_hint(entry),
        )


def submit(
    inbox: str | os.PathLike[str],
    archive: str | os.PathLike[str],
    release_keys: Sequence[SigningKey],
    *,
    publisher: str,
    root: bytes | None = None,
) -> Submission:
    """Sign a package archive's release with the publisher's key(s) and place it in the inbox.

    No index or timestamp key is involved. The archive is copied into the inbox first and
    the *copy* is read and hashed, so the signed bytes are the bytes placed. The submission
    becomes visible by one rename of its finished folder.

    Args:
        inbox: The inbox directory (created if missing).
        archive: The package ``.zip``.
        release_keys: The publisher's signing key(s) (any key reference).
        publisher: The publisher's name in the root (its inbox folder).
        root: A root envelope (``keys/root.json`` or the index's newest ``root/N.json``) to
            check the submission against first: the publisher is listed, the keys are
            its keys, every connector is in its namespaces and it owns the package name.

    Returns:
        The submission.

    Raises:
        PublishError: Bad publisher name, unreadable archive, the package does not fit the
            index format, the pre-check fails, or the inbox cannot be written.
        PackageError: The archive is not a valid package.
        SignerError: A signer failed or returned a bad signature.
        TrustError: The release does not verify under ``root``.
    """
    check_publisher_name(publisher)
    if not release_keys:
        raise ValueError("expected at least one release key")
    d = Path(inbox)
    folder = d / "pending" / publisher
    try:
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
    except OSError as e:
        raise PublishError(f"inbox {d}: cannot write: {e.strerror or e}") from e
    try:
        try:
            shutil.copyfile(archive, work / ARCHIVE_NAME, follow_symlinks=True)
        except OSError as e:
            raise PublishError(f"{archive}: cannot read the archive: {e.strerror or e}") from e
        data = read_regular(work / ARCHIVE_NAME, MAX_ARCHIVE_BYTES, str(archive))
        package = package_from_bytes(data, source=str(archive))
        release = release_for(package.manifest, package.sha256, package.length)
        envelope = sign(RELEASE_TYPE, release.to_payload(), release_keys)
        if root is not None:
            try:
                _precheck(root, publisher, envelope, release)
            except TrustError as e:
                raise PublishError(
                    f"pre-check against the root failed: {e.message}", hint=e.hint
                ) from e
        env_bytes = envelope.to_bytes()
        if len(env_bytes) > MAX_ENVELOPE_BYTES:  # pragma: no cover - a release is < 4 KiB
            raise PublishError("release envelope too large")
        write_atomic(work / ENVELOPE_NAME, env_bytes)
        sub_id = submission_id(env_bytes)
        target = folder / sub_id
        for decided in ("accepted", "rejected"):
            record = d / decided / publisher / f"{sub_id}.json"
            if record.exists():
                raise PublishError(
                    f"submission {sub_id} ({release.name} {release.version}) was already "
                    f"{'published' if decided == 'accepted' else 'rejected'}: see {record}",
                    hint="bump the version in modelmesh-package.yaml to submit a new release",
                )
        try:
            os.rename(work, target)
        except OSError as e:
            if target.is_dir():  # the identical submission is already waiting
                return Submission(sub_id, publisher, release, target, already=True)
            raise PublishError(f"inbox {d}: cannot place {sub_id}: {e.strerror or e}") from e
        return Submission(sub_id, publisher, release, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def remove_pending(path: Path) -> None:
    """Remove a decided submission folder (or a stray file or link in its place)."""
    with contextlib.suppress(OSError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
