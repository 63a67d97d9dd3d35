"""The one network seam: turn a URL into a bounded stream of bytes.

Everything that leaves the machine goes through :class:`HttpFetcher`, a subclass of the one
fetcher base :class:`~modelmesh_connectors.client.fetcher.Fetcher` (which owns the length cap
and the last-resort error mapping). It takes the one
:class:`~modelmesh_connectors.client.settings.NetworkConfig` as it is, drives one lazily
created ``httpcore`` connection pool per scheme (and proxy) directly — no request/response
model, auth, cookie or hook machinery on the way: a kept-alive request costs about half
of what ``httpx.Client`` spent — and

* applies the URL policy *before* any connection (HTTPS only; plain HTTP only
  to a loopback host unless explicitly allowed), and again on every redirect
  hop, refusing an https→http downgrade;
* streams the body in chunks (the base hands them to the sink and aborts the moment more
  than ``max_length`` bytes arrive);
* bounds every transfer in time: one deadline per ``fetch_to`` call (all its
  attempts and redirect hops share it) of ``transfer_timeout`` seconds plus the
  signed or capped length at ``min_rate`` bytes per second, and never later than
  the end of the run (``run_timeout``). Every socket operation — connect, TLS
  handshake, each header and body read — waits at most until that deadline, so
  a server that drips one byte per read timeout, or accepts and never answers,
  fails with :class:`~modelmesh_connectors.errors.TransferTimeoutError`;
* never retries a server it could not reach (refused, unreachable, DNS failure,
  connect timeout → :class:`~modelmesh_connectors.errors.UnreachableError`) or
  one that went silent: the caller's mirror loop moves on at once
  (:mod:`modelmesh_connectors.client.failover`);
* retries a server that answered badly (reset, truncated body, 5xx, 429 with
  ``Retry-After``) with capped exponential backoff and jitter, within the deadline;
* attaches credentials (:mod:`modelmesh_connectors.client.credentials`) only to the
  origin they belong to, never across an origin-changing redirect, and renders
  every URL through :func:`~modelmesh_connectors.client.credentials.redact_url`;
* honours ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` with ``trust_env`` (as httpx
  read them), and verifies TLS with ``ca_bundle`` (or the system store); the verifying
  context is built only for https, once per process and bundle;
* maps every foreign exception to the project's error tree.

``httpcore`` is imported only when the first request is made, so a run that needs
no network never imports it; this is the only client module that imports it.

One module, over 600 lines, on purpose: the URL policy, the deadline clamp around httpcore,
the retry loop and the error mapping are one concern (talking HTTP safely) and share the
private ``_Transfer`` and ``_Transient`` types; split, each part would reach into the others.
"""

from __future__ import annotations

__all__ = [
    "DownloadConfig",
    "Fetcher",
    "HttpFetcher",
    "Sink",
    "check_url_policy",
]

import functools
import ipaddress
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

from modelmesh_connectors._internal.redact import redact_text, redact_url
from modelmesh_connectors.client.credentials import Credentials, origin_of, strip_userinfo
from modelmesh_connectors.client.failover import backoff_delay
from modelmesh_connectors.client.fetcher import RESTART, Chunks, Fetcher, Restart, Sink
from modelmesh_connectors.client.settings import NetworkConfig
from modelmesh_connectors.errors import (
    DownloadError,
    LengthMismatchError,
    NotFoundError,
    PolicyError,
    TransferTimeoutError,
    UnreachableError,
)

_logger = logging.getLogger("modelmesh_connectors.client.fetch")

_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_NOT_FOUND_STATUSES: Final = frozenset({404, 410})
_LOOPBACK_NAMES: Final = frozenset({"localhost"})
_PREFETCH_TTL: Final = 10.0  # seconds a prefetched file may wait for its fetch_bytes call
_DIGITS: Final = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() accepts "²"
_E = TypeVar("_E", bound=BaseException)

#: The name earlier versions gave the network settings: the same class, not a copy.
DownloadConfig = NetworkConfig


