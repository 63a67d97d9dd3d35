"""The content-addressed archive cache: verify before rename, locks, races, crashes."""

from __future__ import annotations

import hashlib
import itertools
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmesh_connectors.client import cache as cache_module
from modelmesh_connectors.client.cache import (
    CACHE_DIR_ENV,
    ArchiveCache,
    default_cache_dir,
)
from modelmesh_connectors.client.fetch import (
    DownloadConfig,
    HttpFetcher,
    Sink,
)
from modelmesh_connectors.errors import (
    CacheError,
    DownloadError,
    HashMismatchError,
    InvalidInput,
    LengthMismatchError,
    LockTimeoutError,
)
from tests.support.http_server import LoopbackServer, Reply

PAYLOAD = b"PK\x03\x04 a connector archive " * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def writer(*chunks: bytes) -> Callable[[Sink], None]:
    def write_into(sink: Sink) -> None:
        for chunk in chunks:
            sink.write(chunk)

    return write_into


class CountingWriter:
    """A write_into that counts its calls."""

    def __init__(self, data: bytes = PAYLOAD, delay: float = 0.0) -> None:
        self.data = data
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, sink: Sink) -> None:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        sink.write(self.data)


@pytest.fixture(params=["direct", "pipelined"])
def sink_cache(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ArchiveCache:
    """A cache, once with the direct sink and once with the one that hashes on a thread."""
    if request.param == "pipelined":
        # Every archive goes through the worker thread, in batches of about 1000 bytes.
        monkeypatch.setattr(cache_module, "_PIPELINE_BYTES", 0)
        monkeypatch.setattr(cache_module, "_BATCH_BYTES", 1000)
    return ArchiveCache(tmp_path / "cache", lock_timeout=5.0)


@pytest.fixture
def cache(tmp_path: Path) -> ArchiveCache:
    return ArchiveCache(tmp_path / "cache", lock_timeout=5.0)


def fanout(cache: ArchiveCache, digest: str = DIGEST) -> Path:
    return cache.path_for(digest).parent


def visible_files(cache: ArchiveCache, digest: str = DIGEST) -> list[str]:
    """Everything in the digest's directory except its lock file."""
    directory = fanout(cache, digest)
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name != f"{digest}.lock")


def assert_unlocked(cache: ArchiveCache, digest: str = DIGEST) -> None:
    """The sidecar lock is free: a fresh lock object gets it at once."""
    lock = FileLock(fanout(cache, digest) / f"{digest}.lock", timeout=0)
    lock.acquire()
    lock.release()


@contextmanager
def lock_held_by_other_process(lock_path: Path) -> Iterator[None]:
    """Hold ``lock_path`` in a child process until the block ends."""
    code = (
        "import sys\n"
        "from filelock import FileLock\n"
        "lock = FileLock(sys.argv[1])\n"
        "lock.acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
        "lock.release()\n"
    )
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        [sys.executable, "-c", code, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        try:
            assert child.stdout.readline().strip() == "locked"
            yield
        finally:
            child.stdin.close()
            assert child.wait(timeout=30) == 0


# -- the happy path -------------------------------------------------------------


def test_fetch_stores_under_the_fanout_path(sink_cache: ArchiveCache) -> None:
    write = CountingWriter()
    path = sink_cache.fetch(DIGEST, len(PAYLOAD), write)
    assert path == sink_cache.root / "archives" / "sha256" / DIGEST[:2] / DIGEST
    assert path.read_bytes() == PAYLOAD
    assert write.calls == 1
    assert visible_files(sink_cache) == [DIGEST]
    assert_unlocked(sink_cache)


def test_second_fetch_is_a_hit(cache: ArchiveCache) -> None:
    write = CountingWriter()
    first = cache.fetch(DIGEST, len(PAYLOAD), write)
    assert cache.fetch(DIGEST, len(PAYLOAD), write) == first
    assert cache.lookup(DIGEST, len(PAYLOAD)) == first
    assert write.calls == 1


def test_lookup_miss(cache: ArchiveCache) -> None:
    assert cache.lookup(DIGEST, len(PAYLOAD)) is None


def test_empty_archive(cache: ArchiveCache) -> None:
    path = cache.fetch(sha(b""), 0, writer())
    assert path.read_bytes() == b""
    assert cache.read_verified(sha(b""), 0) == b""


def test_reset_restarts_the_hash(sink_cache: ArchiveCache) -> None:
    def write_into(sink: Sink) -> None:
        sink.write(b"garbage from a first attempt")
        sink.write(bytes(reversed(PAYLOAD))[:2000])  # past a batch: hashed and written
        sink.reset()
        sink.write(PAYLOAD[:10])
        sink.write(PAYLOAD[10:])

    assert sink_cache.fetch(DIGEST, len(PAYLOAD), write_into).read_bytes() == PAYLOAD


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(PAYLOAD)), max_size=8))
def test_any_chunking_gives_the_same_entry(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(PAYLOAD)]
    chunks = [PAYLOAD[a:b] for a, b in itertools.pairwise(bounds)]
    with tempfile.TemporaryDirectory() as root:
        cache = ArchiveCache(Path(root), lock_timeout=5.0)
        assert cache.fetch(DIGEST, len(PAYLOAD), writer(*chunks)).read_bytes() == PAYLOAD


