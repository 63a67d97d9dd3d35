"""The one network seam: turn a URL into a bounded stream of bytes.

Everything that leaves the machine goes through a :class:`Fetcher`. The real
one, :class:`HttpFetcher`, wraps a single lazily created ``httpx.Client`` and

* applies the URL policy *before* any connection (HTTPS only; plain HTTP only
  to a loopback host unless explicitly allowed), and again on every redirect
  hop, refusing an https→http downgrade;
* streams the body in chunks into a :class:`Sink` and aborts the moment more
  than ``max_length`` bytes arrive;
* retries transient failures (connect errors, timeouts, resets, truncated
  bodies, 5xx, 429 with ``Retry-After``) with capped exponential backoff and
  jitter, and nothing else;
* maps every foreign exception to the project's error tree.

``httpx`` is imported only when the first request is made, so a run that needs
no network never imports it. Tests and the loader can swap in any object that
satisfies :class:`Fetcher`.
"""

from __future__ import annotations

__all__ = [
    "DownloadConfig",
    "Fetcher",
    "HttpFetcher",
    "Sink",
    "check_url_policy",
]

import email.utils
import ipaddress
import logging
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self, TypeVar
from urllib.parse import urlsplit

from modelmesh_connectors.errors import (
    DownloadError,
    LengthMismatchError,
    NotFoundError,
    PolicyError,
)

if TYPE_CHECKING:
    import httpx

_logger = logging.getLogger("modelmesh_connectors.download")

_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_NOT_FOUND_STATUSES: Final = frozenset({404, 410})
_LOOPBACK_NAMES: Final = frozenset({"localhost"})
_DIGITS: Final = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() accepts "²"
_E = TypeVar("_E", bound=BaseException)


@dataclass(frozen=True)
class DownloadConfig:
    """How :class:`HttpFetcher` talks to the network.

    ``retries`` counts the attempts *after* the first one, so a transient
    failure is tried ``retries + 1`` times in total.
    """

    connect_timeout: float = 10.0  # seconds to establish a TCP (and TLS) connection
    read_timeout: float = 30.0  # seconds of silence allowed between two received chunks
    retries: int = 3  # extra attempts after the first, for transient failures only
    backoff_base: float = 0.5  # seconds before the first retry; doubles per retry
    backoff_max: float = 10.0  # seconds, upper bound of one backoff delay
    max_retry_after: float = 60.0  # seconds, cap on a server's Retry-After we honour
    allow_http: bool = False  # allow plain http:// to non-loopback hosts (unsafe)
    ca_bundle: str | None = None  # path to a PEM CA bundle; None = system trust store
    chunk_size: int = 64 * 1024  # bytes read from the body per chunk
    user_agent: str = "modelmesh-connectors/0.1"  # User-Agent request header
    max_redirects: int = 5  # redirect hops followed per attempt
    trust_env: bool = True  # honour HTTP(S)_PROXY / NO_PROXY environment variables

    def __post_init__(self) -> None:
        for name in (
            "connect_timeout",
            "read_timeout",
            "backoff_base",
            "backoff_max",
            "max_retry_after",
        ):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"DownloadConfig.{name} must be >= 0 seconds, got {value!r}")
        if self.connect_timeout == 0 or self.read_timeout == 0:
            raise ValueError("DownloadConfig timeouts must be > 0 seconds")
        if self.retries < 0:
            raise ValueError(f"DownloadConfig.retries must be >= 0, got {self.retries!r}")
        if self.max_redirects < 0:
            raise ValueError(
                f"DownloadConfig.max_redirects must be >= 0, got {self.max_redirects!r}"
            )
        if self.chunk_size <= 0:
            raise ValueError(
                f"DownloadConfig.chunk_size must be > 0 bytes, got {self.chunk_size!r}"
            )


