"""Reproducible package archives: the same directory always packs to the same bytes."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from modelmesh_connectors._internal.files import write_atomic
from modelmesh_connectors.errors import PackageError
from modelmesh_connectors.package.archive import (
    ArchiveLimits,
    read_directory,
    read_zip,
)
from modelmesh_connectors.package.manifest import MANIFEST_NAME, parse_manifest

__all__ = ["pack_directory", "pack_to_bytes"]

_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest zip timestamp; fixed so builds are reproducible
_FILE_MODE = 0o100644  # regular file, rw-r--r--


def pack_to_bytes(source: Path, *, limits: ArchiveLimits | None = None) -> tuple[bytes, str]:
    """Pack a package directory into zip bytes.

    Entries are sorted, timestamps and permissions fixed, and the result is read back
    through the safe reader, so a packed archive always passes the loader's checks: the
    directory is judged by the same name rules as a zip (docs/FORMAT.md §6), and ``pack``
    never writes what a reader refuses.

    Args:
        source: Directory holding ``modelmesh-package.yaml`` at its root.
        limits: Caps for the read-back check.

    Returns:
        The archive bytes and the default file name ``<name>-<version>.zip``.

    Raises:
        ArchiveError: the directory is not a valid package (one of its subclasses names the
            rule: ``UnsafeNameError``, ``ForbiddenEntryError``, ``NameCollisionError``,
            ``ManifestPlacementError``, ``ArchiveLimitError``).
        ManifestError: the manifest is invalid.
    """
    files = read_directory(source, limits=limits)
    manifest = parse_manifest(files[MANIFEST_NAME], source=f"{source}/{MANIFEST_NAME}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = _FILE_MODE << 16
            archive.writestr(info, files[name], compresslevel=9)
    data = buffer.getvalue()
    read_zip(data, source=f"packed {source}", limits=limits)
    return data, f"{manifest.name}-{manifest.version}.zip"


def pack_directory(source: Path, output: str | os.PathLike[str] | None = None) -> Path:
    """Pack ``source`` and write the archive atomically.

    Args:
        source: The package directory.
        output: Target file, or a directory to put ``<name>-<version>.zip`` in (default:
            the current directory). A directory is an existing one or a path ending in a
            separator (``dist/``), created when missing.

    Returns:
        The written path.

    Raises:
        PackageError: the output cannot be written; see :func:`pack_to_bytes`.
    """
    data, default_name = pack_to_bytes(source)
    target = _output_path(output, default_name)
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise PackageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def _output_path(output: str | os.PathLike[str] | None, default_name: str) -> Path:
    if output is None:
        return Path.cwd() / default_name
    text = os.fspath(output)
    separators = tuple(s for s in (os.sep, os.altsep) if s)
    path = Path(text)
    if not text.endswith(separators) and not path.is_dir():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackageError(f"cannot create output directory {path}: {exc.strerror or exc}") from exc
    return path / default_name