# C0 controls and DEL: urlsplit deletes tab, CR and LF, so a URL holding one reads two ways.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def check_url_policy(url: str, *, allow_http: bool = False) -> None:
    """Refuse URLs the fetcher must never connect to.

    Only ``https://`` is allowed, plus ``http://`` to a loopback host
    (``127.0.0.0/8``, ``::1``, ``localhost``) — or to any host when
    ``allow_http`` is set.

    Args:
        url: The absolute URL about to be requested.
        allow_http: Accept plain ``http://`` to any host.

    Raises:
        PolicyError: The URL's scheme or host is not allowed.
    """
    if _CONTROL_CHARACTER.search(url) is not None:
        # urlsplit silently deletes tab, CR and LF: the URL checked would not be the URL given.
        raise PolicyError(f"refusing to fetch {redact_url(url)!r}: it contains a control character")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # parsing the port validates it
    except ValueError as exc:
        raise PolicyError(
            f"refusing to fetch {redact_url(url)!r}: not a valid URL ({redact_text(str(exc))})"
        ) from None
    scheme = parts.scheme.lower()
    if not host:
        raise PolicyError(
            f"refusing to fetch {redact_url(url)!r}: expected an absolute URL with a host"
        )
    if scheme == "https":
        return
    if scheme == "http":
        # Plain HTTP lets anyone on the path read and rewrite the response
        # (downgrade / MITM). Signatures still protect metadata, but not
        # privacy or availability, so only loopback is allowed by default.
        if allow_http or _is_loopback(host):
            return
        shown = redact_url(url)  # only a refusal shows the URL (redacted: no credential)
        raise PolicyError(
            f"refusing plain http:// to non-loopback host {host!r} in {shown}: expected https://",
            hint="use an https:// index URL, or set allow_http in the download configuration",
        )
    raise PolicyError(
        f"refusing to fetch {redact_url(url)}: unsupported URL scheme {parts.scheme!r}, "
        "expected https (or http to a loopback host)"
    )


@functools.lru_cache(maxsize=64)  # hosts of one run: a handful; ip_address() costs ~10 us
def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Transient(Exception):
    """A failure worth retrying against the same URL; never escapes this module."""

    def __init__(self, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


# -- deadlines --------------------------------------------------------------------------------

_DEADLINE = threading.local()  # .end: monotonic deadline of this thread's transfer; .limited


def _clamp(timeout: float | None, kind: str) -> float | None:
    """The timeout for one socket operation: never past the current transfer's deadline.

    Stops a server that sends one byte just before each read timeout (or drips its headers)
    from keeping a transfer alive forever: every wait ends at the deadline.
    """
    end: float | None = getattr(_DEADLINE, "end", None)
    if end is None:
        return timeout
    remaining = end - time.monotonic()
    if remaining <= 0:
        import httpcore

        _DEADLINE.limited = True
        error = {
            "read": httpcore.ReadTimeout,
            "write": httpcore.WriteTimeout,
            "connect": httpcore.ConnectTimeout,
        }[kind]
        raise error("transfer deadline passed")
    _DEADLINE.limited = timeout is None or remaining < timeout
    return remaining if _DEADLINE.limited else timeout


class _DeadlineStream:
    """An httpcore network stream whose every wait is clamped to the transfer deadline.

    Each read asks the socket for up to ``read_size`` bytes (``NetworkConfig.chunk_size``)
    when httpcore asks for less (it asks for 64 KiB): a large body then arrives in a quarter
    of the reads, and every read costs a trip through h11, httpcore and the sink chain
    (measured on 200 MiB over loopback: -30 ms CPU of ~380). h11 takes whatever a read
    returns; a read still returns only what the socket holds, never waits for more.
    """

    def __init__(self, inner: Any, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        size = max(max_bytes, self._read_size)
        data: bytes = self._inner.read(size, _clamp(timeout, "read"))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, "write"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _DeadlineStream:
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, "connect")),
            self._read_size,
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend:
    """An httpcore network backend whose connections obey the transfer deadline."""

    def __init__(self, inner: Any, read_size: int) -> None:
        self._inner = inner
        self._read_size = read_size

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _DeadlineStream:
        return _DeadlineStream(
            self._inner.connect_tcp(
                host, port, _clamp(timeout, "connect"), local_address, socket_options
            ),
            self._read_size,
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _DeadlineStream:
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, _clamp(timeout, "connect"), socket_options),
            self._read_size,
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# -- connections ------------------------------------------------------------------------------

