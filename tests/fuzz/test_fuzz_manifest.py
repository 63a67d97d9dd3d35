"""Fuzz ``parse_manifest``: only ManifestError may come out, whatever the bytes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from modelmesh_connectors.errors import ManifestError
from modelmesh_connectors.package.connector_types import ConnectorType
from modelmesh_connectors.package.ids import parse_connector_id
from modelmesh_connectors.package.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    is_normalized_name,
    parse_manifest,
)
from tests.fuzz.contract import Outcome, run_parser
from tests.fuzz.mutations import YAML_TOKENS, mutated

TOP_KEYS = ("name", "version", "description", "requires-modelmesh", "dependencies", "connectors")
CONNECTOR_KEYS = ("id", "type", "entry", "description")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

# -- strategies ------------------------------------------------------------------

names = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)
versions = st.one_of(
    st.builds(
        lambda parts: ".".join(map(str, parts)),
        st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=4),
    ),
    st.sampled_from(["1.0rc1", "2.0.0a3", "1.0.post1", "1.0.dev2", "1!2.0", "1.0+local.7"]),
).filter(lambda v: str(Version(v)) == v)
# PyYAML's emitter writes NEL, LS and PS unescaped (allow_unicode=True) and its reader then
# folds them as line breaks: a PyYAML round-trip gap, not the project's, so they are left out.
# Surrogates are no characters (UTF-8 cannot hold them): a manifest escaping one is refused.
free_text = st.text(st.characters(codec="utf-8", exclude_characters="\x85\u2028\u2029"), max_size=39)
# Starts with a letter, digit, punctuation or symbol, so it never strips to "".
texts = st.builds(str.__add__, st.characters(categories=("L", "N", "P", "S")), free_text)
connector_ids = st.builds(
    lambda ns, name, n: f"{ns}.{name}.v{n}",
    names,
    names,
    st.integers(min_value=1, max_value=10**6),
)
entries = st.builds(
    lambda mod, attr: f"{mod}:{attr}",
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8}){0,2}", fullmatch=True),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
)
connector_types = st.sampled_from([t.value for t in ConnectorType])
specifiers = st.sampled_from([">=0.1.1,<0.2", "==0.1.*", "~=0.1", ">0", "!=0.1.3"])
requirements = st.sampled_from(["httpx>=0.27", "pyyaml", "packaging>=24,<27", "a-b[c]==1"])


@st.composite
def valid_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """A manifest mapping that must parse."""
    ids = draw(st.lists(connector_ids, min_size=1, max_size=4, unique=True))
    connectors = []
    for cid in ids:
        conn = {"id": cid, "type": draw(connector_types), "entry": draw(entries)}
        if draw(st.booleans()):
            conn["description"] = draw(free_text)
        connectors.append(conn)
    doc: dict[str, Any] = {
        "name": draw(names),
        "version": draw(versions),
        "description": draw(texts),
        "connectors": connectors,
    }
    if draw(st.booleans()):
        doc["requires-modelmesh"] = draw(st.none() | specifiers)
    if draw(st.booleans()):
        doc["dependencies"] = draw(st.lists(requirements, max_size=3))
    return doc


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=12),
    st.dates(),
    st.datetimes(),
)
yaml_keys = st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.none(), st.dates())
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(yaml_keys, children, max_size=4)
    ),
    max_leaves=10,
)


def _plausible_or_random(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(plausible, yaml_values)


@st.composite
def random_typed_manifests(draw: st.DrawFn) -> Any:
    """A mapping with the real keys (and some others) holding values of random types."""
    connector = st.dictionaries(
        st.sampled_from(CONNECTOR_KEYS) | yaml_keys,
        st.one_of(connector_ids, connector_types, entries, yaml_values),
        max_size=5,
    )
    field_values: dict[str, st.SearchStrategy[Any]] = {
        "name": _plausible_or_random(names),
        "version": _plausible_or_random(versions),
        "description": _plausible_or_random(texts),
        "requires-modelmesh": _plausible_or_random(specifiers),
        "dependencies": _plausible_or_random(st.lists(requirements | yaml_values, max_size=3)),
        "connectors": _plausible_or_random(st.lists(connector | yaml_values, max_size=4)),
    }
    keys = draw(st.lists(st.sampled_from(TOP_KEYS), unique=True))
    doc: dict[Any, Any] = {key: draw(field_values[key]) for key in keys}
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        doc[draw(yaml_keys)] = draw(yaml_values)
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        return draw(yaml_values)  # not even a mapping
    return doc


def dump(doc: Any, style: dict[str, Any]) -> bytes:
    return yaml.safe_dump(doc, **style).encode("utf-8")


dump_styles = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "allow_unicode": st.booleans(),
        "sort_keys": st.booleans(),
        "explicit_start": st.booleans(),
        "canonical": st.sampled_from([False, False, False, True]),
    }
)


# -- checks ----------------------------------------------------------------------


def check_manifest(
    data: bytes, source: str = "pkg.zip!modelmesh-package.yaml"
) -> Outcome[Manifest]:
    """Parse and check the contract; on success, check the manifest's own invariants."""
    outcome = run_parser("manifest", ManifestError, parse_manifest, data, source=source)
    if outcome.error is not None:
        # The message names the file; it must not amplify the input (a few copies at most).
        assert source in str(outcome.error)
        assert len(str(outcome.error)) <= 16 * (len(data) + len(source)) + 2_000
    if outcome.value is not None:
        m = outcome.value
        assert len(data) <= MAX_MANIFEST_BYTES
        assert is_normalized_name(m.name)
        assert str(Version(m.version)) == m.version
        assert m.description and m.description == m.description.strip()
        assert m.connectors
        assert len({c.id for c in m.connectors}) == len(m.connectors)
        for c in m.connectors:
            assert str(parse_connector_id(c.id)) == c.id
            assert isinstance(c.type, ConnectorType)
            assert _MODULE.fullmatch(c.module) and c.attribute.isidentifier()
    return outcome


