"""The python-tuf side of the benchmark: a repository built with tuf's Metadata API, and the
ngclient calls a TUF user makes.

The repository is the plain, recommended TUF layout: root, targets, snapshot and timestamp,
one Ed25519 key per role (``securesystemslib`` ``CryptoSigner``), consistent snapshots
(``<version>.<role>.json`` and ``<sha256>.<file>`` target names), every target listed with its
length and sha256. Target files are hard links to the very archives our index publishes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# These names are re-exported without __all__, which mypy --strict flags; they are the
# documented import paths (python-tuf's own examples use them).
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.ngclient import Updater  # type: ignore[attr-defined]

from bench_packages import BenchArchive

__all__ = [
    "TufRepo",
    "build_tuf_repository",
    "tuf_cold",
    "tuf_install_one",
    "tuf_warm_online",
]

_EXPIRY = timedelta(days=365)  # lifetime of every role's metadata in the benchmark repository


@dataclass(frozen=True)
class TufRepo:
    """Where a client finds the TUF repository.

    Attributes:
        directory: Repository root (``metadata/`` and ``targets/`` below it).
        root_bytes: ``1.root.json``: the client's trust anchor (``bootstrap``).
        metadata_url: Base URL of ``metadata/`` (ends in ``/``).
        targets_url: Base URL of ``targets/`` (ends in ``/``).
    """

    directory: Path
    root_bytes: bytes
    metadata_url: str
    targets_url: str

    def with_base(self, base_url: str, prefix: str) -> TufRepo:
        """The same repository served at ``base_url + prefix``."""
        return TufRepo(
            self.directory,
            self.root_bytes,
            f"{base_url}{prefix}metadata/",
            f"{base_url}{prefix}targets/",
        )


def target_path(archive: BenchArchive) -> str:
    """The TUF target path of an archive (the file name: ``<name>-<version>.zip``)."""
    return archive.path.name


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build_tuf_repository(directory: Path, archives: Sequence[BenchArchive]) -> TufRepo:
    """Write a signed TUF repository listing ``archives`` as targets.

    Args:
        directory: Empty or missing directory for the repository.
        archives: The archives to publish (their known sha256 and length are used).

    Returns:
        The repository (URLs are filled in by :meth:`TufRepo.with_base`).
    """
    expires = datetime.now(UTC).replace(microsecond=0) + _EXPIRY
    signers = {
        role: CryptoSigner.generate_ed25519()
        for role in ("root", "targets", "snapshot", "timestamp")
    }
    root = Root(expires=expires, consistent_snapshot=True)
    for role, signer in signers.items():
        root.add_key(signer.public_key, role)
    targets = Targets(expires=expires)
    targets_dir = directory / "targets"
    for archive in archives:
        info = TargetFile(archive.length, {"sha256": archive.sha256}, target_path(archive))
        targets.targets[info.path] = info
        _link_or_copy(archive.path, targets_dir / f"{archive.sha256}.{info.path}")
    snapshot = Snapshot(expires=expires)
    snapshot.meta["targets.json"] = MetaFile(version=targets.version)
    timestamp = Timestamp(expires=expires)
    timestamp.snapshot_meta = MetaFile(version=snapshot.version)

    metadata_dir = directory / "metadata"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    root_md = Metadata(root)
    root_md.sign(signers["root"])
    root_bytes = root_md.to_bytes()
    (metadata_dir / f"{root.version}.root.json").write_bytes(root_bytes)
    targets_md = Metadata(targets)
    targets_md.sign(signers["targets"])
    (metadata_dir / f"{targets.version}.targets.json").write_bytes(targets_md.to_bytes())
    snapshot_md = Metadata(snapshot)
    snapshot_md.sign(signers["snapshot"])
    (metadata_dir / f"{snapshot.version}.snapshot.json").write_bytes(snapshot_md.to_bytes())
    timestamp_md = Metadata(timestamp)
    timestamp_md.sign(signers["timestamp"])
    (metadata_dir / "timestamp.json").write_bytes(timestamp_md.to_bytes())
    return TufRepo(directory, root_bytes, "", "")


def _updater(repo: TufRepo, cache: Path, *, bootstrap: bytes | None) -> Updater:
    metadata_dir = cache / "metadata"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    return Updater(
        str(metadata_dir),
        repo.metadata_url,
        str(cache / "targets"),
        repo.targets_url,
        bootstrap=bootstrap,
    )


def tuf_cold(repo: TufRepo, cache: Path, archives: Sequence[BenchArchive]) -> None:
    """A first run: refresh, then resolve, download and verify every archive.

    Args:
        repo: The repository.
        cache: An empty directory for the client's metadata and targets.
        archives: What to install.

    Raises:
        RuntimeError: a target is missing from the repository.
    """
    updater = _updater(repo, cache, bootstrap=repo.root_bytes)
    updater.refresh()
    for archive in archives:
        info = updater.get_targetinfo(target_path(archive))
        if info is None:
            raise RuntimeError(f"tuf: no target {target_path(archive)}")
        if updater.find_cached_target(info) is None:
            updater.download_target(info)


def tuf_warm_online(repo: TufRepo, cache: Path, archives: Sequence[BenchArchive]) -> None:
    """A later run with everything cached: new Updater (trusting its cached root), refresh,
    then check every cached target's length and hash.

    Raises:
        RuntimeError: a target is missing or not cached (the warm-up did not run).
    """
    updater = _updater(repo, cache, bootstrap=None)
    updater.refresh()
    for archive in archives:
        info = updater.get_targetinfo(target_path(archive))
        if info is None:
            raise RuntimeError(f"tuf: no target {target_path(archive)}")
        if updater.find_cached_target(info) is None:
            raise RuntimeError(f"tuf: {info.path} is not cached; the warm run would download")


def tuf_install_one(repo: TufRepo, cache: Path, archive: BenchArchive) -> None:
    """Cold install of one archive (the 200 MiB throughput scenario)."""
    tuf_cold(repo, cache, [archive])
