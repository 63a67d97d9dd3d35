"""A :class:`~modelmesh_connectors.client.fetcher.Fetcher` over local ``file://`` URLs.

Air-gapped bundles and mirrors copied to disk are read through the same seam as the network,
so they go through exactly the same verification (a bundle is untrusted bytes too), the same
length cap and the same error tree: the base class owns both.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelmesh_connectors.client.fetcher import Chunks, Fetcher
from modelmesh_connectors.errors import ConnectorError, DownloadError, NotFoundError

__all__ = ["DirectoryFetcher", "path_to_url"]

_CHUNK = 256 * 1024  # bytes per read


def path_to_url(path: Path) -> str:
    """The ``file://`` URL of a directory, with a trailing slash."""
    return path.resolve().as_uri().rstrip("/") + "/"


class DirectoryFetcher(Fetcher):
    """Reads ``file://`` URLs with the same caps and errors as the HTTP fetcher."""

    def _fetch(self, url: str, max_length: int) -> Chunks:
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise DownloadError(f"{url}: only file:// URLs are read from local directories")
        with open(Path(unquote(parts.path)), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    def _map_error(self, exc: Exception, url: str) -> ConnectorError:
        if isinstance(exc, FileNotFoundError):
            return NotFoundError(f"{url}: no such file")
        if isinstance(exc, IsADirectoryError):
            return NotFoundError(f"{url}: is a directory")
        if isinstance(exc, OSError):
            return DownloadError(f"{url}: cannot read: {exc}")
        return super()._map_error(exc, url)
