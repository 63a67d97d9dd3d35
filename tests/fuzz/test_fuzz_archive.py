"""Fuzz ``read_zip`` (and the packer): only ArchiveError, and never an unsafe name out."""

from __future__ import annotations

import io
import re
import stat
import struct
import tempfile
import unicodedata
import warnings
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from modelmesh_connectors.errors import ArchiveError
from modelmesh_connectors.package.archive import (
    ArchiveLimits,
    PackageFiles,
    read_directory,
    read_zip,
)
from modelmesh_connectors.package.manifest import MANIFEST_NAME
from modelmesh_connectors.package.pack import pack_to_bytes
from tests.fuzz.contract import Outcome, run_parser
from tests.fuzz.mutations import ZIP_TOKENS, mutated
from tests.fuzz.zips import UTF8_FLAG, RawEntry, build_raw_zip

MANIFEST = (
    b"name: acme-audit\nversion: '1.0'\ndescription: d\n"
    b"connectors:\n  - {id: acme.audit.v1, type: observability, entry: 'acme.sink:Sink'}\n"
)
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
_DRIVE = re.compile(r"^[A-Za-z]:")

# -- the rules of docs/FORMAT.md §5, written from the spec (not from archive.py) ------------

_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}
_DEVICES = {"con", "prn", "aux", "nul", "conin$", "conout$"} | {
    p + d for p in ("com", "lpt") for d in "0123456789\u00b9\u00b2\u00b3"
}
_VCS = {
    ".git", ".hg", ".svn", ".bzr", "_darcs", ".gitattributes", ".gitmodules", ".hgsub",
    ".hgsubstate",
}  # fmt: skip
_CODE = (".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib", ".sl", ".pth")
ACCEPTED_EXTRAS = {0x000A, 0x5455, 0x5855, 0x7855, 0x7875, 0xCAFE, 0xD935}


def _char_ok(c: str) -> bool:
    if c == " ":
        return True
    for db in (unicodedata, unicodedata.ucd_3_2_0):
        if db.category(c) in _BAD_CATEGORIES or db.category(c) == "Zs":
            return False
    return True


def _part_ok(part: str) -> bool:
    stem = part.split(".")[0]
    return (
        part not in ("", ".", "..")
        and not any(c in part for c in '"*:<>?|\\/')
        and not part.endswith((".", " "))
        and stem.rstrip(" ").casefold() not in _DEVICES
        and re.search("~[0-9]+$", stem) is None
        and len(part.encode()) <= 255
    )


def is_safe_name(name: str) -> bool:
    """R3-R8, R10, R11 (name part) of FORMAT.md §5, for one decoded name."""
    is_dir = name.endswith("/")
    trimmed = name[:-1] if is_dir else name
    if not name or len(name.encode("utf-8", "surrogatepass")) > 1024:
        return False
    if not all(_char_ok(c) for c in name) or "\\" in name or name.startswith("/"):
        return False
    if _DRIVE.match(name):
        return False
    parts = trimmed.split("/")
    for i, part in enumerate(parts):
        nfkc = unicodedata.normalize("NFKC", part)
        if not _part_ok(part) or not _part_ok(nfkc):
            return False
        if unicodedata.normalize("NFC", part) != part:
            return False
        for key in (part.casefold(), nfkc.casefold()):
            if key in _VCS or key == "__pycache__":
                return False
            if i == len(parts) - 1 and not is_dir and key.endswith(_CODE):
                return False
        if part.casefold() == MANIFEST_NAME and trimmed != MANIFEST_NAME:
            return False
    return True


def _extras_ok(extra: bytes) -> bool:
    ids: list[int] = []
    at = 0
    while at < len(extra):
        if at + 4 > len(extra):
            return False
        header_id, size = struct.unpack_from("<HH", extra, at)
        if at + 4 + size > len(extra):
            return False
        ids.append(header_id)
        at += 4 + size
    return len(set(ids)) == len(ids) and set(ids) <= ACCEPTED_EXTRAS