#: SSL contexts built so far, one per CA configuration (and bundle file version): loading a
#: CA store costs 30-90 ms, so a process pays it once, and only when it first talks https.
_SSL_CONTEXTS: dict[tuple[str | None, int, int], ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def _ssl_context(bundle: Path | str | None) -> ssl.SSLContext:
    """The verifying TLS context for ``ca_bundle`` (None: the system store, else certifi).

    Cached per process and per bundle file (path, modification time, size), so a rewritten
    bundle is read again.

    Raises:
        DownloadError: The bundle cannot be read or holds no usable certificate.
    """
    key: tuple[str | None, int, int] = (None, 0, 0)
    if bundle is not None:
        try:
            info = os.stat(bundle)
            key = (os.fspath(bundle), info.st_mtime_ns, info.st_size)
        except OSError:
            key = (os.fspath(bundle), -1, -1)  # create_default_context reports the error
    with _SSL_LOCK:
        context = _SSL_CONTEXTS.get(key)
        if context is None:
            context = _SSL_CONTEXTS[key] = _new_ssl_context(bundle)
        return context


def _new_ssl_context(bundle: Path | str | None) -> ssl.SSLContext:
    if bundle is not None:
        try:
            return ssl.create_default_context(cafile=bundle)
        except (OSError, ssl.SSLError) as exc:
            raise DownloadError(
                f"cannot load the CA bundle {bundle}: {exc}",
                hint="set ca_bundle to a readable PEM file of CA certificates",
            ) from exc
    context = ssl.create_default_context()
    if context.cert_store_stats().get("x509_ca", 0) == 0:
        # Some Python builds ship without a usable system store; fall back
        # to certifi (an httpx dependency) rather than trusting nothing.
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    return context


@dataclass(frozen=True)
class _Proxies:
    """``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` as httpx reads them (``trust_env``).

    A ``NO_PROXY`` entry wins over any proxy; a scheme's own proxy over ``ALL_PROXY``;
    ``NO_PROXY=*`` turns every proxy off. ``.example.com`` bypasses the subdomains,
    ``example.com`` the domain and its subdomains; IP addresses and ``localhost`` match
    exactly; ``scheme://host[:port]`` entries match that scheme (``all``: any) and port.
    """

    by_scheme: dict[str, str]  # "http" | "https" | "all" -> proxy URL
    bypass: tuple[tuple[str, str, int | None], ...]  # (scheme or "", host pattern, port)

    @classmethod
    def from_environment(cls) -> _Proxies:
        from urllib.request import getproxies  # deferred: only a networked run reads it

        info = getproxies()
        by_scheme = {
            scheme: info[scheme] if "://" in info[scheme] else f"http://{info[scheme]}"
            for scheme in ("http", "https", "all")
            if info.get(scheme)
        }
        bypass: list[tuple[str, str, int | None]] = []
        for entry in (e.strip() for e in info.get("no", "").split(",")):
            if entry == "*":
                return cls({}, ())
            if not entry:
                continue
            if "://" in entry:
                parts = urlsplit(entry)
                scheme = "" if parts.scheme == "all" else parts.scheme.lower()
                bypass.append((scheme, (parts.hostname or "*").lower(), parts.port))
                continue
            host = entry.split("/", 1)[0] if _is_ip(entry.split("/", 1)[0]) else entry
            if _is_ip(host) or host.lower() == "localhost":
                bypass.append(("", host.lower().strip("[]"), None))
            else:
                bypass.append(("", "*" + host.lower(), None))
        return cls(by_scheme, tuple(bypass))

    def for_url(self, scheme: str, host: str, port: int | None) -> str | None:
        """The proxy URL for a request, or None for a direct connection."""
        if not self.by_scheme:
            return None
        host = host.lower()
        for b_scheme, pattern, b_port in self.bypass:
            if b_scheme and b_scheme != scheme:
                continue
            if b_port is not None and b_port != port:
                continue
            if _host_matches(pattern, host):
                return None
        return self.by_scheme.get(scheme) or self.by_scheme.get("all")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):  # subdomains only
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    if pattern.startswith("*"):  # the domain and its subdomains
        domain = pattern[1:]
        return host == domain or host.endswith("." + domain)
    return host == pattern


@dataclass(frozen=True)
class _Target:
    """A URL split into what the connection needs; built once per request hop."""

    scheme: str  # "http" | "https"
    host: str  # without brackets, IDNA-encoded
    port: int
    default_port: bool
    target: bytes  # path and query, percent-encoded where needed


