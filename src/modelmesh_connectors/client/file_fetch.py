"""A :class:`~modelmesh_connectors.client.fetch.Fetcher` over local ``file://`` URLs.

Air-gapped bundles and mirrors copied to disk are read through the same seam as the network,
so they go through exactly the same verification (a bundle is untrusted bytes too).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from modelmesh_connectors.errors import (
    DownloadError,
    LengthMismatchError,
    NotFoundError,
)

if TYPE_CHECKING:
    from modelmesh_connectors.client.fetch import Sink

__all__ = ["DirectoryFetcher", "path_to_url"]

_CHUNK = 256 * 1024  # bytes per read


def path_to_url(path: Path) -> str:
    """The ``file://`` URL of a directory, with a trailing slash."""
    return path.resolve().as_uri().rstrip("/") + "/"


class DirectoryFetcher:
    """Reads ``file://`` URLs with the same caps and errors as the HTTP fetcher."""

    def _path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise DownloadError(f"{url}: only file:// URLs are read from local directories")
        return Path(unquote(parts.path))

    def fetch_bytes(self, url: str, *, max_length: int) -> bytes:
        """Read a whole file, refusing more than ``max_length`` bytes."""
        chunks: list[bytes] = []

        class _Collect:
            def write(self, data: bytes) -> None:
                chunks.append(data)

            def reset(self) -> None:
                chunks.clear()

        self.fetch_to(url, _Collect(), max_length=max_length)
        return b"".join(chunks)

    def fetch_to(self, url: str, sink: Sink, *, max_length: int) -> int:
        """Stream a file into ``sink``; stop past ``max_length`` (endless-data defence)."""
        path = self._path(url)
        total = 0
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > max_length:
                        raise LengthMismatchError(
                            f"{url}: more than the allowed {max_length} bytes"
                        )
                    sink.write(chunk)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except IsADirectoryError as exc:
            raise NotFoundError(f"{url}: is a directory") from exc
        except OSError as exc:
            raise DownloadError(f"{url}: cannot read: {exc}") from exc
        return total

    def close(self) -> None:
        """Nothing to release."""
