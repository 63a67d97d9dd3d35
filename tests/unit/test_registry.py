"""ConnectorRegistry: register, get_connector, list_connectors (the seed's API)."""

from __future__ import annotations

from typing import Any

import pytest
from modelmesh.interfaces.observability import ObservabilityConnector
from modelmesh.interfaces.provider import ProviderConnector

from modelmesh_connectors import (
    ConnectorInfo,
    ConnectorRegistry,
    ConnectorType,
    ConnectorTypeError,
    DuplicateConnectorError,
    UnknownConnectorError,
)
from modelmesh_connectors.package.connector_types import InvalidConnectorType
from modelmesh_connectors.package.ids import InvalidConnectorId


class Sink(ObservabilityConnector):
    """In-memory sink for tests."""

    def emit(self, event: Any) -> None: ...
    def log(self, entry: Any) -> None: ...
    def flush(self, stats: Any) -> None: ...
    def trace(self, entry: Any) -> None: ...


class HalfProvider(ProviderConnector):
    """Leaves every abstract method unimplemented."""


class Plain:
    """Subclasses nothing."""


def test_register_and_get() -> None:
    registry = ConnectorRegistry(include_builtins=False)
    registry.register("acme.sink.v1", Sink)
    assert registry.get_connector("acme.sink.v1") is Sink
    [info] = registry.list_connectors()
    assert info == ConnectorInfo("acme.sink.v1", ConnectorType.OBSERVABILITY, "0", "In-memory sink for tests.")


def test_duplicate_id_names_both_origins() -> None:
    registry = ConnectorRegistry()
    with pytest.raises(DuplicateConnectorError, match=r"builtin modelmesh-lite.*runtime .*Sink"):
        registry.register("openai.llm.v1", Sink)
    assert registry.get_connector("openai.llm.v1").__name__ == "OpenAIProvider"


def test_invalid_id_rejected_with_reason() -> None:
    registry = ConnectorRegistry(include_builtins=False)
    with pytest.raises(InvalidConnectorId, match="lowercase"):
        registry.register("Acme.sink.v1", Sink)
    assert registry.list_connectors() == []


def test_type_inference_failure_is_clear() -> None:
    registry = ConnectorRegistry(include_builtins=False)
    with pytest.raises(ConnectorTypeError, match="subclasses no ModelMesh connector interface"):
        registry.register("acme.plain.v1", Plain)
    assert registry.list_connectors() == []


def test_explicit_type_is_checked() -> None:
    registry = ConnectorRegistry(include_builtins=False)
    with pytest.raises(ConnectorTypeError, match="declared type 'provider'"):
        registry.register("acme.sink.v1", Sink, connector_type="provider")
    with pytest.raises(ConnectorTypeError, match="abstract method"):
        registry.register("acme.half.v1", HalfProvider, connector_type=ConnectorType.PROVIDER)
    registry.register("acme.sink.v1", Sink, connector_type="observability", version="2.0")
    assert registry.list_connectors()[0].version == "2.0"


def test_unknown_id_is_keyerror_with_suggestions() -> None:
    registry = ConnectorRegistry()
    with pytest.raises(KeyError) as info:
        registry.get_connector("openai.llm.v2")
    assert isinstance(info.value, UnknownConnectorError)
    assert "did you mean openai.llm.v1" in str(info.value)


def test_list_sorted_and_filtered_by_string_or_enum() -> None:
    registry = ConnectorRegistry()
    ids = [i.id for i in registry.list_connectors()]
    assert ids == sorted(ids)
    by_str = registry.list_connectors("storage")
    by_enum = registry.list_connectors(ConnectorType.STORAGE)
    assert by_str == by_enum
    assert [i.id for i in by_str] == ["modelmesh.local-file.v1", "modelmesh.memory.v1", "modelmesh.sqlite.v1"]
    assert registry.list_connectors("discovery") == []


def test_unknown_type_string_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid types: provider, rotation") as info:
        ConnectorRegistry().list_connectors("providers")
    assert isinstance(info.value, InvalidConnectorType)


def test_instance_registration_classified_by_its_class() -> None:
    registry = ConnectorRegistry(include_builtins=False)
    sink = Sink()
    registry.register("acme.sink.v1", sink)
    assert registry.get_connector("acme.sink.v1") is sink
    assert registry.list_connectors()[0].connector_type is ConnectorType.OBSERVABILITY
