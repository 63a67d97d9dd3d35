"""One index update for many releases: the commit step of ingest.

:func:`commit_releases` is the single call through which the ingest job changes the index.
It is a *changes function* run by :func:`~modelmesh_connectors.publish.commit.commit`, the
publisher's compare-and-swap protocol: on the state read (the root *as it is now*) it lets
the caller decide on each candidate, folds every accepted release into new bins (the same
:func:`~modelmesh_connectors.publish.releases.fold_releases` a bulk publish uses), signs one
new index top and one timestamp and runs the result through the client's trust core; the
protocol then uploads archives, ``.zip.sig`` files and nodes create-only and swaps
``timestamp.json`` only if no other publisher got there first (else it re-reads and decides
again). So a batch, a single ``publish`` and another publisher racing with either never lose
a release.
"""

from __future__ import annotations

__all__ = ["Candidate", "CommitResult", "Refusal", "commit_releases"]

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from modelmesh_connectors.errors import PublishError
from modelmesh_connectors.index.envelope import Envelope
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import BinRelease, Release, Root
from modelmesh_connectors.index.trust import check_expiry
from modelmesh_connectors.publish.commit import commit
from modelmesh_connectors.publish.plan import Plan
from modelmesh_connectors.publish.releases import _same_version, fold_releases
from modelmesh_connectors.publish.state import (
    DEFAULT_INDEX_EXPIRY,
    DEFAULT_TIMESTAMP_EXPIRY,
    RepositoryState,
    signing_keys,
    utc_now,
)
from modelmesh_connectors.publish.storage import Storage
from modelmesh_connectors.publish.stores import open_storage


@dataclass(frozen=True)
class Candidate:
    """A release ready to be folded in: signed envelope and archive bytes already staged.

    Attributes:
        key: The caller's identifier (a submission ID).
        envelope: The release envelope (signed by its publisher).
        release: Its payload, parsed.
        staged: A file outside the index holding the archive's exact bytes (its sha256 and
            length already checked against ``release``); uploaded create-only at commit.
    """

    key: str
    envelope: Envelope
    release: Release
    staged: Path


@dataclass(frozen=True)
class Refusal:
    """A candidate that was not folded in, with a stable reason code and a message."""

    key: str
    reason: str
    message: str


@dataclass(frozen=True)
class CommitResult:
    """What :func:`commit_releases` did.

    Attributes:
        published: Keys of the candidates now listed in the index.
        already: Keys whose identical envelope the index already listed (a replay, or a run
            interrupted after its commit): nothing to do.
        refused: Candidates not folded in.
        root_version: The root the decisions were made under.
        index_version: Version of the new index top; None when nothing was written.
    """

    published: tuple[str, ...]
    already: tuple[str, ...]
    refused: tuple[Refusal, ...]
    root_version: int
    index_version: int | None


Check = Callable[[Root, Candidate], Refusal | None]


def _read_staged(c: Candidate) -> bytes:
    try:
        data = c.staged.read_bytes()
    except OSError as e:
        raise PublishError(f"{c.staged}: cannot read the staged archive: {e.strerror or e}") from e
    # Checked again here: the bytes uploaded are the bytes the release signs.
    if len(data) != c.release.length or hashlib.sha256(data).hexdigest() != c.release.sha256:
        raise PublishError(f"{c.staged}: the staged archive changed since it was checked")
    return data


