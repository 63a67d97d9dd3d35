"""The safe archive reader: every hostile entry is refused, naming the entry."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from modelmesh_connectors import ArchiveError
from modelmesh_connectors.errors import ArchiveFormatError
from modelmesh_connectors.package.archive import (
    ArchiveLimits,
    read_directory,
    read_zip,
)
from tests.fuzz.zips import RawEntry, build_raw_zip
from tests.support.packages import raw_zip

MANIFEST = b"name: a\nversion: '1.0'\ndescription: d\nconnectors: []\n"


def _info(name: str, *, mode: int | None = None, flags: int = 0, method: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = method
    if mode is not None:
        info.create_system = 3
        info.external_attr = mode << 16
    info.flag_bits |= flags
    return info


def _with_manifest(*entries: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    return raw_zip([("modelmesh-package.yaml", MANIFEST), *entries])


def test_plain_archive_reads() -> None:
    files = read_zip(_with_manifest(("pkg/__init__.py", b""), ("pkg/a.py", b"x = 1\n")), source="t.zip")
    assert dict(files) == {"modelmesh-package.yaml": MANIFEST, "pkg/__init__.py": b"", "pkg/a.py": b"x = 1\n"}
    assert files.directories() == {"pkg"}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../evil.py", "traversal"),
        ("pkg/../../evil.py", "traversal"),
        ("pkg/./a.py", "traversal"),
        ("pkg//a.py", "traversal"),
        ("..", "traversal"),
        ("/etc/passwd", "absolute path"),
        ("C:/windows/x.py", "drive-letter"),
        ("c:evil.py", "drive-letter"),
        ("..\\evil.py", "backslash"),
        ("pkg\\..\\..\\evil.py", "backslash"),
        ("\\\\server\\share\\x.py", "backslash"),
        ("//server/share/x.py", "absolute path"),
        ("pkg/a\x01.py", "control character"),
        ("pkg/cafe\u0301.py", "NFC"),
    ],
)
def test_traversal_in_all_spellings(name: str, fragment: str) -> None:
    with pytest.raises(ArchiveError, match=fragment) as info:
        read_zip(_with_manifest((_info(name), b"x")), source="t.zip")
    assert "t.zip: entry" in str(info.value)


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        (stat.S_IFLNK | 0o777, "symlink"),
        (stat.S_IFIFO | 0o644, "not a regular file"),
        (stat.S_IFCHR | 0o644, "not a regular file"),
    ],
)
def test_non_regular_entries(mode: int, fragment: str) -> None:
    with pytest.raises(ArchiveError, match=fragment):
        read_zip(_with_manifest((_info("pkg/link.py", mode=mode), b"/etc/passwd")), source="t.zip")


def test_duplicates_and_case_fold_and_file_dir_clash() -> None:
    with pytest.raises(ArchiveError, match="duplicate entry 'pkg/a.py'"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns on duplicate names when writing
            data = _with_manifest(("pkg/a.py", b"1"), ("pkg/a.py", b"2"))
        read_zip(data, source="t.zip")
    with pytest.raises(ArchiveError, match="collide under case-folding"):
        read_zip(_with_manifest(("pkg/A.py", b"1"), ("pkg/a.py", b"2")), source="t.zip")
    with pytest.raises(ArchiveError, match="is a file but 'pkg/a/b.py' uses it as a directory"):
        read_zip(_with_manifest(("pkg/a", b"1"), ("pkg/a/b.py", b"2")), source="t.zip")


def test_encrypted_entry_refused() -> None:
    data = bytearray(_with_manifest(("pkg/a.py", b"x")))
    # zipfile will not write the encryption flag, so set bit 0 in the central directory entry.
    j = data.rfind(b"PK\x01\x02")
    data[j + 8] |= 0x1
    with pytest.raises(ArchiveError, match="'pkg/a.py': encrypted"):
        read_zip(bytes(data), source="t.zip")


def test_unusual_compression_refused() -> None:
    with pytest.raises(ArchiveError, match="compression method 12"):
        read_zip(_with_manifest((_info("pkg/a.py", method=zipfile.ZIP_BZIP2), b"x")), source="t.zip")


def test_manifest_missing_or_misplaced() -> None:
    with pytest.raises(ArchiveError, match="no modelmesh-package.yaml at the archive root"):
        read_zip(raw_zip([("pkg/a.py", b"")]), source="t.zip")
    with pytest.raises(ArchiveError, match="found at 'inner/modelmesh-package.yaml'") as info:
        read_zip(raw_zip([("inner/modelmesh-package.yaml", MANIFEST)]), source="t.zip")
    assert info.value.hint


def test_entry_count_cap() -> None:
    entries = [(f"pkg/m{i}.py", b"") for i in range(10)]
    with pytest.raises(ArchiveError, match="11 entries, over the cap of 5"):
        read_zip(_with_manifest(*entries), source="t.zip", limits=ArchiveLimits(max_entries=5))


def test_decompression_bomb_stopped_on_real_bytes() -> None:
    bomb = b"\0" * (4 * 1024 * 1024)
    data = _with_manifest((_info("pkg/bomb.bin"), bomb))
    assert len(data) < 20_000
    with pytest.raises(ArchiveError, match="per-file cap of 1048576"):
        read_zip(data, source="t.zip", limits=ArchiveLimits(max_file_size=1024 * 1024))
    with pytest.raises(ArchiveError, match="total cap"):
        read_zip(
            _with_manifest((_info("a.bin"), bomb[:600_000]), (_info("b.bin"), bomb[:600_000])),
            source="t.zip",
            limits=ArchiveLimits(max_total_size=1_000_000),
        )


def _patch_sizes(data: bytes, name: bytes, new_size: int) -> bytes:
    """Rewrite the uncompressed size of ``name`` in both local and central headers."""
    buf = bytearray(data)
    # local header: signature PK\3\4, uncompressed size at offset 22, name at 30
    i = buf.find(b"PK\x03\x04" + b"")
    while i != -1:
        name_len = int.from_bytes(buf[i + 26 : i + 28], "little")
        if bytes(buf[i + 30 : i + 30 + name_len]) == name:
            buf[i + 22 : i + 26] = new_size.to_bytes(4, "little")
        i = buf.find(b"PK\x03\x04", i + 4)
    j = buf.find(b"PK\x01\x02")
    while j != -1:
        name_len = int.from_bytes(buf[j + 28 : j + 30], "little")
        if bytes(buf[j + 46 : j + 46 + name_len]) == name:
            buf[j + 24 : j + 28] = new_size.to_bytes(4, "little")
        j = buf.find(b"PK\x01\x02", j + 4)
    return bytes(buf)


@pytest.mark.parametrize("claimed", [10, 10_000_000])
def test_declared_sizes_that_lie(claimed: int) -> None:
    data = _patch_sizes(_with_manifest(("pkg/a.py", b"x" * 5000)), b"pkg/a.py", claimed)
    with pytest.raises(ArchiveError, match="pkg/a.py"):
        read_zip(data, source="t.zip")


def test_garbage_is_not_a_zip() -> None:
    with pytest.raises(ArchiveError, match="not a valid zip"):
        read_zip(b"PK\x03\x04 definitely not a zip", source="t.zip")


def test_directory_reader_refuses_symlinks_and_skips_pycache(tmp_path: Path) -> None:
    (tmp_path / "modelmesh-package.yaml").write_bytes(MANIFEST)
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    assert set(read_directory(tmp_path)) == {"modelmesh-package.yaml", "pkg/a.py"}
    (tmp_path / "pkg" / "link.py").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match="'pkg/link.py' is a symlink"):
        read_directory(tmp_path)


def test_directory_reader_caps(tmp_path: Path) -> None:
    (tmp_path / "modelmesh-package.yaml").write_bytes(MANIFEST)
    (tmp_path / "big.bin").write_bytes(b"x" * 2000)
    with pytest.raises(ArchiveError, match="per-file cap"):
        read_directory(tmp_path, limits=ArchiveLimits(max_file_size=1000))


# -- regressions found by fuzzing (tests/fuzz): each was a foreign exception escaping ----------


def test_corrupt_deflate_stream_is_an_archive_format_error() -> None:
    # zlib.error is neither OSError nor ValueError: it used to escape read_zip.
    entry = RawEntry(b"modelmesh-package.yaml", b"", method=8)
    data = bytearray(build_raw_zip([entry]))
    # RawEntry(method=8) deflates b"" to b"\x03\x00"; make the block type the reserved 0b11.
    data[30 + len(entry.name)] = 0x07
    with pytest.raises(ArchiveFormatError, match="corrupt deflate data"):
        read_zip(bytes(data), source="repro.zip")


def test_version_needed_to_extract_above_6_3_is_not_a_foreign_error() -> None:
    # zipfile raised NotImplementedError("zip file version 12.7") reading the directory.
    manifest = b"name: a\n"
    data = bytearray(
        build_raw_zip([RawEntry(b"modelmesh-package.yaml", manifest, method=0)])
    )
    data[data.find(b"PK\x01\x02") + 6] = 0x7F  # version needed to extract: 12.7
    try:
        files = read_zip(bytes(data), source="repro.zip")
    except ArchiveError:
        return  # refusing it is as good as reading it; any other exception fails
    assert files["modelmesh-package.yaml"] == manifest
