"""Safe reading of package archives (zip) and package directories into memory.

One signed archive must mean the same files to every reader: this one, Python's ``zipfile``
on any interpreter version, ``unzip``, 7-Zip, Windows Explorer, macOS Archive Utility, and
the TypeScript client. So the reader does not ask a zip library what an entry is called; it
parses the zip structure itself, judges the raw name bytes (central directory *and* local
header), and refuses every feature that lets two readers disagree. The rules are numbered in
``docs/FORMAT.md`` §6 ("Package archives"); each check below names its rule (``R<n>``).

Every entry is checked before a byte of it is used, and sizes are enforced on the bytes
actually decompressed, never on what a header claims. The result is an in-memory mapping
from normalized relative path to bytes: the importer runs exactly these bytes, so nothing on
disk can change between the check and the import.

One module, over 600 lines, on purpose: rules R1–R14 are checks of one zip structure
(central directory, local headers, data) that need each other's parsed state; one file keeps
every rule of FORMAT.md §6 findable in one place.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import (
    ArchiveError,
    ArchiveFormatError,
    ArchiveLimitError,
    ForbiddenEntryError,
    ManifestPlacementError,
    NameCollisionError,
    UnsafeNameError,
)
from modelmesh_connectors.package.manifest import MANIFEST_NAME

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PART_BYTES",
    "ArchiveLimits",
    "PackageFiles",
    "check_entry_name",
    "read_directory",
    "read_zip",
]

MAX_NAME_BYTES = 1024  # bytes of UTF-8 in one entry name (R8)
MAX_PART_BYTES = 255  # bytes of UTF-8 in one path part: the common file-system limit (R8)

# -- zip structure ------------------------------------------------------------------------

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<4sBBHHHHHIIIHHHHHII")  # central directory header, 46 bytes
_END = struct.Struct("<4sHHHHIIH")  # end of central directory record, 22 bytes
_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_MAX_COMMENT = 0xFFFF

_STORED, _DEFLATED = 0, 8
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_HEADERS = 0x2000
# Bits 1 and 2 only describe the deflate level; bit 11 says the name is UTF-8 (R2).
_ALLOWED_FLAGS = 0x0002 | 0x0004 | _FLAG_UTF8
_DOS_DIRECTORY = 0x10  # MS-DOS attribute bit in the low byte of external_attr

# Extra fields that carry only timestamps, ownership or alignment, which no reader turns
# into another name, another file type or other bytes (R5). Everything else is refused.
_ACCEPTED_EXTRAS = {
    0x000A: "NTFS timestamps",
    0x5455: "extended timestamp",
    0x5855: "Info-ZIP Unix (original)",
    0x7855: "Info-ZIP Unix UID/GID",
    0x7875: "Info-ZIP Unix UID/GID (new)",
    0xCAFE: "JAR marker",
    0xD935: "Android alignment",
}
_REFUSED_EXTRAS = {
    # Python 3.12+ zipfile, 7-Zip and others replace the entry name with this one; 3.11
    # and unzip do not: one archive, two file names.
    0x7075: "Info-ZIP Unicode Path (0x7075): some readers take the name from it, others not",
    0x6375: "Info-ZIP Unicode Comment (0x6375): a second text that readers may show",
    0x0001: "zip64 (0x0001): no package within the caps needs zip64",
    0x756E: "ASi Unix (0x756e): may carry a symlink target and a file mode",
}

# -- entry names --------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")
_WINDOWS_RESERVED_CHARS = '"*:<>?|'  # plus backslash, checked first for a clearer message
# Control, format (bidi overrides, zero-width), line/paragraph separators, private use,
# surrogates, unassigned; spaces other than U+0020 are refused separately (R3).
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}
_CATEGORY_NAMES = {
    "Cc": "control",
    "Cf": "format (invisible or bidi)",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Zs": "space other than U+0020",
    "Co": "private-use",
    "Cs": "surrogate (not UTF-8)",
    "Cn": "unassigned",
}
_DIGITS = "0123456789\u00b9\u00b2\u00b3"  # Windows also reserves COM¹…LPT³
_DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{d}" for d in _DIGITS}
    | {f"lpt{d}" for d in _DIGITS}
)
_SHORT_NAME = re.compile(r"~[0-9]+$")  # Windows 8.3 alias such as GIT~1 (R7)
# Version-control metadata: a VCS run in (or over) an unpacked package would obey it (R10).
_VCS_NAMES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "_darcs",
        ".gitattributes",
        ".gitmodules",
        ".hgsub",
        ".hgsubstate",
    }
)
_BYTECODE_DIRS = frozenset({"__pycache__"})
# Files Python would run instead of (or before) the reviewed source when unpacked (R10).
# A Node client shares the archive, so its native addons (.node) count too, as do
# executables and versioned shared objects (libx.so.1).
_CODE_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib", ".sl", ".pth", ".node", ".exe")
_VERSIONED_SO = re.compile(r".*\.so\.[0-9.]+")
# Never read from a package *directory* (they are the checkout's or the tools', not the
# package's); everything else in the directory is judged by the zip rules.
_SKIPPED_IN_DIRECTORY = (
    _VCS_NAMES | _BYTECODE_DIRS | {".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_SKIPPED_SUFFIXES_IN_DIRECTORY = (".pyc", ".pyo")


class ArchiveLimits(Frozen):
    """Caps applied while reading a package.

    Attributes:
        max_entries: Most entries (files and directories) in one package.
        max_file_size: Most bytes one file may decompress to.
        max_total_size: Most bytes all files together may decompress to.
    """

    __slots__ = ("max_entries", "max_file_size", "max_total_size")

    max_entries: int  # entries
    max_file_size: int  # bytes
    max_total_size: int  # bytes

    def __init__(
        self,
        max_entries: int = 2_000,
        max_file_size: int = 16 * 1024 * 1024,
        max_total_size: int = 64 * 1024 * 1024,
    ) -> None:
        object.__setattr__(self, "max_entries", max_entries)
        object.__setattr__(self, "max_file_size", max_file_size)
        object.__setattr__(self, "max_total_size", max_total_size)


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

    def __contains__(self, key: object) -> bool:
        # Mapping's default answers "no" by catching a KeyError from __getitem__; the
        # importer asks about every module name it resolves.
        return key in self._files

    def directories(self) -> frozenset[str]:
        """Every directory implied by the file paths (``a/b/c.py`` → ``a``, ``a/b``)."""
        dirs: set[str] = set()
        for path in self._files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        return frozenset(dirs)


# -- names --------------------------------------------------------------------------------


def _show(name: str | bytes) -> str:
    """A name for an error message: quoted, every non-ASCII or unprintable byte escaped.

    Escaping everything outside printable ASCII means a hostile name can neither move the
    terminal cursor, nor reorder the message with bidi characters, nor hide a character.
    """
    limit = 160
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            shown = repr(name[:limit])  # not text: show the bytes, escaped
            return shown + (f"... ({len(name)} bytes)" if len(name) > limit else "")
    shown = ascii(name[:limit])
    return shown + (f"... ({len(name)} characters)" if len(name) > limit else "")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _char_problem(char: str) -> str | None:
    """Why one character may not appear in a name (R3), or None."""
    if char == " " or (char.isascii() and char.isprintable()):
        return None
    current = unicodedata.category(char)
    if current in _CATEGORY_NAMES:
        return f"{_CATEGORY_NAMES[current]} character U+{ord(char):04X}"
    pinned = unicodedata.ucd_3_2_0.category(char)
    if pinned == "Cn":
        # Pinned so that every interpreter (whatever its Unicode version) judges, folds
        # and normalizes the name alike.
        return (
            f"character U+{ord(char):04X} is not assigned in Unicode 3.2 (readers with "
            "other Unicode versions could judge the name differently)"
        )
    if pinned in _CATEGORY_NAMES:
        return f"{_CATEGORY_NAMES[pinned]} character U+{ord(char):04X} (in Unicode 3.2)"
    return None


def _part_problem(part: str) -> str | None:
    """Why one path part is unsafe on some platform (R6, R7), or None."""
    if part in ("", ".", ".."):
        return f"path segment {part!r} is not allowed (traversal)"
    for char in _WINDOWS_RESERVED_CHARS:
        if char in part:
            return f"character {char!r} is not allowed in file names on Windows"
    if "/" in part or "\\" in part:
        return "it contains a path separator"
    if part.endswith((".", " ")):
        return "a path part ends with '.' or a space (Windows drops it: two names, one file)"
    stem = part.split(".", 1)[0].rstrip(" ").casefold()
    if stem in _DEVICE_NAMES:
        return f"{_show(stem.upper())} is a reserved device name on Windows"
    if _SHORT_NAME.search(part.split(".", 1)[0]):
        return "a path part looks like a Windows 8.3 short name (it may alias another file)"
    return None


def _forbidden_part(part: str, *, last: bool) -> str | None:
    """Why a part names something no package may hold (R10), or None."""
    for key in {part.casefold(), unicodedata.normalize("NFKC", part).casefold()}:
        if key in _VCS_NAMES:
            return f"{key!r} is version-control metadata, which a VCS would obey"
        if key in _BYTECODE_DIRS:
            return f"{key!r} holds bytecode that would run instead of the reviewed source"
        if last and (key.endswith(_CODE_SUFFIXES) or _VERSIONED_SO.fullmatch(key)):
            return (
                "compiled or native code (.pyc, .pyo, .so, .so.N, .pyd, .dll, .dylib, .sl, "
                ".node, .exe) or a .pth start-up file would run instead of the reviewed source"
            )
    return None


def check_entry_name(name: str, *, source: str, is_dir: bool = False) -> str:
    """Check one entry name against the name rules; return it without a trailing ``/``.

    The same rules apply to zip entries, package directories and ``pack``. They stop path
    traversal, names that mean another file (or no file) on some platform or reader, names
    that hide characters, and entries that would run or be obeyed instead of the reviewed
    source.

    Args:
        name: The decoded name, ``/``-separated; a directory entry may end with ``/``.
        source: Name of the package in error messages.
        is_dir: The entry is a directory (its last part is not judged as a file).

    Returns:
        The name without a trailing ``/``.

    Raises:
        UnsafeNameError: R3-R8 (characters, separators, Windows rules, lengths).
        ForbiddenEntryError: R10 (VCS metadata, bytecode, native modules).
        ManifestPlacementError: R11 (a manifest, or a case variant, outside the root).
    """

    def unsafe(problem: str) -> UnsafeNameError:
        return UnsafeNameError(f"{source}: entry {_show(name)}: {problem}")

    if not name or name == "/":
        raise unsafe("empty entry name")
    if _utf8_len(name) > MAX_NAME_BYTES:
        raise unsafe(f"name is {_utf8_len(name)} bytes long, over the cap of {MAX_NAME_BYTES}")
    if "\x00" in name:
        raise unsafe("NUL character in entry name (some readers cut the name there)")
    if not (name.isascii() and name.isprintable()):  # printable ASCII: no char to refuse
        for char in name:
            if problem := _char_problem(char):
                raise unsafe(f"{problem} in entry name")
    if "\\" in name:
        raise unsafe("backslash in entry name (path separator on Windows)")
    if name.startswith("/"):
        raise unsafe("absolute path")
    if _DRIVE.match(name):
        raise unsafe("drive-letter path")
    trimmed = name[:-1] if name.endswith("/") else name
    parts = trimmed.split("/")
    for part in parts:
        if problem := _part_problem(part):
            raise unsafe(problem)
        for form in (unicodedata.normalize, unicodedata.ucd_3_2_0.normalize):
            if form("NFC", part) != part:
                raise unsafe("name is not in Unicode NFC form")
        # Windows "best fit" code-page conversion and NFKC both turn fullwidth ．／＼ and
        # superscript digits into ASCII: judge that spelling too.
        compat = unicodedata.normalize("NFKC", part)
        if compat != part and (problem := _part_problem(compat)):
            raise unsafe(f"its compatibility form {_show(compat)} is unsafe: {problem}")
        if _utf8_len(part) > MAX_PART_BYTES:
            raise unsafe(f"a path part is {_utf8_len(part)} bytes long, over {MAX_PART_BYTES}")
    for i, part in enumerate(parts):
        if problem := _forbidden_part(part, last=i == len(parts) - 1 and not is_dir):
            raise ForbiddenEntryError(f"{source}: entry {_show(name)}: {problem}")
    if trimmed != MANIFEST_NAME and any(part.casefold() == MANIFEST_NAME for part in parts):
        raise ManifestPlacementError(
            f"{source}: {MANIFEST_NAME} found at {_show(trimmed)} but must be at the root, "
            "exactly once and spelled exactly so",
            hint="run 'modelmesh-connectors pack DIR' on the directory that holds the manifest",
        )
    return trimmed


def _fold(name: str) -> str:
    """Canonical caseless form: two names with one fold are one file on some file system."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _check_tree(entries: Iterable[tuple[str, bool]], source: str) -> None:
    """Refuse duplicates, case-fold/normalization collisions and file/directory clashes (R9).

    Args:
        entries: ``(name without trailing '/', is_dir)`` in archive order; every directory
            a name implies is checked too, so ``pkg/a.py`` and ``PKG/b.py`` collide.
        source: Name of the package in error messages.

    Raises:
        NameCollisionError: naming both entries.
    """
    nodes: dict[str, tuple[str, bool, str]] = {}  # fold → (name, is_dir, entry that made it)
    explicit: set[tuple[str, bool]] = set()

    def add(name: str, is_dir: bool, via: str) -> None:
        key = _fold(name)
        seen = nodes.get(key)
        if seen is None:
            nodes[key] = (name, is_dir, via)
            return
        seen_name, seen_dir, seen_via = seen
        if seen_name != name:
            raise NameCollisionError(
                f"{source}: entries {_show(seen_via)} and {_show(via)} collide under "
                "case-folding (one file on case-insensitive or normalizing file systems)"
            )
        if seen_dir and is_dir:
            return
        if not seen_dir and is_dir:
            raise NameCollisionError(
                f"{source}: entry {_show(name)} is a file but {_show(via)} uses it as a directory"
            )
        if seen_dir and not is_dir:
            raise NameCollisionError(
                f"{source}: entry {_show(name)} is a file but {_show(seen_via)} uses it as a "
                "directory"
            )
        raise NameCollisionError(f"{source}: duplicate entry {_show(name)}")

    for name, is_dir in entries:
        if (name, is_dir) in explicit:
            raise NameCollisionError(f"{source}: duplicate entry {_show(name)}")
        explicit.add((name, is_dir))
        parts = name.split("/")
        for i in range(1, len(parts)):
            add("/".join(parts[:i]), True, name)
        add(name, is_dir, name)


