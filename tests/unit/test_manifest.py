"""Strict manifest validation: every problem names the file, the field and what is wrong."""

from __future__ import annotations

import pytest

from modelmesh_connectors import ConnectorType, ManifestError
from modelmesh_connectors.package.manifest import parse_manifest

GOOD = b"""\
name: acme-audit-log
version: 1.2.0
description: Audit log sink for ModelMesh
requires-modelmesh: ">=0.1.1,<0.2"
dependencies: ["pyyaml>=5"]
connectors:
  - id: acme.audit-log.v1
    type: observability
    entry: acme_audit_log.sink:AuditLog
    description: Writes routing events to an append-only JSONL file
"""


def test_good_manifest() -> None:
    m = parse_manifest(GOOD, source="m.yaml")
    assert (m.name, m.version, m.requires_modelmesh) == ("acme-audit-log", "1.2.0", ">=0.1.1,<0.2")
    assert m.dependencies == ("pyyaml>=5",)
    [c] = m.connectors
    assert (c.id, c.type, c.module, c.attribute) == (
        "acme.audit-log.v1", ConnectorType.OBSERVABILITY, "acme_audit_log.sink", "AuditLog")


def _replace(old: str, new: str) -> bytes:
    assert old in GOOD.decode()
    return GOOD.decode().replace(old, new).encode()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"- a\n- b\n", "must be a mapping"),
        (b"name: [unclosed\n", "not valid YAML"),
        (b"\xff\xfe", "not UTF-8"),
        (GOOD + b"homepage: x\n", r"unknown key\(s\) \['homepage'\]"),
        (_replace("name: acme-audit-log\n", ""), r"missing required key\(s\) \['name'\]"),
        (_replace("name: acme-audit-log", "name: Acme_Audit"), "field 'name'.*not normalized"),
        (_replace("version: 1.2.0", "version: banana"), "field 'version'.*not a PEP 440"),
        (_replace("version: 1.2.0", "version: 1.2"), "field 'version'.*quoted string"),
        (_replace("version: 1.2.0", "version: 1.02.0"), "field 'version'.*not normalized"),
        (_replace('">=0.1.1,<0.2"', '"=>0.1"'), "field 'requires-modelmesh'"),
        (_replace('["pyyaml>=5"]', '["pyyaml >= = 5"]'), r"field 'dependencies\[0\]'.*PEP 508"),
        (_replace('["pyyaml>=5"]', '"pyyaml"'), "field 'dependencies': expected a list"),
        (_replace("id: acme.audit-log.v1", "id: Acme.x.v1"), r"connectors\[0\]\.id.*lowercase"),
        (_replace("type: observability", "type: sink"), r"connectors\[0\]\.type.*valid types"),
        (_replace("acme_audit_log.sink:AuditLog", "acme_audit_log.sink"), r"connectors\[0\]\.entry"),
        (_replace("acme_audit_log.sink:AuditLog", "../x:Y"), r"connectors\[0\]\.entry"),
        (_replace("    description: Writes", "    colour: red\n    description: Writes"),
         r"connectors\[0\].*unknown key"),
        (GOOD + b"  - id: acme.audit-log.v1\n    type: observability\n    entry: a.b:C\n",
         r"connectors\[1\]\.id.*duplicate"),
        (_replace("connectors:\n", "connectors: []\nx:\n"), "unknown key"),
        (b"name: a\nversion: '1'\ndescription: d\nconnectors: []\n", "non-empty list"),
        (b"name: a\nversion: '1'\ndescription: 3\nconnectors: [1]\n", "field 'description'"),
        (b"x: " + b"a" * 70000, "64 KiB"),
    ],
)
def test_bad_manifests_name_file_field_problem(data: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment) as info:
        parse_manifest(data, source="pkg.zip!/modelmesh-package.yaml")
    assert str(info.value).startswith("pkg.zip!/modelmesh-package.yaml")
    assert isinstance(info.value, ValueError)


def test_yaml_tags_are_not_constructed() -> None:
    data = b"!!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(ManifestError, match="not valid YAML"):
        parse_manifest(data, source="m")


def test_yaml_aliases_refused() -> None:
    data = b"a: &x [1, 2]\nb: *x\n"
    with pytest.raises(ManifestError, match="aliases are not allowed"):
        parse_manifest(data, source="m")


# -- regressions found by fuzzing (tests/fuzz): each was a foreign exception escaping ----------

_VALID = (
    b"name: acme\nversion: '1.0'\ndescription: d\n"
    b"connectors:\n  - {id: acme.sink.v1, type: observability, entry: 'acme.sink:Sink'}\n"
)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        # yaml's scalar constructors raise ValueError/KeyError/IndexError, not YAMLError
        (b"name: 2001-13-45\n", "invalid scalar value: ValueError"),
        (b"name: !!int 0b\n", "invalid scalar value: ValueError"),
        (b"name: !!bool x\n", "invalid scalar value: KeyError"),
        (b"name: !!int ''\n", "invalid scalar value: IndexError"),
        (b"name: " + b"1" * 4301 + b"\n", "invalid scalar value: ValueError"),
        # ... and AttributeError for an explicit !!timestamp tag on a non-timestamp
        (b"name: !!timestamp x\n", "invalid scalar value: AttributeError"),
        (b"!!timestamp", "invalid scalar value: AttributeError"),
        # the scanner: a \U escape beyond U+10FFFF (ValueError or OverflowError)
        (b'name: "\\U00110000"\n', "invalid scalar value: ValueError"),
        (b'description: "0\\U10010000"\n', "invalid scalar value: ValueError"),
        (b'name: "\\UFFFFFFFF"\n', "invalid scalar value: OverflowError"),
        # the recursive composer: RecursionError on 1 KB of nesting
        (b"[" * 1000, "nesting is too deep"),
        (b"{a: " * 1000, "nesting is too deep"),
    ],
)
def test_yaml_library_errors_become_manifest_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError, match="not valid YAML") as info:
        parse_manifest(data, source="m.yaml")
    assert fragment in str(info.value)
    assert str(info.value).startswith("m.yaml: ")


def test_connector_id_beyond_the_int_digit_limit_is_a_manifest_error() -> None:
    data = _VALID.replace(b"acme.sink.v1", b"acme.sink.v" + b"1" * 4301)
    with pytest.raises(ManifestError, match=r"field 'connectors\[0\]\.id': invalid connector ID"):
        parse_manifest(data, source="m.yaml")


def _alias_bomb(levels: int) -> bytes:
    """A few hundred bytes of YAML whose aliases expand to 10**levels list items."""
    lines = ["name:", "  - &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    lines += ["version: '1.0'", "description: d", "connectors: [1]"]
    return ("\n".join(lines) + "\n").encode()


def test_error_message_does_not_amplify_aliases() -> None:
    data = _alias_bomb(6)
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, source="m.yaml")
    assert len(str(info.value)) <= 16 * len(data) + 2_000
