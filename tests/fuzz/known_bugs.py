"""Parser bugs the fuzz suite found and reported, not yet fixed in ``src``.

Each entry fingerprints one bug narrowly (exact exception type, the file of the frame it
comes from, a message pattern) so the fuzz tests can step over it and keep looking for
*new* bugs, and carries the minimal reproducers that ``test_known_bugs.py`` runs, as
``xfail(strict=True)`` tests while the bug is open. When a bug is fixed its strict xfail
starts passing and the run fails: set ``open=False`` on the entry. Its reproducers then stay
as plain regression tests, and the fuzz tests reject the exception again.

``MODELMESH_FUZZ_STRICT=1`` ignores this table (every foreign exception fails the run).
"""

from __future__ import annotations

import os
import re
import tempfile
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelmesh_connectors.client.config import load_config, parse_config
from modelmesh_connectors.index.metadata import MetadataError
from modelmesh_connectors.package.ids import parse_connector_id
from modelmesh_connectors.package.manifest import parse_manifest
from modelmesh_connectors.package.requirements import parse_package_spec
from tests.fuzz.zips import RawEntry, build_raw_zip

__all__ = ["KNOWN_BUGS", "STRICT", "KnownBug", "match_known_bug"]

STRICT = os.environ.get("MODELMESH_FUZZ_STRICT", "") not in ("", "0")

_VALID_MANIFEST = (
    b"name: acme\nversion: '1.0'\ndescription: d\n"
    b"connectors:\n  - {id: acme.sink.v1, type: observability, entry: 'acme.sink:Sink'}\n"
)


@dataclass(frozen=True)
class KnownBug:
    """One reported bug.

    Attributes:
        key: Short name used in events and test IDs.
        targets: Fuzz targets that may hit it.
        exc_types: Exact exception types (subclasses do not match). A project error here
            means the bug is that error being raised at all (a round-trip defect).
        frame: Part of the path of the frame that raises it (innermost, or any if ``anywhere``).
        message: Regex searched in ``str(exc)``.
        summary: One line for the report and the xfail reason.
        reproducers: Minimal calls that raise it today.
        anywhere: Match ``frame`` against any frame of the traceback, not only the innermost.
        open: False once fixed: the fuzz tests no longer step over it, the reproducers
            become plain regression tests.
    """

    key: str
    targets: frozenset[str]
    exc_types: tuple[type[BaseException], ...]
    frame: str
    message: str
    summary: str
    reproducers: tuple[Callable[[], object], ...]
    anywhere: bool = False
    open: bool = True

    def matches(self, target: str, exc: BaseException) -> bool:
        """Tell whether ``exc``, raised while fuzzing ``target``, is this bug."""
        if not self.open or target not in self.targets or type(exc) not in self.exc_types:
            return False
        if not re.search(self.message, str(exc)):
            return False
        files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(exc.__traceback__)]
        if not files:
            return False
        candidates = files if self.anywhere else files[-1:]
        return any(self.frame in f.replace("\\", "/") for f in candidates)


def _load_config_bytes(data: bytes) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "modelmesh.yaml"
        path.write_bytes(data)
        return load_config(path)


def _zip_with_corrupt_deflate() -> bytes:
    # A deflate stream whose first block header uses the reserved block type 3.
    entry = RawEntry(b"modelmesh-package.yaml", b"", method=8)
    good = build_raw_zip([entry])
    bad = bytearray(good)
    # RawEntry(method=8) deflates b"" to b"\x03\x00"; make the block type invalid (0b11).
    start = 30 + len(entry.name)
    bad[start] = 0x07
    return bytes(bad)


def _zip_needing_version_12_7() -> bytes:
    # One stored entry; the central directory's "version needed to extract" byte says 12.7.
    data = bytearray(build_raw_zip([RawEntry(b"modelmesh-package.yaml", b"name: a\n", method=0)]))
    data[data.find(b"PK\x01\x02") + 6] = 0x7F
    return bytes(data)


def _timestamp_round_trip(expires: bytes) -> object:
    from modelmesh_connectors.index.metadata import parse_timestamp

    payload = (
        b'{"expires":"' + expires + b'","index":{"length":7,"sha256":"' + b"ab" * 32 + b'",'
        b'"version":1},"spec":1,"type":"timestamp","version":1}'
    )
    return parse_timestamp(parse_timestamp(payload).to_payload())


def _read_zip(data: bytes) -> object:
    from modelmesh_connectors.package.archive import read_zip

    return read_zip(data, source="repro.zip")