def _fold(name: str) -> str:
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def check_read_zip(data: bytes, limits: ArchiveLimits | None = None) -> Outcome[PackageFiles]:
    """Read ``data``; refused with ArchiveError, or every returned file passes the rules."""
    outcome = run_parser("archive", ArchiveError, read_zip, data, source="fuzz.zip", limits=limits)
    if outcome.value is not None:
        files = outcome.value
        limits = limits or ArchiveLimits()
        assert MANIFEST_NAME in files
        assert len(files) <= limits.max_entries
        assert sum(len(v) for v in files.values()) <= limits.max_total_size
        for name, content in files.items():
            assert ".." not in name.split("/"), name
            assert not name.startswith("/"), name
            assert "\\" not in name, name
            assert is_safe_name(name), name
            assert not name.endswith("/"), name
            assert isinstance(content, bytes) and len(content) <= limits.max_file_size
        for directory in files.directories():
            assert directory not in files, f"{directory!r} is both a file and a directory"
        folded = [n.casefold() for n in files]
        assert len(set(folded)) == len(folded), "case-folding collision returned"
    return outcome


# -- entry names -----------------------------------------------------------------

segments = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "",
            "a",
            "A",
            "pkg",
            "__init__.py",
            MANIFEST_NAME,
            MANIFEST_NAME.upper(),
            "C:",
            "c:",
            "\\",
            "..\\..",
            "e\u0301",
            "\u00e9",
            "\u00df",
            "ss",
            "\u0130",
            "\u202e",
            "con",
            "a\x00b",
            "\x7f",
            "\x1b[31m",
            " ",
            "~",
            "$HOME",
            "\ufeff",
        ]
    ),
    st.text(max_size=8),
    st.from_regex(r"[a-z0-9_.-]{1,8}", fullmatch=True),
)
hostile_names = st.builds(
    lambda prefix, parts, suffix: prefix + "/".join(parts) + suffix,
    st.sampled_from(["", "", "", "/", "//", "C:/", "c:\\", "\\\\server\\share\\", "./", "../"]),
    st.lists(segments, min_size=1, max_size=4),
    st.sampled_from(["", "", "", "/"]),
)
safe_names = st.builds(
    lambda parts, suffix: "/".join(parts) + suffix,
    st.lists(
        st.sampled_from(["a", "A", "b", "pkg", "\u00e9", MANIFEST_NAME]), min_size=1, max_size=3
    ),
    st.sampled_from(["", "", "/"]),
)
# Half safe, so the deep checks (clashes, caps, kinds) run, not only the name filter.
entry_names = st.one_of(safe_names, hostile_names)
modes = st.sampled_from(
    [None, 0o100644, 0o100755, 0o040755, 0o120777, 0o010644, 0o060644, 0o140644, 0o644, 0]
)
methods = st.sampled_from(
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)


@st.composite
def zipfile_entries(draw: st.DrawFn) -> list[tuple[str, bytes, int | None, int, int]]:
    """(name, content, mode, method, flag bits); the root manifest usually among them."""
    entries = draw(
        st.lists(
            st.tuples(
                entry_names,
                st.binary(max_size=64),
                modes,
                methods,
                st.sampled_from([0, 0, 0, 0x1, 0x8, 0x40]),
            ),
            max_size=6,
        )
    )
    if draw(st.integers(min_value=0, max_value=5)):
        at = draw(st.integers(min_value=0, max_value=len(entries)))
        entries.insert(at, (MANIFEST_NAME, MANIFEST, None, zipfile.ZIP_DEFLATED, 0))
    return entries


