"""The HTTP seam under the fetcher: pools, TLS contexts, proxies and request lines.

The fetcher drives httpcore's connection pool itself (no httpx.Client); these tests pin what
that layer must keep doing, against real servers on 127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import trustme

from modelmesh_connectors.client import fetch
from modelmesh_connectors.client.fetch import DownloadConfig, HttpFetcher
from modelmesh_connectors.errors import (
    DownloadError,
    LengthMismatchError,
    NotFoundError,
    TransferTimeoutError,
)
from tests.support.http_server import LoopbackServer, Reply

FAST = DownloadConfig(connect_timeout=2.0, read_timeout=2.0, retries=0, trust_env=False)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def counted_contexts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every TLS context the fetcher builds; start from an empty per-process cache."""
    monkeypatch.setattr(fetch, "_SSL_CONTEXTS", {})
    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(kwargs.get("cafile"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return built


# -- keep-alive ------------------------------------------------------------------------------


def test_threads_share_the_pool_and_reuse_connections(server: LoopbackServer) -> None:
    for i in range(40):
        server.add_file(f"/f{i}", b"x" * (100 + i))
    with HttpFetcher(FAST) as fetcher:
        with ThreadPoolExecutor(max_workers=4) as pool:
            bodies = list(
                pool.map(
                    lambda i: fetcher.fetch_bytes(server.url(f"/f{i}"), max_length=500), range(40)
                )
            )
        assert fetcher._pools.keys() == {("http", None)}  # one pool for all threads
    assert bodies == [b"x" * (100 + i) for i in range(40)]
    # 40 requests over at most one connection per thread: kept alive, not one per request
    assert len(server.connections_used()) <= 4


def test_a_redirect_to_the_same_origin_reuses_the_connection(server: LoopbackServer) -> None:
    server.script("/old", Reply.redirect("/new"))
    server.add_file("/new", b"moved")
    with HttpFetcher(FAST) as fetcher:
        assert fetcher.fetch_bytes(server.url("/old"), max_length=10) == b"moved"
    assert server.connections_used() == {1}


# -- TLS context -----------------------------------------------------------------------------


def test_plain_http_builds_no_tls_context(
    server: LoopbackServer, counted_contexts: list[object]
) -> None:
    server.add_file("/a", b"plain")
    with HttpFetcher(FAST) as fetcher:
        assert fetcher.fetch_bytes(server.url("/a"), max_length=10) == b"plain"
    assert counted_contexts == []  # no CA store loaded for loopback http


def test_tls_context_is_built_once_per_bundle(
    tmp_path: Path, counted_contexts: list[object]
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    counted_contexts.clear()
    with LoopbackServer(ssl_context=context) as tls:
        tls.add_file("/a", b"secure")
        config = DownloadConfig(ca_bundle=str(bundle), trust_env=False, retries=0)
        for _ in range(3):  # three runs of one process: the CA file is read once
            with HttpFetcher(config) as fetcher:
                assert fetcher.fetch_bytes(tls.url("/a"), max_length=10) == b"secure"
        assert counted_contexts == [str(bundle)]
        # A rewritten bundle (another CA) is read again, and now refuses the server.
        trustme.CA().cert_pem.write_to_path(str(bundle))
        with HttpFetcher(config) as fetcher, pytest.raises(DownloadError, match="certificate"):
            fetcher.fetch_bytes(tls.url("/a"), max_length=10)
        assert counted_contexts == [str(bundle), str(bundle)]


# -- proxies from the environment --------------------------------------------------------------


def test_http_proxy_from_the_environment_is_used(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "proxy" is a loopback server that answers the absolute-form request itself.
    server.add_file("/via-proxy", b"proxied")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{server.port}")
    target = "http://127.0.0.2:9/via-proxy"  # nothing listens there: only the proxy answers
    with HttpFetcher(DownloadConfig(retries=0)) as fetcher:
        assert fetcher.fetch_bytes(target, max_length=10) == b"proxied"
    [request] = server.requests
    assert request.target == target  # absolute form: the proxy was asked, not the host
    assert request.headers["proxy-authorization"].startswith("Basic ")
    assert request.headers["host"] == "127.0.0.2:9"


def test_no_proxy_and_trust_env_false_go_direct(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add_file("/direct", b"direct")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a dead proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with HttpFetcher(DownloadConfig(retries=0)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/direct"), max_length=10) == b"direct"
    monkeypatch.delenv("NO_PROXY")
    with HttpFetcher(DownloadConfig(retries=0, trust_env=False)) as fetcher:
        assert fetcher.fetch_bytes(server.url("/direct"), max_length=10) == b"direct"
    assert [r.target for r in server.requests] == ["/direct", "/direct"]


@pytest.mark.parametrize(
    ("no_proxy", "url", "proxied"),
    [
        ("", "https://idx.example.com/", True),
        ("*", "https://idx.example.com/", False),
        ("example.com", "https://idx.example.com/", False),
        ("example.com", "https://example.com/", False),
        ("example.com", "https://badexample.com/", True),
        (".example.com", "https://example.com/", True),
        (".example.com", "https://idx.example.com/", False),
        ("10.0.0.1", "https://10.0.0.1/", False),
        ("::1", "https://[::1]:8443/", False),
        ("localhost", "http://localhost:8080/", False),
        ("https://idx.example.com", "http://idx.example.com/", True),
        ("https://idx.example.com", "https://idx.example.com/", False),
        ("all://idx.example.com:8443", "https://idx.example.com:8443/", False),
        ("all://idx.example.com:8443", "https://idx.example.com/", True),
    ],
)
def test_no_proxy_matching(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, proxied: bool
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "proxy.example.net:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    target = fetch._target(url)
    chosen = fetch._Proxies.from_environment().for_url(target.scheme, target.host, target.port)
    assert chosen == ("http://proxy.example.net:3128" if proxied else None)


def test_a_scheme_proxy_wins_over_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://all.example.net:1")
    monkeypatch.setenv("HTTPS_PROXY", "http://tls.example.net:2")
    proxies = fetch._Proxies.from_environment()
    assert proxies.for_url("https", "idx.example.com", 443) == "http://tls.example.net:2"
    assert proxies.for_url("http", "idx.example.com", 80) == "http://all.example.net:1"


def test_a_socks_proxy_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "socks5://user:pw@127.0.0.1:1080")
    with (
        HttpFetcher(DownloadConfig(retries=0)) as fetcher,
        pytest.raises(DownloadError, match="unsupported proxy") as info,
    ):
        fetcher.fetch_bytes("http://127.0.0.1:9/x", max_length=10)
    assert "pw" not in str(info.value)  # the proxy's password is redacted


# -- request line and headers ----------------------------------------------------------------


def test_request_line_is_percent_encoded_and_host_has_the_port(server: LoopbackServer) -> None:
    server.add_file("/a%20b/%C3%BC.json", b"odd")  # the server matches the raw target
    with HttpFetcher(FAST) as fetcher:
        assert (
            fetcher.fetch_bytes(server.url("/a b/ü.json") + "?q=1 2#frag", max_length=10) == b"odd"
        )
    [request] = server.requests
    assert request.target == "/a%20b/%C3%BC.json?q=1%202"  # no fragment, no raw space
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert request.headers["accept-encoding"] == "identity"


# -- deadline on every socket wait -----------------------------------------------------------


def test_header_drip_ends_at_the_transfer_deadline() -> None:
    # A server that sends one header byte every 50 ms, forever: every single read is quick
    # and the request-level timeouts allow each one; only the clamp of every socket wait to
    # the transfer's deadline ends the transfer (without it, this one never ends).
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b"a")
                except OSError:
                    return

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/drip"
    config = DownloadConfig(
        read_timeout=5.0, transfer_timeout=0.4, min_rate=1e9, retries=0, trust_env=False
    )
    outcome: list[BaseException] = []

    def client() -> None:
        with HttpFetcher(config) as fetcher:
            try:
                fetcher.fetch_bytes(url, max_length=10)
            except BaseException as exc:
                outcome.append(exc)

    caller = threading.Thread(target=client, daemon=True)
    caller.start()
    caller.join(30.0)  # generous: the deadline is 0.4 s
    stop.set()
    server.join(5.0)
    listener.close()
    assert not caller.is_alive(), "the drip kept the transfer alive past its deadline"
    [error] = outcome
    assert isinstance(error, TransferTimeoutError)
    assert "deadline" in str(error)


# -- prefetch --------------------------------------------------------------------------------


def test_a_prefetch_overlaps_the_next_request_and_is_used_once(server: LoopbackServer) -> None:
    root_arrived = threading.Event()

    def timestamp(_request: Any) -> Reply:
        # Answers only once the next request arrived: a prefetch that ran in the caller's
        # thread would wait out the 5 s here and get a 500 (retries=0), failing the test.
        return Reply.ok(b"timestamp bytes") if root_arrived.wait(5.0) else Reply.error(500)

    def root(_request: Any) -> Reply:
        root_arrived.set()
        return Reply.error(404)

    server.respond_with("/timestamp.json", timestamp)
    server.respond_with("/root/2.json", root)
    with HttpFetcher(FAST) as fetcher:
        fetcher.prefetch(server.url("/timestamp.json"), max_length=100)
        with pytest.raises(NotFoundError):
            fetcher.fetch_bytes(server.url("/root/2.json"), max_length=100)
        assert (
            fetcher.fetch_bytes(server.url("/timestamp.json"), max_length=100) == b"timestamp bytes"
        )
        assert server.request_count("/timestamp.json") == 1  # the prefetched answer was used
        # Taken once: the next read asks the server again.
        assert (
            fetcher.fetch_bytes(server.url("/timestamp.json"), max_length=100) == b"timestamp bytes"
        )
        assert server.request_count("/timestamp.json") == 2


def test_a_prefetch_error_is_raised_by_the_fetch_that_takes_it(server: LoopbackServer) -> None:
    with HttpFetcher(FAST) as fetcher:
        fetcher.prefetch(server.url("/missing.json"), max_length=100)
        with pytest.raises(NotFoundError):
            fetcher.fetch_bytes(server.url("/missing.json"), max_length=100)
        # The cap is part of the key: a prefetch under another cap is not taken.
        server.add_file("/big.json", b"x" * 50)
        fetcher.prefetch(server.url("/big.json"), max_length=100)
        with pytest.raises(LengthMismatchError):
            fetcher.fetch_bytes(server.url("/big.json"), max_length=10)


def test_a_stale_prefetch_is_not_used(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "_PREFETCH_TTL", 0.0)
    server.add_file("/t.json", b"old")
    with HttpFetcher(FAST) as fetcher:
        fetcher.prefetch(server.url("/t.json"), max_length=100)
        while server.request_count("/t.json") == 0:
            time.sleep(0.01)
        server.add_file("/t.json", b"new")
        time.sleep(0.01)
        assert fetcher.fetch_bytes(server.url("/t.json"), max_length=100) == b"new"


def test_round_trip_is_the_fastest_answer_seen(server: LoopbackServer) -> None:
    server.add_file("/a", b"a")
    server.script("/slow", Reply.ok(b"s", delay=0.3))
    with HttpFetcher(FAST) as fetcher:
        assert fetcher.round_trip is None  # nothing measured yet
        fetcher.fetch_bytes(server.url("/slow"), max_length=10)
        slow = fetcher.round_trip
        assert slow is not None and slow >= 0.3
        fetcher.fetch_bytes(server.url("/a"), max_length=10)
        assert fetcher.round_trip is not None and fetcher.round_trip < slow


def test_close_during_a_transfer_leaves_no_connection_open(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # close() from another thread (the loader ending after an error while a prefetch still
    # runs) lands between a transfer taking its pool and opening a connection on it.
    server.add_file("/t.json", b"t")
    fetcher = HttpFetcher(FAST)
    real = fetcher._get_pool
    taken: list[Any] = []

    def racing(target: Any) -> Any:
        pool = real(target)
        taken.append(pool)
        fetcher.close()
        return pool

    monkeypatch.setattr(fetcher, "_get_pool", racing)
    assert fetcher.fetch_bytes(server.url("/t.json"), max_length=10) == b"t"
    [pool] = taken
    assert pool.connections == []  # the transfer closed what close() left to it
    with pytest.raises(RuntimeError, match="closed"):
        real(fetch._target(server.url("/t.json")))
