"""Connector ID parsing."""

from __future__ import annotations

import pytest

from modelmesh_connectors.package.ids import (
    ConnectorId,
    InvalidConnectorId,
    parse_connector_id,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("openai.llm.v1", ConnectorId("openai", "llm", 1)),
        ("acme.audit-log.v12", ConnectorId("acme", "audit-log", 12)),
        ("modelmesh.stick-until-failure.v1", ConnectorId("modelmesh", "stick-until-failure", 1)),
    ],
)
def test_valid_ids_parse(value: str, expected: ConnectorId) -> None:
    assert parse_connector_id(value) == expected
    assert str(expected) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("openai.llm", "2 dot-separated part"),
        ("a.b.c.v1", "4 dot-separated"),
        ("OpenAI.llm.v1", "lowercase"),
        ("open_ai.llm.v1", "namespace 'open_ai'"),
        ("acme.-log.v1", "name '-log'"),
        ("acme.audit--log.v1", "name 'audit--log'"),
        ("acme.log.1", "version '1'"),
        ("acme.log.v0", "version 'v0'"),
        ("acme.log.v01", "version 'v01'"),
        ("", "dot-separated"),
        (42, "must be a string"),
    ],
)
def test_invalid_ids_say_what_is_wrong(value: object, fragment: str) -> None:
    with pytest.raises(InvalidConnectorId, match=fragment) as info:
        parse_connector_id(value)
    assert isinstance(info.value, ValueError)


def test_version_beyond_the_int_digit_limit_is_invalid() -> None:
    # Found by fuzzing: int() refused 4301 digits with a plain ValueError of its own.
    with pytest.raises(InvalidConnectorId, match="version"):
        parse_connector_id("a.b.v" + "1" * 4301)