def write_with_zipfile(entries: list[tuple[str, bytes, int | None, int, int]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is exactly what we want to write
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content, mode, method, flags in entries:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                if mode is not None:
                    info.create_system = 3
                    info.external_attr = mode << 16
                info.flag_bits |= flags
                archive.writestr(info, content)
    return buffer.getvalue()


def expected_outcome(data: bytes) -> tuple[bool, dict[str, bytes] | None]:
    """Judge an archive from what ``zipfile`` sees in it: (must refuse, files if accepted).

    Only rules stated in docs/FORMAT.md §5 are modelled, from ``zipfile``'s view plus the
    raw bytes it keeps (``orig_filename``, ``extra``, the local header at ``header_offset``).
    ``files`` is None when the contents cannot be predicted (an entry ``zipfile`` itself
    cannot read), and then only the "must refuse" half of the judgement is checked.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception:
        return True, None
    if archive.comment:
        return True, None
    nodes: dict[str, tuple[str, bool]] = {}
    names: list[tuple[str, bool]] = []
    infos = archive.infolist()
    for info in infos:
        raw_name = info.orig_filename  # before zipfile cuts it at a NUL
        if "\x00" in raw_name:
            return True, None
        if not info.flag_bits & 0x800 and not raw_name.isascii():
            return True, None  # decoded as cp437: non-ASCII without the UTF-8 flag
        if not is_safe_name(raw_name) or info.flag_bits & ~0x806:
            return True, None
        if not _extras_ok(info.extra) or info.comment:
            return True, None
        # The local header must name the entry with the same bytes.
        raw = raw_name.encode("utf-8" if info.flag_bits & 0x800 else "ascii")
        at = info.header_offset
        local_len = int.from_bytes(data[at + 26 : at + 28], "little")
        if data[at + 30 : at + 30 + local_len] != raw:
            return True, None
        is_dir = raw_name.endswith("/")
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            return True, None
        if (kind and (kind == stat.S_IFDIR) != is_dir) or mode & 0o7000:
            return True, None
        if info.external_attr & 0x10 and not is_dir:
            return True, None
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return True, None
        if is_dir and info.file_size:
            return True, None
        trimmed = raw_name[:-1] if is_dir else raw_name
        if (trimmed, is_dir) in names:
            return True, None
        names.append((trimmed, is_dir))
        parts = trimmed.split("/")
        for i in range(1, len(parts) + 1):
            node = "/".join(parts[:i])
            node_is_dir = i < len(parts) or is_dir
            seen = nodes.get(_fold(node))
            if seen is None:
                nodes[_fold(node)] = (node, node_is_dir)
            elif seen != (node, True) or not node_is_dir:
                return True, None  # case-fold collision, file/directory clash, duplicate
    if (MANIFEST_NAME, False) not in names:
        return True, None
    files: dict[str, bytes] = {}
    for info in infos:
        if not info.filename.endswith("/"):
            try:
                files[info.filename] = archive.read(info)
            except Exception:
                return False, None
    return False, files


@st.composite
def raw_entries(draw: st.DrawFn) -> RawEntry:
    """Entries ``zipfile`` cannot write: NUL and non-UTF-8 names, lying headers."""
    name = draw(
        st.one_of(
            entry_names.map(lambda n: n.encode("utf-8")),
            st.binary(max_size=12),
            st.just(MANIFEST_NAME.encode()),
        )
    )
    return RawEntry(
        name=name,
        data=draw(st.binary(max_size=64)),
        method=draw(st.sampled_from([0, 8, 8, 12, 14, 99, 1])),
        flags=draw(st.sampled_from([0, UTF8_FLAG, 0x1, 0x8, 0x20, 0x40, 0x2000])),
        create_system=draw(st.sampled_from([3, 3, 0, 11])),
        mode=draw(modes.map(lambda m: m or 0)),
        local_name=draw(st.none() | st.just(name + b"x") | st.binary(max_size=8)),
        declared_size=draw(st.none() | st.integers(min_value=0, max_value=2**32 - 1)),
        crc=draw(st.none() | st.integers(min_value=0, max_value=2**32 - 1)),
    )


limits_strategy = st.none() | st.builds(
    ArchiveLimits,
    max_entries=st.integers(min_value=0, max_value=8),
    max_file_size=st.integers(min_value=0, max_value=256),
    max_total_size=st.integers(min_value=0, max_value=512),
)

SEED_ZIPS = (
    write_with_zipfile([(MANIFEST_NAME, MANIFEST, 0o100644, zipfile.ZIP_DEFLATED, 0)]),
    write_with_zipfile(
        [
            (MANIFEST_NAME, MANIFEST, None, zipfile.ZIP_STORED, 0),
            ("acme/", b"", 0o040755, zipfile.ZIP_STORED, 0),
            ("acme/sink.py", b"class Sink: pass\n" * 8, 0o100644, zipfile.ZIP_DEFLATED, 0),
        ]
    ),
)


# -- tests -----------------------------------------------------------------------


@given(data=st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    check_read_zip(data)


@given(
    head=st.binary(max_size=64),
    body=st.binary(max_size=256),
    marker=st.sampled_from([b"PK\x03\x04", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"]),
)
def test_random_bytes_with_zip_signatures(head: bytes, body: bytes, marker: bytes) -> None:
    check_read_zip(head + marker + body)
    check_read_zip(body + marker + head)


@given(entries=zipfile_entries(), limits=limits_strategy)
@settings(suppress_health_check=SLOW)
def test_zipfile_written_archives(
    entries: list[tuple[str, bytes, int | None, int, int]], limits: ArchiveLimits | None
) -> None:
    data = write_with_zipfile(entries)
    outcome = check_read_zip(data, limits)
    must_refuse, files = expected_outcome(data)
    if must_refuse:
        assert not outcome.accepted, f"unsafe archive accepted: {[e[0] for e in entries]!r}"
    elif outcome.value is not None:
        assert files is not None and dict(outcome.value) == files
    elif limits is None and outcome.error is not None and files is not None:
        # Within the default caps nothing but the modelled rules may refuse it.
        raise AssertionError(f"valid archive refused: {outcome.error}")


@given(entries=st.lists(raw_entries(), max_size=5), comment=st.binary(max_size=8))
@settings(suppress_health_check=SLOW)
def test_raw_written_archives(entries: list[RawEntry], comment: bytes) -> None:
    data = build_raw_zip(entries, comment)
    outcome = check_read_zip(data)
    must_refuse, files = expected_outcome(data)
    if must_refuse:
        assert not outcome.accepted, f"unsafe archive accepted: {[e.name for e in entries]!r}"
    elif outcome.value is not None and files is not None:
        assert dict(outcome.value) == files


@given(
    data=mutated(
        st.builds(write_with_zipfile, zipfile_entries()), tokens=ZIP_TOKENS, others=SEED_ZIPS
    ),
    limits=limits_strategy,
)
@settings(suppress_health_check=SLOW)
def test_mutated_zipfile_archives(data: bytes, limits: ArchiveLimits | None) -> None:
    check_read_zip(data, limits)


@given(data=mutated(st.sampled_from(SEED_ZIPS), tokens=ZIP_TOKENS, others=SEED_ZIPS, max_edits=3))
def test_mutated_valid_packages(data: bytes) -> None:
    check_read_zip(data)


# -- round trip: pack, then read back ------------------------------------------------

_path_segments = st.from_regex(
    r"[a-z0-9\u00e9\u00fc\u0436][a-z0-9_.\u00e9\u00fc\u0436-]{0,7}", fullmatch=True
).filter(lambda s: is_safe_name(s) and s != MANIFEST_NAME)


@st.composite
def package_trees(draw: st.DrawFn) -> dict[str, bytes]:
    """Relative path → content of a valid package directory (manifest included)."""
    paths = draw(
        st.lists(st.lists(_path_segments, min_size=1, max_size=3).map("/".join), max_size=6)
    )
    tree: dict[str, bytes] = {MANIFEST_NAME: MANIFEST}
    for path in paths:
        parts = path.split("/")
        prefixes = {"/".join(parts[:i]) for i in range(1, len(parts))}
        # Skip a path whose directory is a file, or that is a directory of an earlier file.
        if prefixes & set(tree) or any(other.startswith(path + "/") for other in tree):
            continue
        if path.casefold() in {p.casefold() for p in tree}:
            continue
        if any(
            part in ("__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache")
            for part in parts
        ):
            continue
        tree[path] = draw(st.binary(max_size=200))
    return tree


def _write_tree(root: Path, tree: dict[str, bytes], order: list[str]) -> None:
    for rel in order:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(tree[rel])


@given(tree=package_trees(), shuffle=st.randoms(use_true_random=False))
@settings(suppress_health_check=SLOW)
def test_pack_is_deterministic_and_reads_back(tree: dict[str, bytes], shuffle: Any) -> None:
    assume(all(unicodedata.normalize("NFC", p) == p for p in tree))
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp, "first"), Path(tmp, "second")
        order = sorted(tree)
        _write_tree(first, tree, order)
        shuffle.shuffle(order)
        _write_tree(second, tree, order)  # other creation order, other mtimes
        data, filename = pack_to_bytes(first)
        again, _ = pack_to_bytes(first)
        other, _ = pack_to_bytes(second)
        assert data == again == other
        assert filename == "acme-audit-1.0.zip"
        assert dict(read_zip(data, source="packed.zip")) == tree
        assert dict(read_directory(first)) == tree
