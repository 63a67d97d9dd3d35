"""Helpers for the publisher's storage, race, crash and gc tests: keys, archives, backends."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelmesh_connectors.index.envelope import Envelope
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.package.pack import pack_to_bytes
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.keyfiles import write_signing_key
from modelmesh_connectors.publish.local_storage import LocalStorage
from modelmesh_connectors.publish.s3_storage import S3Storage
from modelmesh_connectors.publish.storage import Storage
from tests.support.packages import make_package
from tests.support.s3 import MotoServer

__all__ = [
    "INDEX_FILE",
    "Backend",
    "Keys",
    "build_archives",
    "index_files_only",
    "make_keys",
]

DAY = timedelta(days=1)
# Every file a served index may hold (FORMAT.md §1): nothing else may ever appear in it.
INDEX_FILE = re.compile(
    r"timestamp\.json"
    r"|root/[1-9][0-9]*\.json"
    r"|meta/[0-9a-f]{64}\.json"
    r"|history/[1-9][0-9]*-[0-9a-f]{64}\.json"
    r"|archives/([a-z0-9-]+)/\1-[0-9A-Za-z.+!_-]+\.zip(\.sig)?"
)


@dataclass
class Keys:
    """Throwaway keys of one test index, and its signed root version 1."""

    root: SigningKey
    index: SigningKey
    timestamp: SigningKey
    root_bytes: bytes
    now: datetime

    def signers(self) -> dict[str, object]:
        return {"index_keys": self.index, "timestamp_keys": self.timestamp}

    def write(self, directory: Path) -> dict[str, Path]:
        """Write the private keys as PEM files (for CLI and worker processes)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for role in ("index", "timestamp"):
            path = directory / f"{role}.pem"
            if not path.exists():
                write_signing_key(path, getattr(self, role), None)
            paths[role] = path
        root = directory / "root.json"
        root.write_bytes(self.root_bytes)
        paths["root"] = root
        return paths


def make_keys(now: datetime | None = None) -> Keys:
    now = now or datetime.now(UTC).replace(microsecond=0)
    root, index, timestamp = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    staged: Envelope = repository.root_init(
        root_keys=[root.public],
        root_threshold=1,
        index_keys=[index.public],
        index_threshold=1,
        timestamp_keys=[timestamp.public],
        timestamp_threshold=1,
        expires=now + 365 * DAY,
    )
    return Keys(root, index, timestamp, staged.with_signature(root).to_bytes(), now)


def build_archives(directory: Path, names: Sequence[tuple[str, str]]) -> list[Path]:
    """Pack one small package per ``(name, version)`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, version in names:
        namespace = name.replace("-", "")
        source = make_package(
            directory / "src",
            name,
            version,
            connectors=[(f"{namespace}.sink.v1", "observability", f"{name.replace('-', '_')}.sink:Sink")],
        )
        data, filename = pack_to_bytes(source)
        path = directory / filename
        path.write_bytes(data)
        out.append(path)
    return out


def index_files_only(keys: Sequence[str]) -> list[str]:
    """The keys that are not index files (must be empty)."""
    return [k for k in keys if not INDEX_FILE.fullmatch(k)]


@dataclass
class Backend:
    """One index location, local or S3, with ways to list what it holds."""

    kind: str
    location: str
    server: MotoServer | None = None
    bucket: str = ""
    prefix: str = ""
    directory: Path | None = None
    _storages: list[Storage] = field(default_factory=list)

    def storage(self) -> Storage:
        if self.kind == "local":
            assert self.directory is not None
            return LocalStorage(self.directory)
        assert self.server is not None
        return S3Storage(self.bucket, self.prefix, client=self.server.client())

    def files(self) -> list[str]:
        """Every file in the served tree (index-relative)."""
        if self.kind == "local":
            assert self.directory is not None
            return sorted(p.relative_to(self.directory).as_posix() for p in self.directory.rglob("*") if p.is_file())
        assert self.server is not None
        return [k[len(self.prefix):] for k in self.server.keys(self.bucket) if k.startswith(self.prefix)]

    def all_bucket_keys(self) -> list[str]:
        assert self.server is not None
        return self.server.keys(self.bucket)


def backends(tmp: Path, server: MotoServer | None) -> Iterator[Backend]:
    directory = tmp / "index"
    directory.mkdir()
    yield Backend("local", str(directory), directory=directory)
    if server is not None:
        bucket = server.new_bucket()
        yield Backend("s3", f"s3://{bucket}/idx/", server=server, bucket=bucket, prefix="idx/")