_PATH_SAFE: Final = "/%:@!$&'()*+,;=~"
_QUERY_SAFE: Final = _PATH_SAFE + "?"


def _target(url: str) -> _Target:
    """Split ``url`` (policy-checked, without user info) for the connection.

    Characters a request line cannot carry are percent-encoded (as httpx did); the fragment
    is never sent.

    Raises:
        ValueError: The host cannot be encoded.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    default = 443 if scheme == "https" else 80
    port = parts.port if parts.port is not None else default
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return _Target(scheme, host, port, port == default, target.encode("ascii"))


def _host_header(target: _Target) -> bytes:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return (host if target.default_port else f"{host}:{target.port}").encode("ascii")


# httpx's defaults for its pool, kept: up to 100 connections, 20 idle ones kept for 5 s.
_MAX_CONNECTIONS: Final = 100
_MAX_KEEPALIVE: Final = 20
_KEEPALIVE_EXPIRY: Final = 5.0  # seconds


def _new_pool(scheme: str, proxy: str | None, config: NetworkConfig) -> Any:
    """An httpcore pool for one scheme, direct or through one proxy, on the deadline backend.

    Only an https pool gets (and builds) the verifying TLS context; a plain-http pool
    serves only http:// URLs, which the URL policy limits to loopback.
    """
    import httpcore  # deferred: a run that needs no network never imports it

    ssl_context = _ssl_context(config.ca_bundle) if scheme == "https" else None
    backend = _DeadlineBackend(httpcore.SyncBackend(), config.chunk_size)
    common: dict[str, Any] = {
        "ssl_context": ssl_context,
        "max_connections": _MAX_CONNECTIONS,
        "max_keepalive_connections": _MAX_KEEPALIVE,
        "keepalive_expiry": _KEEPALIVE_EXPIRY,
        "network_backend": backend,
    }
    if proxy is None:
        return httpcore.ConnectionPool(**common)
    parts = urlsplit(proxy)
    proxy_scheme = parts.scheme.lower()
    if proxy_scheme not in ("http", "https"):
        raise DownloadError(
            f"unsupported proxy {redact_url(proxy)}: expected an http:// or https:// proxy URL",
            hint="set HTTP(S)_PROXY / ALL_PROXY to an HTTP proxy, or trust_env: false",
        )
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    clean, _ = strip_userinfo(proxy)
    return httpcore.HTTPProxy(proxy_url=clean, proxy_auth=auth, **common)


@dataclass
class _Transfer:
    """One ``fetch_to`` call: its URL, deadline and credential."""

    url: str  # without user info
    shown: str  # redacted, for messages and logs
    end: float  # time.monotonic() by which it must be done
    allowance: float  # seconds the deadline allowed
    run: bool  # the deadline is the run's, not the transfer's own
    auth: str | None  # Authorization value for the starting origin
    origin: str  # the starting origin; credentials never leave it ("" when there is no auth)
    received: int = 0  # body bytes of the current attempt

    def expired(self, *, limited: bool = False) -> bool:
        return limited or time.monotonic() >= self.end

    def timeout_error(self, what: str, *, silence: float | None = None) -> TransferTimeoutError:
        """The typed error: URL, bytes received, and the deadline (or silence) that ran out."""
        which = "run" if self.run else "transfer"
        hint = (
            "the whole run took longer than timeouts.run; raise it for a very slow network"
            if self.run
            else "the mirror is too slow or stalled; the next mirror is tried. For a slow "
            "link raise timeouts.transfer or lower timeouts.min_rate"
        )
        limit = (
            f"nothing arrived for the read timeout of {silence:.1f} s"
            if silence is not None
            else f"the {which} deadline of {self.allowance:.1f} s passed"
        )
        return TransferTimeoutError(
            f"{self.shown}: {what}; {limit} after {self.received} bytes received",
            url=self.shown,
            received=self.received,
            deadline=self.allowance,
            run=self.run,
            hint=hint,
        )


def _real_sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time, so tests can patch time.sleep


class HttpFetcher(Fetcher):
    """The real :class:`Fetcher`: HTTPS with caps, deadlines, retries and one pooled client.

    Thread-safe: one instance may serve several threads at once (its connection pools
    are shared and keep connections alive between requests).

    Args:
        config: Timeouts, retry policy, TLS and URL policy; defaults if omitted.
        credentials: ``Authorization`` values per origin (URL user info works without it).
        sleep: Waits between retries (tests inject a recorder); default ``time.sleep``.
    """

    def __init__(
        self,
        config: NetworkConfig | None = None,
        *,
        credentials: Credentials | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._config = config if config is not None else NetworkConfig()
        self._credentials = credentials if credentials is not None else Credentials()
        self._sleep = sleep if sleep is not None else _real_sleep
        run = self._config.run_timeout
        self._run_end = None if run is None else time.monotonic() + run
        # One pool per (scheme, proxy): the plain-http one never loads CA certificates
        # (30-90 ms), and each request and redirect hop picks its pool by its own scheme,
        # so an https URL is always served by the verifying pool.
        self._pools: dict[tuple[str, str | None], Any] = {}
        self._proxies: _Proxies | None = None  # read from the environment on first use
        self._prefetched: dict[tuple[str, int], tuple[Future[bytes], float]] = {}
        self._round_trip: float | None = None
        self._active = 0  # transfers running now
        self._retired: list[Any] = []  # pools close() left to the last running transfer
        self._user_agent = self._config.user_agent.encode("latin-1", "replace")
        self._lock = threading.Lock()
        self._closed = False

    def prefetch(self, url: str, *, max_length: int) -> None:
        """Start ``fetch_bytes(url, max_length=max_length)`` in a background thread.

        The next :meth:`fetch_bytes` call with the same arguments waits for it and returns
        its bytes or raises its error; the bytes are checked by the caller then, exactly as
        if fetched at that moment. Every limit (cap, deadlines, URL policy) applies as usual.
        """
        future: Future[bytes] = Future()

        def run() -> None:
            try:
                future.set_result(Fetcher.fetch_bytes(self, url, max_length=max_length))
            except BaseException as exc:  # handed to the caller of fetch_bytes
                future.set_exception(exc)

        with self._lock:
            if self._closed or (url, max_length) in self._prefetched:
                return
            self._prefetched[(url, max_length)] = (future, time.monotonic())
        threading.Thread(target=run, name="mmc-prefetch", daemon=True).start()

    @property
    def round_trip(self) -> float | None:
        """See :attr:`Fetcher.round_trip` (kept-alive requests set the minimum)."""
        return self._round_trip

    def fetch_bytes(self, url: str, *, max_length: int) -> bytes:
        """See :meth:`Fetcher.fetch_bytes`; takes over a :meth:`prefetch` of the same file."""
        with self._lock:
            started = self._prefetched.pop((url, max_length), None)
        if started is None or time.monotonic() - started[1] > _PREFETCH_TTL:
            # Never prefetched, or so long ago (the caller failed in between and came back)
            # that the file may have changed since: fetch it now.
            return super().fetch_bytes(url, max_length=max_length)
        return started[0].result()

    @property
    def config(self) -> NetworkConfig:
        """The configuration this fetcher was built with."""
        return self._config

    def close(self) -> None:
        """Close the pooled connections (after the last running transfer). Idempotent."""
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
            if self._active:
                # A transfer still runs (a prefetch nobody waited for): closing its pool now
                # could miss a connection it is opening; the transfer closes them at its end.
                self._retired += pools
                return
        for pool in pools:
            pool.close()

    def _fetch(self, url: str, max_length: int) -> Chunks:
        """The body of ``url``: policy, then attempts within one deadline (see the module).

        User info in ``url`` becomes basic auth for its origin alone. With ``min_rate``,
        ``max_length`` also sets the transfer's deadline.

        Raises:
            PolicyError: The URL (or a redirect target) is not allowed, or a credential
                would go over plain http.
            LengthMismatchError: The server announced more than ``max_length``.
            NotFoundError: The server answered 404 or 410.
            UnreachableError: No connection could be made (not retried: next mirror).
            TransferTimeoutError: The transfer or run deadline passed, or the server went
                silent for ``read_timeout`` (not retried: next mirror).
            DownloadError: Any other failure, after retries for transient ones.
            RuntimeError: The fetcher was closed.
        """
        # Policy before any connection: a refused URL never reaches the socket layer.
        check_url_policy(url, allow_http=self._config.allow_http)
        transfer = self._transfer(url, max_length)
        if transfer.expired():
            raise transfer.timeout_error("not started")
        previous = getattr(_DEADLINE, "end", None)
        _DEADLINE.end, _DEADLINE.limited = transfer.end, False
        with self._lock:
            self._active += 1
        try:
            yield from self._attempts(transfer, max_length)
        finally:
            _DEADLINE.end = previous
            with self._lock:
                self._active -= 1
                retired = self._retired if self._closed and not self._active else []
                self._retired = [] if retired else self._retired
            for pool in retired:
                pool.close()  # the last transfer after close() closes what it left open

    def _transfer(self, url: str, max_length: int) -> _Transfer:
        clean, userinfo = strip_userinfo(url)
        config = self._config
        allowance = config.transfer_timeout + max_length / config.min_rate
        end, run = time.monotonic() + allowance, False
        if self._run_end is not None and self._run_end <= end:
            end, run = self._run_end, True
            allowance = config.run_timeout or 0.0
        credentials = self._credentials
        # Without user info and with no credential configured there is nothing to look up
        # (header_for would answer None); the origin is needed only to keep a credential home.
        auth = (
            credentials.header_for(clean, userinfo=userinfo)
            if userinfo is not None or credentials.by_origin or credentials.netrc_hosts
            else None
        )
        return _Transfer(
            url=clean,
            shown=redact_url(url),
            end=end,
            allowance=allowance,
            run=run,
            auth=auth,
            origin=origin_of(clean) if auth is not None else "",
        )

    def _attempts(self, transfer: _Transfer, max_length: int) -> Chunks:
        shown = transfer.shown
        attempts = self._config.retries + 1
        last: _Transient | None = None
        for attempt in range(1, attempts + 1):
            if last is not None:
                delay = self._delay_before(attempt, last.retry_after)
                if time.monotonic() + delay >= transfer.end:
                    raise transfer.timeout_error(
                        f"{last.description}, and no time is left for attempt {attempt}"
                    ) from last.__cause__
                _logger.warning(
                    "transient failure fetching %s: %s; retrying in %.2fs (attempt %d of %d)",
                    shown,
                    last.description,
                    delay,
                    attempt,
                    attempts,
                )
                self._sleep(delay)
                yield RESTART
            _logger.debug("GET %s (attempt %d of %d)", shown, attempt, attempts)
            transfer.received = 0
            try:
                written = yield from self._attempt(transfer, max_length)
            except _Transient as exc:
                last = exc
                continue
            _logger.debug("fetched %s: %d bytes", shown, written)
            return
        if last is None:  # pragma: no cover - the loop runs at least once
            raise RuntimeError("retry loop ended without an attempt")
        raise DownloadError(
            f"failed to fetch {shown} after {attempts} attempt(s): {last.description}",
            hint="check the network connection and that the index URL is reachable",
        ) from last.__cause__  # the httpcore exception, if any

    # -- one attempt -------------------------------------------------------------

    def _delay_before(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self._config.max_retry_after)
        return backoff_delay(
            attempt - 1, base=self._config.backoff_base, cap=self._config.backoff_max
        )

    def _get_pool(self, target: _Target) -> Any:
        """The shared pool for ``target``'s scheme and proxy (built on first use)."""
        proxy = None
        if self._config.trust_env:
            if self._proxies is None:
                self._proxies = _Proxies.from_environment()
            proxy = self._proxies.for_url(target.scheme, target.host, target.port)
        key = (target.scheme, proxy)
        with self._lock:
            if self._closed:
                raise RuntimeError("HttpFetcher is closed")
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = _new_pool(target.scheme, proxy, self._config)
            return pool

    def _timeouts(self, transfer: _Transfer) -> dict[str, float]:
        # Belt and braces with the clamped backend: no single wait may pass the deadline.
        left = max(transfer.end - time.monotonic(), 0.001)
        config = self._config
        connect, read = min(config.connect_timeout, left), min(config.read_timeout, left)
        return {"connect": connect, "read": read, "write": read, "pool": connect}

    def _attempt(
        self, transfer: _Transfer, max_length: int
    ) -> Generator[bytes | Restart, None, int]:
        import httpcore

        # What the pool raises for a connection or a response that went wrong; mapped to the
        # project's errors (a retry, a move to the next mirror, or a refusal) by one function.
        transport_errors = (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.ProxyError,
            httpcore.UnsupportedProtocol,
        )
        current = transfer.url
        for hop in range(self._config.max_redirects + 1):
            shown = transfer.shown if hop == 0 else redact_url(current)
            try:
                target = _target(current)
            except (ValueError, UnicodeError) as exc:
                raise DownloadError(
                    f"cannot fetch {shown}: not a valid URL ({redact_text(str(exc))})"
                ) from exc
            pool = self._get_pool(target)
            headers = [
                (b"Host", _host_header(target)),
                (b"Accept", b"*/*"),
                # Hashes and lengths are over the exact file bytes; a content
                # coding would change them (and could hide a decompression bomb).
                (b"Accept-Encoding", b"identity"),
                (b"User-Agent", self._user_agent),
            ]
            # Credentials belong to the origin the transfer started at: a redirect to any
            # other origin (another host, port or scheme) goes without them.
            if transfer.auth is not None and origin_of(current) == transfer.origin:
                headers.append((b"Authorization", transfer.auth.encode("latin-1")))
            try:
                request = httpcore.Request(
                    b"GET",
                    httpcore.URL(
                        scheme=target.scheme.encode("ascii"),
                        host=target.host.encode("ascii"),
                        port=target.port,
                        target=target.target,
                    ),
                    headers=headers,
                    extensions={"timeout": self._timeouts(transfer)},
                )
                sent = time.monotonic()
                response = pool.handle_request(request)
                took = time.monotonic() - sent
                if self._round_trip is None or took < self._round_trip:
                    self._round_trip = took  # a float store: atomic, a lost race is harmless
            except transport_errors as exc:
                raise _map_transport_error(exc, shown, transfer, self._config.read_timeout) from exc
            try:
                head = _Head(response)
                if head.status != 200:
                    _drain(response)  # a short body read to its end keeps the connection
                if head.status in _REDIRECT_STATUSES:
                    current = self._redirect_target(head, current, hop)
                    continue
                _check_status(head, shown)
                return (yield from self._stream_body(response, head, transfer, shown, max_length))
            except transport_errors as exc:
                raise _map_transport_error(exc, shown, transfer, self._config.read_timeout) from exc
            finally:
                response.close()  # back to the pool when the body was read, else closed
        raise DownloadError(
            f"too many redirects fetching {transfer.shown}: expected at most "
            f"{self._config.max_redirects}, the last hop was {redact_url(current)}"
        )

    def _redirect_target(self, head: _Head, current: str, hop: int) -> str:
        location = head.get("location")
        if not location:
            raise DownloadError(
                f"{redact_url(current)} answered HTTP {head.status} without a Location header"
            )
        # User info in a Location header is never used: credentials come from the
        # configuration for the starting origin only.
        target, _ = strip_userinfo(urljoin(current, location))
        check_url_policy(target, allow_http=self._config.allow_http)
        if urlsplit(current).scheme.lower() == "https" and urlsplit(target).scheme != "https":
            # Stops a redirect from dropping TLS (downgrade), even to loopback.
            raise PolicyError(
                f"refusing redirect from {redact_url(current)} to {redact_url(target)}: "
                "expected https, got a downgrade to plain http"
            )
        _logger.debug("redirect %d: %s -> %s", hop + 1, redact_url(current), redact_url(target))
        return target

    def _stream_body(
        self,
        response: Any,
        head: _Head,
        transfer: _Transfer,
        url: str,
        max_length: int,
    ) -> Generator[bytes | Restart, None, int]:
        encoding = (head.get("content-encoding") or "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DownloadError(
                f"{url} was sent with Content-Encoding {encoding!r}, expected identity "
                "(hashes are over the exact file bytes)",
                hint="configure the server or CDN not to compress these files",
            )
        declared = _content_length(head)
        if declared is not None and declared > max_length:
            # Refuse before reading a byte: stops oversized responses early.
            raise LengthMismatchError(
                f"{url} announces {declared} bytes, expected at most {max_length}"
            )
        written = 0
        # The transport's reads are passed on as they arrive, split only when larger than
        # chunk_size: re-chunking every read to a fixed size would copy each byte again.
        size = self._config.chunk_size
        for read in response.stream:
            pieces = (
                [read]
                if len(read) <= size
                else [read[i : i + size] for i in range(0, len(read), size)]
            )
            for chunk in pieces:
                yield chunk  # the base counts against max_length and stops the transfer
                written += len(chunk)
                transfer.received = written
            if transfer.expired():
                # Stops a drip feed even where the socket-level clamp is unavailable.
                raise transfer.timeout_error("the body was still arriving")
        if declared is not None and written != declared:
            raise _Transient(f"body ended after {written} of {declared} announced bytes")
        return written


