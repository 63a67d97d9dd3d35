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

__all__ = ["UTF8_FLAG", "RawEntry", "build_raw_zip", "deflate"]

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


def build_raw_zip(entries: Sequence[RawEntry], comment: bytes = b"") -> bytes:
    """Serialise ``entries`` as a zip archive without any checks."""
    body = bytearray()
    central = bytearray()
    for entry in entries:
        stored = deflate(entry.data) if entry.method == 8 else entry.data
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        size = len(entry.data) if entry.declared_size is None else entry.declared_size
        local_name = entry.name if entry.local_name is None else entry.local_name
        offset = len(body)
        body += _LOCAL.pack(
            b"PK\x03\x04",
            20,
            0,
            entry.flags & 0xFFFF,
            entry.method & 0xFFFF,
            0,
            _DOS_DATE,
            crc & 0xFFFFFFFF,
            len(stored),
            size & 0xFFFFFFFF,
            len(local_name),
            0,
        )
        body += local_name + stored
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
            0,
            0,
            0,
            0,
            (entry.mode << 16) & 0xFFFFFFFF,
            offset,
        )
        central += entry.name
    end = _END.pack(
        b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), len(comment)
    )
    return bytes(body + central + end + comment)
