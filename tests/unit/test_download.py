"""The network seam against a real HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import logging
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from modelmesh_connectors._internal.record import replace
from modelmesh_connectors.client.fetch import (
    DownloadConfig,
    HttpFetcher,
    check_url_policy,
)
from modelmesh_connectors.errors import (
    CacheError,
    DownloadError,
    LengthMismatchError,
    NotFoundError,
    PolicyError,
    TransferTimeoutError,
    UnreachableError,
)
from tests.support.http_server import LoopbackServer, Reply

# Tiny delays and timeouts keep the whole file fast; trust_env=False keeps any
# proxy variable in the environment from sending loopback traffic elsewhere.
FAST = DownloadConfig(
    connect_timeout=2.0,
    read_timeout=2.0,
    retries=3,
    backoff_base=0.001,
    backoff_max=0.005,
    max_retry_after=0.05,
    trust_env=False,
)


def fast(**overrides: Any) -> DownloadConfig:
    """FAST with some fields changed."""
    return replace(FAST, **overrides)


class RecordingSink:
    """A Sink that remembers every write and reset."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0
        self.resets = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1

    def reset(self) -> None:
        self.data.clear()
        self.resets += 1


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    with HttpFetcher(FAST) as f:
        yield f


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to resolve a name or open a connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unexpected network access: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the fetcher's backoff sleeps instead of sleeping (the server never sleeps)."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- success and connection reuse -------------------------------------------------


