"""A connector package read from a zip or a directory: files, manifest, digest and checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from packaging.version import InvalidVersion, Version

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import ArchiveLimitError, ManifestError, PackageError
from modelmesh_connectors.package.archive import (
    ArchiveLimits,
    PackageFiles,
    read_directory,
    read_zip,
)
from modelmesh_connectors.package.host import MODELMESH_DISTRIBUTION, modelmesh_version
from modelmesh_connectors.package.manifest import (
    MANIFEST_NAME,
    Manifest,
    parse_manifest,
)

__all__ = [
    "MODELMESH_DISTRIBUTION",
    "Package",
    "check_environment",
    "inspect_archive",
    "modelmesh_version",
    "open_local_package",
    "package_from_bytes",
    "read_local_zip",
    "tree_digest",
]


MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # bytes; a local zip larger than this is refused


class Package(Frozen):
    """A read, structurally checked package (not yet imported).

    Attributes:
        manifest: The validated manifest.
        files: Its files, in memory.
        sha256: Archive sha256 for zips; a tree hash (``tree_digest``) for directories.
        length: Archive length in bytes (sum of file sizes for directories).
        source: Where it came from (path or URL).
        is_archive: True for zips.
    """

    __slots__ = ("files", "is_archive", "length", "manifest", "sha256", "source")

    manifest: Manifest
    files: PackageFiles
    sha256: str
    length: int
    source: str
    is_archive: bool

    def __init__(
        self,
        manifest: Manifest,
        files: PackageFiles,
        sha256: str,
        length: int,
        source: str,
        is_archive: bool,
    ) -> None:
        object.__setattr__(self, "manifest", manifest)
        object.__setattr__(self, "files", files)
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "is_archive", is_archive)


def tree_digest(files: PackageFiles) -> str:
    """A stable sha256 over a directory package's sorted paths and contents."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(f"{len(name)}:{name}:{len(content)}:".encode())
        digest.update(content)
    return digest.hexdigest()


def _manifest(files: PackageFiles) -> Manifest:
    source = f"{files.source}!/{MANIFEST_NAME}"
    manifest = parse_manifest(files[MANIFEST_NAME], source=source)
    for i, conn in enumerate(manifest.connectors):
        # The Node client imports it from these bytes; a missing one fails there too late.
        if conn.node is not None and conn.node.module not in files:
            raise ManifestError(
                f"{source}: field 'connectors[{i}].node.module': {conn.node.module!r} is not a "
                "file of the package"
            )
    return manifest


def package_from_bytes(data: bytes, *, source: str, limits: ArchiveLimits | None = None) -> Package:
    """Build a package from archive bytes (already verified when they came from an index).

    Raises:
        ArchiveError: unsafe or malformed archive.
        ManifestError: invalid manifest.
    """
    files = read_zip(data, source=source, limits=limits)
    return Package(
        _manifest(files), files, hashlib.sha256(data).hexdigest(), len(data), source, True
    )


def open_local_package(path: str | Path, *, limits: ArchiveLimits | None = None) -> Package:
    """Read a package directory or ``.zip`` file from local disk.

    Raises:
        PackageError: the path does not exist or is neither a directory nor a zip.
        ArchiveError: unsafe or malformed content.
        ManifestError: invalid manifest.
    """
    p = Path(path)
    if p.is_dir():
        files = read_directory(p, limits=limits)
        size = sum(len(v) for v in files.values())
        return Package(_manifest(files), files, tree_digest(files), size, str(p), False)
    return package_from_bytes(read_local_zip(p), source=str(p), limits=limits)


def read_local_zip(path: str | Path) -> bytes:
    """Read a local ``.zip`` file's bytes, capped, without parsing them.

    Lets a caller verify the bytes (signature, hash) before the zip reader sees them.

    Raises:
        PackageError: the path does not exist, is not a ``.zip`` or cannot be read.
        ArchiveLimitError: the file is over ``MAX_ARCHIVE_BYTES``.
    """
    p = Path(path)
    if not p.exists():
        raise PackageError(f"{p}: no such file or directory")
    if p.suffix.lower() != ".zip":
        raise PackageError(f"{p}: a package is a directory or a .zip file")
    try:
        with open(p, "rb") as handle:
            data = handle.read(MAX_ARCHIVE_BYTES + 1)
    except OSError as exc:
        raise PackageError(f"{p}: cannot read: {exc}") from exc
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ArchiveLimitError(f"{p}: over the {MAX_ARCHIVE_BYTES}-byte archive cap")
    return data


def inspect_archive(path: str | Path) -> Package:
    """Read and check a package (used by ``inspect`` and ``publish``); imports nothing."""
    return open_local_package(path)


def check_environment(manifest: Manifest, *, modelmesh: str | None = None) -> None:
    """Check ``requires-modelmesh`` and ``dependencies`` against this environment.

    Dependencies are only checked, never installed (installing would run arbitrary setup
    code from another index).

    Args:
        manifest: The package's manifest.
        modelmesh: Override of the ModelMesh version (tests).

    Raises:
        PackageError: naming the unmet requirement and what is installed.
    """
    host = modelmesh or modelmesh_version()
    if manifest.requires_modelmesh:
        from packaging.specifiers import SpecifierSet  # only for a declared range (~2 ms)

        if not SpecifierSet(manifest.requires_modelmesh).contains(host, prereleases=True):
            raise PackageError(
                f"{manifest.name} {manifest.version} requires modelmesh-lite "
                f"{manifest.requires_modelmesh}, but {host} is installed"
            )
    for text in manifest.dependencies:
        # Here, not at the top: importlib.metadata costs ~15 ms and the PEP 508 parser ~14 ms,
        # and most packages list no dependency.
        from importlib.metadata import PackageNotFoundError, version

        from packaging.requirements import Requirement

        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            raise PackageError(
                f"{manifest.name} {manifest.version} depends on {text!r}, which is not installed",
                hint=f"install it yourself (pip install '{text}'); packages never install "
                "dependencies",
            ) from None
        try:
            ok = req.specifier.contains(Version(installed), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            raise PackageError(
                f"{manifest.name} {manifest.version} depends on {text!r}, but {req.name} "
                f"{installed} is installed"
            )
