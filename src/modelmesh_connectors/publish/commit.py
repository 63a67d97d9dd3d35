"""The optimistic publish protocol: the one place where index writes are serialised.

Every index-changing command is a *set of changes* — a function from the current verified
state to a :class:`~modelmesh_connectors.publish.plan.Plan` — run by :func:`commit`:

1. read ``timestamp.json`` and its version tag, and the state it pins;
2. plan and verify the new state on it (the changes function);
3. upload every new file **create-only** (archives, signatures, ``meta/`` nodes, the new
   timestamp's ``history/`` copy); identical bytes already there are fine (an interrupted or
   lost attempt), other bytes are an error;
4. replace ``timestamp.json`` **only if its tag is still the one read** (compare-and-swap);
5. on a lost race, wait a jittered, growing delay, re-read and re-plan on the new state;
   give up after ``max_attempts``.

A reader therefore never sees a reference to a file that is not there yet (step 3 is done
before step 4), and of two racing publishers neither loses a release: the loser rebases.
An ingest service can reuse :func:`commit` with its own changes function.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Changes",
    "CommitResult",
    "commit",
    "conflicts_seen",
]

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelmesh_connectors.errors import PublishConflictError, PublishError
from modelmesh_connectors.publish.plan import Plan
from modelmesh_connectors.publish.state import RepositoryState, load_state
from modelmesh_connectors.publish.storage import Storage
from modelmesh_connectors.publish.stores import open_storage

DEFAULT_MAX_ATTEMPTS = 40  # commits tried before giving up to other publishers
_BACKOFF_BASE = 0.005  # seconds; the cap of the random delay doubles per lost race
_BACKOFF_CAP = 0.5  # seconds; most one wait lasts

_log = logging.getLogger("modelmesh_connectors.publish")
_conflicts = 0
_conflicts_lock = threading.Lock()

Changes = Callable[[RepositoryState], Plan | None]
"""Plans the new state on the current one; None when there is nothing to change."""


def conflicts_seen() -> int:
    """How many compare-and-swaps this process has lost so far (tests, benchmarks)."""
    return _conflicts


@dataclass(frozen=True)
class CommitResult:
    """What a commit did.

    Attributes:
        plan: The plan that was committed (None: nothing to change).
        state: The state it was planned on.
        attempts: 1 when no other publisher got in the way.
    """

    plan: Plan | None
    state: RepositoryState
    attempts: int


def commit(
    location: str | os.PathLike[str] | Storage,
    changes: Changes,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    before_swap: Callable[[Plan], None] | None = None,
) -> CommitResult:
    """Run the publish protocol (module docstring) until the changes are in, or give up.

    Args:
        location: The index (directory, ``s3://…``, or a :class:`Storage`).
        changes: Plans the new state on a state; called again after each lost race.
        max_attempts: Most compare-and-swaps tried.
        sleep: Waits between attempts (tests pass a fake).
        before_swap: Called after the uploads, right before the swap (fault injection).

    Returns:
        The committed plan, the state it was planned on, and the attempts it took.

    Raises:
        PublishConflictError: Every attempt lost the race.
        StorageError: The store failed or does not enforce conditional writes.
        PublishError: A file to upload exists with other bytes; whatever ``changes``
            raises (a version already published, …).
        TrustError: The current index fails verification.
    """
    global _conflicts
    storage = open_storage(location)
    storage.ensure_conditions()
    for attempt in range(1, max_attempts + 1):
        state = load_state(storage)
        plan = changes(state)
        if plan is None:
            return CommitResult(None, state, attempt)
        reused = _upload(storage, plan)
        conflict = not _replace_signatures(storage, plan)
        storage.flush()  # every new file durable before the timestamp names it
        if not conflict:
            if before_swap is not None:
                before_swap(plan)
            _recheck(storage, reused)
            new_tag = storage.replace("timestamp.json", plan.timestamp_bytes, state.timestamp_tag)
            if new_tag is not None:
                return CommitResult(plan, state, attempt)
        with _conflicts_lock:
            _conflicts += 1
        delay = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt))  # noqa: S311
        _log.info(
            "%s: another publisher changed the index (attempt %d); re-planning in %.3f s",
            storage.location,
            attempt,
            delay,
        )
        sleep(delay)
    raise PublishConflictError(
        f"index {storage.location}: other publishers changed the index during each of "
        f"{max_attempts} attempts",
        hint="try again; if it keeps happening, publish in bulk ('publish A.zip B.zip …')",
    )


def _upload(storage: Storage, plan: Plan) -> list[str]:
    """Create every new file; return those that were already there (identical)."""
    reused: list[str] = []
    for path, data in plan.uploads:
        if storage.create(path, data):
            continue
        existing = storage.read(path)
        if existing is None and storage.create(path, data):
            continue  # removed in between (gc of an orphan): created now
        if existing is None or existing.data != data:
            raise PublishError(
                f"index {storage.location}: {path} exists with other bytes but is not in the "
                "index (left by an interrupted publish, or another publisher's release of the "
                "same version)",
                hint="if no publish of it is running, 'gc' removes it once it is older than "
                "the grace period; or remove it by hand",
            )
        reused.append(path)
    return reused


def _replace_signatures(storage: Storage, plan: Plan) -> bool:
    """Replace the re-signed ``.zip.sig`` files; False when one changed under us."""
    for path, data in plan.replacements:
        current = storage.read(path)
        if current is not None and current.data == data:
            continue
        if storage.replace(path, data, None if current is None else current.tag) is None:
            return False
    return True


def _recheck(storage: Storage, reused: list[str]) -> None:
    """Files found already uploaded must still be there right before the swap.

    An identical orphan (an interrupted publish) older than gc's grace period could be
    collected between the upload and the swap; re-creating it now keeps the reference good.
    """
    for path in reused:
        if storage.read(path) is None:
            raise PublishError(
                f"index {storage.location}: {path} was removed during the publish (gc?)",
                hint="publish again",
            )