KNOWN_BUGS: tuple[KnownBug, ...] = (
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="yaml-constructor-exception",
        targets=frozenset({"manifest", "load_config"}),
        exc_types=(ValueError, KeyError, IndexError, TypeError, OverflowError),
        frame="yaml/constructor.py",
        message="",
        summary=(
            "yaml.safe_load raises ValueError/KeyError/IndexError (not YAMLError) from its "
            "scalar constructors (2001-13-45, !!int 0b, !!bool x, !!int '', ints over 4300 "
            "digits); parse_manifest and load_config catch only YAMLError"
        ),
        reproducers=(
            lambda: parse_manifest(b"name: 2001-13-45\n", source="m.yaml"),
            lambda: parse_manifest(b"name: !!int 0b\n", source="m.yaml"),
            lambda: parse_manifest(b"name: !!bool x\n", source="m.yaml"),
            lambda: parse_manifest(b"name: !!int ''\n", source="m.yaml"),
            lambda: parse_manifest(b"name: " + b"1" * 4301 + b"\n", source="m.yaml"),
            lambda: _load_config_bytes(b"connectors: {max_expired_age: 2001-02-30}\n"),
        ),
    ),
    KnownBug(
        open=False,  # found by the long run; fixed by the same change as the entry above
        key="yaml-scanner-escape",
        targets=frozenset({"manifest", "load_config"}),
        exc_types=(ValueError, OverflowError),
        frame="yaml/scanner.py",
        message="",
        summary=(
            "yaml's scanner raises ValueError ('chr() arg not in range') or OverflowError for "
            'a \\U escape beyond U+10FFFF in a double-quoted scalar ("\\U00110000")'
        ),
        reproducers=(
            lambda: parse_manifest(b'name: "\\U00110000"\n', source="m.yaml"),
            lambda: parse_manifest(b'description: "0\\U10010000"\n', source="m.yaml"),
            lambda: parse_manifest(b'name: "\\UFFFFFFFF"\n', source="m.yaml"),
            lambda: _load_config_bytes(b'connectors: {cache_dir: "\\U00110000"}\n'),
        ),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="yaml-recursion",
        targets=frozenset({"manifest", "load_config"}),
        exc_types=(RecursionError,),
        frame="/yaml/",
        message="recursion",
        summary=(
            "deeply nested YAML (b'[' * 1000, 1 KB) makes yaml's recursive composer raise "
            "RecursionError out of parse_manifest / load_config"
        ),
        reproducers=(
            lambda: parse_manifest(b"[" * 1000, source="m.yaml"),
            lambda: parse_manifest(b"{a: " * 1000, source="m.yaml"),
            lambda: _load_config_bytes(b"[" * 1000),
        ),
        anywhere=True,
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="connector-id-int-digits",
        targets=frozenset({"connector_id", "manifest"}),
        exc_types=(ValueError,),
        frame="modelmesh_connectors/ids.py",
        message="Exceeds the limit",
        summary=(
            "parse_connector_id('a.b.v' + '1' * 4301) raises plain ValueError from int() "
            "(interpreter's 4300-digit limit), not InvalidConnectorId"
        ),
        reproducers=(
            lambda: parse_connector_id("a.b.v" + "1" * 4301),
            lambda: parse_manifest(
                _VALID_MANIFEST.replace(b"acme.sink.v1", b"acme.sink.v" + b"1" * 4301),
                source="m.yaml",
            ),
        ),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="zlib-error",
        targets=frozenset({"archive"}),
        exc_types=(zlib.error,),
        frame="zipfile.py",
        message="decompressing data",
        summary=(
            "read_zip lets zlib.error escape for a corrupt deflate stream (zlib.error is not "
            "an OSError/ValueError, so the except tuple in read_zip misses it)"
        ),
        reproducers=(lambda: _read_zip(_zip_with_corrupt_deflate()),),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="expanduser-runtime-error",
        targets=frozenset({"package_spec", "config", "load_config"}),
        exc_types=(RuntimeError,),
        frame="pathlib.py",
        message="Could not determine home directory",
        summary=(
            "Path.expanduser() raises RuntimeError for '~unknown-user/...'; it escapes "
            "parse_package_spec, parse_config and load_config (cache_dir, trust_root, ... "
            "and packages entries)"
        ),
        reproducers=(
            lambda: parse_package_spec("~no-such-user-modelmesh/pkg.zip"),
            lambda: parse_config({"cache_dir": "~no-such-user-modelmesh"}),
            lambda: parse_config({"packages": ["~no-such-user-modelmesh/pkg"]}),
            lambda: _load_config_bytes(b"connectors: {cache_dir: '~no-such-user-modelmesh'}\n"),
        ),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="urlsplit-value-error",
        targets=frozenset({"package_spec", "config", "load_config"}),
        exc_types=(ValueError,),
        frame="urllib/parse.py",
        message="",
        summary=(
            "parse_package_spec('http://[#x') lets urllib's ValueError ('Invalid IPv6 URL') "
            "escape from urldefrag"
        ),
        reproducers=(
            lambda: parse_package_spec("http://[#x"),
            lambda: parse_config({"trust_root": "root.json", "packages": ["https://[::1#a"]}),
        ),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="duration-overflow",
        targets=frozenset({"config", "load_config"}),
        exc_types=(OverflowError,),
        frame="modelmesh_connectors/config.py",
        message="too large to convert to float",
        summary=(
            "parse_duration(10**400) raises OverflowError from float(); reachable from "
            "parse_config (max_expired_age, metadata_max_age, timeouts) and a 400-digit YAML int"
        ),
        reproducers=(
            lambda: parse_config({"max_expired_age": 10**400}),
            lambda: parse_config({"timeouts": {"connect": 10**400}}),
            lambda: _load_config_bytes(b"connectors:\n  metadata_max_age: 1" + b"0" * 400),
        ),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="load-config-not-utf8",
        targets=frozenset({"load_config"}),
        exc_types=(UnicodeDecodeError,),
        frame="modelmesh_connectors/config.py",
        message="codec can't decode",
        summary=(
            "load_config on a non-UTF-8 file raises UnicodeDecodeError (read_text is guarded "
            "by 'except OSError' only)"
        ),
        reproducers=(lambda: _load_config_bytes(b"connectors: {}\n\xff\n"),),
        anywhere=True,
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="zip-version-not-implemented",
        targets=frozenset({"archive"}),
        exc_types=(NotImplementedError,),
        frame="zipfile.py",
        message="zip file version",
        summary=(
            "read_zip lets NotImplementedError('zip file version 12.7') escape when a central "
            "directory entry needs a version above 6.3: zipfile.ZipFile() raises it while "
            "reading the directory, and that call only catches BadZipFile, LargeZipFile, "
            "OSError and ValueError"
        ),
        reproducers=(lambda: _read_zip(_zip_needing_version_12_7()),),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="expanduser-null-byte",
        targets=frozenset({"package_spec", "config", "load_config"}),
        exc_types=(ValueError,),
        frame="posixpath",
        message="embedded null byte",
        summary=(
            "Path.expanduser() raises ValueError('embedded null byte') for '~' followed by a "
            "NUL (the user lookup); the fixes for '~unknown-user' catch only RuntimeError, so "
            "it escapes parse_package_spec, parse_config and load_config"
        ),
        reproducers=(
            lambda: parse_package_spec("~\x00"),
            lambda: parse_config({"cache_dir": "~\x00"}),
            lambda: parse_config({"packages": ["~a\x00/pkg.zip"]}),
            lambda: _load_config_bytes(b'connectors: {cache_dir: "~\\0"}\n'),
        ),
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="format-time-short-year",
        targets=frozenset({"metadata-round-trip"}),
        exc_types=(MetadataError,),
        frame="modelmesh_connectors/metadata.py",
        message=r"expected an RFC 3339 UTC time.*got '\d{1,3}-",
        summary=(
            "parse_time accepts '0027-06-01T12:00:00Z' but format_time writes year 27 as "
            "'27-06-01T12:00:00Z' (strftime %Y is not zero-padded on glibc), which parse_time "
            "refuses: a parsed timestamp, top or root does not re-serialise to a valid file"
        ),
        reproducers=(
            lambda: _timestamp_round_trip(b"0027-06-01T12:00:00Z"),
            lambda: _timestamp_round_trip(b"0999-12-31T23:59:59Z"),
        ),
        anywhere=True,
    ),
    KnownBug(
        open=False,  # fixed in src; reproducers now run as regression tests
        key="yaml-timestamp-tag-attribute-error",
        targets=frozenset({"manifest", "load_config"}),
        exc_types=(AttributeError,),
        frame="yaml/constructor.py",
        message="groupdict",
        summary=(
            "an explicit !!timestamp tag on a scalar that is not a timestamp ('!!timestamp x') "
            "makes yaml's constructor raise AttributeError (its regex match is None); "
            "load_yaml converts ValueError/TypeError/KeyError/IndexError/OverflowError only"
        ),
        reproducers=(
            lambda: parse_manifest(b"name: !!timestamp x\n", source="m.yaml"),
            lambda: parse_manifest(b"!!timestamp", source="m.yaml"),
            lambda: _load_config_bytes(b"connectors: {max_expired_age: !!timestamp 5m}\n"),
        ),
    ),
)


def match_known_bug(target: str, exc: BaseException) -> KnownBug | None:
    """Return the known bug ``exc`` is an instance of, or None (always None when STRICT)."""
    if STRICT:
        return None
    for bug in KNOWN_BUGS:
        if bug.matches(target, exc):
            return bug
    return None