_DRAIN_LIMIT: Final = 64 * 1024  # bytes of a redirect or error body read to keep the connection


def _drain(response: Any) -> None:
    """Read a redirect's or error's (short) body, so its connection can serve the next hop.

    A longer body, or one that fails, is left unread: closing the response then closes the
    connection. Every read is bounded by the transfer deadline like any other.
    """
    import httpcore

    seen = 0
    try:
        for read in response.stream:
            seen += len(read)
            if seen > _DRAIN_LIMIT:
                return
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError):
        return  # the connection is discarded on close; the status is what counts


class _Head:
    """Status line and headers of an httpcore response (names lower-cased, repeats joined)."""

    __slots__ = ("headers", "reason", "status")

    def __init__(self, response: Any) -> None:
        self.status: int = response.status
        reason = response.extensions.get("reason_phrase", b"")
        self.reason = reason.decode("latin-1", "replace") if isinstance(reason, bytes) else ""
        headers: dict[str, str] = {}
        for name, value in response.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers = headers

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


def _check_status(head: _Head, url: str) -> None:
    status = head.status
    if status == 200:
        return
    reason = f"HTTP {status} {head.reason}".rstrip()
    if status in _NOT_FOUND_STATUSES:
        raise NotFoundError(f"{url} does not exist: expected HTTP 200, got {reason}")
    if status == 429 or 500 <= status <= 599:
        raise _Transient(reason, retry_after=_retry_after(head))
    if status in (401, 403):
        raise DownloadError(
            f"cannot fetch {url}: expected HTTP 200, got {reason}",
            hint="the index needs credentials: see 'auth:' and netrc in the README",
        )
    raise DownloadError(f"cannot fetch {url}: expected HTTP 200, got {reason}")


