"""The one fetcher base: a URL becomes a bounded stream of bytes, with the project's errors.

Every way the client reads remote or untrusted bytes — HTTPS
(:class:`~modelmesh_connectors.client.fetch.HttpFetcher`) and ``file://`` bundles and mirrors
(:class:`~modelmesh_connectors.client.file_fetch.DirectoryFetcher`) — subclasses
:class:`Fetcher` (python-tuf ``ngclient/fetcher.py`` style). A subclass only implements
:meth:`Fetcher._fetch`, a generator of body chunks; the public methods, written once here,

* refuse a negative ``max_length`` (misuse);
* enforce the length cap: the chunk that would pass ``max_length`` is never handed to the
  sink, and the transfer is aborted (stops endless-data and oversized answers);
* map every foreign exception to the :class:`~modelmesh_connectors.errors.DownloadError`
  tree (:meth:`Fetcher._map_error`), chained with ``from``; the project's own errors and
  misuse (``RuntimeError``) pass unchanged.

A subclass that retries yields :data:`RESTART` before a new attempt: the sink is reset and
the count starts again from byte 0. This module imports nothing heavy (no ``httpx``).
"""

from __future__ import annotations

import abc
from collections.abc import Generator
from types import TracebackType
from typing import Final, Protocol, Self

from modelmesh_connectors._internal.redact import redact_text, redact_url
from modelmesh_connectors.errors import ConnectorError, DownloadError, LengthMismatchError

__all__ = ["RESTART", "Chunks", "Fetcher", "Restart", "Sink"]


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


class Restart:
    """The type of :data:`RESTART`."""

    __slots__ = ()


#: Yielded by :meth:`Fetcher._fetch` before a retried attempt: the body starts over.
RESTART: Final = Restart()

#: What :meth:`Fetcher._fetch` yields.
Chunks = Generator[bytes | Restart, None, None]


class _BufferSink:
    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data

    def reset(self) -> None:
        self.buffer.clear()


class Fetcher(abc.ABC):
    """Turns a URL into bytes; the only thing the rest of the library uses to read them."""

    @abc.abstractmethod
    def _fetch(self, url: str, max_length: int) -> Chunks:
        """Yield the body of ``url`` in chunks (the subclass's only job).

        Args:
            url: The absolute URL.
            max_length: The cap the caller enforces; a subclass may refuse earlier (a
                declared ``Content-Length`` over it) but need not count.

        Yields:
            Body chunks in order, and :data:`RESTART` before a retried attempt.

        Raises:
            ConnectorError: A classified failure (policy, not found, timeout …).
            Exception: Anything else; :meth:`_map_error` turns it into a download error.
        """

    def _map_error(self, exc: Exception, url: str) -> ConnectorError:
        """The project's error for a foreign exception ``exc`` raised while reading ``url``.

        Subclasses refine it: a missing file is a
        :class:`~modelmesh_connectors.errors.NotFoundError`.
        """
        detail = redact_text(f"{type(exc).__name__}: {exc}")
        return DownloadError(f"cannot fetch {redact_url(url)}: {detail}")

    def fetch_bytes(self, url: str, *, max_length: int) -> bytes:
        """Download a whole (small) file into memory.

        Args:
            url: The absolute URL.
            max_length: Hard cap in bytes; more than this aborts the download.

        Returns:
            The body, at most ``max_length`` bytes.

        Raises:
            PolicyError: The URL (or a redirect target) is not allowed.
            LengthMismatchError: The source sent or announced more than ``max_length``.
            NotFoundError: The file does not exist (HTTP 404 or 410, no such file).
            UnreachableError: No connection could be made (not retried).
            TransferTimeoutError: The transfer or run deadline passed (not retried).
            DownloadError: Any other failure, after retries for transient ones.
            ValueError: ``max_length`` is negative.
            RuntimeError: The fetcher was closed.
        """
        sink = _BufferSink()
        self.fetch_to(url, sink, max_length=max_length)
        return bytes(sink.buffer)

    def fetch_to(self, url: str, sink: Sink, *, max_length: int) -> int:
        """Stream a file into ``sink``, never more than ``max_length`` bytes.

        Args:
            url: The absolute URL.
            sink: Receives the body; ``reset()`` is called before each retry.
            max_length: Hard cap in bytes; more than this aborts the download.

        Returns:
            The number of bytes written to ``sink`` by the successful attempt.

        Raises:
            PolicyError, LengthMismatchError, NotFoundError, UnreachableError,
            TransferTimeoutError, DownloadError, ValueError, RuntimeError: as for
                :meth:`fetch_bytes`.
            ConnectorError: Whatever ``sink.write`` raised.
        """
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
            raise ValueError(f"max_length must be a non-negative int, got {max_length!r}")
        written = 0
        chunks = self._fetch(url, max_length)
        try:
            for chunk in chunks:
                if isinstance(chunk, Restart):
                    sink.reset()
                    written = 0
                    continue
                if written + len(chunk) > max_length:
                    # Stops endless-data and oversized answers at the cap.
                    raise LengthMismatchError(
                        f"{redact_url(url)} sent more than the expected maximum of "
                        f"{max_length} bytes; aborted"
                    )
                sink.write(chunk)
                written += len(chunk)
        except (ConnectorError, RuntimeError):
            raise  # classified already, or misuse (a closed fetcher or sink)
        except Exception as exc:
            raise self._map_error(exc, url) from exc
        finally:
            chunks.close()  # ends the transfer (closes the response or file) at once
        return written

    @property
    def round_trip(self) -> float | None:
        """Seconds from request to response headers, the fastest seen so far; None if unknown.

        Callers size their thread pools with it: on a fast link (loopback, LAN) transfers are
        bound by the CPU, not by waiting, and more threads only contend for the interpreter.
        """
        return None

    def prefetch(self, url: str, *, max_length: int) -> None:  # noqa: B027 - a hint
        """Say that ``fetch_bytes(url, max_length=max_length)`` comes next; a fetcher may start it.

        A network fetcher starts the transfer in the background so it overlaps a round trip
        the caller still has to make; the later :meth:`fetch_bytes` call returns (or raises)
        its result. Nothing is verified earlier for it: the caller checks the bytes when it
        gets them, as always. The default does nothing (a local read is fast).
        """

    def close(self) -> None:  # noqa: B027 - deliberately empty: most fetchers hold nothing
        """Release what the fetcher holds; it must not be used afterwards. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