def commit_releases(
    index: str | os.PathLike[str] | Storage,
    candidates: Sequence[Candidate],
    *,
    check: Check,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    now: datetime | None = None,
    index_expiry: timedelta = DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY,
) -> CommitResult:
    """Fold every accepted candidate into one new index state.

    Args:
        index: The index (directory, ``s3://bucket/prefix/`` or a storage).
        candidates: Releases to add, in priority order (of two for one name and version,
            the first wins).
        check: Called with the root in force for each candidate (again on every attempt
            of the compare-and-swap); returns a :class:`Refusal` to leave it out.
        index_keys: Key(s) meeting the index threshold.
        timestamp_keys: Key(s) meeting the timestamp threshold.
        now: Reference time (default: the current time).
        index_expiry: Lifetime of the new index top.
        timestamp_expiry: Lifetime of the new timestamp.

    Returns:
        What was published, already there, or refused.

    Raises:
        PublishError: The index cannot be read or written, or a release of the index must
            be re-signed by a publisher first (nothing is written).
        PublishConflictError: Other publishers won every attempt.
        SignatureError: The keys do not meet a threshold.
        ExpiredError: The root is expired.
        TrustError: The current index fails verification.
    """
    now = utc_now(now)
    ikeys, tkeys = signing_keys(index_keys), signing_keys(timestamp_keys)
    storage = open_storage(index)
    storage.ensure_conditions()
    data = {c.key: _read_staged(c) for c in candidates}
    outcome: dict[str, tuple[list[Candidate], list[str], list[Refusal], int]] = {}

    def changes(state: RepositoryState) -> Plan | None:
        # Decided afresh on every attempt: a lost race re-plans on the winner's state.
        check_expiry(f"root/{state.root.version}.json", state.root.expires, now)
        refused: list[Refusal] = []
        accepted: list[Candidate] = []
        for c in candidates:
            refusal = check(state.root, c)
            if refusal is None:
                accepted.append(c)
            else:
                refused.append(refusal)
        already: list[str] = []
        admitted: list[Candidate] = []  # in fold order; a second of one version is a duplicate

        def admit(i: int, listed: tuple[BinRelease, ...]) -> bool:
            c = accepted[i]
            name, version = c.release.name, c.release.version
            match = next((e for e in listed if _same_version(e.version, version)), None)
            if match is not None:
                in_run = any(
                    w.release.name == name and _same_version(w.release.version, version)
                    for w in admitted
                )
                refusal = _replay(c, match, in_run=in_run)
                if refusal is None:
                    already.append(c.key)
                else:
                    refused.append(refusal)
                return False
            stored = storage.read(c.release.file)
            if stored is not None and hashlib.sha256(stored.data).hexdigest() != c.release.sha256:
                refused.append(
                    Refusal(
                        c.key,
                        "stray-file",
                        f"index {storage.location}: {c.release.file} exists with other "
                        "bytes but is not listed (left by an interrupted publish?); the "
                        "operator must remove it ('gc' does once it is old enough)",
                    )
                )
                return False
            admitted.append(c)
            return True

        plan, _ = fold_releases(
            state,
            [(c.release, c.envelope, data[c.key]) for c in accepted],
            admit=admit,
            index_keys=ikeys,
            timestamp_keys=tkeys,
            now=now,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
        )
        outcome["last"] = (admitted, already, refused, state.root.version)
        return plan

    result = commit(storage, changes)
    to_write, already, refused, root_version = outcome["last"]
    return CommitResult(
        tuple(c.key for c in to_write) if result.plan is not None else (),
        tuple(already),
        tuple(refused),
        root_version,
        result.plan.top.version if result.plan is not None else None,
    )


def _replay(c: Candidate, match: BinRelease, *, in_run: bool) -> Refusal | None:
    """The decision on a release whose name and version the index (or this batch) lists."""
    what = f"{c.release.name} {c.release.version}"
    if in_run:
        return Refusal(c.key, "duplicate", f"{what} is in this run twice; the first was taken")
    if match.yanked:
        return Refusal(
            c.key,
            "version-yanked",
            f"{what} was published and then yanked ({match.yanked_reason}); published versions "
            "never change and a yank is not undone by submitting again",
        )
    if match.release == c.envelope:
        return None  # the identical release is listed: a replay or an interrupted run
    return Refusal(
        c.key,
        "version-exists",
        f"{what} is already published (as {match.version}) with another release; published "
        "versions never change",
    )
