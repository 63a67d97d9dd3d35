"""HTTPS end to end: a signed index served over TLS on 127.0.0.1 with a private CA (trustme).

The simulator builds and signs the index; a second :class:`LoopbackServer` serves the same
directory over HTTPS with a certificate from a throw-away CA. The client must trust exactly
the CA in ``ca_bundle``: an unknown CA or a certificate for another host name is a clear
:class:`DownloadError` that is not retried, and nothing reaches the cache.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from modelmesh_connectors import (
    ConnectorRegistry,
    ConnectorType,
    DownloadError,
    PolicyError,
)
from modelmesh_connectors.registry import build_registry
from tests.support.http_server import LoopbackServer
from tests.support.simulator import RepositorySimulator

LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The private CA the client is told to trust."""
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    """A signed index on disk, not served by the simulator's own plain-HTTP server."""
    with RepositorySimulator(tmp_path, serve=False) as simulator:
        simulator.publish("acme-audit-log", "1.0.0")
        simulator.publish("acme-audit-log", "1.1.0")
        yield simulator


def _https_server(directory: Path, issuer: trustme.CA, *names: str) -> LoopbackServer:
    """Serve ``directory`` over HTTPS with a certificate for ``names`` signed by ``issuer``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issuer.issue_cert(*names).configure_cert(context)
    return LoopbackServer(directory, ssl_context=context)


def _config(sim: RepositorySimulator, index: str, ca_bundle: Path, **extra: Any) -> dict[str, Any]:
    return sim.config(["acme-audit-log"], index=index, ca_bundle=str(ca_bundle), **extra)


def _trusted_cache(sim: RepositorySimulator) -> set[str]:
    """Cached archives and trusted metadata (``origin.txt`` only names the index URL)."""
    return {f for f in sim.cache_files() if Path(f).name != "origin.txt"}


def _audit_version(registry: ConnectorRegistry) -> str:
    infos = registry.list_connectors(ConnectorType.OBSERVABILITY)
    return {i.id: i.version for i in infos}["acme.audit-log.v1"]


@pytest.mark.parametrize("host", LOOPBACK_NAMES)
def test_private_ca_bundle_loads_over_https(
    sim: RepositorySimulator, ca: trustme.CA, ca_bundle: Path, host: str
) -> None:
    with _https_server(sim.dir, ca, *LOOPBACK_NAMES) as server:
        index = server.origin(host) + "/"
        registry = build_registry(_config(sim, index, ca_bundle))
        paths = {r.path for r in server.requests}
        assert all(r.tls for r in server.requests)
    assert _audit_version(registry) == "1.1.0"
    origin = registry.origin("acme.audit-log.v1")
    assert origin.kind == "package"
    assert origin.signed_by == (sim.index_key.keyid,)
    assert index in origin.detail
    assert any(f.startswith("archives/sha256/") for f in _trusted_cache(sim))
    # The whole update went over TLS: timestamp, metadata and the archive itself.
    assert {"/timestamp.json", "/archives/acme-audit-log/acme-audit-log-1.1.0.zip"} <= paths
    assert server.errors == []


def _assert_refused_certificate(
    sim: RepositorySimulator, server: LoopbackServer, index: str, ca_bundle: Path
) -> DownloadError:
    # retries=3: a certificate failure must not be retried (it never fixes itself).
    with pytest.raises(DownloadError, match="TLS certificate verification failed") as raised:
        build_registry(_config(sim, index, ca_bundle, retries=3))
    # The server's handler sees the client's alert a moment after the client gave up; give it
    # that moment before stop() cuts the connection (else it may end with a plain EOF).
    deadline = time.monotonic() + 5.0
    while not server.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop()  # joins the handler threads: every handshake attempt is now recorded
    assert server.requests == []  # no HTTP request got through the failed handshake
    # One handshake per file asked, none retried (retries=3 would make four each): a first
    # contact asks for root/2.json and, overlapped, timestamp.json.
    assert 1 <= len(server.errors) <= 2, server.errors
    assert _trusted_cache(sim) == set()  # nothing verified, nothing cached
    assert "ca_bundle" in raised.value.message  # the actionable part of the message
    return raised.value


def test_unknown_ca_is_refused(sim: RepositorySimulator, ca_bundle: Path) -> None:
    stranger = trustme.CA()  # valid certificate, but from a CA the client was not given
    with _https_server(sim.dir, stranger, *LOOPBACK_NAMES) as server:
        error = _assert_refused_certificate(sim, server, server.base_url + "/", ca_bundle)
    assert "127.0.0.1" in error.message
    assert "certificate" in error.message
    assert "unable to get local issuer certificate" in error.message


def test_default_trust_store_does_not_trust_a_private_ca(
    sim: RepositorySimulator, ca: trustme.CA, tmp_path: Path
) -> None:
    with _https_server(sim.dir, ca, *LOOPBACK_NAMES) as server:
        cfg = sim.config(["acme-audit-log"], index=server.base_url + "/")
        with pytest.raises(DownloadError, match="TLS certificate verification failed"):
            build_registry(cfg)
    assert _trusted_cache(sim) == set()


@pytest.mark.parametrize(
    ("cert_names", "host", "expected"),
    [
        (("example.test",), "127.0.0.1", "IP address mismatch"),
        (("example.test",), "localhost", "Hostname mismatch"),
        (("127.0.0.1",), "localhost", "Hostname mismatch"),
    ],
)
def test_certificate_for_another_name_is_refused(
    sim: RepositorySimulator,
    ca: trustme.CA,
    ca_bundle: Path,
    cert_names: tuple[str, ...],
    host: str,
    expected: str,
) -> None:
    # Signed by the trusted CA, so only the name check can stop it.
    with _https_server(sim.dir, ca, *cert_names) as server:
        error = _assert_refused_certificate(sim, server, server.origin(host) + "/", ca_bundle)
    assert expected in error.message
    assert host in error.message


def test_unreadable_ca_bundle_is_a_clear_error(
    sim: RepositorySimulator, ca: trustme.CA, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with _https_server(sim.dir, ca, *LOOPBACK_NAMES) as server:
        with pytest.raises(DownloadError, match=r"cannot load the CA bundle .*no-such-ca\.pem"):
            build_registry(_config(sim, server.base_url + "/", missing))
        assert server.requests == []
    assert _trusted_cache(sim) == set()


@pytest.mark.parametrize(
    "index",
    [
        "http://index.example.test/",
        "http://10.0.0.1:8080/connectors/",
        "HTTP://Index.Example.Test/",
    ],
)
def test_plain_http_to_non_loopback_host_is_refused_without_a_connection(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch, index: str
) -> None:
    attempts: list[tuple[str, object]] = []

    def no_lookup(host: object, *args: object, **kwargs: object) -> Any:
        attempts.append(("getaddrinfo", host))
        raise OSError("the test forbids name lookups")

    def no_connect(address: object, *args: object, **kwargs: object) -> Any:
        attempts.append(("create_connection", address))
        raise OSError("the test forbids connections")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket, "create_connection", no_connect)
    with pytest.raises(PolicyError, match="refusing plain http:// to non-loopback host") as raised:
        build_registry(sim.config(["acme-audit-log"], index=index))
    assert "expected https://" in raised.value.message
    assert raised.value.hint is not None
    assert "https://" in raised.value.hint
    assert attempts == []
    assert _trusted_cache(sim) == set()
