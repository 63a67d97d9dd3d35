"""The shipped JSON Schemas agree with the parsers, and the committed examples validate.

Editors use the schemas to complete keys and flag typos; if a key is added to the parser but
not to the schema (or the other way round), these tests fail.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelmesh_connectors.client import config as config_module
from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.errors import ConfigError, ManifestError
from modelmesh_connectors.package import manifest as manifest_module
from modelmesh_connectors.package.connector_types import ConnectorType
from modelmesh_connectors.package.manifest import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((files("modelmesh_connectors") / "schemas" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


CONNECTORS = schema("connectors.schema.json")
PACKAGE = schema("modelmesh-package.schema.json")


def test_schemas_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["modelmesh_connectors"]
    assert "connectors.schema.json" in README and "modelmesh-package.schema.json" in README


def test_connectors_schema_has_the_parsers_keys() -> None:
    section = CONNECTORS["$defs"]["connectors"]
    assert set(section["properties"]) == config_module._TOP_KEYS
    assert set(section["properties"]["timeouts"]["properties"]) == config_module._TIMEOUT_KEYS
    assert set(section["properties"]["auth"]["additionalProperties"]["properties"]) == config_module._AUTH_KEYS
    assert section["additionalProperties"] is False


def test_package_schema_has_the_parsers_keys() -> None:
    assert set(PACKAGE["properties"]) == manifest_module._TOP_KEYS
    assert set(PACKAGE["required"]) == manifest_module._REQUIRED_TOP
    connector = PACKAGE["$defs"]["connector"]
    assert set(connector["properties"]) == manifest_module._CONNECTOR_KEYS
    # id and type always; a Python entry, a Node entry, or both (FORMAT.md §7)
    assert set(connector["required"]) == {"id", "type"}
    assert connector["anyOf"] == [{"required": ["entry"]}, {"required": ["node"]}]
    assert set(connector["required"]) | {"entry", "node"} == manifest_module._CONNECTOR_KEYS - {
        "description"
    }
    assert set(connector["properties"]["type"]["enum"]) == {t.value for t in ConnectorType}


def _readme_yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, re.S)


def _manifest_examples() -> list[tuple[str, bytes]]:
    found = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in sorted((ROOT / "index" / "sources").glob("*/modelmesh-package.yaml"))]
    found += [("README manifest", b.encode()) for b in _readme_yaml_blocks() if b.startswith("name: ")]
    walkthrough = README.split("<!-- walkthrough: publish -->")[1]
    heredoc = re.search(r"modelmesh-package\.yaml <<'EOF'\n(.*?)\nEOF\n", walkthrough, re.S)
    assert heredoc is not None
    found.append(("README walkthrough manifest", heredoc.group(1).encode()))
    assert len(found) >= 6
    return found


@pytest.mark.parametrize(("where", "data"), _manifest_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_committed_manifests_validate_against_the_schema_and_the_parser(where: str, data: bytes) -> None:
    jsonschema.validate(yaml.safe_load(data), PACKAGE)
    parse_manifest(data, source=where)


def test_readme_configuration_example_validates(tmp_path: Path) -> None:
    [example] = [b for b in _readme_yaml_blocks() if b.startswith("connectors:\n  index:")]
    # The README abbreviates a digest; the parser (rightly) wants all 64 hex characters.
    data = yaml.safe_load(example.replace("#sha256=3f2a…", "#sha256=3f2a" + "0" * 60))
    jsonschema.validate(data, CONNECTORS)
    parse_config(data, base_dir=tmp_path)
    # The schema covers every key of the example, and the example shows every key.
    assert set(data["connectors"]) == config_module._TOP_KEYS


@pytest.mark.parametrize(
    "section",
    [
        {"require_signature": True},  # typo
        {"timeouts": {"conect": "10s"}},
        {"auth": {"https://x.example": {"token": "secret"}}},
        {"retries": -1},
        {"index": "ftp://x.example/"},
        {"metadata_max_age": "5 minutes"},
    ],
)
def test_schema_and_parser_both_refuse(section: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"connectors": section}, CONNECTORS)
    with pytest.raises(ConfigError):
        parse_config({"connectors": section}, base_dir=tmp_path)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(nme="x"),
        lambda m: m.update(name="Acme_Log"),
        lambda m: m["connectors"][0].update(type="sink"),
        lambda m: m["connectors"][0].update(entry="no-colon"),
        lambda m: m["connectors"][0].update(id="acme.audit-log"),
        lambda m: m.pop("description"),
    ],
)
def test_package_schema_and_parser_both_refuse(mutate: Any) -> None:
    base = yaml.safe_load(_manifest_examples()[-1][1])
    mutate(base)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(base, PACKAGE)
    with pytest.raises(ManifestError):
        parse_manifest(yaml.safe_dump(base).encode(), source="test")
