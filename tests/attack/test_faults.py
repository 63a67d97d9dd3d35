"""The fault matrix: server faults x cache states. Every cell recovers or fails typed.

Server side (a responder in front of the real files): 500, 503, 429 with Retry-After,
connection reset, truncated body, stalled body (read timeout), a wrong Content-Length
(too long and too short) and a redirect loop. Two modes:

* ``once``: the first request for ``timestamp.json`` and for the archive fails, later
  ones are served (retries = 1): a transient fault must be recovered from;
* ``always``: every request for the archive fails (retries = 0): the load must fail with a
  typed error.

Cache side: empty; a corrupt archive entry; corrupt stored metadata; half-written temp
files of an interrupted download and metadata write; stale lock files nobody holds.

Backoff waits are recorded instead of slept (``time.sleep`` is replaced for the cell): a
retried cell asserts it waited, and the 429 cells that they waited exactly ``Retry-After``.

In every cell nothing half-written becomes visible: each new or changed cache file is
verified (:func:`tests.attack.hostile.cache_problems`), no lock is left held, and after a
success no temp file remains and every cache file is verified.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from modelmesh_connectors.errors import (
    ConnectorError,
    DownloadError,
    LengthMismatchError,
    SignatureError,
)
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import cache_problems, rename_problems, snapshot_files, watch_renames
from tests.support.http_server import RecordedRequest, Reply
from tests.support.simulator import RepositorySimulator

PACKAGE = "acme-audit-log"
CONNECTOR = "acme.audit-log.v1"
READ_TIMEOUT = 0.4  # seconds; the stalled body is detected after this much silence


@dataclass(frozen=True)
class Served:
    """The module's one index, its archive and a cache filled by one clean run."""

    sim: RepositorySimulator
    archive: str  # index-relative path of the archive
    digest: str
    golden: Path  # a cache directory after one successful run
    trusted: dict[str, bytes]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("faults")
    with RepositorySimulator(tmp) as sim:
        release = sim.publish(PACKAGE, "1.0.0")
        golden = tmp / "golden"
        build_registry(sim.config([PACKAGE], cache_dir=str(golden)))
        yield Served(sim, release.file, release.sha256, golden, snapshot_files(sim.dir))


# -- server faults -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A way for the server to fail one request."""

    name: str
    reply: Callable[[bytes, RecordedRequest], Reply]
    once: type[ConnectorError] | None  # outcome in "once" mode (None: recovered)
    always: type[ConnectorError]  # outcome in "always" mode
    sticky: bool = False  # fails every time even in "once" mode (a loop has no second try)


def _loop(body: bytes, request: RecordedRequest) -> Reply:
    hop = int(request.target.rsplit("hop=", 1)[-1]) if "hop=" in request.target else 0
    return Reply.redirect(f"{request.path}?hop={hop + 1}")