class Sink(Protocol):
    """Where a fetcher writes a body, chunk by chunk."""

    def write(self, data: bytes) -> None:
        """Accept the next chunk of the body.

        Args:
            data: The bytes, exactly as received.

        Raises:
            ConnectorError: The sink refuses the data (too long, disk full …);
                the fetcher propagates it unchanged and does not retry.
        """

    def reset(self) -> None:
        """Forget everything written so far; a retry restarts the body from byte 0."""


class Fetcher(Protocol):
    """Turns a URL into bytes; the only thing the rest of the library uses to go online."""

    def fetch_bytes(self, url: str, *, max_length: int) -> bytes:
        """Download a whole (small) file into memory.

        Args:
            url: The absolute URL.
            max_length: Hard cap in bytes; more than this aborts the download.

        Returns:
            The body, at most ``max_length`` bytes.

        Raises:
            PolicyError: The URL (or a redirect target) is not allowed.
            LengthMismatchError: The server sent or announced more than ``max_length``.
            NotFoundError: The server answered 404 or 410.
            DownloadError: Any other failure, after retries for transient ones.
        """
        ...

    def fetch_to(self, url: str, sink: Sink, *, max_length: int) -> int:
        """Stream a file into ``sink``.

        Args:
            url: The absolute URL.
            sink: Receives the body; ``reset()`` is called before a retry.
            max_length: Hard cap in bytes; more than this aborts the download.

        Returns:
            The number of bytes written to ``sink`` by the successful attempt.

        Raises:
            PolicyError: The URL (or a redirect target) is not allowed.
            LengthMismatchError: The server sent or announced more than ``max_length``.
            NotFoundError: The server answered 404 or 410.
            DownloadError: Any other failure, after retries for transient ones.
            ConnectorError: Whatever ``sink.write`` raised.
        """
        ...

    def close(self) -> None:
        """Release connections; the fetcher must not be used afterwards."""
        ...


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
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # parsing the port validates it
    except ValueError as exc:
        raise PolicyError(f"refusing to fetch {url!r}: not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if not host:
        raise PolicyError(f"refusing to fetch {url!r}: expected an absolute URL with a host")
    if scheme == "https":
        return
    if scheme == "http":
        # Plain HTTP lets anyone on the path read and rewrite the response
        # (downgrade / MITM). Signatures still protect metadata, but not
        # privacy or availability, so only loopback is allowed by default.
        if allow_http or _is_loopback(host):
            return
        raise PolicyError(
            f"refusing plain http:// to non-loopback host {host!r} in {url}: expected https://",
            hint="use an https:// index URL, or set allow_http in the download configuration",
        )
    raise PolicyError(
        f"refusing to fetch {url}: unsupported URL scheme {parts.scheme!r}, expected https "
        "(or http to a loopback host)"
    )


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Transient(Exception):
    """A failure worth retrying; never escapes this module."""

    def __init__(self, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


class _BufferSink:
    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data

    def reset(self) -> None:
        self.buffer.clear()


class HttpFetcher:
    """The real :class:`Fetcher`: HTTPS with caps, retries and one pooled client.

    Thread-safe: one instance may serve several threads at once (the
    underlying ``httpx.Client`` is shared and reuses connections).

    Args:
        config: Timeouts, retry policy, TLS and URL policy; defaults if omitted.
    """

    def __init__(self, config: DownloadConfig | None = None) -> None:
        self._config = config if config is not None else DownloadConfig()
        # One pooled client per scheme: the plain-http one never loads CA certificates
        # (30-90 ms), and each request and redirect hop picks its client by its own scheme,
        # so an https URL is always served by the verifying client.
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def config(self) -> DownloadConfig:
        """The configuration this fetcher was built with."""
        return self._config

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections. Idempotent."""
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def fetch_bytes(self, url: str, *, max_length: int) -> bytes:
        """Download a whole (small) file into memory.

        Args:
            url: The absolute URL.
            max_length: Hard cap in bytes; more than this aborts the download.

        Returns:
            The body, at most ``max_length`` bytes.

        Raises:
            PolicyError: The URL (or a redirect target) is not allowed.
            LengthMismatchError: The server sent or announced more than ``max_length``.
            NotFoundError: The server answered 404 or 410.
            DownloadError: Any other failure, after retries for transient ones.
            RuntimeError: The fetcher was closed.
        """
        sink = _BufferSink()
        self.fetch_to(url, sink, max_length=max_length)
        return bytes(sink.buffer)

    def fetch_to(self, url: str, sink: Sink, *, max_length: int) -> int:
        """Stream a file into ``sink``, retrying transient failures.

        Args:
            url: The absolute URL.
            sink: Receives the body; ``reset()`` is called before each retry.
            max_length: Hard cap in bytes; more than this aborts the download.

        Returns:
            The number of bytes written to ``sink`` by the successful attempt.

        Raises:
            PolicyError: The URL (or a redirect target) is not allowed.
            LengthMismatchError: The server sent or announced more than ``max_length``.
            NotFoundError: The server answered 404 or 410.
            DownloadError: Any other failure, after retries for transient ones.
            ConnectorError: Whatever ``sink.write`` raised.
            ValueError: ``max_length`` is negative.
            RuntimeError: The fetcher was closed.
        """
        if isinstance(max_length, bool) or max_length < 0:
            raise ValueError(f"max_length must be a non-negative int, got {max_length!r}")
        # Policy before any connection: a refused URL never reaches the socket layer.
        check_url_policy(url, allow_http=self._config.allow_http)
        attempts = self._config.retries + 1
        last: _Transient | None = None
        for attempt in range(1, attempts + 1):
            if last is not None:
                delay = self._delay_before(attempt, last.retry_after)
                _logger.warning(
                    "transient failure fetching %s: %s; retrying in %.2fs (attempt %d of %d)",
                    url,
                    last.description,
                    delay,
                    attempt,
                    attempts,
                )
                time.sleep(delay)
                sink.reset()
            _logger.debug("GET %s (attempt %d of %d)", url, attempt, attempts)
            try:
                written = self._attempt(url, sink, max_length)
            except _Transient as exc:
                last = exc
                continue
            _logger.debug("fetched %s: %d bytes", url, written)
            return written
        if last is None:  # pragma: no cover - the loop runs at least once
            raise RuntimeError("retry loop ended without an attempt")
        raise DownloadError(
            f"failed to fetch {url} after {attempts} attempt(s): {last.description}",
            hint="check the network connection and that the index URL is reachable",
        ) from last.__cause__  # the httpx exception, if the last failure had one

    # -- one attempt -------------------------------------------------------------

    def _delay_before(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self._config.max_retry_after)
        ceiling = min(self._config.backoff_max, self._config.backoff_base * 2.0 ** (attempt - 2))
        # Jitter spreads the retries of many clients after a shared outage; it
        # is not security-relevant, so the plain PRNG is fine.
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311

    def _get_client(self, scheme: str) -> httpx.Client:
        with self._lock:
            if self._closed:
                raise RuntimeError("HttpFetcher is closed")
            client = self._clients.get(scheme)
            if client is None:
                client = self._clients[scheme] = self._new_client(scheme)
            return client

    def _new_client(self, scheme: str) -> httpx.Client:
        import httpx  # deferred: a run that needs no network never imports httpx

        config = self._config
        # Only the https client needs (and gets) certificate verification; the http client
        # is used for http:// URLs alone, which the URL policy limits to loopback.
        verify: ssl.SSLContext | bool = self._ssl_context() if scheme == "https" else False
        return httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout,
            ),
            follow_redirects=False,  # followed by hand so each hop passes the URL policy
            headers={
                "User-Agent": config.user_agent,
                # Hashes and lengths are over the exact file bytes; a content
                # coding would change them (and could hide a decompression bomb).
                "Accept-Encoding": "identity",
            },
            trust_env=config.trust_env,
        )

    def _ssl_context(self) -> ssl.SSLContext:
        bundle = self._config.ca_bundle
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

    def _attempt(self, url: str, sink: Sink, max_length: int) -> int:
        import httpx

        current = url
        for hop in range(self._config.max_redirects + 1):
            client = self._get_client(urlsplit(current).scheme.lower())
            try:
                response = client.send(client.build_request("GET", current), stream=True)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise _map_transport_error(exc, current) from exc
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    current = self._redirect_target(response, current, hop)
                    continue
                _check_status(response, current)
                return self._stream_body(response, current, sink, max_length)
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                raise _map_transport_error(exc, current) from exc
            finally:
                response.close()
        raise DownloadError(
            f"too many redirects fetching {url}: expected at most "
            f"{self._config.max_redirects}, the last hop was {current}"
        )

    def _redirect_target(self, response: httpx.Response, current: str, hop: int) -> str:
        location = response.headers.get("location")
        if not location:
            raise DownloadError(
                f"{current} answered HTTP {response.status_code} without a Location header"
            )
        target = str(response.url.join(location))
        check_url_policy(target, allow_http=self._config.allow_http)
        if urlsplit(current).scheme.lower() == "https" and urlsplit(target).scheme != "https":
            # Stops a redirect from dropping TLS (downgrade), even to loopback.
            raise PolicyError(
                f"refusing redirect from {current} to {target}: expected https, "
                "got a downgrade to plain http"
            )
        _logger.debug("redirect %d: %s -> %s", hop + 1, current, target)
        return target

    def _stream_body(self, response: httpx.Response, url: str, sink: Sink, max_length: int) -> int:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DownloadError(
                f"{url} was sent with Content-Encoding {encoding!r}, expected identity "
                "(hashes are over the exact file bytes)",
                hint="configure the server or CDN not to compress these files",
            )
        declared = _content_length(response)
        if declared is not None and declared > max_length:
            # Refuse before reading a byte: stops oversized responses early.
            raise LengthMismatchError(
                f"{url} announces {declared} bytes, expected at most {max_length}"
            )
        written = 0
        # The transport's reads are passed on as they arrive, split only when larger than
        # chunk_size: re-chunking every read to a fixed size would copy each byte again.
        size = self._config.chunk_size
        for read in response.iter_raw():
            pieces = (
                [read]
                if len(read) <= size
                else [read[i : i + size] for i in range(0, len(read), size)]
            )
            for chunk in pieces:
                if written + len(chunk) > max_length:
                    # Stops endless-data and oversized responses at the cap.
                    raise LengthMismatchError(
                        f"{url} sent more than the expected maximum of {max_length} bytes; aborted"
                    )
                sink.write(chunk)
                written += len(chunk)
        if declared is not None and written != declared:
            raise _Transient(f"body ended after {written} of {declared} announced bytes")
        return written


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status == 200:
        return
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status in _NOT_FOUND_STATUSES:
        raise NotFoundError(f"{url} does not exist: expected HTTP 200, got {reason}")
    if status == 429 or 500 <= status <= 599:
        raise _Transient(reason, retry_after=_retry_after(response))
    raise DownloadError(f"cannot fetch {url}: expected HTTP 200, got {reason}")


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "").strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _map_transport_error(exc: Exception, url: str) -> Exception:
    """Translate an httpx exception into a project error or a ``_Transient``."""
    import httpx

    cert_error = _find_cause(exc, ssl.SSLCertVerificationError)
    if cert_error is not None:
        # Not retried: a wrong certificate does not fix itself, and retrying a
        # possible MITM only hides it.
        detail = getattr(cert_error, "verify_message", None) or str(cert_error)
        return DownloadError(
            f"TLS certificate verification failed for {url}: {detail}; set ca_bundle in the "
            "download configuration if the server's certificate comes from a private CA",
            hint="check that the URL's host name is the one in the server's certificate "
            "and that the system clock is right",
        )
    if isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError
    ):
        return _Transient(f"{type(exc).__name__}: {exc}")
    return DownloadError(f"cannot fetch {url}: {type(exc).__name__}: {exc}")


def _find_cause(exc: BaseException, kind: type[_E]) -> _E | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
