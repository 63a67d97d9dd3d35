"""Which storage backend serves an index location (``s3://…`` or a directory).

Separate from :mod:`~modelmesh_connectors.publish.storage` (the seam every backend
implements), so the arrows run one way: callers → this → backends → the seam.
"""

from __future__ import annotations

__all__ = ["open_storage"]

import os

from modelmesh_connectors.publish.local_storage import LocalStorage
from modelmesh_connectors.publish.storage import Storage


def open_storage(
    location: str | os.PathLike[str] | Storage, *, s3_endpoint: str | None = None
) -> Storage:
    """The storage for a location: a :class:`Storage` as is, ``s3://bucket/prefix/``, or a
    directory path.

    Args:
        location: Where the index is.
        s3_endpoint: Endpoint URL of an S3-compatible store (default: ``$AWS_ENDPOINT_URL``,
            else AWS).

    Returns:
        The storage.

    Raises:
        StorageError: An ``s3://`` location without a bucket, or boto3 is not installed.
    """
    if isinstance(location, Storage):
        return location
    text = os.fspath(location)
    if text.startswith("s3://"):
        # Lazy: boto3 (~150 ms) is imported only for an s3:// index.
        from modelmesh_connectors.publish.s3_storage import S3Storage

        return S3Storage.from_url(text, endpoint_url=s3_endpoint)
    return LocalStorage(text)
