"""Nothing a user writes can silently weaken a policy: repeated keys and a misspelled section.

Every YAML and JSON reader of the project refuses a key repeated in one mapping (after YAML
resolution: ``1``/``0x1``, ``true``/``yes``), naming the key, both lines and the file; YAML
merge keys are refused; a top-level key that looks like ``connectors`` is warned about.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from modelmesh_connectors import ConfigError, ManifestError
from modelmesh_connectors._internal.strict_yaml import (
    DuplicateKeyError,
    YamlInputError,
    load_yaml,
)
from modelmesh_connectors.bridge import load_mesh
from modelmesh_connectors.client.config import load_config, parse_config
from modelmesh_connectors.client.lockfile import LockEntry, LockFile
from modelmesh_connectors.index.envelope import JSONFormatError, strict_json
from modelmesh_connectors.package.manifest import parse_manifest

# -- the YAML reader -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ("a: 1\nb: 2\na: 3\n", "a", 3, 1),
        ("outer:\n  x: 1\n  inner:\n    y: 1\n    y: 2\n", "y", 5, 4),
        ("list:\n  - {k: 1, j: 2}\n  - k: 1\n    k: 2\n", "k", 4, 3),
        ("{a: 1, b: 2, a: 3}\n", "a", 1, 1),
        ("1: one\n0x1: also one\n", 1, 2, 1),  # equal after resolution
        ("true: a\nyes: b\n", True, 2, 1),
        ("on: a\nTrue: b\n", True, 2, 1),
        ("1: a\ntrue: b\n", True, 2, 1),  # 1 == True: one dict key
        ("'a': 1\n\"a\": 2\n", "a", 2, 1),
        ("x: !!set {a, b, a}\n", "a", 1, 1),
    ],
)
def test_yaml_duplicate_keys_name_both_lines(text: str, key: object, line: int, first: int) -> None:
    with pytest.raises(DuplicateKeyError) as info:
        load_yaml(text, source="f.yaml")
    assert (info.value.key, info.value.line, info.value.first_line) == (key, line, first)
    assert f"duplicate key {key!r} at line {line} (first at line {first})" in str(info.value)


def test_yaml_duplicate_spellings_are_named() -> None:
    with pytest.raises(DuplicateKeyError, match=r"'0x1' and '1' are the same key"):
        load_yaml("1: a\n0x1: b\n")


def test_yaml_distinct_keys_are_fine() -> None:
    assert load_yaml("a: 1\nb: {a: 2}\nc: [{a: 3}, {a: 4}]\n'1': x\n1: y\n") == {
        "a": 1,
        "b": {"a": 2},
        "c": [{"a": 3}, {"a": 4}],
        "1": "x",
        1: "y",
    }


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n<<: {a: 2}\n",  # the merged value would lose silently
        "<<: {require_signatures: false}\nrequire_signatures: true\n",
        "x:\n  <<: [{a: 1}, {b: 2}]\n",
    ],
)
def test_yaml_merge_keys_are_refused(text: str) -> None:
    with pytest.raises(YamlInputError, match=r"merge keys \('<<'\) are not allowed") as info:
        load_yaml(text, source="mesh.yaml")
    assert 'in "mesh.yaml", line' in str(info.value)


def test_quoted_merge_key_is_a_plain_string() -> None:
    assert load_yaml("'<<': 1\n") == {"<<": 1}


@pytest.mark.parametrize(
    "text", ["a: [1\n", "a: b: c\n", "a: *x\n", "a: \x07\n", "\tx: 1\n", "a: 1\n--- \nb: 2\n"]
)
def test_yaml_errors_name_the_file(text: str) -> None:
    with pytest.raises(YamlInputError) as info:
        load_yaml(text, source="conf/mesh.yaml")
    assert '"conf/mesh.yaml"' in str(info.value)
    assert "<unicode string>" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",
        # "billion laughs": a few hundred bytes that expand to 10^9 strings if aliases resolve
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ],
)
def test_yaml_aliases_are_refused_before_expansion(text: str) -> None:
    with pytest.raises(YamlInputError, match="YAML aliases are not allowed") as info:
        load_yaml(text, source="mesh.yaml")
    assert 'in "mesh.yaml", line 2' in str(info.value)


@pytest.mark.parametrize(
    "text", ['d: "0\\uD800"\n', 'd: "\\udfff"\n', '"\\uD83D": 1\n', 'd: ["x\\uDC00y"]\n']
)
def test_yaml_surrogate_escapes_are_refused(text: str) -> None:
    # No UTF-8 text can hold a lone surrogate, and libyaml refuses the escape: so do we.
    with pytest.raises(YamlInputError, match="line 1"):
        load_yaml(text, source="m.yaml")


def test_yaml_escapes_of_real_characters_still_load() -> None:
    assert load_yaml('d: "\\u00e9\\U0001F600\\uFFFD"\n') == {"d": "\u00e9\U0001F600\uFFFD"}


# -- the JSON reader (metadata, envelopes, lock file, state) -------------------------------


def test_json_duplicate_key_names_both_lines() -> None:
    text = b'{\n  "version": 1,\n  "spec": 1,\n  "version": 2\n}\n'
    with pytest.raises(JSONFormatError, match=r"duplicate key 'version' at line 4 \(first at line 2\)"):
        strict_json(text)


def test_json_duplicate_key_nested_and_on_one_line() -> None:
    with pytest.raises(JSONFormatError, match=r"duplicate key 'k' at line 3 \(first at line 2\)"):
        strict_json(b'{"a": [\n {"k": 1,\n  "k": 2}], "b": 1}')
    with pytest.raises(
        JSONFormatError, match=r"duplicate key 'a' at line 1 \(first at line 1\); columns 14 and 2"
    ):
        strict_json(b'{"a":1,"b":2,"a":3}')
    # Escapes spell the same key: JSON compares decoded strings.
    with pytest.raises(JSONFormatError, match="duplicate key 'ab'"):
        strict_json(b'{"ab": 1, "a\\u0062": 2}')


def test_json_same_key_in_sibling_objects_is_fine() -> None:
    assert strict_json(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


def _lock_text(tmp_path: Path) -> str:
    entry = LockEntry("acme-audit-log", "1.0.0", "ab" * 32, 10, "acme-audit-log", "idx", ("k",))
    path = tmp_path / "connectors.lock"
    LockFile((entry,)).write(path)
    return path.read_text()


def test_lock_file_duplicate_key_is_a_config_error(tmp_path: Path) -> None:
    text = _lock_text(tmp_path)
    assert LockFile.read(tmp_path / "connectors.lock").entries[0].sha256 == "ab" * 32
    # A second pin for the same entry: json.loads would keep the last one silently.
    doubled = text.replace('"sha256": "' + "ab" * 32 + '",', '"sha256": "' + "ab" * 32 + '",\n      "sha256": "' + "cd" * 32 + '",')
    assert doubled != text
    (tmp_path / "connectors.lock").write_text(doubled)
    with pytest.raises(ConfigError) as info:
        LockFile.read(tmp_path / "connectors.lock")
    line = doubled.splitlines().index('      "sha256": "' + "cd" * 32 + '",') + 1
    assert "connectors.lock: lock file is not valid JSON" in info.value.message
    assert f"duplicate key 'sha256' at line {line} (first at line {line - 1})" in info.value.message


# -- the manifest ----------------------------------------------------------------------------

MANIFEST = """\
name: acme-audit-log
version: 1.2.0
description: Audit log sink
connectors:
  - id: acme.audit-log.v1
    type: observability
    entry: acme_audit_log.sink:AuditLog