# -- tests -----------------------------------------------------------------------


@given(data=st.binary(max_size=4096), source=st.text(max_size=20))
def test_random_bytes(data: bytes, source: str) -> None:
    check_manifest(data, source)


@given(text=st.text(max_size=2000))
def test_random_text(text: str) -> None:
    check_manifest(text.encode("utf-8"))


@given(doc=random_typed_manifests(), style=dump_styles)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_random_typed_documents(doc: Any, style: dict[str, Any]) -> None:
    check_manifest(dump(doc, style))


@given(data=mutated(st.builds(dump, valid_manifests(), dump_styles), tokens=YAML_TOKENS))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_valid_manifests(data: bytes) -> None:
    # Token edits insert anchors/aliases, so only the contract (not message size) is held.
    outcome = run_parser("manifest", ManifestError, parse_manifest, data, source="m.yaml")
    assert outcome.error or isinstance(outcome.value, Manifest)


@given(doc=valid_manifests(), style=dump_styles)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_valid_manifest_round_trip(doc: dict[str, Any], style: dict[str, Any]) -> None:
    data = dump(doc, style)
    assume(len(data) <= MAX_MANIFEST_BYTES)
    m = parse_manifest(data, source="m.yaml")
    assert m.name == doc["name"]
    assert m.version == doc["version"]
    assert m.description == doc["description"].strip()
    assert m.requires_modelmesh == doc.get("requires-modelmesh")
    assert list(m.dependencies) == doc.get("dependencies", [])
    assert [(c.id, c.type.value, c.entry, c.description) for c in m.connectors] == [
        (c["id"], c["type"], c["entry"], c.get("description", "").strip())
        for c in doc["connectors"]
    ]


def test_date_typed_fields_are_refused_not_crashed() -> None:
    # A YAML date is the most common wrong type in hand-written manifests (version: 2024-01-02).
    outcome = check_manifest(
        dump(
            {"name": "a", "version": dt.date(2024, 1, 2), "description": "d", "connectors": []}, {}
        )
    )
    assert outcome.error is not None and "version" in str(outcome.error)
