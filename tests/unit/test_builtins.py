"""Built-ins: the static table matches upstream, types are right, nothing imports eagerly."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

from modelmesh_connectors import ConnectorRegistry, ConnectorType
from modelmesh_connectors.builtins import BUILTINS
from modelmesh_connectors.package.connector_types import check_implements, classify

EXPECTED_TYPES = {
    ConnectorType.PROVIDER: 22,
    ConnectorType.SECRET_STORE: 6,
    ConnectorType.OBSERVABILITY: 6,
    ConnectorType.STORAGE: 3,
    ConnectorType.ROTATION: 1,
}


def test_table_matches_upstream_registry_exactly() -> None:
    from modelmesh.connectors import CONNECTOR_REGISTRY

    table = {b.id: b for b in BUILTINS}
    assert set(table) == set(CONNECTOR_REGISTRY)
    for cid, cls in CONNECTOR_REGISTRY.items():
        assert table[cid].load() is cls
        doc = inspect.getdoc(cls) or ""
        assert table[cid].description == doc.splitlines()[0]


@pytest.mark.parametrize("builtin", BUILTINS, ids=lambda b: b.id)
def test_every_builtin_has_its_correct_type(builtin: object) -> None:
    from modelmesh_connectors.builtins import Builtin

    assert isinstance(builtin, Builtin)
    cls = builtin.load()
    assert classify(cls) is builtin.connector_type
    check_implements(cls, builtin.connector_type, what=builtin.id)


def test_type_counts() -> None:
    counts: dict[ConnectorType, int] = {}
    for b in BUILTINS:
        counts[b.connector_type] = counts.get(b.connector_type, 0) + 1
    assert counts == EXPECTED_TYPES
    assert len(ConnectorRegistry().list_connectors()) == len(BUILTINS) == 38


def test_creating_a_registry_imports_no_connector_module() -> None:
    code = (
        "import sys, json\n"
        "from modelmesh_connectors import ConnectorRegistry\n"
        "r = ConnectorRegistry()\n"
        "infos = r.list_connectors()\n"
        "before = sorted(m for m in sys.modules if m.startswith('modelmesh.'))\n"
        "cls = r.get_connector('openai.llm.v1')\n"
        "after = sorted(m for m in sys.modules if m.startswith('modelmesh.connectors.'))\n"
        "print(json.dumps({'n': len(infos), 'before': before, 'after': after, "
        "'httpx': 'httpx' in sys.modules, 'cls': cls.__name__}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out)
    assert result["n"] == 38
    assert result["before"] == []
    assert "modelmesh.connectors.providers.openai_provider" in result["after"]
    assert result["cls"] == "OpenAIProvider"
    assert result["httpx"] is False


def test_builtin_info_is_meaningful() -> None:
    from importlib.metadata import version

    info = {i.id: i for i in ConnectorRegistry().list_connectors()}["openai.llm.v1"]
    assert info.version == version("modelmesh-lite")
    assert info.description == "Pre-shipped provider connector for the OpenAI API."
    assert info.connector_type is ConnectorType.PROVIDER