# -- nothing unverified becomes visible ------------------------------------------


def test_hash_mismatch_leaves_nothing_visible(sink_cache: ArchiveCache) -> None:
    wrong = bytes(reversed(PAYLOAD))
    with pytest.raises(HashMismatchError) as info:
        sink_cache.fetch(DIGEST, len(PAYLOAD), writer(wrong))
    assert f"expected {DIGEST}, got {sha(wrong)}" in str(info.value)
    assert visible_files(sink_cache) == []
    assert sink_cache.lookup(DIGEST, len(PAYLOAD)) is None
    assert_unlocked(sink_cache)


def test_length_overflow_is_aborted_at_the_write(sink_cache: ArchiveCache) -> None:
    writes: list[int] = []

    def write_into(sink: Sink) -> None:
        for _ in range(100):
            sink.write(PAYLOAD)  # far more than one archive
            writes.append(1)

    with pytest.raises(LengthMismatchError) as info:
        sink_cache.fetch(DIGEST, len(PAYLOAD), write_into)
    assert len(writes) == 1  # the second write was refused
    assert f"expected {len(PAYLOAD)} bytes, got more" in str(info.value)
    assert visible_files(sink_cache) == []
    assert_unlocked(sink_cache)


def test_short_write_is_a_length_mismatch(sink_cache: ArchiveCache) -> None:
    with pytest.raises(LengthMismatchError) as info:
        sink_cache.fetch(DIGEST, len(PAYLOAD), writer(PAYLOAD[:-1]))
    assert f"expected {len(PAYLOAD)} bytes, got {len(PAYLOAD) - 1}" in str(info.value)
    assert visible_files(sink_cache) == []
    assert_unlocked(sink_cache)


def test_write_into_errors_propagate_and_leave_nothing(sink_cache: ArchiveCache) -> None:
    def write_into(sink: Sink) -> None:
        sink.write(PAYLOAD[:100])
        raise DownloadError("network down")

    with pytest.raises(DownloadError, match="network down"):
        sink_cache.fetch(DIGEST, len(PAYLOAD), write_into)
    assert visible_files(sink_cache) == []
    assert_unlocked(sink_cache)


def test_base_exception_releases_the_lock(sink_cache: ArchiveCache) -> None:
    class Interrupted(BaseException):
        pass

    def write_into(sink: Sink) -> None:
        sink.write(PAYLOAD[:100])
        raise Interrupted

    with pytest.raises(Interrupted):
        sink_cache.fetch(DIGEST, len(PAYLOAD), write_into)
    assert visible_files(sink_cache) == []
    assert_unlocked(sink_cache)