def _check_manifest_place(entries: Iterable[tuple[str, bool]], source: str) -> None:
    """Exactly one manifest, a file at the root (R11); variants were refused per name."""
    if (MANIFEST_NAME, False) in set(entries):
        return
    raise ManifestPlacementError(f"{source}: no {MANIFEST_NAME} at the archive root")


# -- zip ----------------------------------------------------------------------------------


class _Entry(Frozen):
    """One central directory record, checked; ``name`` is decoded and judged."""

    __slots__ = (
        "compressed_size",
        "crc",
        "flags",
        "is_dir",
        "method",
        "name",
        "offset",
        "raw_name",
        "size",
    )

    raw_name: bytes
    name: str
    is_dir: bool
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int

    def __init__(
        self,
        raw_name: bytes,
        name: str,
        is_dir: bool,
        flags: int,
        method: int,
        crc: int,
        compressed_size: int,
        size: int,
        offset: int,
    ) -> None:
        object.__setattr__(self, "raw_name", raw_name)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "is_dir", is_dir)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "crc", crc)
        object.__setattr__(self, "compressed_size", compressed_size)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "offset", offset)


def _format(source: str, problem: str) -> ArchiveFormatError:
    return ArchiveFormatError(f"{source}: {problem}")


def _entry_format(source: str, raw: bytes, problem: str) -> ArchiveFormatError:
    return ArchiveFormatError(f"{source}: entry {_show(raw)}: {problem}")


