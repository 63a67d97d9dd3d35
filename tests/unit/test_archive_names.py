"""One archive, one meaning: a table of hostile zips built byte by byte (docs/FORMAT.md §5).

Every row is a zip that some reader (Python 3.11 or 3.12+ ``zipfile``, ``unzip``, 7-Zip,
Windows Explorer, a case-insensitive or normalizing file system, git) would read as other
files than the safe reader judged, or that holds something no package may hold. Each row
asserts the *exact* error class, that the message names the entry escaped (nothing but
printable ASCII), and, where the same content can exist as a directory on this file system,
that ``pack`` refuses it too and writes nothing (or, for VCS metadata and bytecode caches,
leaves it out).
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.errors import (
    ArchiveError,
    ArchiveFormatError,
    ArchiveLimitError,
    ForbiddenEntryError,
    ManifestPlacementError,
    NameCollisionError,
    UnsafeNameError,
)
from modelmesh_connectors.package.archive import (
    ArchiveLimits,
    read_directory,
    read_zip,
)
from modelmesh_connectors.package.manifest import MANIFEST_NAME
from modelmesh_connectors.package.pack import pack_directory, pack_to_bytes
from tests.fuzz.zips import UTF8_FLAG, RawEntry, build_raw_zip, deflate, extra_field

MANIFEST = (
    b"name: acme-audit\nversion: '1.0'\ndescription: d\n"
    b"connectors:\n  - {id: acme.audit.v1, type: observability, entry: 'acme.sink:Sink'}\n"
)
EVIL = b"open('/tmp/pwned', 'w').write('x')\n"


def entry(name: str | bytes, data: bytes = b"x = 1\n", **fields: object) -> RawEntry:
    """A raw entry; a ``str`` name is UTF-8 encoded and flagged when it is not ASCII.

    Names ending in ``/`` get a directory mode unless ``mode`` says otherwise.
    """
    if name.endswith("/") if isinstance(name, str) else name.endswith(b"/"):
        fields.setdefault("mode", 0o040755)
    if isinstance(name, str):
        raw = name.encode("utf-8", "surrogatepass")
        if not name.isascii():
            fields["flags"] = int(fields.get("flags", 0)) | UTF8_FLAG  # type: ignore[call-overload]
        name = raw
    return RawEntry(name=name, data=data, **fields)  # type: ignore[arg-type]


def manifest_entry() -> RawEntry:
    return entry(MANIFEST_NAME, MANIFEST)


def zip_of(*entries: RawEntry, manifest: bool = True, **archive: object) -> Callable[[], bytes]:
    """A builder of a zip holding the root manifest (first) and ``entries``."""
    items = [manifest_entry(), *entries] if manifest else list(entries)
    return lambda: build_raw_zip(items, **archive)  # type: ignore[arg-type]


def with_name(name: str | bytes, **fields: Any) -> Callable[[], bytes]:
    return zip_of(entry(name, **fields))


def patched(build: Callable[[], bytes], change: Callable[[bytearray], None]) -> Callable[[], bytes]:
    def run() -> bytes:
        data = bytearray(build())
        change(data)
        return bytes(data)

    return run


# -- directory equivalents ---------------------------------------------------------------


def files(*names: str | bytes, manifest: bool = True) -> Callable[[Path], None]:
    """Write a package directory holding ``names`` (bytes names are raw file-system names)."""

    def make(root: Path) -> None:
        if manifest:
            (root / MANIFEST_NAME).write_bytes(MANIFEST)
        for name in names:
            raw = name if isinstance(name, bytes) else os.fsencode(name)
            target = os.path.join(os.fsencode(root), raw)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(b"x = 1\n")

    return make


def symlink_dir(root: Path) -> None:
    files()(root)
    (root / "pkg").mkdir()
    (root / "pkg" / "link.py").symlink_to("/etc/passwd")


def fifo_dir(root: Path) -> None:
    files()(root)
    (root / "pkg").mkdir()
    os.mkfifo(root / "pkg" / "pipe.py")


@dataclass(frozen=True)
class Hostile:
    """One row.

    Attributes:
        id: Test id.
        build: Returns the zip bytes.
        error: Exact class ``read_zip`` must raise.
        match: Fragment of the message.
        directory: Writes the same content as a package directory, when representable.
        pack: What ``pack`` must do with that directory: ``"refuse"`` (with ``error``) or
            ``"skip"`` (VCS metadata and bytecode caches are left out, never packed).
        limits: Caps for ``read_zip``.
    """

    id: str
    build: Callable[[], bytes]
    error: type[ArchiveError]
    match: str
    directory: Callable[[Path], None] | None = None
    pack: str = "refuse"
    limits: ArchiveLimits | None = field(default=None)


def name_case(
    id: str,
    name: str | bytes,
    error: type[ArchiveError],
    match: str,
    *,
    pack: str | None = "refuse",
    **fields: object,
) -> Hostile:
    """A row for one hostile entry name; its directory twin holds a file of that name."""
    return Hostile(
        id, with_name(name, **fields), error, match, files(name) if pack else None, pack or ""
    )


def _unicode_path_extra(real: bytes) -> bytes:
    # version 1, CRC-32 of the name it overrides, then the UTF-8 name readers should use
    return extra_field(0x7075, b"\x01" + struct.pack("<I", zlib.crc32(real)) + b"pkg/evil.py")


def _set_eocd_count(data: bytearray) -> None:
    at = len(data) - 22
    struct.pack_into("<HH", data, at + 8, 3, 3)


def _prefix_relative_offsets() -> bytes:
    # A self-extractor-style prefix whose offsets are *not* shifted: zipfile "repairs" the
    # offsets by the prefix length, other readers do not.
    return b"MZ" + b"\0" * 62 + build_raw_zip([manifest_entry(), entry("pkg/a.py")])


def _overlapping() -> bytes:
    # Two directory records, one local header: one stretch of bytes, two files (and, with a
    # thousand records, a zip bomb by overlap).
    first = build_raw_zip([manifest_entry(), entry("pkg/a.py")])
    data = bytearray(first)
    at = data.rfind(b"PK\x01\x02")
    record_len = 46 + len(b"pkg/a.py")
    record = bytearray(data[at : at + record_len])
    record[46:] = b"pkg/b.py"
    end = len(data) - 22
    (cd_size,) = struct.unpack_from("<I", data, end + 12)
    data[end:end] = record
    end += len(record)
    struct.pack_into("<HHI", data, end + 8, 3, 3, cd_size + len(record))
    return bytes(data)


def _gap_between_entries() -> bytes:
    # Six bytes between the manifest's data and the next local header, offsets kept honest:
    # a reader that scans local headers and one that follows the directory agree, but the
    # bytes are in nobody's entry (room for a second, hidden archive).
    data = bytearray(build_raw_zip([manifest_entry(), entry("pkg/a.py")]))
    second = data.find(b"PK\x03\x04", 4)
    data[second:second] = b"HIDDEN"
    cd = data.find(b"PK\x01\x02")
    record = data.find(b"PK\x01\x02", cd + 4)
    struct.pack_into("<I", data, record + 42, second + 6)
    end = len(data) - 22
    struct.pack_into("<I", data, end + 16, cd)
    return bytes(data)


def _deflate_then_junk() -> bytes:
    payload = b"x = 1\n"
    return build_raw_zip(
        [manifest_entry(), entry("pkg/a.py", payload, stored=deflate(payload) + b"HIDDEN")]
    )


ZIP64_EXTRA = extra_field(0x0001, struct.pack("<QQ", 6, 6))
PKG = "pkg/"

CASES: list[Hostile] = [
    # R1: raw names, central directory and local header agree byte for byte
    name_case("nul-in-name", b"pkg/a.py\x00.txt", UnsafeNameError, "NUL byte", pack=None),
    name_case("nul-hides-traversal", b"pkg/ok.py\x00/../../evil.py", UnsafeNameError, "NUL", pack=None),
    Hostile("local-name-differs", zip_of(entry("pkg/a.py", local_name=b"pkg/evil.py")), UnsafeNameError, "local header names it 'pkg/evil.py'"),
    Hostile("local-name-has-nul", zip_of(entry("pkg/a.py", local_name=b"pkg/a.py\x00x")), UnsafeNameError, "local header names it"),
    Hostile("local-name-case-differs", zip_of(entry("pkg/a.py", local_name=b"PKG/a.py")), UnsafeNameError, "local header names it"),
    Hostile("local-flags-differ", zip_of(entry("pkg/caf\u00e9.py", local_flags=0)), ArchiveFormatError, "local header flags"),
    # R2: names are ASCII, or UTF-8 with bit 11; R5: no Unicode Path / Comment extras
    Hostile("unicode-path-extra", zip_of(entry("pkg/a.py", extra=_unicode_path_extra(b"pkg/a.py"))), UnsafeNameError, "Unicode Path"),
    Hostile("unicode-path-extra-local", zip_of(entry("pkg/a.py", local_extra=_unicode_path_extra(b"pkg/a.py"))), UnsafeNameError, "Unicode Path .* local header"),
    Hostile("unicode-comment-extra", zip_of(entry("pkg/a.py", extra=extra_field(0x6375, b"\x01\0\0\0\0hi"))), ArchiveFormatError, "Unicode Comment"),
    name_case("utf8-name-without-flag", b"pkg/caf\xc3\xa9.py", UnsafeNameError, "without the UTF-8 flag", pack=None),
    name_case("cp437-name", b"pkg/\x82t\x82.py", UnsafeNameError, "without the UTF-8 flag", pack=None),
    name_case("invalid-utf8-with-flag", b"pkg/\xff.py", UnsafeNameError, "not valid UTF-8", pack=None, flags=UTF8_FLAG),
    name_case("overlong-utf8-slash", b"pkg/..\xc0\xafevil.py", UnsafeNameError, "not valid UTF-8", pack=None, flags=UTF8_FLAG),
    name_case("utf8-encoded-surrogate", b"pkg/\xed\xa0\x80.py", UnsafeNameError, "not valid UTF-8", pack=None, flags=UTF8_FLAG),
    # R3: characters
    name_case("escape-sequence", "pkg/\x1b[31mred.py", UnsafeNameError, "control character U\\+001B"),
    name_case("tab", "pkg/a\tb.py", UnsafeNameError, "control character U\\+0009"),
    name_case("del", "pkg/a\x7f.py", UnsafeNameError, "control character U\\+007F"),
    name_case("c1-control", "pkg/a\x85.py", UnsafeNameError, "control character U\\+0085"),
    name_case("bidi-override", "pkg/evil\u202eyp.py", UnsafeNameError, "format .* U\\+202E"),
    name_case("zero-width-space", "pkg/a\u200b.py", UnsafeNameError, "U\\+200B"),
    name_case("hfs-ignorable-in-git", ".g\u200cit/config", UnsafeNameError, "U\\+200C"),
    name_case("byte-order-mark", "\ufeffpkg/a.py", UnsafeNameError, "U\\+FEFF"),
    name_case("line-separator", "pkg/a\u2028.py", UnsafeNameError, "line separator"),
    name_case("paragraph-separator", "pkg/a\u2029.py", UnsafeNameError, "paragraph separator"),
    name_case("no-break-space", "pkg/a\u00a0.py", UnsafeNameError, "space other than U\\+0020"),
    name_case("ideographic-space", "pkg/a\u3000.py", UnsafeNameError, "space other than U\\+0020"),
    name_case("en-quad", "pkg/a\u2000.py", UnsafeNameError, "space other than U\\+0020"),
    name_case("private-use", "pkg/a\ue000.py", UnsafeNameError, "private-use"),
    name_case("unassigned", "pkg/a\u0378.py", UnsafeNameError, "unassigned"),
    name_case("newer-than-unicode-3-2", "pkg/\U0001f600.py", UnsafeNameError, "not assigned in Unicode 3.2"),
    name_case("not-nfc", "pkg/cafe\u0301.py", UnsafeNameError, "NFC"),
    # R6: separators and traversal
    name_case("traversal", "../evil.py", UnsafeNameError, "traversal", pack=None),
    name_case("traversal-nested", "pkg/../../evil.py", UnsafeNameError, "traversal", pack=None),
    name_case("dot-segment", "pkg/./a.py", UnsafeNameError, "traversal", pack=None),
    name_case("empty-segment", "pkg//a.py", UnsafeNameError, "traversal", pack=None),
    name_case("absolute", "/etc/passwd", UnsafeNameError, "absolute path", pack=None),
    name_case("unc", "//server/share/x.py", UnsafeNameError, "absolute path", pack=None),
    name_case("drive-letter", "C:/evil.py", UnsafeNameError, "drive-letter", pack=None),
    name_case("drive-relative", "c:evil.py", UnsafeNameError, "drive-letter"),
    name_case("backslash", "pkg\\..\\..\\evil.py", UnsafeNameError, "backslash"),
    name_case("empty-name", b"", UnsafeNameError, "empty entry name", pack=None),
    # R6: characters Windows refuses or reinterprets
    name_case("quote", 'pkg/a"b.py', UnsafeNameError, "'\"' is not allowed"),
    name_case("star", "pkg/a*b.py", UnsafeNameError, "'\\*' is not allowed"),
    name_case("alternate-data-stream", "pkg/a.py:evil", UnsafeNameError, "':' is not allowed"),
    name_case("less-than", "pkg/a<b.py", UnsafeNameError, "'<' is not allowed"),
    name_case("greater-than", "pkg/a>b.py", UnsafeNameError, "'>' is not allowed"),
    name_case("question-mark", "pkg/a?b.py", UnsafeNameError, "'\\?' is not allowed"),
    name_case("pipe", "pkg/a|b.py", UnsafeNameError, "'\\|' is not allowed"),
    name_case("trailing-dot", "pkg/a.py.", UnsafeNameError, "ends with '.' or a space"),
    name_case("trailing-space", "pkg/a.py ", UnsafeNameError, "ends with '.' or a space"),
    name_case("directory-trailing-dot", "pkg./a.py", UnsafeNameError, "ends with '.' or a space"),
    # R7: Windows device names and 8.3 aliases
    name_case("device-con", "con", UnsafeNameError, "'CON' is a reserved device name"),
    name_case("device-with-extension", "pkg/CON.py", UnsafeNameError, "'CON' is a reserved"),
    name_case("device-nul-txt", "pkg/nul.txt", UnsafeNameError, "'NUL' is a reserved"),
    name_case("device-aux-directory", "aux/a.py", UnsafeNameError, "'AUX' is a reserved"),
    name_case("device-com1", "pkg/com1.py", UnsafeNameError, "'COM1' is a reserved"),
    name_case("device-com0", "pkg/COM0", UnsafeNameError, "'COM0' is a reserved"),
    name_case("device-lpt9", "pkg/Lpt9.log", UnsafeNameError, "'LPT9' is a reserved"),
    name_case("device-superscript", "pkg/com\u00b9.py", UnsafeNameError, "reserved device name"),
    name_case("device-stem-space", "pkg/prn .txt", UnsafeNameError, "'PRN' is a reserved"),
    name_case("device-conin", "pkg/CONIN$", UnsafeNameError, "reserved device name"),
    name_case("short-name-git", "GIT~1/config", UnsafeNameError, "8.3 short name"),
    name_case("fullwidth-dot-dot", "pkg/\uff0e\uff0e/evil.py", UnsafeNameError, "compatibility form .*traversal"),
    name_case("fullwidth-solidus", "pkg\uff0fevil.py", UnsafeNameError, "path separator"),
    name_case("fullwidth-colon", "pkg/a\uff1ab.py", UnsafeNameError, "compatibility form"),
    # R8: lengths
    name_case("part-over-255-bytes", "pkg/" + "a" * 253 + ".py", UnsafeNameError, "256 bytes long, over 255"),
    name_case("name-over-1024-bytes", "/".join(["d" * 200] * 6) + "/a.py", UnsafeNameError, "over the cap of 1024"),
    # R9: collisions
    Hostile("duplicate", zip_of(entry("pkg/a.py"), entry("pkg/a.py", EVIL)), NameCollisionError, "duplicate entry 'pkg/a.py'"),
    Hostile("duplicate-directory-entry", zip_of(entry(PKG, b""), entry(PKG, b"")), NameCollisionError, "duplicate entry 'pkg'"),
    Hostile("case-fold", zip_of(entry("pkg/A.py"), entry("pkg/a.py", EVIL)), NameCollisionError, "collide under case-folding", files("pkg/A.py", "pkg/a.py")),
    Hostile("case-fold-directories", zip_of(entry("pkg/a.py"), entry("PKG/b.py", EVIL)), NameCollisionError, "'(pkg/a.py|PKG)' and '(PKG/b.py|pkg)' collide", files("pkg/a.py", "PKG/b.py")),
    Hostile("case-fold-sharp-s", zip_of(entry("pkg/stra\u00dfe.py"), entry("pkg/strasse.py", EVIL)), NameCollisionError, "case-folding", files("pkg/stra\u00dfe.py", "pkg/strasse.py")),
    Hostile("file-directory-clash", zip_of(entry("pkg/a"), entry("pkg/a/b.py")), NameCollisionError, "'pkg/a' is a file but 'pkg/a/b.py' uses it"),
    Hostile("directory-entry-and-file", zip_of(entry("pkg/a/", b""), entry("pkg/a")), NameCollisionError, "is a file but"),
    # R10: what would run or be obeyed instead of the reviewed source
    name_case("pyc", "pkg/a.pyc", ForbiddenEntryError, "compiled or native code", pack="skip"),
    name_case("pyo-upper-case", "pkg/A.PYO", ForbiddenEntryError, "compiled or native code", pack="skip"),
    name_case("pycache", "pkg/__pycache__/a.cpython-311.pyc", ForbiddenEntryError, "'__pycache__' holds bytecode", pack="skip"),
    name_case("pycache-source", "pkg/__PyCache__/a.py", ForbiddenEntryError, "'__pycache__'", pack="skip"),
    name_case("extension-module", "pkg/_speedups.cpython-311-x86_64-linux-gnu.so", ForbiddenEntryError, "native code"),
    name_case("pyd", "pkg/_speedups.pyd", ForbiddenEntryError, "native code"),
    name_case("dll", "pkg/helper.DLL", ForbiddenEntryError, "native code"),
    name_case("dylib", "pkg/libhelper.dylib", ForbiddenEntryError, "native code"),
    name_case("pth-start-up-file", "evil.pth", ForbiddenEntryError, ".pth"),
    name_case("git-directory", ".git/config", ForbiddenEntryError, "'.git' is version-control", pack="skip"),
    name_case("git-hook-nested", "pkg/.git/hooks/post-checkout", ForbiddenEntryError, "version-control", pack="skip"),
    name_case("git-upper-case", ".GIT/config", ForbiddenEntryError, "'.git' is version-control", pack="skip"),
    name_case("git-fullwidth", ".\uff47\uff49\uff54/config", ForbiddenEntryError, "'.git' is version-control"),
    name_case("hg", ".hg/hgrc", ForbiddenEntryError, "'.hg'", pack="skip"),
    name_case("svn", "pkg/.svn/entries", ForbiddenEntryError, "'.svn'", pack="skip"),
    name_case("bzr", ".bzr/branch.conf", ForbiddenEntryError, "'.bzr'", pack="skip"),
    name_case("gitattributes", ".gitattributes", ForbiddenEntryError, "'.gitattributes'", pack="skip"),
    name_case("gitmodules", "pkg/.gitmodules", ForbiddenEntryError, "'.gitmodules'", pack="skip"),
    Hostile("symlink", zip_of(entry("pkg/link.py", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)), ForbiddenEntryError, "'pkg/link.py' is a symlink", symlink_dir),
    Hostile("symlink-made-on-os-x", zip_of(entry("pkg/link.py", b"/etc/passwd", mode=stat.S_IFLNK | 0o777, create_system=19)), ForbiddenEntryError, "symlink"),
    Hostile("fifo", zip_of(entry("pkg/pipe.py", b"", mode=stat.S_IFIFO | 0o644)), ForbiddenEntryError, "not a regular file", fifo_dir),
    Hostile("char-device", zip_of(entry("pkg/dev.py", b"", mode=stat.S_IFCHR | 0o644)), ForbiddenEntryError, "not a regular file"),
    Hostile("setuid", zip_of(entry("pkg/run.py", mode=0o104755)), ForbiddenEntryError, "setuid"),
    # R11: exactly one manifest, at the root
    Hostile("no-manifest", zip_of(entry("pkg/a.py"), manifest=False), ManifestPlacementError, "no modelmesh-package.yaml at the archive root", files("pkg/a.py", manifest=False)),
    Hostile("manifest-only-nested", zip_of(entry("inner/" + MANIFEST_NAME, MANIFEST), manifest=False), ManifestPlacementError, "found at 'inner/modelmesh-package.yaml'", files("inner/" + MANIFEST_NAME, manifest=False)),
    Hostile("second-manifest-nested", zip_of(entry("pkg/" + MANIFEST_NAME, MANIFEST)), ManifestPlacementError, "must be at the root", files("pkg/" + MANIFEST_NAME)),
    Hostile("manifest-case-variant", zip_of(entry(MANIFEST_NAME.upper(), MANIFEST)), ManifestPlacementError, "MODELMESH-PACKAGE.YAML", files(MANIFEST_NAME.upper())),
    Hostile("manifest-case-variant-only", zip_of(entry("Modelmesh-Package.yaml", MANIFEST), manifest=False), ManifestPlacementError, "spelled exactly so", files("Modelmesh-Package.yaml", manifest=False)),
    Hostile("manifest-as-directory", zip_of(entry(MANIFEST_NAME + "/a.py"), manifest=False), ManifestPlacementError, "must be at the root"),
    # R4: flags, methods, kinds
    name_case("encrypted", "pkg/a.py", ArchiveFormatError, "encrypted", pack=None, flags=0x1),
    name_case("strong-encryption", "pkg/a.py", ArchiveFormatError, "encrypted", pack=None, flags=0x40),
    name_case("data-descriptor", "pkg/a.py", ArchiveFormatError, "data descriptor", pack=None, flags=0x8),
    name_case("masked-headers", "pkg/a.py", ArchiveFormatError, "masked", pack=None, flags=0x2000),
    name_case("unknown-flag", "pkg/a.py", ArchiveFormatError, "unknown general purpose flag", pack=None, flags=0x10),
    name_case("bzip2", "pkg/a.py", ArchiveFormatError, "compression method 12", pack=None, method=12),
    name_case("method-differs-locally", "pkg/a.py", ArchiveFormatError, "compression method", pack=None, local_method=0),
    name_case("directory-mode-without-slash", "pkg/a.py", ArchiveFormatError, "Unix mode says directory", pack=None, mode=0o040755),
    name_case("file-mode-with-slash", "pkg/d/", ArchiveFormatError, "Unix mode says file", pack=None, data=b"", mode=0o100644),
    name_case("dos-directory-attribute-on-file", "pkg/a.py", ArchiveFormatError, "MS-DOS directory attribute", pack=None, external_attr=0x10),
    name_case("directory-with-content", "pkg/d/", ArchiveFormatError, "directory entry declares 6 bytes", pack=None, mode=0o040755),
    # R5: extra fields
    name_case("zip64-extra", "pkg/a.py", ArchiveFormatError, "zip64", pack=None, extra=ZIP64_EXTRA),
    name_case("asi-unix-extra", "pkg/a.py", ArchiveFormatError, "ASi Unix", pack=None, extra=extra_field(0x756E, b"\0" * 14)),
    name_case("unknown-extra", "pkg/a.py", ArchiveFormatError, "unknown extra field 0x9999", pack=None, extra=extra_field(0x9999, b"")),
    name_case("malformed-extra", "pkg/a.py", ArchiveFormatError, "malformed extra field", pack=None, extra=b"\x55\x54\x09\x00\x01"),
    name_case("duplicate-extra", "pkg/a.py", ArchiveFormatError, "appears twice", pack=None, extra=extra_field(0x5455, b"\x01\0\0\0\0") * 2),
    name_case("entry-comment", "pkg/a.py", ArchiveFormatError, "entry comments", pack=None, comment=b"hi"),
    name_case("entry-on-other-disk", "pkg/a.py", ArchiveFormatError, "multi-disk", pack=None, disk=1),
    name_case("zip64-size-marker", "pkg/a.py", ArchiveFormatError, "zip64", pack=None, declared_size=0xFFFFFFFF),
    # R12: layout: nothing before, between, overlapping or after the entries
    Hostile("archive-comment", zip_of(entry("pkg/a.py"), comment=b"hidden"), ArchiveFormatError, "6 bytes of archive comment or trailing data"),
    Hostile("trailing-data", zip_of(entry("pkg/a.py"), trailing=b"PK\x03\x04 more"), ArchiveFormatError, "trailing data"),
    Hostile("prefix-data", zip_of(entry("pkg/a.py"), prefix=b"#!/bin/sh\nexit 0\n"), ArchiveFormatError, "17 bytes of prefix data"),
    Hostile("prefix-relative-offsets", _prefix_relative_offsets, ArchiveFormatError, "central directory .* does not end"),
    Hostile("gap-before-directory", zip_of(entry("pkg/a.py"), gap=b"HIDDEN"), ArchiveFormatError, "6 unexplained bytes between the last entry"),
    Hostile("gap-between-entries", _gap_between_entries, ArchiveFormatError, "6 unexplained bytes before its local header"),
    Hostile("overlapping-entries", _overlapping, ArchiveFormatError, "overlaps the previous entry"),
    Hostile("count-mismatch", patched(zip_of(entry("pkg/a.py")), _set_eocd_count), ArchiveFormatError, "declares 3 entries but the central directory holds 2"),
    Hostile("multi-disk", zip_of(entry("pkg/a.py"), disk=1), ArchiveFormatError, "multi-disk"),
    Hostile("not-a-zip", lambda: b"MZ\x90\x00 signed, but not a zip" * 20, ArchiveFormatError, "not a valid zip"),
    Hostile("empty-file", lambda: b"", ArchiveFormatError, "not a valid zip"),
    Hostile("end-record-only-truncated", lambda: b"PK\x05\x06\0\0", ArchiveFormatError, "not a valid zip"),
    # R13: sizes and CRCs are exactly what the headers say
    name_case("crc-lies", "pkg/a.py", ArchiveFormatError, "CRC-32 mismatch", pack=None, crc=0),
    name_case("size-lies-smaller", "pkg/a.py", ArchiveFormatError, "declares 2 bytes but decompresses to more", pack=None, declared_size=2),
    name_case("size-lies-larger", "pkg/a.py", ArchiveFormatError, "declares 600 bytes but decompresses to 6", pack=None, declared_size=600),
    name_case("local-size-differs", "pkg/a.py", ArchiveFormatError, "local header size 600", pack=None, local_size=600),
    name_case("stored-sizes-differ", "pkg/a.py", ArchiveFormatError, "is stored but declares", pack=None, method=0, declared_size=5),
    name_case("deflate-truncated", "pkg/a.py", ArchiveFormatError, "truncated", pack=None, stored=deflate(b"x = 1\n" * 50)[:-4], data=b"x = 1\n" * 50),
    name_case("deflate-corrupt", "pkg/a.py", ArchiveFormatError, "corrupt deflate", pack=None, stored=b"\xff\xff\xff\xff"),
    Hostile("deflate-then-junk", _deflate_then_junk, ArchiveFormatError, "6 bytes after the end of its deflate stream"),
    # R14: caps (on declared sizes first, then on the real bytes)
    Hostile("too-many-entries", zip_of(*[entry(f"pkg/m{i}.py") for i in range(5)]), ArchiveLimitError, "6 entries, over the cap of 5|more than 5 entries", files(*[f"pkg/m{i}.py" for i in range(5)]), limits=ArchiveLimits(max_entries=5)),
    Hostile("declared-bomb", zip_of(entry("pkg/bomb.bin", b"\0" * 5000)), ArchiveLimitError, "over the per-file cap of 1000 bytes \\(decompression bomb", limits=ArchiveLimits(max_file_size=1000)),
    Hostile("lying-bomb", zip_of(entry("pkg/bomb.bin", b"\0" * 5000, declared_size=10)), ArchiveFormatError, "declares 10 bytes but decompresses to more", limits=ArchiveLimits(max_file_size=1000)),
    Hostile("total-bomb", zip_of(entry("a.bin", b"\0" * 600), entry("b.bin", b"\0" * 600)), ArchiveLimitError, "total cap of 1000", limits=ArchiveLimits(max_total_size=1000)),
]  # fmt: skip


def _assert_clean_message(exc: BaseException) -> None:
    text = str(exc)
    assert text.isascii() and text.isprintable(), f"raw characters in the message: {text!r}"
    assert len(text) < 2_000


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reader_refuses(case: Hostile) -> None:
    data = case.build()
    with pytest.raises(ArchiveError, match=case.match) as info:
        read_zip(data, source="t.zip", limits=case.limits)
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    assert str(info.value).startswith("t.zip: ")
    _assert_clean_message(info.value)


PACKABLE = [c for c in CASES if c.directory is not None]


@pytest.mark.parametrize("case", PACKABLE, ids=[c.id for c in PACKABLE])
def test_pack_never_writes_what_the_reader_refuses(case: Hostile, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    assert case.directory is not None
    try:
        case.directory(source)
    except OSError as exc:  # e.g. a name this file system cannot hold
        pytest.skip(f"not representable on this file system: {exc}")
    out = tmp_path / "dist"
    if case.pack == "skip":
        data, _ = pack_to_bytes(source)
        packed = set(read_zip(data, source="packed.zip"))
        on_disk = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()}
        assert packed == {MANIFEST_NAME}, packed
        assert on_disk - packed, "nothing was left out"
        return
    with pytest.raises(ArchiveError, match=case.match) as info:
        if case.limits is None:
            pack_directory(source, f"{out}/")
        else:
            pack_to_bytes(source, limits=case.limits)
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    _assert_clean_message(info.value)
    assert not out.exists() or not any(out.iterdir()), "pack wrote an archive"


def test_enough_distinct_hostile_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 60
    assert len(PACKABLE) >= 40


def test_non_utf8_file_system_name_is_refused_by_pack(tmp_path: Path) -> None:
    files(b"pkg/\xff.py")(tmp_path)
    with pytest.raises(UnsafeNameError, match="surrogate") as info:
        read_directory(tmp_path)
    _assert_clean_message(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "pkg/caf\u00e9.py",
        "pkg/\u0436\u0443\u043a.py",
        "pkg/\u6f22\u5b57.py",
        "pkg/a b.py",
        "pkg/.gitignore",
        "pkg/~tilde.py",
        "pkg/con_fig.py",
        "pkg/console.py",
        "pkg/com10.py",
        "pkg/a~b.py",
        "pkg/data.so.txt",
        "pkg/#x$%&'()+,;=@[]^_`{}!.py",
    ],
)
def test_safe_names_are_accepted_and_pack(name: str, tmp_path: Path) -> None:
    data = zip_of(entry(name))()
    assert set(read_zip(data, source="t.zip")) == {MANIFEST_NAME, name}
    files(name)(tmp_path)
    packed, _ = pack_to_bytes(tmp_path)
    assert set(read_zip(packed, source="packed.zip")) == {MANIFEST_NAME, name}


def test_accepted_extras_and_directory_entries() -> None:
    timestamps = extra_field(0x5455, b"\x01\0\0\0\0")
    data = zip_of(
        entry(PKG, b"", mode=0o040755, external_attr=(0o040755 << 16) | 0x10),
        entry("pkg/a.py", extra=timestamps, local_extra=timestamps + extra_field(0xCAFE, b"")),
        entry("pkg/empty.py", b"", method=0),
        entry("pkg/empty-deflated.py", b"", stored=b""),
    )()
    files_read = read_zip(data, source="t.zip")
    assert dict(files_read) == {
        MANIFEST_NAME: MANIFEST,
        "pkg/a.py": b"x = 1\n",
        "pkg/empty.py": b"",
        "pkg/empty-deflated.py": b"",
    }


def test_unicode_path_extra_is_what_makes_two_programs() -> None:
    """The headline: zipfile on 3.12+ takes the name from 0x7075; the reader refuses it."""
    data = zip_of(entry("pkg/a.py", EVIL, extra=_unicode_path_extra(b"pkg/a.py")))()
    with pytest.raises(UnsafeNameError, match=r"entry 'pkg/a.py': Info-ZIP Unicode Path"):
        read_zip(data, source="t.zip")


def test_reader_asks_no_zip_library_what_a_name_is() -> None:
    """The reader parses the structure itself: ``zipfile``'s view differs by version."""
    import ast
    import inspect

    import modelmesh_connectors.package.archive as archive

    tree = ast.parse(inspect.getsource(archive))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & {"zipfile", "zipimport", "shutil"}, imported
