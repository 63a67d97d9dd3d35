"""A raw zip writer for hostile archives that ``zipfile`` refuses to write.

``zipfile`` truncates names at NUL, always keeps the local and central names equal and
always tells the truth about sizes; an attacker does none of that. Every field here is
written as given.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["UTF8_FLAG", "RawEntry", "build_raw_zip", "deflate", "extra_field"]

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # zipfile.structCentralDir
_END = struct.Struct("<4s4H2LH")  # zipfile.structEndArchive
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
UTF8_FLAG = 0x800  # general purpose flag bit: the name is UTF-8


def deflate(data: bytes, level: int = 6) -> bytes:
    """Raw deflate (no zlib header), as zip stores it."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class RawEntry:
    """One entry, every field under the caller's control.

    Attributes:
        name: Name bytes in the central directory.
        data: Uncompressed content.
        method: Declared compression method; 8 deflates ``data``, anything else stores it.
        flags: General purpose flag bits (0x800: name is UTF-8, 0x1: encrypted, ...).
        create_system: 3 is Unix (``external_attr`` holds a mode), 0 is DOS.
        mode: Unix mode put in the high half of ``external_attr``.
        local_name: Name in the local header, when it should differ from ``name``.
        declared_size: Uncompressed size to declare, when it should lie.
        crc: CRC-32 to declare, when it should lie.
        extra: Extra field bytes in the central directory.
        local_extra: Extra field bytes in the local header (default: none).
        comment: Entry comment in the central directory.
        external_attr: Whole ``external_attr`` (default: ``mode << 16``).
        local_flags: Flag bits in the local header, when they should differ.
        local_method: Compression method in the local header, when it should differ.
        local_size: Uncompressed size in the local header, when it should differ.
        stored: Exact bytes to store after the local header (default: from ``data``).
        offset: Local header offset to declare (default: the real one).
        disk: Disk number where the entry starts.
    """

    name: bytes
    data: bytes
    method: int = 8
    flags: int = 0
    create_system: int = 3
    mode: int = 0o100644
    local_name: bytes | None = None
    declared_size: int | None = None
    crc: int | None = None
    extra: bytes = b""
    local_extra: bytes = b""
    comment: bytes = b""
    external_attr: int | None = None
    local_flags: int | None = None
    local_method: int | None = None
    local_size: int | None = None
    stored: bytes | None = None
    offset: int | None = None
    disk: int = 0


def extra_field(header_id: int, payload: bytes) -> bytes:
    """One extra field block: id, length, payload."""
    return struct.pack("<HH", header_id, len(payload)) + payload


def build_raw_zip(
    entries: Sequence[RawEntry],
    comment: bytes = b"",
    *,
    prefix: bytes = b"",
    gap: bytes = b"",
    trailing: bytes = b"",
    count: int | None = None,
    disk: int = 0,
) -> bytes:
    """Serialise ``entries`` as a zip archive without any checks.

    Args:
        entries: The entries, in order.
        comment: Archive comment (declared in the end record).
        prefix: Bytes before the first local header (offsets are shifted to match).
        gap: Bytes between the last entry and the central directory.
        trailing: Bytes after the end record (not declared anywhere).
        count: Entry count to declare in the end record (default: the real one).
        disk: Disk number to declare in the end record.
    """
    body = bytearray(prefix)
    central = bytearray()
    for entry in entries:
        if entry.stored is not None:
            stored = entry.stored
        else:
            stored = deflate(entry.data) if entry.method == 8 else entry.data
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.declared_size is None else entry.declared_size
        local_name = entry.name if entry.local_name is None else entry.local_name
        local_flags = entry.flags if entry.local_flags is None else entry.local_flags
        local_method = entry.method if entry.local_method is None else entry.local_method
        local_size = size if entry.local_size is None else entry.local_size
        offset = len(body) if entry.offset is None else entry.offset
        body += _LOCAL.pack(
            b"PK\x03\x04",
            20,
            0,
            local_flags & 0xFFFF,
            local_method & 0xFFFF,
            0,
            _DOS_DATE,
            crc & 0xFFFFFFFF,
            len(stored),
            local_size & 0xFFFFFFFF,
            len(local_name),
            len(entry.local_extra),
        )
        body += local_name + entry.local_extra + stored
        central += _CENTRAL.pack(
            b"PK\x01\x02",
            20,
            entry.create_system & 0xFF,
            20,
            0,
            entry.flags & 0xFFFF,
            entry.method & 0xFFFF,
            0,
            _DOS_DATE,
            crc & 0xFFFFFFFF,
            len(stored),
            size & 0xFFFFFFFF,
            len(entry.name),
            len(entry.extra),
            len(entry.comment),
            entry.disk,
            0,
            ((entry.mode << 16) if entry.external_attr is None else entry.external_attr)
            & 0xFFFFFFFF,
            offset & 0xFFFFFFFF,
        )
        central += entry.name + entry.extra + entry.comment
    body += gap
    n = len(entries) if count is None else count
    end = _END.pack(b"PK\x05\x06", disk, disk, n, n, len(central), len(body), len(comment))
    return bytes(body + central + end + comment + trailing)
