"""Safe reading of package archives (zip) and package directories into memory.

Every entry is checked before a byte of it is used, and sizes are enforced on the bytes
actually decompressed, never on what a header claims. The result is an in-memory mapping
from normalized relative path to bytes: the importer runs exactly these bytes, so nothing on
disk can change between the check and the import.
"""

from __future__ import annotations

import io
import os
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError
from .manifest import MANIFEST_NAME

__all__ = ["ArchiveLimits", "PackageFiles", "read_directory", "read_zip"]

_CHUNK = 64 * 1024  # bytes read per decompression step
_DRIVE = re.compile(r"^[A-Za-z]:")
_ALLOWED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
# Directories that hold build leftovers, never package code.
_SKIPPED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"}


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied while reading a package.

    Attributes:
        max_entries: Most entries (files and directories) in one package.
        max_file_size: Most bytes one file may decompress to.
        max_total_size: Most bytes all files together may decompress to.
    """

    max_entries: int = 2_000  # entries
    max_file_size: int = 16 * 1024 * 1024  # bytes
    max_total_size: int = 64 * 1024 * 1024  # bytes


class PackageFiles(Mapping[str, bytes]):
    """The verified files of one package: relative POSIX path → bytes."""

    def __init__(self, files: Mapping[str, bytes], *, source: str) -> None:
        self._files = dict(files)
        self.source = source

    def __getitem__(self, key: str) -> bytes:
        return self._files[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def directories(self) -> frozenset[str]:
        """Every directory implied by the file paths (``a/b/c.py`` → ``a``, ``a/b``)."""
        dirs: set[str] = set()
        for path in self._files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return frozenset(dirs)


def _check_name(name: str, *, source: str) -> str:
    """Validate one entry name; return it without a trailing ``/``.

    Stops path traversal and writes outside the package (``..``, absolute, drive-letter and
    UNC paths, backslash separators that Windows treats as ``/``), and names that hide
    characters (NUL, control characters).
    """
    where = f"{source}: entry {name!r}"
    if not name:
        raise ArchiveError(f"{where}: empty entry name")
    if "\\" in name:
        raise ArchiveError(f"{where}: backslash in entry name (path separator on Windows)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ArchiveError(f"{where}: control character in entry name")
    if name.startswith("/"):
        raise ArchiveError(f"{where}: absolute path")
    if _DRIVE.match(name):
        raise ArchiveError(f"{where}: drive-letter path")
    trimmed = name[:-1] if name.endswith("/") else name
    parts = trimmed.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ArchiveError(f"{where}: path segment {part!r} is not allowed (traversal)")
        if unicodedata.normalize("NFC", part) != part:
            raise ArchiveError(f"{where}: name is not in Unicode NFC form")
    return trimmed


def _entry_kind(info: zipfile.ZipInfo, *, source: str) -> str:
    """Return ``"file"`` or ``"dir"``; reject symlinks, devices, FIFOs and the like."""
    mode = info.external_attr >> 16
    # Unix attributes present with a file-type field (many writers set permission bits only).
    if info.create_system == 3 and stat.S_IFMT(mode):
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"{source}: entry {info.filename!r} is a symlink")
        if stat.S_ISDIR(mode):
            return "dir"
        if not stat.S_ISREG(mode):
            raise ArchiveError(f"{source}: entry {info.filename!r} is not a regular file")
    return "dir" if info.filename.endswith("/") else "file"


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, limits: ArchiveLimits, source: str
) -> bytes:
    """Decompress one entry, counting real bytes against the caps (stops zip bombs)."""
    cap = min(limits.max_file_size, budget)
    out = io.BytesIO()
    total = 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                which = "per-file" if cap == limits.max_file_size else "total"
                raise ArchiveError(
                    f"{source}: entry {info.filename!r} decompresses past the {which} cap of "
                    f"{cap} bytes (decompression bomb?)"
                )
            out.write(chunk)
    if total != info.file_size:
        raise ArchiveError(
            f"{source}: entry {info.filename!r} declares {info.file_size} bytes but "
            f"decompresses to {total}"
        )
    return out.getvalue()


def read_zip(data: bytes, *, source: str, limits: ArchiveLimits | None = None) -> PackageFiles:
    """Check every entry of a zip archive, then return its files.

    Args:
        data: The archive's bytes (already hash-verified when they came from an index).
        source: Name used in error messages.
        limits: Caps; safe defaults when omitted.

    Returns:
        The package files.

    Raises:
        ArchiveError: naming the offending entry.
    """
    limits = limits or ArchiveLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        NotImplementedError,
    ) as exc:
        raise ArchiveError(f"{source}: not a valid zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise ArchiveError(
                f"{source}: {len(infos)} entries, over the cap of {limits.max_entries}"
            )
        names: dict[str, str] = {}
        folded: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for info in infos:
            name = _check_name(info.filename, source=source)
            kind = _entry_kind(info, source=source)
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{source}: entry {info.filename!r} is encrypted")
            if kind == "file" and info.compress_type not in _ALLOWED_METHODS:
                raise ArchiveError(
                    f"{source}: entry {info.filename!r} uses compression method "
                    f"{info.compress_type}; only stored and deflate are accepted"
                )
            if name in names:
                raise ArchiveError(f"{source}: duplicate entry {info.filename!r}")
            # Stops two entries that are one file on case-insensitive file systems.
            key = name.casefold()
            if key in folded:
                raise ArchiveError(
                    f"{source}: entries {folded[key]!r} and {info.filename!r} collide under "
                    "case-folding"
                )
            names[name] = info.filename
            folded[key] = info.filename
            kinds[name] = kind
        _check_file_dir_clash(kinds, source)
        _check_manifest_place(kinds, source)
        files: dict[str, bytes] = {}
        budget = limits.max_total_size
        for info in infos:
            name = _check_name(info.filename, source=source)
            if kinds[name] != "file":
                continue
            try:
                content = _read_entry(archive, info, budget, limits, source)
            except (
                zipfile.BadZipFile,
                zlib.error,
                OSError,
                EOFError,
                ValueError,
                RuntimeError,
            ) as exc:
                # zlib errors, CRC mismatch, local header that disagrees with the directory
                raise ArchiveError(
                    f"{source}: entry {info.filename!r} cannot be read: {exc}"
                ) from exc
            budget -= len(content)
            files[name] = content
    return PackageFiles(files, source=source)


def _check_file_dir_clash(kinds: Mapping[str, str], source: str) -> None:
    """Reject a name that is a file and also a parent directory of another entry."""
    for name in kinds:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if kinds.get(parent) == "file":
                raise ArchiveError(
                    f"{source}: entry {parent!r} is a file but {name!r} uses it as a directory"
                )


def _check_manifest_place(kinds: Mapping[str, str], source: str) -> None:
    if kinds.get(MANIFEST_NAME) == "file":
        return
    misplaced = sorted(n for n in kinds if n.rsplit("/", 1)[-1] == MANIFEST_NAME)
    if misplaced:
        raise ArchiveError(
            f"{source}: {MANIFEST_NAME} found at {misplaced[0]!r} but must be at the root",
            hint="run 'modelmesh-connectors pack DIR' on the directory that holds the manifest",
        )
    raise ArchiveError(f"{source}: no {MANIFEST_NAME} at the archive root")


def read_directory(path: Path, *, limits: ArchiveLimits | None = None) -> PackageFiles:
    """Read a package directory into memory with the same rules as a zip.

    Symlinks and special files are rejected rather than followed (a link could point the
    loader at code outside the package). ``__pycache__`` and ``*.pyc`` are skipped.

    Raises:
        ArchiveError: naming the offending path.
    """
    limits = limits or ArchiveLimits()
    source = str(path)
    if not path.is_dir():
        raise ArchiveError(f"{source}: not a directory")
    files: dict[str, bytes] = {}
    kinds: dict[str, str] = {}
    total = 0
    stack = [(path, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise ArchiveError(f"{source}: cannot list {directory}: {exc}") from exc
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_symlink():
                raise ArchiveError(f"{source}: {rel!r} is a symlink")
            if entry.is_dir(follow_symlinks=False):
                if entry.name in _SKIPPED_DIRS:
                    continue
                kinds[rel] = "dir"
                stack.append((Path(entry.path), rel + "/"))
                continue
            if not entry.is_file(follow_symlinks=False):
                raise ArchiveError(f"{source}: {rel!r} is not a regular file")
            if entry.name.endswith((".pyc", ".pyo")):
                continue
            _check_name(rel, source=source)
            if len(kinds) >= limits.max_entries:
                raise ArchiveError(f"{source}: more than {limits.max_entries} entries")
            try:
                with open(entry.path, "rb") as handle:
                    content = handle.read(limits.max_file_size + 1)
            except OSError as exc:
                raise ArchiveError(f"{source}: cannot read {rel!r}: {exc}") from exc
            if len(content) > limits.max_file_size:
                raise ArchiveError(
                    f"{source}: {rel!r} is over the per-file cap of {limits.max_file_size} bytes"
                )
            total += len(content)
            if total > limits.max_total_size:
                raise ArchiveError(
                    f"{source}: files total over the cap of {limits.max_total_size} bytes"
                )
            kinds[rel] = "file"
            files[rel] = content
    _check_manifest_place(kinds, source)
    return PackageFiles(files, source=source)