def _content_length(head: _Head) -> int | None:
    value = (head.get("content-length") or "").strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def _retry_after(head: _Head) -> float | None:
    value = head.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(value)
    import email.utils  # deferred: ~25 ms to import, needed only for an HTTP-date Retry-After

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _map_transport_error(
    exc: Exception, url: str, transfer: _Transfer, read_timeout: float
) -> Exception:
    """Translate an httpcore exception into a project error or a ``_Transient``."""
    import httpcore

    detail = redact_text(f"{type(exc).__name__}: {exc}")
    cert_error = _find_cause(exc, ssl.SSLCertVerificationError)
    if cert_error is not None:
        # Not retried: a wrong certificate does not fix itself, and retrying a
        # possible MITM only hides it.
        reason = getattr(cert_error, "verify_message", None) or str(cert_error)
        return DownloadError(
            f"TLS certificate verification failed for {url}: {reason}; set ca_bundle in the "
            "download configuration if the server's certificate comes from a private CA",
            hint="check that the URL's host name is the one in the server's certificate "
            "and that the system clock is right",
        )
    if isinstance(exc, httpcore.TimeoutException) and transfer.expired(
        limited=bool(getattr(_DEADLINE, "limited", False))
    ):
        return transfer.timeout_error("no complete answer")
    if isinstance(exc, httpcore.ConnectError | httpcore.ConnectTimeout | httpcore.PoolTimeout):
        # Not retried here: a server that cannot be reached now will not be reached in a
        # second either; the mirror loop tries the next mirror at once.
        return UnreachableError(
            f"cannot connect to {url}: {detail}",
            hint="check the URL and the network; the next mirror (if any) is tried",
        )
    if isinstance(exc, httpcore.ReadTimeout | httpcore.WriteTimeout):
        return transfer.timeout_error(f"the server went silent ({detail})", silence=read_timeout)
    if isinstance(exc, httpcore.NetworkError | httpcore.RemoteProtocolError):
        # A reset, a truncated body or a malformed answer: worth another attempt.
        return _Transient(detail)
    return DownloadError(f"cannot fetch {url}: {detail}")


def _find_cause(exc: BaseException, kind: type[_E]) -> _E | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
