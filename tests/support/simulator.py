"""The repository simulator: a real signed index on disk, served on 127.0.0.1, that tests attack.

It builds and signs an index with throw-away keys (root 2-of-3, separate index and timestamp
keys), publishes real connector packages through the project's publisher, serves the
directory with a real HTTP server that records every request, and lets a test corrupt any
byte, roll back or freeze any file, move the reference clock, or serve faults.

Usage::

    with RepositorySimulator(tmp_path) as sim:
        sim.publish_source("acme-audit-log")           # from tests' package builders
        registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log"]))
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from modelmesh_connectors.index.envelope import Envelope
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import Release
from modelmesh_connectors.package.pack import pack_to_bytes
from modelmesh_connectors.publish import repository
from tests.support.http_server import LoopbackServer
from tests.support.packages import make_package

__all__ = ["RepositorySimulator"]

DAY = timedelta(days=1)


class RepositorySimulator:
    """A signed index in ``<tmp>/index`` served over loopback HTTP.

    Args:
        tmp: A temporary directory owned by the test.
        now: The reference time used when signing (default: the real current time).
        serve: Start the HTTP server.
    """

    def __init__(self, tmp: Path, *, now: datetime | None = None, serve: bool = True) -> None:
        self.tmp = tmp
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.dir = tmp / "index"
        self.cache = tmp / "cache"
        self.root_keys = [SigningKey.generate() for _ in range(3)]
        self.index_key = SigningKey.generate()
        self.timestamp_key = SigningKey.generate()
        staged = repository.root_init(
            root_keys=[k.public for k in self.root_keys],
            root_threshold=2,
            index_keys=[self.index_key.public],
            index_threshold=1,
            timestamp_keys=[self.timestamp_key.public],
            timestamp_threshold=1,
            expires=self.now + 365 * DAY,
        )
        signed: Envelope = staged
        for key in self.root_keys[:2]:
            signed = signed.with_signature(key)
        self.root_bytes = signed.to_bytes()
        repository.init_repository(
            self.dir, self.root_bytes, self.index_key, self.timestamp_key, now=self.now
        )
        self.trust_root = tmp / "root.json"
        self.trust_root.write_bytes(self.root_bytes)
        self.archives: dict[tuple[str, str], Path] = {}
        self.server = LoopbackServer(self.dir)
        self._url = ""
        if serve:
            self.server.start()
            self._url = self.server.base_url.rstrip("/") + "/"

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()

    @property
    def url(self) -> str:
        """The index base URL (ends with ``/``)."""
        return self._url

    # -- publishing ----------------------------------------------------------------------------

    def build_archive(self, name: str = "acme-audit-log", version: str = "1.0.0", **kwargs: Any) -> Path:
        """Pack a test package (see ``tests.support.packages.make_package``) to a zip."""
        src = make_package(self.tmp / "src" / f"{name}-{version}", name, version, **kwargs)
        data, filename = pack_to_bytes(src)
        out = self.tmp / "dist" / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return out

    def publish_archive(self, archive: Path, *, release_keys: Sequence[SigningKey] | None = None) -> Release:
        """Publish an existing zip with the simulator's keys."""
        release = repository.publish(
            self.dir,
            archive,
            index_keys=self.index_key,
            timestamp_keys=self.timestamp_key,
            release_keys=list(release_keys) if release_keys else None,
            now=self.now,
        )
        self.archives[(release.name, release.version)] = self.dir / release.file
        return release

    def publish(self, name: str = "acme-audit-log", version: str = "1.0.0", **kwargs: Any) -> Release:
        """Build and publish a test package."""
        return self.publish_archive(self.build_archive(name, version, **kwargs))

    def publish_dir(self, source: Path) -> Release:
        """Pack and publish a package source directory (e.g. ``index/sources/...``)."""
        data, filename = pack_to_bytes(source)
        out = self.tmp / "dist" / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return self.publish_archive(out)

    def yank(self, name: str, version: str, reason: str) -> None:
        """Yank a published version."""
        repository.yank(
            self.dir, name, version, reason, index_keys=self.index_key,
            timestamp_keys=self.timestamp_key, now=self.now,
        )

    # -- attacks -------------------------------------------------------------------------------

    def read(self, rel: str) -> bytes:
        """Bytes of an index file."""
        return (self.dir / rel).read_bytes()

    def write(self, rel: str, data: bytes) -> None:
        """Replace an index file's bytes (what a compromised mirror does)."""
        (self.dir / rel).write_bytes(data)

    def corrupt(self, rel: str, offset: int = -10) -> None:
        """Flip one byte of an index file."""
        data = bytearray(self.read(rel))
        data[offset] ^= 0x01
        self.write(rel, bytes(data))

    def snapshot(self) -> Path:
        """Copy the whole index as it is now (to serve it again later: rollback)."""
        target = self.tmp / f"snapshot-{len(list(self.tmp.glob('snapshot-*')))}"
        shutil.copytree(self.dir, target)
        return target

    def restore(self, snapshot: Path) -> None:
        """Serve an earlier snapshot's timestamp (the files it points to still exist)."""
        self.write("timestamp.json", (snapshot / "timestamp.json").read_bytes())

    # -- client side -----------------------------------------------------------------------------

    def config(self, packages: Sequence[str] = (), **overrides: Any) -> dict[str, Any]:
        """A ``connectors:`` mapping pointing at this index and the simulator's cache."""
        cfg: dict[str, Any] = {
            "packages": list(packages),
            "index": self.url,
            "trust_root": str(self.trust_root),
            "cache_dir": str(self.cache),
            "retries": 0,
            "timeouts": {"connect": 2, "read": 2},
        }
        cfg.update(overrides)
        return cfg

    def cache_files(self) -> set[str]:
        """Every file under the cache (to prove nothing new became visible)."""
        if not self.cache.exists():
            return set()
        return {
            str(p.relative_to(self.cache))
            for p in self.cache.rglob("*")
            if p.is_file() and not p.name.endswith(".lock")
        }