FAULTS = [
    Fault("http-500", lambda b, r: Reply.error(500), None, DownloadError),
    Fault("http-503", lambda b, r: Reply.error(503), None, DownloadError),
    Fault(
        "http-429-retry-after",
        lambda b, r: Reply.error(429, headers={"Retry-After": "1"}),
        None,
        DownloadError,
    ),
    Fault("connection-reset", lambda b, r: Reply.ok(b, reset_at=len(b) // 2), None, DownloadError),
    Fault("body-truncated", lambda b, r: Reply.ok(b, truncate_at=len(b) // 2), None, DownloadError),
    Fault(
        "body-stalled",
        lambda b, r: Reply.ok(b, stall_at=len(b) // 2, stall=30.0),
        None,
        DownloadError,
    ),
    # More than the signed length is refused before a byte is read (not retried); for
    # timestamp.json (cap 16 KiB) the short body is a transient failure and is retried.
    Fault(
        "content-length-too-long",
        lambda b, r: Reply.ok(b, content_length=len(b) + 100, close=True),
        LengthMismatchError,
        LengthMismatchError,
    ),
    # Fewer bytes than the file: the body "ends" early and looks complete to HTTP; the
    # signed length (archive) or the signature (timestamp) catches it. Not retried.
    Fault(
        "content-length-too-short",
        lambda b, r: Reply.ok(b, content_length=len(b) - 10, close=True),
        SignatureError,
        LengthMismatchError,
    ),
    Fault("redirect-loop", _loop, DownloadError, DownloadError, sticky=True),
]


def _install(served: Served, paths: list[str], fault: Fault, mode: str) -> None:
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    for rel in paths:
        body = (served.sim.dir / rel).read_bytes()

        def responder(request: RecordedRequest, rel: str = rel, body: bytes = body) -> Reply:
            with lock:
                counts[rel] += 1
                first = counts[rel] == 1
            if mode == "always" or first or fault.sticky:
                return fault.reply(body, request)
            return Reply.ok(body)

        served.sim.server.respond_with("/" + rel, responder)


# -- cache states --------------------------------------------------------------------------


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _entry(served: Served, cache: Path) -> Path:
    return cache / "archives" / "sha256" / served.digest[:2] / served.digest


def _metadata_only(served: Served, cache: Path) -> Path:
    shutil.copytree(served.golden / "metadata", cache / "metadata")
    [origin] = (cache / "metadata").iterdir()
    return origin


def _empty(served: Served, cache: Path) -> list[str]:
    return []


def _corrupt_archive(served: Served, cache: Path) -> list[str]:
    shutil.copytree(served.golden, cache)
    _flip(_entry(served, cache))
    return []


def _corrupt_metadata(served: Served, cache: Path) -> list[str]:
    origin = _metadata_only(served, cache)
    for name in ("timestamp.json", "index.json"):
        _flip(origin / name)
    for node in (origin / "nodes").iterdir():
        _flip(node)
    return []


def _half_written(served: Served, cache: Path) -> list[str]:
    origin = _metadata_only(served, cache)
    (origin / "timestamp.json").unlink()
    entry = _entry(served, cache)
    entry.parent.mkdir(parents=True)
    archive = (served.sim.dir / served.archive).read_bytes()
    leftovers = [
        entry.with_name(f"{served.digest}.k1ll3d.tmp"),
        origin / ".timestamp.json.k1ll3d.tmp",
    ]
    leftovers[0].write_bytes(archive[: len(archive) // 2])
    leftovers[1].write_bytes(b'{"payloadType": "application/vnd.modelmesh.ti')
    return [p.relative_to(cache).as_posix() for p in leftovers]


def _stale_locks(served: Served, cache: Path) -> list[str]:
    origin = _metadata_only(served, cache)
    entry = _entry(served, cache)
    entry.parent.mkdir(parents=True)
    for lock in (entry.with_name(f"{served.digest}.lock"), origin / ".lock"):
        lock.write_text("4242\n")  # left by a process that was killed: nobody holds it
    return []


CACHE_STATES: list[tuple[str, Callable[[Served, Path], list[str]]]] = [
    ("cache-empty", _empty),
    ("cache-corrupt-archive", _corrupt_archive),
    ("cache-corrupt-metadata", _corrupt_metadata),
    ("cache-half-written", _half_written),
    ("cache-stale-lock", _stale_locks),
]


# -- the matrix ----------------------------------------------------------------------------


def _locks_free(cache: Path) -> None:
    for path in cache.rglob("*.lock"):
        lock = FileLock(path, timeout=0)
        lock.acquire()  # raises filelock.Timeout if anybody still held it
        lock.release()


@pytest.mark.parametrize(("state", "prepare"), CACHE_STATES, ids=[s for s, _ in CACHE_STATES])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
@pytest.mark.parametrize("mode", ["once", "always"])
def test_fault_cell(
    served: Served,
    mode: str,
    fault: Fault,
    state: str,
    prepare: Callable[[Served, Path], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # backoff is recorded, never slept
    cache = tmp_path / "cache"
    planted = prepare(served, cache)
    before = snapshot_files(cache)
    renames = watch_renames(monkeypatch, cache)
    server = served.sim.server
    server.clear_content()
    server.clear_requests()
    paths = [served.archive] if mode == "always" else ["timestamp.json", served.archive]
    _install(served, paths, fault, mode)
    cfg = served.sim.config(
        [PACKAGE],
        cache_dir=str(cache),
        retries=1 if mode == "once" else 0,
        timeouts={"connect": 2, "read": READ_TIMEOUT},
        metadata_max_age=0,  # always ask for timestamp.json: its faults count too
    )
    expected = fault.once if mode == "once" else fault.always
    try:
        if expected is None:
            registry = build_registry(cfg)
            assert registry.origin(CONNECTOR).kind == "package"
            assert server.request_count("/" + served.archive) == 2  # the fault, then the retry
            # One backoff before each retry (timestamp.json and the archive); a 429's wait
            # is the server's Retry-After, anything else a jittered backoff under a second.
            assert len(waits) == 2, waits
            if fault.name == "http-429-retry-after":
                assert waits == [1.0, 1.0]
            else:
                assert all(0 < w < 1 for w in waits), waits
        else:
            with pytest.raises(ConnectorError) as info:
                build_registry(cfg)
            assert type(info.value) is expected, f"expected {expected.__name__}: {info.value!r}"
    finally:
        server.clear_content()
    after = snapshot_files(cache)
    assert (
        cache_problems(before, after, served.trusted, archives_allowed=True, planted_tmp=planted)
        == []
    )
    assert rename_problems(renames, served.trusted, archives_allowed=True) == []
    _locks_free(cache)
    if expected is None:
        # Recovered: whatever the cache held before, everything in it is verified now.
        assert [p for p in after if p.endswith(".tmp")] == []
        assert cache_problems({}, after, served.trusted, archives_allowed=True) == []
        entry = _entry(served, cache)
        assert hashlib.sha256(entry.read_bytes()).hexdigest() == served.digest
