"""The S3-compatible object-storage backend of the storage seam.

``s3://bucket/prefix/`` through boto3, whose ``put_object`` sends S3's conditional-write
headers: ``If-None-Match: *`` (create-if-absent) and ``If-Match: <ETag>`` (replace and delete
if unchanged). ``upload_file`` cannot send them and is never used. Credentials come from
boto3's usual chain (environment, shared config and credentials files, profile
``$AWS_PROFILE``, instance roles); ``endpoint_url`` (or ``$AWS_ENDPOINT_URL``) points at a
non-AWS store.

The conditions are proven before the first write (:meth:`Storage.ensure_conditions`) with a
probe object *beside* the prefix (``<prefix>.modelmesh-probe-<random>``, deleted at once), so a
store that ignores them — older S3-compatible servers accept both headers silently — is
refused instead of losing releases.
"""

from __future__ import annotations

__all__ = ["S3Storage"]

import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from modelmesh_connectors.errors import StorageError
from modelmesh_connectors.publish.storage import Listed, Storage, Stored, cache_control

_CONFLICT_RETRIES = 5  # 409 ConditionalRequestConflict: another conditional write in flight
_CONFLICT_BACKOFF = 0.05  # seconds, doubled per retry
_PRECONDITION = frozenset({"PreconditionFailed", "412"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT = frozenset({"ConditionalRequestConflict", "409", "OperationAborted"})


def _code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    code = str(error.get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code or str(status or "")


class S3Storage(Storage):
    """An index under a prefix of an S3 bucket.

    Args:
        bucket: Bucket name.
        prefix: Key prefix of the index (``""`` or ending in ``/``).
        client: A boto3 S3 client (default: one from boto3's credential chain).
        endpoint_url: S3-compatible endpoint (default: ``$AWS_ENDPOINT_URL``, else AWS).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__()
        if not bucket:
            raise StorageError("s3 location: expected a bucket name, got none")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError as e:  # pragma: no cover - the s3 extra is not installed
                raise StorageError(
                    "publishing to s3:// needs boto3",
                    hint="pip install 'modelmesh-connectors[s3]'",
                ) from e
            endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                config=Config(retries={"mode": "standard", "max_attempts": 4}),
            )
        self._client = client
        from botocore.exceptions import BotoCoreError, ClientError

        self._client_error: type[Exception] = ClientError
        self._boto_error: type[Exception] = BotoCoreError

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3Storage:
        """Build from ``s3://bucket/prefix/``.

        Raises:
            StorageError: No bucket in the URL.
        """
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise StorageError(f"{url}: expected s3://BUCKET/PREFIX/")
        return cls(parts.netloc, parts.path.lstrip("/"), endpoint_url=endpoint_url)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return self.prefix + key

    @staticmethod
    def _headers(key: str) -> dict[str, str]:
        # Served straight from the bucket or through a CDN: the caching rules travel with
        # each object (docs/HOSTING.md).
        kind = "application/zip" if key.endswith(".zip") else "application/json"
        return {"CacheControl": cache_control(key), "ContentType": kind}

    def _fail(self, key: str, what: str, e: Exception) -> StorageError:
        return StorageError(f"{self.location}: cannot {what} {key}: {e}")

    def _call(self, key: str, what: str, op: Any, **kwargs: Any) -> Any:
        """Run one S3 call; returns None for a failed condition or a missing key."""
        delay = _CONFLICT_BACKOFF
        for attempt in range(_CONFLICT_RETRIES):
            try:
                return op(Bucket=self.bucket, Key=self._key(key), **kwargs)
            except self._client_error as e:
                code = _code(e)
                if code in _PRECONDITION or code in _MISSING:
                    return None
                if code in _CONFLICT and attempt < _CONFLICT_RETRIES - 1:
                    time.sleep(delay + secrets.randbelow(1000) / 1000 * delay)
                    delay *= 2
                    continue
                raise self._fail(key, what, e) from e
            except self._boto_error as e:
                raise self._fail(key, what, e) from e
        raise StorageError(f"{self.location}: cannot {what} {key}: conflicting writes")

    # -- primitives --------------------------------------------------------------------

    def read(self, key: str) -> Stored | None:
        self.reads += 1
        response = self._call(key, "read", self._client.get_object)
        if response is None:
            return None
        try:
            data = response["Body"].read()
        except (self._client_error, self._boto_error, OSError) as e:
            raise self._fail(key, "read", e) from e
        return Stored(bytes(data), str(response["ETag"]))

    def create(self, key: str, data: bytes) -> bool:
        self.writes += 1
        response = self._call(
            key, "create", self._client.put_object, Body=data, IfNoneMatch="*", **self._headers(key)
        )
        return response is not None

    def replace(self, key: str, data: bytes, tag: str | None) -> str | None:
        self.writes += 1
        condition = {"IfNoneMatch": "*"} if tag is None else {"IfMatch": tag}
        response = self._call(
            key, "replace", self._client.put_object, Body=data, **condition, **self._headers(key)
        )
        return None if response is None else str(response["ETag"])

    def list(self, prefix: str = "") -> Iterator[Listed]:
        self.reads += 1
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", ()):
                    modified = obj["LastModified"]
                    if modified.tzinfo is None:
                        modified = modified.replace(tzinfo=UTC)
                    yield Listed(obj["Key"][len(self.prefix) :], modified, str(obj["ETag"]))
        except (self._client_error, self._boto_error) as e:
            raise self._fail(prefix or "/", "list", e) from e

    def delete(self, key: str, tag: str) -> bool:
        self.writes += 1
        response = self._call(key, "delete", self._client.delete_object, IfMatch=tag)
        return response is not None

    def _probe_key(self) -> str:
        # Beside the prefix, not under it: the probe never appears in the served tree
        # (except for a whole-bucket index, where it is deleted at once).
        base = self.prefix.rstrip("/")
        name = f".modelmesh-probe-{secrets.token_hex(8)}"
        return f"{base}{name}" if base else name

    def _probe_storage(self) -> Storage:
        if not self.prefix:
            return self
        return S3Storage(self.bucket, "", client=self._client)
