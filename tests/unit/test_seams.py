"""Each seam exists once: the fetcher base, the digest check, the failover rule, the settings.

Unit tests of one seam each; the end-to-end and attack tests drive the same code through real
servers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelmesh_connectors._internal.digest import Hasher, check_bytes
from modelmesh_connectors._internal.files import SidecarLock, atomic_writer, write_atomic
from modelmesh_connectors.client.cache import default_cache_dir
from modelmesh_connectors.client.config import LoaderConfig, parse_config
from modelmesh_connectors.client.failover import Failover
from modelmesh_connectors.client.fetch import DownloadConfig, HttpFetcher
from modelmesh_connectors.client.fetcher import RESTART, Chunks, Fetcher, Restart
from modelmesh_connectors.client.file_fetch import DirectoryFetcher, path_to_url
from modelmesh_connectors.client.settings import CACHE_DIR_ENV, Limits, NetworkConfig
from modelmesh_connectors.errors import (
    DownloadError,
    HashMismatchError,
    LengthMismatchError,
    LockTimeoutError,
    NotFoundError,
    SignatureError,
    UnreachableError,
)

# -- the fetcher base --------------------------------------------------------------------------


class _Scripted(Fetcher):
    """Yields what it is given; raises ``error`` after the chunks if set."""

    def __init__(self, chunks: list[bytes | Restart], error: Exception | None = None) -> None:
        self.chunks, self.error, self.closed = chunks, error, False

    def _fetch(self, url: str, max_length: int) -> Chunks:
        try:
            yield from self.chunks
            if self.error is not None:
                raise self.error
        finally:
            self.closed = True


class _Sink:
    def __init__(self) -> None:
        self.data, self.resets = bytearray(), 0

    def write(self, data: bytes) -> None:
        self.data += data

    def reset(self) -> None:
        self.data.clear()
        self.resets += 1


def test_base_caps_the_length_and_never_hands_over_the_chunk_past_it() -> None:
    fetcher = _Scripted([b"a" * 6, b"b" * 6, b"c"])
    sink = _Sink()
    with pytest.raises(LengthMismatchError, match="more than the expected maximum of 10"):
        fetcher.fetch_to("https://example.test/x", sink, max_length=10)
    assert bytes(sink.data) == b"a" * 6
    assert fetcher.closed  # the transfer ends at once


def test_base_maps_foreign_errors_once() -> None:
    with pytest.raises(DownloadError, match="cannot fetch .*OSError: disk on fire") as info:
        _Scripted([b"x"], OSError("disk on fire")).fetch_bytes("https://e.test/x", max_length=9)
    assert isinstance(info.value.__cause__, OSError)


def test_base_passes_project_errors_and_misuse_unchanged() -> None:
    with pytest.raises(UnreachableError):
        _Scripted([], UnreachableError("down")).fetch_bytes("https://e.test/", max_length=1)
    with pytest.raises(RuntimeError, match="closed"):
        _Scripted([], RuntimeError("closed")).fetch_bytes("https://e.test/", max_length=1)
    with pytest.raises(ValueError, match="non-negative"):
        _Scripted([]).fetch_bytes("https://e.test/", max_length=-1)


def test_restart_resets_the_sink_and_the_count() -> None:
    sink = _Sink()
    fetcher = _Scripted([b"12345678", RESTART, b"abcdefgh"])
    assert fetcher.fetch_to("https://e.test/x", sink, max_length=8) == 8
    assert (bytes(sink.data), sink.resets) == (b"abcdefgh", 1)


def test_both_real_fetchers_share_the_base() -> None:
    assert issubclass(HttpFetcher, Fetcher) and issubclass(DirectoryFetcher, Fetcher)
    assert "fetch_to" not in vars(HttpFetcher) and "fetch_to" not in vars(DirectoryFetcher)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_directory_fetcher_stops_endless_data_at_the_cap() -> None:
    with pytest.raises(LengthMismatchError, match="maximum of 1000"):
        DirectoryFetcher().fetch_bytes("file:///dev/zero", max_length=1000)


def test_directory_fetcher_maps_missing_files(tmp_path: Path) -> None:
    url = path_to_url(tmp_path)
    with pytest.raises(NotFoundError, match="no such file"):
        DirectoryFetcher().fetch_bytes(url + "nope.json", max_length=10)
    (tmp_path / "d").mkdir()
    with pytest.raises(NotFoundError, match="is a directory"):
        DirectoryFetcher().fetch_bytes(url + "d", max_length=10)


# -- one settings object -----------------------------------------------------------------------


def test_the_fetcher_takes_the_parsed_network_config_as_is(tmp_path: Path) -> None:
    config = parse_config({"timeouts": {"connect": "3s"}, "retries": 1}, base_dir=tmp_path)
    assert DownloadConfig is NetworkConfig  # one class, not a copy
    with HttpFetcher(config.network) as fetcher:
        assert fetcher.config is config.network


def test_limits_come_from_the_configuration(tmp_path: Path) -> None:
    config = parse_config({"max_metadata_bytes": 2048}, base_dir=tmp_path)
    assert config.limits == Limits(max_metadata_bytes=2048)
    with pytest.raises(ValueError, match=r"Limits\.max_root_bytes"):
        Limits(max_root_bytes=0)


def test_one_cache_dir_resolver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert LoaderConfig().resolved_cache_dir() == default_cache_dir()
    monkeypatch.setenv(CACHE_DIR_ENV, "   ")  # blank: unset, for both (they used to disagree)
    assert LoaderConfig().resolved_cache_dir() == default_cache_dir()
    assert default_cache_dir().name == "modelmesh-connectors"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    assert LoaderConfig().resolved_cache_dir() == default_cache_dir() == tmp_path


# -- one digest check ----------------------------------------------------------------------------


def test_one_message_format() -> None:
    with pytest.raises(HashMismatchError, match=r"^sha256 mismatch for thing: expected 0+, got "):
        check_bytes(b"x", sha256="0" * 64, length=None, what="thing")
    with pytest.raises(LengthMismatchError, match=r"^length mismatch for thing: expected 2 bytes"):
        check_bytes(b"x", sha256="0" * 64, length=2, what="thing")


def test_streaming_hasher_refuses_past_the_pin_and_checks_at_the_end() -> None:
    import hashlib

    hasher = Hasher(sha256=hashlib.sha256(b"abc").hexdigest(), length=3, what="a")
    hasher.update(b"ab")
    with pytest.raises(LengthMismatchError, match="got more"):
        hasher.update(b"cd")
    hasher.update(b"c")
    hasher.check()
    hasher.reset()
    hasher.update(b"abd")
    with pytest.raises(HashMismatchError, match="sha256 mismatch for a"):
        hasher.check()


# -- one failover rule ---------------------------------------------------------------------------


def _fail(exc: Exception) -> str:
    raise exc


def test_failover_reports_the_first_trust_failure() -> None:
    failures = {
        "a": UnreachableError("a is down"),
        "b": SignatureError("b signed badly"),
        "c": HashMismatchError("c served other bytes"),
    }
    with pytest.raises(
        SignatureError, match=r"^x: b signed badly \(every mirror failed: a: a is down"
    ) as info:
        Failover().first(
            list(failures),
            lambda m: _fail(failures[m]),
            what="x",
            name=str,
            when_none=lambda: DownloadError("none"),
        )
    assert info.value.__cause__ is failures["b"]


def test_failover_without_trust_failures_is_a_download_error() -> None:
    with pytest.raises(DownloadError, match=r"x: no mirror served it: a: down") as info:
        Failover().first(
            ["a"],
            lambda m: _fail(UnreachableError("down")),
            what="x",
            name=str,
            when_none=lambda: DownloadError("none"),
            hint="fallback hint",
        )
    assert info.value.hint == "fallback hint"
    with pytest.raises(DownloadError, match="^none$"):
        Failover().first([], str, what="x", name=str, when_none=lambda: DownloadError("none"))


def test_failover_returns_the_first_success() -> None:
    calls: list[str] = []

    def attempt(mirror: str) -> str:
        calls.append(mirror)
        if mirror == "a":
            raise UnreachableError("down")
        return mirror.upper()

    result = Failover().first(
        ["a", "b", "c"], attempt, what="x", name=str, when_none=lambda: DownloadError("n")
    )
    assert (result, calls) == ("B", ["a", "b"])


# -- one atomic write, one sidecar lock ----------------------------------------------------------


def test_atomic_writer_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_atomic(target, b"old")
    with pytest.raises(HashMismatchError), atomic_writer(target, prefix="f.") as handle:
        handle.write(b"new")
        raise HashMismatchError("verify inside the block")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_sidecar_lock_times_out_with_the_project_error(tmp_path: Path) -> None:
    from filelock import FileLock

    path = tmp_path / "sub" / "x.lock"
    lock = SidecarLock(path, timeout=0.05, what="test lock", hint="wait")
    with lock.held():
        pass
    holder = FileLock(path, timeout=0)
    holder.acquire()
    try:
        with pytest.raises(LockTimeoutError, match="waiting for the test lock"), lock.held():
            pass  # pragma: no cover - never entered
    finally:
        holder.release()
