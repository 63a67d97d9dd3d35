"""The per-origin store of last trusted metadata: exact bytes, atomic writes, locks."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from filelock import FileLock

from modelmesh_connectors.client.state import (
    MetadataStore,
    OriginMetadata,
    normalize_index_url,
    origin_id,
    trust_root_dir,
)
from modelmesh_connectors.errors import (
    CacheError,
    HashMismatchError,
    InvalidInput,
    LockTimeoutError,
)

URL = "https://connectors.example.test/index/"
# Signed files are stored as received: odd whitespace and key order must survive.
ROOT = (
    b'{"payloadType": "application/vnd.modelmesh.root+json",  "payload":"eyJ9",\n"signatures":[]}'
)
TIMESTAMP = b'{"payload":"dHM=","payloadType":"application/vnd.modelmesh.timestamp+json"} '
INDEX = b"\xef\xbb\xbf{}"  # even a BOM is kept byte for byte
NODE = b'{"type": "bin", "prefix": "3fa2", "packages": {}}'
NODE_SHA = hashlib.sha256(NODE).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    return MetadataStore(tmp_path / "cache", lock_timeout=5.0)


@pytest.fixture
def origin(store: MetadataStore) -> OriginMetadata:
    return store.origin(URL)


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.tmp"))


def assert_unlocked(origin: OriginMetadata) -> None:
    lock = FileLock(origin.directory / ".lock", timeout=0)
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


# -- origin keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://connectors.example.test/index/", "https://connectors.example.test/index/"),
        ("HTTPS://Connectors.Example.TEST:443/index", "https://connectors.example.test/index/"),
        ("https://user:secret@example.test/i/#frag", "https://example.test/i/"),
        ("https://example.test", "https://example.test/"),
        ("http://127.0.0.1:8080/idx", "http://127.0.0.1:8080/idx/"),
        ("http://localhost:80/idx/", "http://localhost/idx/"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x/"),
        ("https://example.test/i/?mirror=eu", "https://example.test/i/?mirror=eu"),
        ("file:///srv/index", "file:///srv/index/"),
        ("  https://example.test/i/  ", "https://example.test/i/"),
    ],
)
def test_normalize_index_url(url: str, normalized: str) -> None:
    assert normalize_index_url(url) == normalized


@pytest.mark.parametrize(
    "url", ["example.test/index", "https:///index", "https://example.test:99999/", ""]
)
def test_normalize_rejects(url: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_index_url(url)


def test_origin_id() -> None:
    expected = hashlib.sha256(b"https://connectors.example.test/index/").hexdigest()[:16]
    assert origin_id(URL) == expected
    assert origin_id("HTTPS://connectors.example.test:443/index") == expected
    assert origin_id("https://connectors.example.test/other/") != expected


def test_equal_urls_share_one_origin_object(store: MetadataStore) -> None:
    assert store.origin(URL) is store.origin("HTTPS://connectors.example.test:443/index")
    assert store.origin(URL) is not store.origin("https://connectors.example.test/other/")


def test_nothing_is_created_before_a_write(store: MetadataStore, origin: OriginMetadata) -> None:
    assert origin.load_root_versions() == []
    assert origin.load_node(NODE_SHA) is None
    assert origin.last_refresh() is None
    assert not store.root.exists()


# -- exact bytes, atomic writes -----------------------------------------------------------


def test_signed_files_round_trip_exactly(store: MetadataStore, origin: OriginMetadata) -> None:
    origin.save_root_version(2, ROOT)
    origin.save_timestamp(TIMESTAMP)
    origin.save_index(INDEX)
    assert origin.load_root_versions() == [(2, ROOT)]
    assert origin.load_timestamp() == TIMESTAMP
    assert origin.load_index() == INDEX
    directory = store.root / "metadata" / origin_id(URL)
    assert origin.directory == directory
    assert (directory / "roots" / "2.json").read_bytes() == ROOT
    assert (directory / "origin.txt").read_text().strip() == URL
    assert temp_files(directory) == []
    assert_unlocked(origin)


def test_a_fresh_store_reads_what_another_wrote(store: MetadataStore) -> None:
    store.origin(URL).save_timestamp(TIMESTAMP)
    other = MetadataStore(store.root)
    assert other.origin(URL).load_timestamp() == TIMESTAMP


def test_credentials_never_reach_the_disk(store: MetadataStore) -> None:
    origin = store.origin("https://alice:hunter2@connectors.example.test/index/")
    origin.save_timestamp(TIMESTAMP)
    for path in store.root.rglob("*"):
        if path.is_file():
            assert b"hunter2" not in path.read_bytes()
    assert origin.url == URL


def test_overwrite_replaces_the_whole_file(origin: OriginMetadata) -> None:
    origin.save_timestamp(b"x" * 10_000)
    origin.save_timestamp(TIMESTAMP)
    assert origin.load_timestamp() == TIMESTAMP


def test_failed_write_keeps_the_old_file(
    origin: OriginMetadata, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin.save_timestamp(TIMESTAMP)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CacheError, match="No space left"):
        origin.save_timestamp(b"new")
    monkeypatch.undo()
    assert origin.load_timestamp() == TIMESTAMP
    assert temp_files(origin.directory) == []
    assert_unlocked(origin)


def test_write_leftovers_are_cleaned(origin: OriginMetadata) -> None:
    origin.save_timestamp(TIMESTAMP)
    leftover = origin.directory / ".timestamp.json.dead1234.tmp"
    leftover.write_bytes(b"half")
    origin.save_timestamp(TIMESTAMP)
    assert not leftover.exists()


def test_readers_never_see_a_partial_file(origin: OriginMetadata) -> None:
    payloads = [bytes([65 + i]) * 200_000 for i in range(4)]
    origin.save_index(payloads[0])
    stop = threading.Event()
    seen: set[bytes | None] = set()
    problems: list[str] = []

    def read() -> None:
        while not stop.is_set():
            data = origin.load_index()
            if data not in payloads:
                problems.append(f"read {len(data or b'')} bytes of a mix")
            seen.add(data[:1] if data else None)

    def write(payload: bytes) -> None:
        for _ in range(10):
            origin.save_index(payload)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert problems == []
    assert origin.load_index() in payloads
    assert temp_files(origin.directory) == []


# -- content-addressed nodes ---------------------------------------------------------------


def test_nodes_round_trip(origin: OriginMetadata) -> None:
    origin.save_node(NODE_SHA, NODE)
    origin.save_node(NODE_SHA, NODE)  # idempotent
    assert origin.load_node(NODE_SHA) == NODE
    assert origin.load_node(NODE_SHA, len(NODE)) == NODE
    assert (origin.directory / "nodes" / f"{NODE_SHA}.json").read_bytes() == NODE
    assert origin.nodes() == [NODE_SHA]


def test_node_with_wrong_hash_is_not_stored(origin: OriginMetadata) -> None:
    with pytest.raises(HashMismatchError) as info:
        origin.save_node(NODE_SHA, NODE + b" ")
    assert (
        f"sha256 mismatch for metadata node {NODE_SHA}.json (not stored): expected {NODE_SHA}"
        in str(info.value)
    )
    assert origin.load_node(NODE_SHA) is None
    assert origin.nodes() == []


def test_corrupt_node_is_a_miss_and_removed(
    origin: OriginMetadata, caplog: pytest.LogCaptureFixture
) -> None:
    origin.save_node(NODE_SHA, NODE)
    path = origin.directory / "nodes" / f"{NODE_SHA}.json"
    path.write_bytes(NODE.replace(b"bin", b"BIN"))
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.state"):
        assert origin.load_node(NODE_SHA) is None
    assert not path.exists()
    assert any("corrupt metadata node" in r.getMessage() for r in caplog.records)
    assert_unlocked(origin)


def test_node_with_wrong_length_is_a_miss(origin: OriginMetadata) -> None:
    origin.save_node(NODE_SHA, NODE)
    assert origin.load_node(NODE_SHA, len(NODE) + 1) is None


@pytest.mark.parametrize("bad", ["../root", NODE_SHA.upper(), NODE_SHA[:40], ""])
def test_malformed_node_digests_are_refused(origin: OriginMetadata, bad: str) -> None:
    with pytest.raises(InvalidInput):
        origin.load_node(bad)
    with pytest.raises(InvalidInput):
        origin.save_node(bad, NODE)


def test_prune_nodes(origin: OriginMetadata) -> None:
    nodes = [f'{{"n": {i}}}'.encode() for i in range(3)]
    digests = [hashlib.sha256(n).hexdigest() for n in nodes]
    for digest, node in zip(digests, nodes, strict=True):
        origin.save_node(digest, node)
    assert origin.prune_nodes({digests[1]}) == sorted([digests[0], digests[2]])
    assert origin.nodes() == [digests[1]]


# -- last refresh time ----------------------------------------------------------------------


def test_refresh_time_round_trips(origin: OriginMetadata) -> None:
    when = datetime(2026, 11, 25, 12, 30, 5, 123456, tzinfo=UTC)
    origin.record_refresh(when)
    assert origin.last_refresh() == when
    state = json.loads((origin.directory / "state.json").read_text())
    assert state == {"last_refresh": "2026-11-25T12:30:05.123456Z"}


def test_refresh_time_rewritten_leaves_one_file_with_the_last_time(origin: OriginMetadata) -> None:
    # record_refresh removes the old file and moves the new one into the free name (no
    # rename over a file: ext4 flushes before such a rename); nothing else may be left.
    first, second = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    origin.record_refresh(first)
    origin.record_refresh(second)
    assert origin.last_refresh() == second
    assert sorted(p.name for p in origin.directory.iterdir() if "state" in p.name) == ["state.json"]


def test_refresh_time_is_stored_in_utc(origin: OriginMetadata) -> None:
    local = datetime(2026, 11, 25, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    origin.record_refresh(local)
    got = origin.last_refresh()
    assert got == local
    assert got is not None
    assert got.utcoffset() == timedelta(0)


def test_refresh_time_is_data_not_mtime(origin: OriginMetadata) -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    origin.record_refresh(when)
    origin.save_timestamp(TIMESTAMP)
    for path in origin.directory.iterdir():
        os.utime(path, (0, 0))  # a backup restore or copy resets times
    assert origin.last_refresh() == when


def test_naive_refresh_time_is_misuse(origin: OriginMetadata) -> None:
    with pytest.raises(ValueError, match="time-zone-aware"):
        origin.record_refresh(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"last_refresh": 5}', b'{"last_refresh": "2026-01-01T00:00:00"}'],
)
def test_malformed_state_counts_as_never_refreshed(
    origin: OriginMetadata, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    origin.record_refresh(datetime(2026, 1, 1, tzinfo=UTC))
    (origin.directory / "state.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.state"):
        assert origin.last_refresh() is None
    assert caplog.records


# -- locks -----------------------------------------------------------------------------------


def test_write_times_out_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    origin = MetadataStore(tmp_path, lock_timeout=0.2).origin(URL)
    origin.save_timestamp(TIMESTAMP)
    lock_path = origin.directory / ".lock"
    with lock_held_by_other_process(lock_path):
        with pytest.raises(LockTimeoutError) as info:
            origin.save_timestamp(b"newer")
        assert str(lock_path) in str(info.value)
        assert info.value.hint is not None
        assert origin.load_timestamp() == TIMESTAMP  # reads need no lock
    origin.save_timestamp(b"newer")
    assert origin.load_timestamp() == b"newer"


def test_locked_is_reentrant(origin: OriginMetadata) -> None:
    started = time.monotonic()
    with origin.locked():
        assert origin.load_timestamp() is None
        origin.save_root_version(2, ROOT)
        origin.save_timestamp(TIMESTAMP)
        with origin.locked():
            origin.save_index(INDEX)
        origin.record_refresh(datetime(2026, 1, 1, tzinfo=UTC))
    assert time.monotonic() - started < 2.0
    assert origin.load_index() == INDEX
    assert_unlocked(origin)


def test_locked_excludes_other_threads(origin: OriginMetadata) -> None:
    events: list[str] = []
    holding = threading.Event()

    def hold() -> None:
        with origin.locked():
            holding.set()
            time.sleep(0.2)
            events.append("holder done")

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    origin.save_timestamp(TIMESTAMP)
    events.append("writer done")
    holder.join()
    assert events == ["holder done", "writer done"]


def test_lock_is_released_after_an_exception_inside(origin: OriginMetadata) -> None:
    with pytest.raises(KeyError), origin.locked():
        raise KeyError("boom")
    assert_unlocked(origin)


def test_directory_of_another_origin_is_refused(store: MetadataStore) -> None:
    origin = store.origin(URL)
    origin.save_timestamp(TIMESTAMP)
    (origin.directory / "origin.txt").write_text("https://evil.example.test/\n")
    with pytest.raises(CacheError, match="belongs to"):
        origin.load_timestamp()
    with pytest.raises(CacheError, match="belongs to"):
        origin.save_timestamp(TIMESTAMP)
    assert_unlocked(origin)


def test_origins_lists_stored_state(store: MetadataStore) -> None:
    assert store.origins() == []
    store.origin(URL).save_timestamp(TIMESTAMP)
    store.origin("https://mirror.example.test/idx").save_root_version(2, ROOT)
    store.origin("https://unused.example.test/")  # nothing written: not listed
    assert [o.url for o in store.origins()] == [URL, "https://mirror.example.test/idx/"]


def test_negative_lock_timeout_is_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lock_timeout"):
        MetadataStore(tmp_path, lock_timeout=float("nan"))


def test_root_versions_round_trip_in_order(tmp_path: Path) -> None:
    from modelmesh_connectors.client.state import MetadataStore

    origin = MetadataStore(tmp_path).origin("https://index.example/")
    assert origin.load_root_versions() == []
    origin.save_root_version(3, b"three")
    origin.save_root_version(2, b"two")
    (origin.directory / "roots" / ".3.json.x.tmp").write_bytes(b"leftover")
    assert origin.load_root_versions() == [(2, b"two"), (3, b"three")]


# -- records keyed by trust root ---------------------------------------------------------

IDENTITY = hashlib.sha256(b"root payload").hexdigest()


def test_trust_root_record_is_keyed_by_identity_not_url(store: MetadataStore) -> None:
    record = store.trust_root(IDENTITY)
    assert record is store.trust_root(IDENTITY)
    assert record.directory == store.root / "metadata" / f"trust-{IDENTITY[:16]}"
    assert trust_root_dir(IDENTITY) == f"trust-{IDENTITY[:16]}"
    assert not record.is_legacy and store.origin(URL).is_legacy
    record.save_timestamp(TIMESTAMP)
    assert (record.directory / "origin.txt").read_text() == f"trust-root:{IDENTITY}\n"
    assert MetadataStore(store.root).trust_root(IDENTITY).load_timestamp() == TIMESTAMP


def test_trust_root_records_and_legacy_origins_are_listed_apart(store: MetadataStore) -> None:
    other = hashlib.sha256(b"other root").hexdigest()
    store.trust_root(IDENTITY).save_timestamp(TIMESTAMP)
    store.trust_root(other).save_index(INDEX)
    store.origin(URL).save_timestamp(TIMESTAMP)
    assert [o.identity for o in store.trust_roots()] == sorted(
        f"trust-root:{i}" for i in (IDENTITY, other)
    )
    assert [o.url for o in store.origins()] == [URL]


def test_a_record_claimed_by_another_trust_root_is_refused(store: MetadataStore) -> None:
    store.trust_root(IDENTITY).save_timestamp(TIMESTAMP)
    claim = store.trust_root(IDENTITY).directory / "origin.txt"
    claim.write_text("trust-root:" + "0" * 64 + "\n")
    with pytest.raises(CacheError, match="belongs to"):
        MetadataStore(store.root).trust_root(IDENTITY).load_timestamp()
    assert store.trust_roots() == []  # a record whose claim does not match is not listed


@pytest.mark.parametrize("bad", ["", "ABC", "0" * 63, "../" + "0" * 61, "g" * 64])
def test_trust_root_identity_must_be_a_digest(store: MetadataStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="trust root identity"):
        store.trust_root(bad)


def test_copy_nodes_to_skips_corrupt_nodes_without_writing_the_source(
    store: MetadataStore, origin: OriginMetadata
) -> None:
    origin.save_node(NODE_SHA, NODE)
    bad = hashlib.sha256(b"x").hexdigest()
    (origin.directory / "nodes" / f"{bad}.json").write_bytes(b"not x")
    record = store.trust_root(IDENTITY)
    assert origin.copy_nodes_to(record) == [NODE_SHA]
    assert record.load_node(NODE_SHA) == NODE
    assert (origin.directory / "nodes" / f"{bad}.json").exists()  # the source is only read
