"""Every setting of the client side, once: network, limits, and where the cache lives.

* :class:`NetworkConfig` — how the client talks to the network (timeouts, retries, TLS, URL
  policy, credentials). The ``connectors:`` section is parsed into it
  (:mod:`~modelmesh_connectors.client.config`), and the fetcher takes it as it is: no copy.
* :class:`Limits` — every bound the client puts on what it reads (python-tuf
  ``ngclient/config.py`` style). Caps that are part of the format stay next to their parser
  in the trust core or the package reader and are referenced here, not repeated.
* :func:`default_cache_dir` — the one cache-directory resolver (configuration, then
  ``$MODELMESH_CONNECTORS_CACHE``, then the platform's user cache directory).

Pure data, no I/O beyond reading one environment variable, and no heavy imports: the fetcher
module imports this before it knows whether it will go online.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.index.trust import DEFAULT_MAX_ROOT_ROTATIONS
from modelmesh_connectors.package.package import MAX_ARCHIVE_BYTES

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_LIMITS",
    "Limits",
    "NetworkConfig",
    "default_cache_dir",
]

#: Environment variable that overrides the platform cache directory.
CACHE_DIR_ENV: Final = "MODELMESH_CONNECTORS_CACHE"


def default_cache_dir(configured: Path | None = None) -> Path:
    """The cache root: ``configured``, else ``$MODELMESH_CONNECTORS_CACHE``, else the platform's.

    The platform directory is ``platformdirs.user_cache_dir("modelmesh-connectors")``
    (``~/.cache/modelmesh-connectors`` on Linux), the location every earlier version of the
    loader used; a blank environment variable counts as unset.

    Args:
        configured: ``connectors.cache_dir``, if set.

    Returns:
        The directory (it may not exist yet).
    """
    if configured is not None:
        return configured
    override = os.environ.get(CACHE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir  # deferred: only when no directory is given

    return Path(user_cache_dir("modelmesh-connectors"))


class NetworkConfig(Frozen):
    """How the client talks to the network; the one object the fetcher is built from.

    ``retries`` counts the attempts *after* the first one, so a transient failure is tried
    ``retries + 1`` times in total; unreachable or timed-out mirrors get ``retries`` more
    rounds over the mirror list (:mod:`~modelmesh_connectors.client.failover`).

    One transfer (a ``fetch_to`` call, all attempts and redirect hops) must end within
    ``transfer_timeout + length / min_rate`` seconds, and every transfer of one fetcher
    within ``run_timeout`` of its first request.

    Raises:
        ValueError: A timeout, rate, count or size is out of range (naming the field).
    """

    __slots__ = (
        "allow_http",
        "auth",
        "backoff_base",
        "backoff_max",
        "ca_bundle",
        "chunk_size",
        "concurrency",
        "connect_timeout",
        "max_redirects",
        "max_retry_after",
        "min_rate",
        "netrc",
        "read_timeout",
        "retries",
        "run_timeout",
        "transfer_timeout",
        "trust_env",
        "user_agent",
    )

    connect_timeout: float  # seconds to establish a TCP (and TLS) connection
    read_timeout: float  # seconds of silence allowed between two received chunks
    transfer_timeout: float  # seconds per transfer, on top of length / min_rate
    min_rate: float  # bytes per second a transfer must average
    run_timeout: float | None  # seconds for one whole run; None: no bound
    retries: int  # extra attempts after the first, for transient failures only
    backoff_base: float  # seconds before the first retry; doubles per retry
    backoff_max: float  # seconds, upper bound of one backoff delay
    max_retry_after: float  # seconds, cap on a server's Retry-After we honour
    allow_http: bool  # allow plain http:// to non-loopback hosts (unsafe: MITM)
    ca_bundle: Path | str | None  # PEM bundle of trusted CAs; None: system store
    chunk_size: int  # bytes asked of the socket per read, and the largest chunk handed on
    user_agent: str  # User-Agent request header
    max_redirects: int  # redirect hops followed per attempt
    trust_env: bool  # honour HTTP(S)_PROXY / NO_PROXY environment variables
    concurrency: int  # archives at once (under 2 ms a request: a thread per spare core, max 4)
    auth: tuple[tuple[str, str], ...]  # (origin, token environment variable) pairs
    netrc: bool | Path  # netrc credentials ($NETRC or ~/.netrc), this file, or none

    def __init__(
        self,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        transfer_timeout: float = 60.0,
        min_rate: float = 10 * 1024.0,
        run_timeout: float | None = 30 * 60.0,
        retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        max_retry_after: float = 60.0,
        allow_http: bool = False,
        ca_bundle: Path | str | None = None,
        chunk_size: int = 256 * 1024,
        user_agent: str = "modelmesh-connectors/0.1",
        max_redirects: int = 5,
        trust_env: bool = True,
        concurrency: int = 16,
        auth: tuple[tuple[str, str], ...] = (),
        netrc: bool | Path = True,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "connect_timeout", connect_timeout)
        setattr_(self, "read_timeout", read_timeout)
        setattr_(self, "transfer_timeout", transfer_timeout)
        setattr_(self, "min_rate", min_rate)
        setattr_(self, "run_timeout", run_timeout)
        setattr_(self, "retries", retries)
        setattr_(self, "backoff_base", backoff_base)
        setattr_(self, "backoff_max", backoff_max)
        setattr_(self, "max_retry_after", max_retry_after)
        setattr_(self, "allow_http", allow_http)
        setattr_(self, "ca_bundle", ca_bundle)
        setattr_(self, "chunk_size", chunk_size)
        setattr_(self, "user_agent", user_agent)
        setattr_(self, "max_redirects", max_redirects)
        setattr_(self, "trust_env", trust_env)
        setattr_(self, "concurrency", concurrency)
        setattr_(self, "auth", auth)
        setattr_(self, "netrc", netrc)
        self._check()

    def _check(self) -> None:
        for name in (
            "connect_timeout",
            "read_timeout",
            "transfer_timeout",
            "min_rate",
            "backoff_base",
            "backoff_max",
            "max_retry_after",
        ):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"NetworkConfig.{name} must be >= 0 seconds, got {value!r}")
        if self.connect_timeout == 0 or self.read_timeout == 0 or self.transfer_timeout == 0:
            raise ValueError("NetworkConfig timeouts must be > 0 seconds")
        if self.min_rate == 0:
            raise ValueError("NetworkConfig.min_rate must be > 0 bytes per second")
        if self.run_timeout is not None and not self.run_timeout > 0:
            raise ValueError(
                f"NetworkConfig.run_timeout must be > 0 seconds or None, got {self.run_timeout!r}"
            )
        for name in ("retries", "max_redirects"):
            if getattr(self, name) < 0:
                raise ValueError(f"NetworkConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.chunk_size <= 0:
            raise ValueError(f"NetworkConfig.chunk_size must be > 0 bytes, got {self.chunk_size!r}")
        if self.concurrency < 1:
            raise ValueError(f"NetworkConfig.concurrency must be >= 1, got {self.concurrency!r}")


class Limits(Frozen):
    """Every bound the client puts on what it reads from a mirror, a bundle or a local file.

    Each cap stops an endless-data or oversized answer before it costs memory or disk; signed
    lengths (an index top, a node, an archive) are caps of their own and always win.

    Attributes:
        max_root_bytes: Bytes of one ``root/<N>.json`` (a root lists a few dozen keys).
        max_timestamp_bytes: Bytes of ``timestamp.json`` (FORMAT.md §4: 16 KiB).
        max_metadata_bytes: Bytes of one group or bin node (``connectors.max_metadata_bytes``).
        max_signature_bytes: Bytes of a detached ``.zip.sig`` release envelope (one is well
            under 2 KiB).
        max_archive_bytes: Bytes of an archive whose length nothing signed pins (a
            ``#sha256=``-pinned URL, a local zip): the package reader's own cap,
            :data:`~modelmesh_connectors.package.package.MAX_ARCHIVE_BYTES`.
        max_root_walk: New root versions accepted per update (FORMAT.md §3), the trust core's
            :data:`~modelmesh_connectors.index.trust.DEFAULT_MAX_ROOT_ROTATIONS`.
    """

    __slots__ = (
        "max_archive_bytes",
        "max_metadata_bytes",
        "max_root_bytes",
        "max_root_walk",
        "max_signature_bytes",
        "max_timestamp_bytes",
    )

    max_root_bytes: int  # bytes
    max_timestamp_bytes: int  # bytes
    max_metadata_bytes: int  # bytes
    max_signature_bytes: int  # bytes
    max_archive_bytes: int  # bytes
    max_root_walk: int  # root versions per update

    def __init__(
        self,
        max_root_bytes: int = 512 * 1024,
        max_timestamp_bytes: int = 16 * 1024,
        max_metadata_bytes: int = 4 * 1024 * 1024,
        max_signature_bytes: int = 64 * 1024,
        max_archive_bytes: int = MAX_ARCHIVE_BYTES,
        max_root_walk: int = DEFAULT_MAX_ROOT_ROTATIONS,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "max_root_bytes", max_root_bytes)
        setattr_(self, "max_timestamp_bytes", max_timestamp_bytes)
        setattr_(self, "max_metadata_bytes", max_metadata_bytes)
        setattr_(self, "max_signature_bytes", max_signature_bytes)
        setattr_(self, "max_archive_bytes", max_archive_bytes)
        setattr_(self, "max_root_walk", max_root_walk)
        for name in self._field_names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, got {value!r}")


#: The limits every client uses unless configured otherwise.
DEFAULT_LIMITS: Final = Limits()
