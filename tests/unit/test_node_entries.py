"""Node entry points: the manifest's ``node:``, the release's ``runtimes``, Python's refusal."""

from __future__ import annotations

import json

import pytest

from modelmesh_connectors._internal import record
from modelmesh_connectors.errors import ManifestError, MissingEntryPointError
from modelmesh_connectors.index.metadata import (
    DEFAULT_RUNTIMES,
    MetadataError,
    Release,
    ReleaseConnector,
    parse_release,
)
from modelmesh_connectors.package.importer import import_package
from modelmesh_connectors.package.manifest import NodeEntry, parse_manifest
from modelmesh_connectors.package.package import package_from_bytes
from tests.support.packages import raw_zip

HEAD = """\
name: acme-js
version: 1.0.0
description: A Node connector
connectors:
  - id: acme.js-sink.v1
    type: observability
"""


def manifest(connector_lines: str, extra: str = "") -> bytes:
    return (HEAD + connector_lines + extra).encode()


def test_node_only_connector() -> None:
    m = parse_manifest(
        manifest("    node: {module: node/sink.mjs, export: Sink}\n"), source="m.yaml"
    )
    [c] = m.connectors
    assert c.node == NodeEntry("node/sink.mjs", "Sink")
    assert not c.has_python_entry
    assert c.entry == ""
    assert m.runtimes == ("node",)


def test_both_entry_points() -> None:
    m = parse_manifest(
        manifest("    entry: acme_js.sink:Sink\n    node: {module: sink.js, export: default}\n"),
        source="m.yaml",
    )
    assert m.runtimes == ("node", "python")
    assert m.connectors[0].entry == "acme_js.sink:Sink"


def test_a_python_only_manifest_is_unchanged() -> None:
    m = parse_manifest(manifest("    entry: acme_js.sink:Sink\n"), source="m.yaml")
    assert m.runtimes == DEFAULT_RUNTIMES
    assert m.connectors[0].node is None


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ("", "missing key 'entry'"),
        ("    node: node/sink.mjs\n", "expected a mapping"),
        ("    node: {module: sink.mjs}\n", "missing key"),
        ("    node: {module: sink.mjs, export: S, type: esm}\n", "unknown key"),
        ("    node: {module: ../sink.mjs, export: S}\n", "package-relative path"),
        ("    node: {module: ./sink.mjs, export: S}\n", "package-relative path"),
        ("    node: {module: /abs/sink.mjs, export: S}\n", "package-relative path"),
        ("    node: {module: 'https://x.example/s.mjs', export: S}\n", "package-relative path"),
        ("    node: {module: sink.cjs, export: S}\n", "package-relative path"),
        ("    node: {module: sink.mjs, export: 1abc}\n", "export name"),
        ("    node: {module: sink.mjs, export: a-b}\n", "export name"),
    ],
)
def test_bad_node_entries(lines: str, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment) as info:
        parse_manifest(manifest(lines), source="m.yaml")
    assert info.value.code == "package.manifest"


def test_connectors_must_agree_on_runtimes() -> None:
    data = manifest(
        "    node: {module: sink.mjs, export: S}\n",
        "  - id: acme.js-other.v1\n    type: observability\n    entry: acme_js.o:O\n",
    )
    with pytest.raises(ManifestError, match="every connector of a package needs the same"):
        parse_manifest(data, source="m.yaml")


def test_the_node_module_must_be_in_the_package() -> None:
    data = manifest("    node: {module: node/sink.mjs, export: S}\n")
    ok = raw_zip([("modelmesh-package.yaml", data), ("node/sink.mjs", b"export class S {}\n")])
    assert package_from_bytes(ok, source="ok.zip").manifest.runtimes == ("node",)
    missing = raw_zip([("modelmesh-package.yaml", data), ("node/other.mjs", b"")])
    with pytest.raises(ManifestError, match="is not a file of the package"):
        package_from_bytes(missing, source="missing.zip")


def test_python_refuses_to_import_a_node_only_package() -> None:
    data = manifest("    node: {module: sink.mjs, export: S}\n")
    pkg = package_from_bytes(
        raw_zip([("modelmesh-package.yaml", data), ("sink.mjs", b"export class S {}\n")]),
        source="js.zip",
    )
    with pytest.raises(MissingEntryPointError, match="no Python entry point") as info:
        import_package(pkg.manifest, pkg.files, pkg.sha256)
    assert info.value.code == "package.no-entry-point"


# -- the release's runtimes --------------------------------------------------------------------

RELEASE = Release(
    "acme-js",
    "1.0.0",
    "archives/acme-js/acme-js-1.0.0.zip",
    "a" * 64,
    10,
    None,
    (ReleaseConnector("acme.js-sink.v1", "observability"),),
)


def test_a_python_only_release_keeps_its_spec_1_bytes() -> None:
    assert b"runtimes" not in RELEASE.to_payload()
    assert parse_release(RELEASE.to_payload()).runtimes == ("python",)


@pytest.mark.parametrize("runtimes", [("node",), ("node", "python")])
def test_runtimes_round_trip(runtimes: tuple[str, ...]) -> None:
    release = record.replace(RELEASE, runtimes=runtimes)
    assert f'"runtimes":{list(runtimes)}'.replace("'", '"').replace(" ", "").encode() in (
        release.to_payload()
    )
    assert parse_release(release.to_payload()) == release


@pytest.mark.parametrize(
    "value",
    [[], ["python"], ["python", "node"], ["node", "node"], ["ruby"], ["Node"], "node", [1]],
)
def test_bad_runtimes_are_refused(value: object) -> None:
    obj = json.loads(RELEASE.to_payload())
    obj["runtimes"] = value
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(MetadataError, match="runtimes"):
        parse_release(payload)