def test_fetch_bytes_returns_the_body(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.add_file("/a.json", b'{"ok": true}')
    assert fetcher.fetch_bytes(server.url("/a.json"), max_length=100) == b'{"ok": true}'
    [request] = server.requests
    assert request.method == "GET"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["user-agent"] == FAST.user_agent


def test_fetch_to_streams_in_chunks(server: LoopbackServer) -> None:
    body = bytes(range(256)) * 64  # 16 KiB
    server.add_file("/blob", body)
    sink = RecordingSink()
    with HttpFetcher(fast(chunk_size=1024)) as fetcher:
        written = fetcher.fetch_to(server.url("/blob"), sink, max_length=len(body))
    assert written == len(body)
    assert bytes(sink.data) == body
    assert sink.writes >= 2
    assert sink.resets == 0


def test_body_of_exactly_max_length_is_accepted(
    server: LoopbackServer, fetcher: HttpFetcher
) -> None:
    server.add_file("/exact", b"x" * 1000)
    assert len(fetcher.fetch_bytes(server.url("/exact"), max_length=1000)) == 1000


def test_empty_body(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.add_file("/empty", b"")
    assert fetcher.fetch_bytes(server.url("/empty"), max_length=0) == b""


def test_sequential_fetches_reuse_one_connection(
    server: LoopbackServer, fetcher: HttpFetcher
) -> None:
    for i in range(5):
        server.add_file(f"/f{i}", f"file {i}".encode())
    for i in range(5):
        assert fetcher.fetch_bytes(server.url(f"/f{i}"), max_length=100) == f"file {i}".encode()
    assert server.request_count() == 5
    assert server.connections_used() == {1}


def test_concurrent_fetches_from_threads(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    files = {f"/archive-{i}.zip": bytes([i]) * (5000 + i) for i in range(24)}
    for path, data in files.items():
        server.add_file(path, data)

    def get(path: str) -> bytes:
        return fetcher.fetch_bytes(server.url(path), max_length=10_000)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = dict(zip(files, pool.map(get, files), strict=True))
    assert results == files
    assert server.request_count() == len(files)
    # Connections are pooled: far fewer connections than requests.
    assert len(server.connections_used()) <= 6


# -- status codes -------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_not_found_is_not_retried(
    server: LoopbackServer, fetcher: HttpFetcher, status: int
) -> None:
    server.script("/missing", Reply.error(status))
    url = server.url("/missing")
    with pytest.raises(NotFoundError) as info:
        fetcher.fetch_bytes(url, max_length=100)
    assert url in str(info.value)
    assert f"HTTP {status}" in str(info.value)
    assert server.request_count("/missing") == 1


def test_unscripted_path_is_not_found(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    with pytest.raises(NotFoundError):
        fetcher.fetch_bytes(server.url("/nothing-here"), max_length=100)


@pytest.mark.parametrize("status", [400, 401, 403, 418])
def test_other_client_errors_fail_at_once(
    server: LoopbackServer, fetcher: HttpFetcher, status: int
) -> None:
    server.script("/denied", Reply.error(status))
    with pytest.raises(DownloadError) as info:
        fetcher.fetch_bytes(server.url("/denied"), max_length=100)
    assert not isinstance(info.value, NotFoundError)
    assert f"expected HTTP 200, got HTTP {status}" in str(info.value)
    assert server.request_count("/denied") == 1


def test_500_then_200_is_retried(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.script("/flaky", Reply.error(500), Reply.ok(b"payload"))
    sink = RecordingSink()
    assert fetcher.fetch_to(server.url("/flaky"), sink, max_length=100) == 7
    assert bytes(sink.data) == b"payload"
    assert sink.resets == 1
    assert server.request_count("/flaky") == 2


def test_503_until_retries_run_out(
    server: LoopbackServer, fetcher: HttpFetcher, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("/down", Reply.error(503))
    url = server.url("/down")
    with (
        caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.fetch"),
        pytest.raises(DownloadError) as info,
    ):
        fetcher.fetch_bytes(url, max_length=100)
    message = str(info.value)
    assert url in message
    assert "HTTP 503" in message
    assert f"after {FAST.retries + 1} attempt(s)" in message
    assert server.request_count("/down") == FAST.retries + 1
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == FAST.retries


def test_no_retries_configured(server: LoopbackServer) -> None:
    server.script("/down", Reply.error(502), Reply.ok(b"late"))
    with HttpFetcher(fast(retries=0)) as fetcher, pytest.raises(DownloadError, match="HTTP 502"):
        fetcher.fetch_bytes(server.url("/down"), max_length=100)
    assert server.request_count("/down") == 1


def test_backoff_grows_and_is_capped(server: LoopbackServer, sleeps: list[float]) -> None:
    server.script("/down", Reply.error(503))
    config = fast(retries=5, backoff_base=0.1, backoff_max=0.3)
    with HttpFetcher(config) as fetcher, pytest.raises(DownloadError):
        fetcher.fetch_bytes(server.url("/down"), max_length=100)
    assert len(sleeps) == 5
    ceilings = [0.1, 0.2, 0.3, 0.3, 0.3]
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        # Equal jitter: between half the ceiling and the ceiling.
        assert ceiling / 2 <= delay <= ceiling


def test_429_honours_retry_after_seconds(server: LoopbackServer, sleeps: list[float]) -> None:
    server.script("/busy", Reply.error(429, headers={"Retry-After": "7"}), Reply.ok(b"ok"))
    with HttpFetcher(fast(max_retry_after=30.0)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/busy"), max_length=10) == b"ok"
    assert sleeps == [7.0]


def test_retry_after_is_capped(server: LoopbackServer, sleeps: list[float]) -> None:
    server.script("/busy", Reply.error(429, headers={"Retry-After": "86400"}), Reply.ok(b"ok"))
    with HttpFetcher(fast(max_retry_after=2.5)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/busy"), max_length=10) == b"ok"
    assert sleeps == [2.5]


def test_retry_after_http_date(server: LoopbackServer, sleeps: list[float]) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    server.script("/busy", Reply.error(503, headers={"Retry-After": when}), Reply.ok(b"ok"))
    with HttpFetcher(fast(max_retry_after=60.0)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/busy"), max_length=10) == b"ok"
    [delay] = sleeps
    assert 15.0 <= delay <= 20.0


@pytest.mark.parametrize("value", ["soon", "\u00b2", "-5", ""])
def test_malformed_retry_after_falls_back_to_backoff(
    server: LoopbackServer, sleeps: list[float], value: str
) -> None:
    server.script("/busy", Reply.error(429, headers={"Retry-After": value}), Reply.ok(b"ok"))
    with HttpFetcher(fast(backoff_base=0.1, backoff_max=1.0, max_retry_after=30.0)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/busy"), max_length=10) == b"ok"
    [delay] = sleeps
    assert 0.05 <= delay <= 0.1


def test_429_really_waits_briefly(server: LoopbackServer) -> None:
    server.script("/busy", Reply.error(429, headers={"Retry-After": "1"}), Reply.ok(b"ok"))
    started = time.monotonic()
    with HttpFetcher(fast(max_retry_after=0.2)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/busy"), max_length=10) == b"ok"
    assert 0.2 <= time.monotonic() - started < 1.0


# -- broken transfers ---------------------------------------------------------------


def test_reset_mid_body_is_retried(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    body = b"r" * 50_000
    server.script("/reset", Reply.ok(body, reset_at=10_000), Reply.ok(body))
    sink = RecordingSink()
    assert fetcher.fetch_to(server.url("/reset"), sink, max_length=len(body)) == len(body)
    assert bytes(sink.data) == body
    assert sink.resets == 1
    assert server.request_count("/reset") == 2


def test_reset_every_time_fails_with_download_error(
    server: LoopbackServer, fetcher: HttpFetcher
) -> None:
    server.script("/reset", Reply.ok(b"r" * 50_000, reset_at=1000))
    with pytest.raises(DownloadError, match=r"(ReadError|RemoteProtocolError)") as info:
        fetcher.fetch_bytes(server.url("/reset"), max_length=100_000)
    assert "Connection reset" in str(info.value) or "peer closed" in str(info.value)
    assert server.request_count("/reset") == FAST.retries + 1


def test_truncated_body_is_retried(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    body = b"t" * 4000
    server.script("/short", Reply.ok(body, truncate_at=1500), Reply.ok(body))
    assert fetcher.fetch_bytes(server.url("/short"), max_length=4000) == body
    assert server.request_count("/short") == 2


def test_truncated_body_every_time(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.script("/short", Reply.ok(b"t" * 4000, truncate_at=1500))
    url = server.url("/short")
    with pytest.raises(DownloadError) as info:
        fetcher.fetch_bytes(url, max_length=4000)
    assert url in str(info.value)
    assert server.request_count("/short") == FAST.retries + 1


def test_stall_before_headers_times_out(server: LoopbackServer) -> None:
    server.script("/slow", Reply.ok(b"late", delay=5.0))
    started = time.monotonic()
    with (
        HttpFetcher(fast(read_timeout=0.2, retries=1)) as fetcher,
        pytest.raises(TransferTimeoutError, match="ReadTimeout") as info,
    ):
        fetcher.fetch_bytes(server.url("/slow"), max_length=100)
    assert time.monotonic() - started < 2.0
    # A silent server is not retried: the mirror loop moves on to the next mirror.
    assert server.request_count("/slow") == 1
    assert info.value.received == 0


def test_stall_mid_body_times_out(server: LoopbackServer) -> None:
    server.script("/stall", Reply.ok(b"s" * 10_000, stall_at=2000, stall=5.0))
    started = time.monotonic()
    with (
        HttpFetcher(fast(read_timeout=0.2, retries=1)) as fetcher,
        pytest.raises(TransferTimeoutError, match="ReadTimeout") as info,
    ):
        fetcher.fetch_bytes(server.url("/stall"), max_length=100_000)
    assert time.monotonic() - started < 2.0
    assert info.value.received == 2000


def test_connection_refused_fails_at_once_without_retry(sleeps: list[float]) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}/x"
    started = time.monotonic()
    with HttpFetcher(fast(retries=2)) as fetcher, pytest.raises(UnreachableError) as info:
        fetcher.fetch_bytes(url, max_length=10)
    assert "ConnectError" in str(info.value)
    assert url in str(info.value)
    # A dead mirror costs nothing: no backoff; the mirror loop goes round instead.
    assert sleeps == []
    assert time.monotonic() - started < 0.5


# -- length caps --------------------------------------------------------------------


def test_oversized_body_without_length_is_aborted_at_the_cap(
    server: LoopbackServer, fetcher: HttpFetcher
) -> None:
    server.script("/big", Reply.ok(b"b" * 200_000, framing="close"))
    sink = RecordingSink()
    with pytest.raises(LengthMismatchError, match="more than the expected maximum of 1000"):
        fetcher.fetch_to(server.url("/big"), sink, max_length=1000)
    assert len(sink.data) <= 1000
    assert server.request_count("/big") == 1  # not retried


def test_one_byte_over_the_cap_is_refused(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.script("/over", Reply.ok(b"o" * 1001, framing="chunked"))
    with pytest.raises(LengthMismatchError):
        fetcher.fetch_bytes(server.url("/over"), max_length=1000)


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_endless_body_is_aborted_at_the_cap(
    server: LoopbackServer, fetcher: HttpFetcher, framing: Any
) -> None:
    server.script("/endless", Reply.ok(b"", endless=True, framing=framing))
    started = time.monotonic()
    with pytest.raises(LengthMismatchError):
        fetcher.fetch_bytes(server.url("/endless"), max_length=1 << 20)
    assert time.monotonic() - started < 3.0
    assert server.request_count("/endless") == 1


def test_content_length_above_cap_is_refused_before_reading(
    server: LoopbackServer, fetcher: HttpFetcher
) -> None:
    server.script("/huge", Reply.ok(b"h" * 100_000))
    sink = RecordingSink()
    url = server.url("/huge")
    with pytest.raises(LengthMismatchError) as info:
        fetcher.fetch_to(url, sink, max_length=5000)
    assert "announces 100000 bytes, expected at most 5000" in str(info.value)
    assert url in str(info.value)
    assert sink.writes == 0
    assert server.request_count("/huge") == 1


def test_content_encoding_is_refused(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.script("/gz", Reply.ok(b"\x1f\x8b...", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(DownloadError, match="Content-Encoding 'gzip'"):
        fetcher.fetch_bytes(server.url("/gz"), max_length=100)
    assert server.request_count("/gz") == 1


def test_sink_errors_propagate_without_retry(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.add_file("/a", b"data")

    class FullDisk:
        def write(self, data: bytes) -> None:
            raise CacheError("disk full")

        def reset(self) -> None:
            raise AssertionError("no retry expected")

    with pytest.raises(CacheError, match="disk full"):
        fetcher.fetch_to(server.url("/a"), FullDisk(), max_length=100)
    assert server.request_count("/a") == 1


def test_negative_max_length_is_misuse(fetcher: HttpFetcher) -> None:
    with pytest.raises(ValueError, match="max_length"):
        fetcher.fetch_bytes("https://127.0.0.1/x", max_length=-1)


# -- redirects ----------------------------------------------------------------------


def test_redirect_is_followed(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.script("/old", Reply.redirect("/new", status=301))
    server.add_file("/new", b"moved")
    assert fetcher.fetch_bytes(server.url("/old"), max_length=100) == b"moved"
    assert [r.path for r in server.requests] == ["/old", "/new"]


def test_redirect_loop_is_bounded(server: LoopbackServer) -> None:
    server.script("/loop", Reply.redirect("/loop"))
    with (
        HttpFetcher(fast(max_redirects=5)) as fetcher,
        pytest.raises(DownloadError, match="too many redirects"),
    ):
        fetcher.fetch_bytes(server.url("/loop"), max_length=100)
    assert server.request_count("/loop") == 6


def test_redirect_without_location(server: LoopbackServer, fetcher: HttpFetcher) -> None:
    server.script("/odd", Reply(status=302))
    with pytest.raises(DownloadError, match="without a Location header"):
        fetcher.fetch_bytes(server.url("/odd"), max_length=100)


def test_redirect_to_non_loopback_http_is_refused_before_connecting(
    server: LoopbackServer, fetcher: HttpFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script("/away", Reply.redirect("http://mirror.example.invalid/file"))
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host in ("127.0.0.1", b"127.0.0.1"), f"unexpected lookup of {host!r}"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    with pytest.raises(PolicyError, match=r"mirror\.example\.invalid"):
        fetcher.fetch_bytes(server.url("/away"), max_length=100)


# -- TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA, *names: str) -> LoopbackServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return LoopbackServer(ssl_context=context)


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_https_with_trusted_ca(ca: trustme.CA, ca_bundle: str) -> None:
    with tls_server(ca, "127.0.0.1", "localhost") as srv:
        srv.add_file("/index/timestamp.json", b"signed")
        with HttpFetcher(fast(ca_bundle=ca_bundle)) as fetcher:
            for host in ("127.0.0.1", "localhost"):
                url = srv.url("/index/timestamp.json", host=host)
                assert fetcher.fetch_bytes(url, max_length=100) == b"signed"
        assert all(r.tls for r in srv.requests)


def test_https_with_unknown_ca_fails_clearly(
    ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with tls_server(ca, "127.0.0.1") as srv:
        srv.add_file("/x", b"secret")
        url = srv.url("/x")
        with (
            HttpFetcher(fast(ca_bundle=str(other))) as fetcher,
            caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.fetch"),
            pytest.raises(DownloadError) as info,
        ):
            fetcher.fetch_bytes(url, max_length=100)
        assert srv.request_count() == 0
    message = str(info.value)
    assert message.startswith(f"TLS certificate verification failed for {url}: ")
    assert "unable to get local issuer certificate" in message
    assert "set ca_bundle" in message
    assert info.value.hint is not None
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # not retried


def test_https_hostname_mismatch_fails_clearly(ca: trustme.CA, ca_bundle: str) -> None:
    with tls_server(ca, "connectors.example.test") as srv:
        srv.add_file("/x", b"secret")
        url = srv.url("/x")
        with (
            HttpFetcher(fast(ca_bundle=ca_bundle)) as fetcher,
            pytest.raises(DownloadError) as info,
        ):
            fetcher.fetch_bytes(url, max_length=100)
        assert srv.request_count() == 0
    assert str(info.value).startswith(f"TLS certificate verification failed for {url}: ")
    assert "mismatch" in str(info.value)


def test_missing_ca_bundle_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with (
        HttpFetcher(fast(ca_bundle=str(missing))) as fetcher,
        pytest.raises(DownloadError, match="cannot load the CA bundle"),
    ):
        fetcher.fetch_bytes("https://127.0.0.1:9/x", max_length=10)


def test_https_to_http_redirect_is_refused(
    ca: trustme.CA, ca_bundle: str, server: LoopbackServer
) -> None:
    server.add_file("/plain", b"downgraded")
    with tls_server(ca, "127.0.0.1") as srv:
        srv.script("/file", Reply.redirect(server.url("/plain")))
        with (
            HttpFetcher(fast(ca_bundle=ca_bundle)) as fetcher,
            pytest.raises(PolicyError, match="downgrade"),
        ):
            fetcher.fetch_bytes(srv.url("/file"), max_length=100)
        assert srv.request_count("/file") == 1
    assert server.request_count() == 0


# -- URL policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.invalid/index/timestamp.json",
        "http://10.0.0.1/x",
        "http://127.0.0.1.example.invalid/x",
        "http://localhost.example.invalid/x",
        "http://127.0.0.1@evil.example.invalid/x",
        "http://[::ffff:7f00:1]/x",
        "http://[::2]/x",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "https:///no-host",
        "//127.0.0.1/relative",
        "http://127.0.0.1:99999/bad-port",
        # urlsplit deletes tab, CR and LF: the URL checked would not be the URL given.
        "https://example.invalid/ind\nex/timestamp.json",
        "http://127.0.0.1\t.example.invalid/x",
        "https://example.invalid/x\r",
        "https://example.invalid/x\x00y",
        "https://example.invalid/x\x7fy",
    ],
)
def test_policy_refuses_before_any_connection(url: str, no_network: None) -> None:
    fetcher = HttpFetcher(FAST)
    with fetcher, pytest.raises(PolicyError):
        fetcher.fetch_bytes(url, max_length=10)
    assert not fetcher._pools  # no pool, so certainly no connection


@pytest.mark.parametrize(
    "url",
    [
        "https://example.invalid/index/",
        "http://127.0.0.1:8080/x",
        "http://127.9.8.7/x",
        "http://localhost/x",
        "http://LOCALHOST:1/x",
        "http://[::1]:8080/x",
        "HTTPS://Example.Invalid/x",
    ],
)
def test_policy_allows(url: str) -> None:
    check_url_policy(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:s3cr3t@example.invalid/x?token=s3cr3t",  # plain http to another host
        "ftp://user:s3cr3t@127.0.0.1/x?token=s3cr3t",  # a scheme never fetched
        "https://user:s3cr3t@/x?token=s3cr3t",  # no host
        "https://user:s3cr3t@example.invalid:99999/x?token=s3cr3t",  # not a valid URL
        "https://user:s3cr3t@example.invalid/x\n?token=s3cr3t",  # a control character
    ],
)
def test_policy_refusals_never_show_a_credential(url: str) -> None:
    with pytest.raises(PolicyError) as info:
        check_url_policy(url)
    assert "s3cr3t" not in str(info.value)
    assert "***" in str(info.value)  # the URL is shown, redacted


def test_allow_http_opens_plain_http(no_network: None) -> None:
    check_url_policy("http://example.invalid/x", allow_http=True)
    with pytest.raises(PolicyError) as info:
        check_url_policy("http://example.invalid/x")
    assert info.value.hint is not None
    assert "allow_http" in info.value.hint


# -- lifecycle and configuration ----------------------------------------------------


def test_closed_fetcher_refuses(server: LoopbackServer) -> None:
    server.add_file("/a", b"a")
    fetcher = HttpFetcher(FAST)
    assert fetcher.fetch_bytes(server.url("/a"), max_length=10) == b"a"
    fetcher.close()
    fetcher.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        fetcher.fetch_bytes(server.url("/a"), max_length=10)


@pytest.mark.parametrize(
    "overrides",
    [
        {"retries": -1},
        {"connect_timeout": 0},
        {"read_timeout": -1.0},
        {"backoff_base": float("nan")},
        {"chunk_size": 0},
        {"max_redirects": -1},
    ],
)
def test_config_rejects_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="NetworkConfig"):
        fast(**overrides)


def test_importing_the_module_does_not_import_httpx() -> None:
    code = (
        "import sys\n"
        "import modelmesh_connectors.client.fetch as d\n"
        "f = d.HttpFetcher(d.DownloadConfig())\n"
        "d.check_url_policy('https://example.invalid/')\n"
        "f.close()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