def _find_end(data: bytes, source: str) -> tuple[int, int, int]:
    """Locate the end record; return (entry count, directory size, directory offset).

    Refuses trailing data and archive comments (R12): a reader that scans from the end and
    one that scans from the start could otherwise find different archives in one file.
    """
    at = len(data) - _END.size
    if at < 0 or data[at : at + 4] != _END_SIG:
        found = data.rfind(_END_SIG, max(0, len(data) - _END.size - _MAX_COMMENT))
        if found == -1 or found + _END.size > len(data):
            raise _format(source, "not a valid zip archive: no end-of-central-directory record")
        raise _format(
            source,
            f"{len(data) - found - _END.size} bytes of archive comment or trailing data after "
            "the end of the central directory",
        )
    _, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = _END.unpack_from(data, at)
    if comment:
        raise _format(source, f"end record claims a {comment}-byte comment past the end of file")
    if 0xFFFF in (on_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _format(source, "zip64 archives are not accepted (no package needs one)")
    if disk or cd_disk or on_disk != total:
        raise _format(source, "multi-disk (spanned) archives are not accepted")
    if cd_offset + cd_size != at:
        zip64 = at >= 20 and data[at - 20 : at - 16] == _ZIP64_LOCATOR_SIG
        raise _format(
            source,
            "zip64 archives are not accepted (no package needs one)"
            if zip64
            else f"the central directory ({cd_size} bytes at offset {cd_offset}) does not end "
            f"where the end record starts (offset {at})",
        )
    return total, cd_size, cd_offset


def _check_extra(extra: bytes, source: str, raw: bytes, where: str) -> None:
    """Accept only well-formed extra fields from the harmless list (R5)."""
    seen: set[int] = set()
    at = 0
    while at < len(extra):
        if at + 4 > len(extra):
            raise _entry_format(source, raw, f"malformed extra field in the {where}")
        header_id, size = struct.unpack_from("<HH", extra, at)
        if at + 4 + size > len(extra):
            raise _entry_format(source, raw, f"malformed extra field in the {where}")
        if header_id in seen:
            raise _entry_format(
                source, raw, f"extra field 0x{header_id:04x} appears twice in the {where}"
            )
        seen.add(header_id)
        if header_id == 0x7075:
            raise UnsafeNameError(
                f"{source}: entry {_show(raw)}: {_REFUSED_EXTRAS[header_id]} (in the {where})"
            )
        if header_id in _REFUSED_EXTRAS:
            raise _entry_format(source, raw, f"{_REFUSED_EXTRAS[header_id]} (in the {where})")
        if header_id not in _ACCEPTED_EXTRAS:
            raise _entry_format(
                source, raw, f"unknown extra field 0x{header_id:04x} in the {where}"
            )
        at += 4 + size


def _check_flags(flags: int, source: str, raw: bytes) -> None:
    """R4: no encryption, no data descriptor, no masked headers, no unknown bits."""
    if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise _entry_format(source, raw, "encrypted entries are not accepted")
    if flags & _FLAG_DATA_DESCRIPTOR:
        raise _entry_format(
            source,
            raw,
            "uses a data descriptor (sizes after the data: readers that trust the local "
            "header and readers that trust the directory see different bytes)",
        )
    if flags & _FLAG_MASKED_HEADERS:
        raise _entry_format(source, raw, "masked local headers are not accepted")
    if flags & ~_ALLOWED_FLAGS:
        raise _entry_format(source, raw, f"unknown general purpose flag bits 0x{flags:04x}")


def _decode_name(raw: bytes, flags: int, source: str) -> str:
    """Decode the raw name bytes exactly (R1, R2); never a decoder's cleaned-up version."""
    if b"\x00" in raw:
        raise UnsafeNameError(
            f"{source}: entry {_show(raw)}: NUL byte in the name (zipfile keeps only the part "
            "before it)"
        )
    if flags & _FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeNameError(
                f"{source}: entry {_show(raw)}: flagged UTF-8 but is not valid UTF-8"
            ) from exc
    if not raw.isascii():
        raise UnsafeNameError(
            f"{source}: entry {_show(raw)}: non-ASCII name without the UTF-8 flag (cp437 to "
            "some readers, UTF-8 or the local code page to others)"
        )
    return raw.decode("ascii")


def _entry_kind(raw: bytes, external_attr: int, source: str) -> bool:
    """Return True for a directory entry; refuse links, devices and kind conflicts (R4)."""
    is_dir = raw.endswith(b"/")
    mode = external_attr >> 16
    kind = stat.S_IFMT(mode)
    # Judged whatever the "made by" system says: several unpackers read a Unix mode from
    # archives made by Unix-like systems other than 3 (OS X, BeOS, QDOS, ...).
    if kind == stat.S_IFLNK:
        raise ForbiddenEntryError(f"{source}: entry {_show(raw)} is a symlink")
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise ForbiddenEntryError(
            f"{source}: entry {_show(raw)} is not a regular file (mode 0o{mode:06o})"
        )
    if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        raise ForbiddenEntryError(
            f"{source}: entry {_show(raw)} carries setuid, setgid or sticky bits"
        )
    if kind == stat.S_IFDIR and not is_dir:
        raise _entry_format(
            source, raw, "Unix mode says directory but the name has no trailing '/'"
        )
    if kind == stat.S_IFREG and is_dir:
        raise _entry_format(source, raw, "Unix mode says file but the name ends with '/'")
    if external_attr & _DOS_DIRECTORY and not is_dir:
        raise _entry_format(
            source, raw, "MS-DOS directory attribute on a name without a trailing '/'"
        )
    return is_dir


def _read_central(
    data: bytes, count: int, cd_size: int, cd_offset: int, limits: ArchiveLimits, source: str
) -> list[_Entry]:
    """Parse and check every central directory record (R1-R5, R12)."""
    if count > limits.max_entries:
        raise ArchiveLimitError(f"{source}: {count} entries, over the cap of {limits.max_entries}")
    end = cd_offset + cd_size
    at = cd_offset
    entries: list[_Entry] = []
    while at < end:
        if at + _CENTRAL.size > end or data[at : at + 4] != _CENTRAL_SIG:
            raise _format(source, f"malformed central directory at offset {at}")
        (
            _,
            _version,
            _system,
            _needed,
            flags,
            method,
            _time,
            _date,
            crc,
            compressed_size,
            size,
            name_len,
            extra_len,
            comment_len,
            disk,
            _internal,
            external,
            offset,
        ) = _CENTRAL.unpack_from(data, at)
        name_at = at + _CENTRAL.size
        extra_at = name_at + name_len
        after = extra_at + extra_len + comment_len
        if after > end:
            raise _format(source, f"central directory record at offset {at} runs past its end")
        raw = data[name_at:extra_at]
        if len(entries) == count:
            raise _format(
                source,
                f"central directory holds more than the {count} entries the end record declares",
            )
        if comment_len:
            raise _entry_format(source, raw, "entry comments are not accepted")
        if disk:
            raise _entry_format(source, raw, "multi-disk (spanned) archives are not accepted")
        if 0xFFFFFFFF in (compressed_size, size, offset):
            raise _entry_format(source, raw, "zip64 archives are not accepted")
        _check_flags(flags, source, raw)
        _check_extra(data[extra_at : extra_at + extra_len], source, raw, "central directory")
        name = _decode_name(raw, flags, source)
        is_dir = _entry_kind(raw, external, source)
        trimmed = check_entry_name(name, source=source, is_dir=is_dir)
        if method not in (_STORED, _DEFLATED):
            raise _entry_format(
                source,
                raw,
                f"uses compression method {method}; only stored (0) and deflate (8) are accepted",
            )
        if method == _STORED and compressed_size != size:
            raise _entry_format(
                source,
                raw,
                f"is stored but declares {compressed_size} bytes stored and {size} bytes of "
                "content",
            )
        if is_dir and (size or crc):
            raise _entry_format(source, raw, f"directory entry declares {size} bytes of content")
        entries.append(
            _Entry(raw, trimmed, is_dir, flags, method, crc, compressed_size, size, offset)
        )
        at = after
    if len(entries) != count:
        raise _format(
            source,
            f"the end record declares {count} entries but the central directory holds "
            f"{len(entries)}",
        )
    return entries


def _check_local(data: bytes, entry: _Entry, expected: int, cd_offset: int, source: str) -> int:
    """Check the local header of ``entry`` against its directory record; return data start.

    Entries must follow one another from offset 0 with no gap and no overlap (R12): a gap
    hides bytes from one reader and shows them to another, an overlap makes two entries (or
    a thousand: "zip bomb by overlap") out of one stretch of bytes.
    """
    raw = entry.raw_name
    if entry.offset != expected:
        if expected == 0:
            problem = f"{entry.offset} bytes of prefix data before the first local header"
        elif entry.offset < expected:
            problem = (
                f"local header at offset {entry.offset} overlaps the previous entry "
                f"(which ends at {expected})"
            )
        else:
            problem = f"{entry.offset - expected} unexplained bytes before its local header"
        raise _entry_format(source, raw, problem)
    at = entry.offset
    if at + _LOCAL.size > cd_offset or data[at : at + 4] != _LOCAL_SIG:
        raise _entry_format(source, raw, f"no local header at offset {at}")
    (
        _,
        _needed,
        flags,
        method,
        _time,
        _date,
        crc,
        compressed_size,
        size,
        name_len,
        extra_len,
    ) = _LOCAL.unpack_from(data, at)
    name_at = at + _LOCAL.size
    extra_at: int = name_at + name_len
    data_at: int = extra_at + extra_len
    if data_at > cd_offset:
        raise _entry_format(source, raw, "local header runs into the central directory")
    local_name = data[name_at:extra_at]
    if local_name != raw:
        raise UnsafeNameError(
            f"{source}: entry {_show(raw)}: the local header names it {_show(local_name)} "
            "(readers that trust the local header see another file)"
        )
    for field, local, central in (
        ("flags", flags, entry.flags),
        ("compression method", method, entry.method),
        ("CRC-32", crc, entry.crc),
        ("compressed size", compressed_size, entry.compressed_size),
        ("size", size, entry.size),
    ):
        if local != central:
            raise _entry_format(
                source,
                raw,
                f"local header {field} {local} differs from the central directory's {central}",
            )
    _check_extra(data[extra_at:data_at], source, raw, "local header")
    if data_at + entry.compressed_size > cd_offset:
        raise _entry_format(source, raw, "its data runs into the central directory")
    return data_at


def _inflate(entry: _Entry, stored: bytes, source: str) -> bytes:
    """Decompress one entry; sizes and CRC must be exactly as declared (R13)."""
    raw = entry.raw_name
    if entry.method == _STORED or (not stored and not entry.size):
        content = stored  # stored, or empty: no data means no content for any reader
    else:
        inflater = zlib.decompressobj(-15)
        try:
            # At most one byte past the declared size: enough to prove the size lies,
            # never more than the (capped) declared size in memory.
            content = inflater.decompress(stored, entry.size + 1)
        except zlib.error as exc:
            raise _entry_format(source, raw, f"corrupt deflate data: {exc}") from exc
        if len(content) > entry.size:
            raise _entry_format(
                source, raw, f"declares {entry.size} bytes but decompresses to more"
            )
        if not inflater.eof:
            raise _entry_format(source, raw, "deflate stream is truncated")
        if inflater.unused_data:
            raise _entry_format(
                source,
                raw,
                f"{len(inflater.unused_data)} bytes after the end of its deflate stream",
            )
    if len(content) != entry.size:
        raise _entry_format(
            source, raw, f"declares {entry.size} bytes but decompresses to {len(content)}"
        )
    if zlib.crc32(content) != entry.crc:
        raise _entry_format(
            source,
            raw,
            f"CRC-32 mismatch: declared {entry.crc:08x}, content has {zlib.crc32(content):08x}",
        )
    return content


def read_zip(data: bytes, *, source: str, limits: ArchiveLimits | None = None) -> PackageFiles:
    """Check every entry of a zip archive, then return its files.

    Args:
        data: The archive's bytes (already hash-verified when they came from an index).
        source: Name used in error messages.
        limits: Caps; safe defaults when omitted.

    Returns:
        The package files.

    Raises:
        ArchiveFormatError: the structure is malformed or ambiguous (R1, R2, R4, R5, R12, R13).
        UnsafeNameError: an entry name breaks R1-R8.
        ForbiddenEntryError: a link, special file, bytecode, native module or VCS file (R4, R10).
        NameCollisionError: duplicate, case-fold or file/directory collision (R9).
        ManifestPlacementError: not exactly one manifest, at the root (R11).
        ArchiveLimitError: over an entry or size cap (R14).
    """
    limits = limits or ArchiveLimits()
    count, cd_size, cd_offset = _find_end(data, source)
    entries = _read_central(data, count, cd_size, cd_offset, limits, source)
    tree = [(e.name, e.is_dir) for e in entries]
    _check_tree(tree, source)
    _check_manifest_place(tree, source)
    declared = 0
    for entry in entries:
        if entry.size > limits.max_file_size:
            raise ArchiveLimitError(
                f"{source}: entry {_show(entry.raw_name)} declares {entry.size} bytes, over the "
                f"per-file cap of {limits.max_file_size} bytes (decompression bomb?)"
            )
        declared += entry.size
        if declared > limits.max_total_size:
            raise ArchiveLimitError(
                f"{source}: entries declare more than the total cap of {limits.max_total_size} "
                "bytes (decompression bomb?)"
            )
    files: dict[str, bytes] = {}
    expected = 0
    for entry in entries:
        start = _check_local(data, entry, expected, cd_offset, source)
        expected = start + entry.compressed_size
        content = _inflate(entry, data[start:expected], source)
        if not entry.is_dir:
            files[entry.name] = content
    if expected != cd_offset:
        raise _format(
            source,
            f"{cd_offset - expected} unexplained bytes between the last entry and the central "
            "directory",
        )
    return PackageFiles(files, source=source)


# -- directories --------------------------------------------------------------------------


def read_directory(path: Path, *, limits: ArchiveLimits | None = None) -> PackageFiles:
    """Read a package directory into memory with the same rules as a zip.

    Symlinks and special files are rejected rather than followed (a link could point the
    loader at code outside the package). Version-control metadata (``.git``, ``.hg``, …),
    ``__pycache__``, tool caches and ``*.pyc``/``*.pyo`` belong to the checkout, not the
    package: they are skipped, never read and never packed. Every other name is judged by the
    zip rules, so ``pack`` never writes what the reader refuses.

    Args:
        path: The package directory.
        limits: Caps; safe defaults when omitted.

    Returns:
        The package files.

    Raises:
        ArchiveError: not a directory, or unreadable.
        UnsafeNameError, ForbiddenEntryError, NameCollisionError, ManifestPlacementError,
        ArchiveLimitError: as for :func:`read_zip`, naming the offending path.
    """
    limits = limits or ArchiveLimits()
    source = str(path)
    if not path.is_dir():
        raise ArchiveError(f"{source}: not a directory")
    files: dict[str, bytes] = {}
    tree: list[tuple[str, bool]] = []
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
            folded = entry.name.casefold()
            if entry.is_symlink():
                raise ForbiddenEntryError(f"{source}: {_show(rel)} is a symlink")
            is_dir = entry.is_dir(follow_symlinks=False)
            if folded in _SKIPPED_IN_DIRECTORY or (
                not is_dir and folded.endswith(_SKIPPED_SUFFIXES_IN_DIRECTORY)
            ):
                continue
            if not is_dir and not entry.is_file(follow_symlinks=False):
                raise ForbiddenEntryError(f"{source}: {_show(rel)} is not a regular file")
            check_entry_name(rel, source=source, is_dir=is_dir)
            if len(tree) >= limits.max_entries:
                raise ArchiveLimitError(f"{source}: more than {limits.max_entries} entries")
            tree.append((rel, is_dir))
            if is_dir:
                stack.append((Path(entry.path), rel + "/"))
                continue
            try:
                with open(entry.path, "rb") as handle:
                    content = handle.read(limits.max_file_size + 1)
            except OSError as exc:
                raise ArchiveError(f"{source}: cannot read {_show(rel)}: {exc}") from exc
            if len(content) > limits.max_file_size:
                raise ArchiveLimitError(
                    f"{source}: {_show(rel)} is over the per-file cap of "
                    f"{limits.max_file_size} bytes"
                )
            total += len(content)
            if total > limits.max_total_size:
                raise ArchiveLimitError(
                    f"{source}: files total over the cap of {limits.max_total_size} bytes"
                )
            files[rel] = content
    _check_tree(tree, source)
    _check_manifest_place(tree, source)
    return PackageFiles(files, source=source)
