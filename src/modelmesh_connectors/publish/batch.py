"""One index update for many releases: the commit step of ingest.

:func:`commit_releases` is the single call through which the ingest job changes the index:
under the publisher's lock it loads the current state (the root *as it is now*), lets the
caller decide on each candidate against that root, folds every accepted release into new
bins, signs one new index top and one timestamp, runs the result through the client's trust
core, then writes archives, ``.zip.sig`` files and — last — ``timestamp.json``, exactly in
the order :func:`repository.publish` uses.

It is built from the publisher's own planning and writing steps in :mod:`repository`, so a
batch and a single ``publish`` produce the same files. When the storage backend with
compare-and-swap commits arrives (issue 15), this function is the one place ingest needs
ported: the decision callback and the result stay.
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
from modelmesh_connectors.index.metadata import BinNode, BinRelease, Release, Root
from modelmesh_connectors.index.trust import check_expiry
from modelmesh_connectors.publish import repository as _repo

# The planning and writing steps are the publisher's own (private to the package, shared
# here so that a batch writes exactly what a single publish writes).
_locked = _repo._locked
_plan = _repo._plan
_apply = _repo._apply
_resign = _repo._resign
_current_bin = _repo._current_bin
_same_version = _repo._same_version
_write_replace = _repo._write_replace
_keys = _repo._keys
_now = _repo._now


@dataclass(frozen=True)
class Candidate:
    """A release ready to be folded in: signed envelope and archive bytes already staged.

    Attributes:
        key: The caller's identifier (a submission ID).
        envelope: The release envelope (signed by its publisher).
        release: Its payload, parsed.
        staged: A file inside the index directory holding the archive's exact bytes (its
            sha256 and length already checked against ``release``); linked into place.
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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def commit_releases(
    directory: str | os.PathLike[str],
    candidates: Sequence[Candidate],
    *,
    check: Check,
    index_keys: SigningKey | Sequence[SigningKey],
    timestamp_keys: SigningKey | Sequence[SigningKey],
    now: datetime | None = None,
    index_expiry: timedelta = _repo.DEFAULT_INDEX_EXPIRY,
    timestamp_expiry: timedelta = _repo.DEFAULT_TIMESTAMP_EXPIRY,
) -> CommitResult:
    """Fold every accepted candidate into one new index state.

    Args:
        directory: The index directory.
        candidates: Releases to add, in priority order (of two for one name and version,
            the first wins).
        check: Called under the lock with the current root for each candidate; returns a
            :class:`Refusal` to leave it out.
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
        SignatureError: The keys do not meet a threshold.
        ExpiredError: The root is expired.
        TrustError: The current index fails verification.
    """
    d = Path(directory)
    now = _now(now)
    ikeys, tkeys = _keys(index_keys), _keys(timestamp_keys)
    with _locked(d):
        state = _repo.load_state(d)
        check_expiry(f"root/{state.root.version}.json", state.root.expires, now)
        refused: list[Refusal] = []
        accepted: list[Candidate] = []
        for c in candidates:
            refusal = check(state.root, c)
            if refusal is None:
                accepted.append(c)
            else:
                refused.append(refusal)
        prefixes = sorted({state.top.bin_prefix(c.release.name) for c in accepted})
        if state.stale_signatures:
            resigned = _resign(state, index_keys=ikeys)
            check_all = True
        else:
            parts = [_resign(state, index_keys=ikeys, only_bin=bp) for bp in prefixes]
            resigned = _repo._Resigned(
                {bp: node for part in parts for bp, node in part.bins.items()},
                tuple(sig for part in parts for sig in part.signatures),
                tuple(r for part in parts for r in part.releases),
            )
            check_all = False
        new_bins: dict[str, BinNode] = dict(resigned.bins)
        to_write: list[Candidate] = []
        already: list[str] = []
        for bp in prefixes:
            node = _current_bin(state, resigned, bp)
            packages = dict(node.packages)
            for c in (c for c in accepted if state.top.bin_prefix(c.release.name) == bp):
                name, version = c.release.name, c.release.version
                existing = packages.get(name, ())
                match = next((e for e in existing if _same_version(e.version, version)), None)
                if match is not None:
                    in_run = any(
                        w.release.name == name and _same_version(w.release.version, version)
                        for w in to_write
                    )
                    refusal = _replay(c, match, in_run=in_run)
                    if refusal is None:
                        already.append(c.key)
                    else:
                        refused.append(refusal)
                    continue
                target = d / c.release.file
                if target.exists() and _file_sha256(target) != c.release.sha256:
                    refused.append(
                        Refusal(
                            c.key,
                            "stray-file",
                            f"index {d}: {c.release.file} exists with other bytes but is not "
                            "listed (left by an interrupted publish?); the operator must "
                            "remove it",
                        )
                    )
                    continue
                packages[name] = (*existing, BinRelease(version, c.envelope, False, None))
                to_write.append(c)
            new_bins[bp] = BinNode(bp, packages)
        if not to_write and not resigned.bins:
            return CommitResult((), tuple(already), tuple(refused), state.root.version, None)
        # Everything is signed and checked by the client's trust core before a byte is written.
        plan = _plan(
            state,
            now=now,
            index_keys=ikeys,
            timestamp_keys=tkeys,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            new_bins=list(new_bins.values()),
            signatures=resigned.signatures,
            check_all=check_all,
        )
        try:
            for c in to_write:
                target = d / c.release.file
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    # link() never replaces an existing file, even in a race.
                    os.link(c.staged, target)
                _write_replace(d, c.release.file + ".sig", c.envelope.to_bytes())
        except OSError as e:
            raise PublishError(f"index {d}: cannot place archives: {e.strerror or e}") from e
        _apply(d, plan)
    return CommitResult(
        tuple(c.key for c in to_write),
        tuple(already),
        tuple(refused),
        state.root.version,
        plan.top.version,
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