def test_sink_cannot_be_used_after_fetch(sink_cache: ArchiveCache) -> None:
    kept: list[Sink] = []

    def write_into(sink: Sink) -> None:
        kept.append(sink)
        sink.write(PAYLOAD)

    sink_cache.fetch(DIGEST, len(PAYLOAD), write_into)
    with pytest.raises(RuntimeError, match="after its fetch"):
        kept[0].write(b"late")


def test_pipelined_write_error_is_a_cache_error(tmp_path: Path) -> None:
    """A failed write on the hashing thread reaches the caller; the thread does not linger."""

    class FullDisk:
        def writelines(self, chunks: object) -> None:
            raise OSError(28, "No space left on device")

    sink = cache_module._PipelinedSink(FullDisk(), tmp_path / "x.tmp", DIGEST, len(PAYLOAD))  # type: ignore[arg-type]
    with pytest.raises(CacheError, match="No space left on device") as info:
        for start in range(0, len(PAYLOAD), 64):
            sink.write(PAYLOAD[start : start + 64])
        sink.finish()
    assert isinstance(info.value.__cause__, OSError)
    sink.close()
    assert not [t for t in threading.enumerate() if t.name == "mmc-hash-write"]


def test_pipelined_sink_is_used_for_large_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archives of ``_PIPELINE_BYTES`` and more take the threaded sink (the size rule holds)."""
    monkeypatch.setattr(cache_module, "_PIPELINE_BYTES", len(PAYLOAD))
    cache = ArchiveCache(tmp_path / "cache", lock_timeout=5.0)
    kinds: list[str] = []

    def recording(data: bytes) -> Callable[[Sink], None]:
        def write_into(sink: Sink) -> None:
            kinds.append(type(sink).__name__)
            sink.write(data)

        return write_into

    cache.fetch(DIGEST, len(PAYLOAD), recording(PAYLOAD))
    small = PAYLOAD[:-1]
    cache.fetch(sha(small), len(small), recording(small))
    assert kinds == ["_PipelinedSink", "_VerifyingSink"]


# -- corrupt entries are misses ---------------------------------------------------


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_entry_is_a_miss_and_is_refetched(
    cache: ArchiveCache, caplog: pytest.LogCaptureFixture
) -> None:
    write = CountingWriter()
    path = cache.fetch(DIGEST, len(PAYLOAD), write)
    corrupt(path)
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.cache"):
        assert cache.lookup(DIGEST, len(PAYLOAD)) is None
    assert not path.exists()
    assert any("corrupt cache entry" in r.getMessage() for r in caplog.records)
    assert cache.fetch(DIGEST, len(PAYLOAD), write).read_bytes() == PAYLOAD
    assert write.calls == 2
    assert_unlocked(cache)


def test_corrupt_entry_is_replaced_by_fetch(cache: ArchiveCache) -> None:
    write = CountingWriter()
    corrupt(cache.fetch(DIGEST, len(PAYLOAD), write))
    assert cache.fetch(DIGEST, len(PAYLOAD), write).read_bytes() == PAYLOAD
    assert write.calls == 2


def test_wrong_size_entry_is_a_miss(cache: ArchiveCache) -> None:
    path = cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    path.write_bytes(PAYLOAD + b"trailing")
    assert cache.lookup(DIGEST, len(PAYLOAD)) is None
    assert not path.exists()


def test_symlinked_entry_is_a_miss(cache: ArchiveCache, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(PAYLOAD)
    path = cache.path_for(DIGEST)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    assert cache.lookup(DIGEST, len(PAYLOAD)) is None
    assert not path.is_symlink()
    assert target.read_bytes() == PAYLOAD  # the link was removed, not its target


def test_removing_a_corrupt_entry_takes_the_lock(cache: ArchiveCache) -> None:
    path = cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    corrupt(path)
    fast = ArchiveCache(cache.root, lock_timeout=0.2)
    with (
        lock_held_by_other_process(fanout(cache) / f"{DIGEST}.lock"),
        pytest.raises(LockTimeoutError),
    ):
        fast.lookup(DIGEST, len(PAYLOAD))
    assert path.exists()  # nothing was removed without the lock


# -- read_verified -------------------------------------------------------------------


def test_read_verified_returns_the_hashed_bytes(cache: ArchiveCache) -> None:
    cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    assert cache.read_verified(DIGEST, len(PAYLOAD)) == PAYLOAD


def test_read_verified_missing(cache: ArchiveCache) -> None:
    with pytest.raises(CacheError, match="not in the cache"):
        cache.read_verified(DIGEST, len(PAYLOAD))


def test_read_verified_corrupt_raises_and_removes(cache: ArchiveCache) -> None:
    path = cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    corrupt(path)
    with pytest.raises(HashMismatchError) as info:
        cache.read_verified(DIGEST, len(PAYLOAD))
    assert f"expected {DIGEST}, got " in str(info.value)
    assert not path.exists()
    assert_unlocked(cache)


def test_read_verified_wrong_size(cache: ArchiveCache) -> None:
    path = cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    path.write_bytes(PAYLOAD[:-3])
    with pytest.raises(LengthMismatchError, match=f"got {len(PAYLOAD) - 3}"):
        cache.read_verified(DIGEST, len(PAYLOAD))
    assert not path.exists()


# -- crash leftovers ------------------------------------------------------------------


def test_leftovers_are_cleaned_under_the_lock(cache: ArchiveCache) -> None:
    directory = fanout(cache)
    directory.mkdir(parents=True)
    leftover = directory / f"{DIGEST}.k1ll3d.tmp"
    leftover.write_bytes(b"half an archive")
    unrelated = directory / f"{DIGEST[:2]}{'0' * 62}.other.tmp"
    unrelated.write_bytes(b"another digest's download")
    cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    assert not leftover.exists()
    assert unrelated.exists()  # only this digest's leftovers: its lock is the one we hold


def test_killed_writer_leaves_a_leftover_that_the_next_fetch_cleans(cache: ArchiveCache) -> None:
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from modelmesh_connectors.client.cache import ArchiveCache\n"
        "cache = ArchiveCache(Path(sys.argv[1]), lock_timeout=10)\n"
        "def write_into(sink):\n"
        "    sink.write(b'partial')\n"
        "    os._exit(17)\n"
        "cache.fetch(sys.argv[2], int(sys.argv[3]), write_into)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(cache.root), DIGEST, str(len(PAYLOAD))],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 17, result.stderr
    assert [n for n in visible_files(cache) if n.endswith(".tmp")]  # the crash left a file
    assert cache.lookup(DIGEST, len(PAYLOAD)) is None  # ... that is never an entry
    assert_unlocked(cache)  # the dead process's lock died with it
    cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())
    assert visible_files(cache) == [DIGEST]


# -- locks and races -------------------------------------------------------------------


def test_lock_timeout_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    cache = ArchiveCache(tmp_path / "cache", lock_timeout=0.2)
    lock_path = fanout(cache) / f"{DIGEST}.lock"
    write = CountingWriter()
    started = time.monotonic()
    with lock_held_by_other_process(lock_path), pytest.raises(LockTimeoutError) as info:
        cache.fetch(DIGEST, len(PAYLOAD), write)
    assert 0.2 <= time.monotonic() - started < 5.0
    assert str(lock_path) in str(info.value)
    assert info.value.hint is not None
    assert "another" in info.value.hint
    assert write.calls == 0
    assert cache.fetch(DIGEST, len(PAYLOAD), write).exists()  # works once released


def test_threads_racing_fetch_write_once(cache: ArchiveCache) -> None:
    write = CountingWriter(delay=0.2)
    barrier = threading.Barrier(6)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(cache.fetch(DIGEST, len(PAYLOAD), write))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert write.calls == 1
    assert len(set(results)) == 1
    assert results[0].read_bytes() == PAYLOAD
    assert_unlocked(cache)


@pytest.mark.slow  # real processes racing for the lock; scripts/test.sh runs it
def test_processes_racing_fetch_write_once(cache: ArchiveCache, tmp_path: Path) -> None:
    counter = tmp_path / "calls.txt"
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from modelmesh_connectors.client.cache import ArchiveCache\n"
        "root, digest, length, counter, go, payload = sys.argv[1:]\n"
        "while not os.path.exists(go):\n"
        "    time.sleep(0.005)\n"
        "cache = ArchiveCache(Path(root), lock_timeout=30)\n"
        "def write_into(sink):\n"
        "    with open(counter, 'a') as f:\n"
        "        f.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(0.3)\n"
        "    sink.write(bytes.fromhex(payload))\n"
        "print(cache.fetch(digest, int(length), write_into))\n"
    )
    args = [
        str(cache.root),
        DIGEST,
        str(len(PAYLOAD)),
        str(counter),
        str(go),
        PAYLOAD.hex(),
    ]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    go.touch()
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        outputs.append(out.strip())
    assert counter.read_text().count("\n") == 1
    assert set(outputs) == {str(cache.path_for(DIGEST))}
    assert cache.read_verified(DIGEST, len(PAYLOAD)) == PAYLOAD


# -- listing and maintenance --------------------------------------------------------------


def test_entries_verify_all_prune_remove(cache: ArchiveCache) -> None:
    blobs = [f"archive {i}".encode() * 10 for i in range(4)]
    digests = [sha(b) for b in blobs]
    for blob in blobs:
        cache.fetch(sha(blob), len(blob), writer(blob))
    assert [e.sha256 for e in cache.entries()] == sorted(digests)
    assert {e.size for e in cache.entries()} == {len(blobs[0]), len(blobs[3])}

    corrupt(cache.path_for(digests[1]))
    assert cache.verify_all() == [digests[1]]
    assert sorted(e.sha256 for e in cache.entries()) == sorted(set(digests) - {digests[1]})

    stray = fanout(cache, digests[0]) / f"{digests[0]}.crash.tmp"
    stray.write_bytes(b"x")
    assert cache.prune({digests[0]}) == sorted([digests[2], digests[3]])
    assert [e.sha256 for e in cache.entries()] == [digests[0]]
    assert not stray.exists()

    assert cache.remove(digests[0]) is True
    assert cache.remove(digests[0]) is False
    assert cache.entries() == []


def test_entries_of_a_new_cache(cache: ArchiveCache) -> None:
    assert cache.entries() == []
    assert cache.verify_all() == []
    assert cache.prune(set()) == []


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", DIGEST.upper(), DIGEST[:-1], DIGEST + "0", "", f"{DIGEST[:-1]}/"],
)
def test_malformed_digests_are_refused(cache: ArchiveCache, bad: str) -> None:
    with pytest.raises(InvalidInput):
        cache.path_for(bad)
    with pytest.raises(InvalidInput):
        cache.fetch(bad, 1, writer(b"x"))
    assert not cache.root.exists()


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_malformed_lengths_are_refused(cache: ArchiveCache, bad: object) -> None:
    with pytest.raises(InvalidInput):
        cache.lookup(DIGEST, bad)  # type: ignore[arg-type]


def test_negative_lock_timeout_is_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lock_timeout"):
        ArchiveCache(tmp_path, lock_timeout=-1)


def test_unwritable_cache_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_bytes(b"")
    cache = ArchiveCache(blocker, lock_timeout=1)
    with pytest.raises(CacheError, match="cannot create the directory"):
        cache.fetch(DIGEST, len(PAYLOAD), CountingWriter())


# -- default location ---------------------------------------------------------------------


def test_default_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "custom"))
    assert default_cache_dir() == tmp_path / "custom"


def test_default_cache_dir_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    path = default_cache_dir()
    assert path.is_absolute()
    assert path.name == "modelmesh-connectors"


def test_default_cache_dir_ignores_empty_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, "  ")
    assert default_cache_dir().name == "modelmesh-connectors"


# -- with the real network seam -----------------------------------------------------------

FETCH = DownloadConfig(
    connect_timeout=2.0,
    read_timeout=2.0,
    retries=2,
    backoff_base=0.001,
    backoff_max=0.005,
    trust_env=False,
)


@pytest.fixture
def served() -> Iterator[tuple[LoopbackServer, HttpFetcher]]:
    with LoopbackServer() as server, HttpFetcher(FETCH) as fetcher:
        yield server, fetcher


def download_into(fetcher: HttpFetcher, url: str, length: int) -> Callable[[Sink], None]:
    def write_into(sink: Sink) -> None:
        fetcher.fetch_to(url, sink, max_length=length)

    return write_into


def test_download_into_cache(
    sink_cache: ArchiveCache, served: tuple[LoopbackServer, HttpFetcher]
) -> None:
    server, fetcher = served
    server.script("/a.zip", Reply.ok(PAYLOAD, reset_at=500), Reply.ok(PAYLOAD))
    url = server.url("/a.zip")
    path = sink_cache.fetch(DIGEST, len(PAYLOAD), download_into(fetcher, url, len(PAYLOAD)))
    assert path.read_bytes() == PAYLOAD  # the retry reset the sink
    assert server.request_count("/a.zip") == 2


def test_tampered_download_never_enters_the_cache(
    sink_cache: ArchiveCache, served: tuple[LoopbackServer, HttpFetcher]
) -> None:
    server, fetcher = served
    tampered = PAYLOAD.replace(b"connector", b"backdoor!")
    server.add_file("/a.zip", tampered)
    url = server.url("/a.zip")
    with pytest.raises(HashMismatchError):
        sink_cache.fetch(DIGEST, len(PAYLOAD), download_into(fetcher, url, len(PAYLOAD)))
    assert visible_files(sink_cache) == []
    assert_unlocked(sink_cache)


def test_endless_download_is_stopped_by_the_sink(
    sink_cache: ArchiveCache, served: tuple[LoopbackServer, HttpFetcher]
) -> None:
    server, fetcher = served
    server.script("/a.zip", Reply.ok(b"", endless=True, framing="chunked"))
    url = server.url("/a.zip")

    def write_into(sink: Sink) -> None:
        # A generous fetcher cap: the sink_cache's own length check must still stop it.
        fetcher.fetch_to(url, sink, max_length=1 << 30)

    with pytest.raises(LengthMismatchError, match="got more"):
        sink_cache.fetch(DIGEST, len(PAYLOAD), write_into)
    assert visible_files(sink_cache) == []
    assert_unlocked(sink_cache)


@pytest.mark.parametrize("readv", [True, False], ids=["readv", "read"])
def test_lookup_rehashes_every_byte_with_or_without_readv(
    cache: ArchiveCache, monkeypatch: pytest.MonkeyPatch, readv: bool
) -> None:
    # The re-hash reads the descriptor to its end in buffer-sized steps (os.readv, or
    # os.read where there is none): an entry larger than the buffer, changed in its last
    # byte, must still be a miss.
    monkeypatch.setattr(cache_module, "_HASH_CHUNK", 4096)
    monkeypatch.setattr(cache_module, "_BUFFERS", threading.local())
    if not readv:
        monkeypatch.setattr(cache_module, "_READV", None)
    data = bytes(range(256)) * 40  # 10 KiB: three buffers
    digest = hashlib.sha256(data).hexdigest()
    path = cache.fetch(digest, len(data), lambda sink: sink.write(data))
    assert cache.lookup(digest, len(data)) == path
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert cache.lookup(digest, len(data)) is None
    assert not path.exists()  # the bad entry was removed