"""


def test_manifest_duplicate_top_level_key() -> None:
    data = (MANIFEST + "connectors:\n  - id: modelmesh.hijack.v1\n    type: observability\n"
            "    entry: acme_audit_log.sink:AuditLog\n").encode()
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, source="pkg.zip!modelmesh-package.yaml")
    assert info.value.message == (
        "pkg.zip!modelmesh-package.yaml: duplicate key 'connectors' at line 8 (first at line 4)"
    )


def test_manifest_duplicate_nested_key() -> None:
    data = (MANIFEST + "    entry: evil:Thing\n").encode()
    with pytest.raises(ManifestError, match=r"duplicate key 'entry' at line 8 \(first at line 7\)"):
        parse_manifest(data, source="m.yaml")


def test_manifest_yaml_error_names_the_archive_entry() -> None:
    with pytest.raises(ManifestError, match=r'in "pkg.zip!modelmesh-package.yaml", line 1'):
        parse_manifest(b"name: [x\n", source="pkg.zip!modelmesh-package.yaml")


# -- the configuration -----------------------------------------------------------------------


def test_config_duplicate_key_weakening_require_signatures(tmp_path: Path) -> None:
    path = tmp_path / "modelmesh.yaml"
    path.write_text(
        "providers: {}\n"
        "connectors:\n"
        "  packages: []\n"
        "  require_signatures: true\n"
        "  offline: true\n"
        "\n"
        "  require_signatures: false\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == (
        f"{path}: duplicate key 'require_signatures' at line 7 (first at line 4)"
    )
    assert info.value.hint


def test_config_duplicate_top_level_section(tmp_path: Path) -> None:
    path = tmp_path / "modelmesh.yaml"
    path.write_text("connectors:\n  offline: true\nproviders: {}\nconnectors:\n  offline: false\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'connectors' at line 4 \(first at line 1\)"):
        load_config(path)


def test_config_duplicate_nested_timeouts(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("connectors:\n  timeouts:\n    read: 5s\n    connect: 1s\n    read: 1h\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'read' at line 5 \(first at line 3\)"):
        load_config(path)


def test_config_merge_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("connectors:\n  require_signatures: true\n  <<: {require_signatures: false}\n")
    with pytest.raises(ConfigError, match=r"merge keys") as info:
        load_config(path)
    assert str(path) in info.value.message


def test_config_yaml_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("connectors:\n  packages: [a\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f'in "{path}", line' in info.value.message
    assert "<unicode string>" not in info.value.message


@pytest.mark.parametrize("key", ["connector", "Connectors", "conectors", "CONNECTORS", "connectros"])
def test_misspelled_section_is_warned(
    key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "modelmesh.yaml"
    path.write_text(f"providers: {{}}\n{key}:\n  require_signatures: true\n  packages: [./pkg]\n")
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.config"):
        cfg = load_config(path)
    assert cfg.packages == ()  # still not read: the warning is what tells the user
    [record] = [r for r in caplog.records if r.name == "modelmesh_connectors.client.config"]
    message = record.getMessage()
    assert message.startswith(f"{path}: top-level key {key!r} is not 'connectors'")
    assert "did you mean 'connectors'?" in message
    assert "no connectors are configured" in message


def test_misspelled_extra_section_beside_the_real_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.config"):
        parse_config({"connectors": {"packages": []}, "connector": {"offline": True}})
    [record] = caplog.records
    assert "top-level key 'connector' is not 'connectors'" in record.getMessage()
    assert "no connectors are configured" not in record.getMessage()


def test_flat_section_with_a_misspelled_key_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.config"):
        cfg = parse_config({"packages": ["x"], "require_signature": True}, source="flat.yaml")
    assert cfg.packages == ()
    [record] = caplog.records
    assert record.getMessage().startswith("flat.yaml: no 'connectors' section")
    assert "'require_signature' (did you mean 'require_signatures'?)" in record.getMessage()


@pytest.mark.parametrize(
    "data",
    [
        {"providers": {}, "connectors": {"packages": []}},
        {"providers": {}, "models": {}, "connections": {}, "collectors": {}},
        {"packages": [], "offline": True},
        {},
    ],
)
def test_no_warning_without_a_lookalike(data: dict[str, object], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse_config(data)
    assert caplog.records == []


def test_unknown_key_inside_the_section_stays_an_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['require_signature'\]"):
        parse_config({"connectors": {"require_signature": True}})


# -- the ModelMesh bridge reads the whole file itself ------------------------------------------


def test_bridge_refuses_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "modelmesh.yaml"
    path.write_text("providers: {}\nconnectors:\n  require_signatures: true\n  require_signatures: false\n")
    with pytest.raises(ConfigError) as info:
        load_mesh(path)
    assert info.value.message == f"{path}: duplicate key 'require_signatures' at line 4 (first at line 3)"


def test_bridge_warns_of_a_misspelled_section(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "modelmesh.yaml"
    path.write_text("connector:\n  packages: []\n")
    with caplog.at_level(logging.WARNING, logger="modelmesh_connectors.client.config"):
        load_mesh(path)
    assert any(
        r.getMessage().startswith(f"{path}: top-level key 'connector' is not 'connectors'")
        for r in caplog.records
    )


def test_state_like_json_duplicates_refused() -> None:
    # statestore reads state.json through strict_json too.
    with pytest.raises(JSONFormatError, match="duplicate key 'last_refresh'"):
        strict_json(json.dumps({"last_refresh": "x"})[:-1].encode() + b', "last_refresh": "y"}')


def test_console_script_reports_both_in_a_real_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    cli = Path(sys.executable).with_name("modelmesh-connectors")
    typo = tmp_path / "typo.yaml"
    typo.write_text("providers: {}\nconnector:\n  require_signatures: true\n  packages: [./pkg]\n")
    run = subprocess.run(
        [str(cli), "load", "--config", str(typo)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr  # still loads (nothing): the warning is the signal
    assert f"{typo}: top-level key 'connector' is not 'connectors' (did you mean 'connectors'?)" in run.stderr
    doubled = tmp_path / "doubled.yaml"
    doubled.write_text("connectors:\n  require_signatures: true\n  packages: []\n  require_signatures: false\n")
    run = subprocess.run(
        [str(cli), "load", "--config", str(doubled)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 3  # ExitCode.CONFIG
    assert run.stderr.splitlines()[0] == (
        f"error: {doubled}: duplicate key 'require_signatures' at line 4 (first at line 2)"
    )
