"""Fuzz the typed metadata parsers (root, timestamp, index top, group, bin, release)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmesh_connectors.index.envelope import (
    RELEASE_TYPE,
    Envelope,
    Signature,
    parse_envelope,
)
from modelmesh_connectors.index.metadata import (
    SHARDING_LEVELS,
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    InvalidNameError,
    MetadataError,
    MetaRef,
    Release,
    ReleaseConnector,
    Timestamp,
    archive_path,
    bin_prefix,
    name_hash,
    parse_bin,
    parse_group,
    parse_index_top,
    parse_release,
    parse_root,
    parse_timestamp,
)
from tests.fuzz.contract import run_parser
from tests.fuzz.mutations import JSON_TOKENS, dumps, json_values, mutated, mutated_json, objects
from tests.support.builders import (
    KeySet,
    PublisherKeys,
    ReleaseSpec,
    build_index,
    make_keys,
    make_root,
)

# -- seeds: one valid file of every kind, from throw-away keys -----------------------------

_KEYS = KeySet.generate(root=2, index=2, timestamp=1, root_threshold=2)
_KEYS.publishers.append(PublisherKeys("acme-corp", make_keys(2), ("acme", "acme-labs"), 1))
_BUNDLE = build_index(
    _KEYS,
    [
        ReleaseSpec("acme-audit-log", "1.0.0"),
        ReleaseSpec("acme-audit-log", "1.1.0", yanked=True, yanked_reason="broken"),
        ReleaseSpec("other-pkg", "2.0"),
    ],
)


def _payload(envelope_bytes: bytes) -> bytes:
    return parse_envelope(envelope_bytes).payload


SEEDS: dict[str, tuple[Callable[..., Any], bytes]] = {
    "root": (parse_root, make_root(_KEYS).to_payload()),
    "timestamp": (parse_timestamp, _payload(_BUNDLE.timestamp)),
    "index": (parse_index_top, _payload(_BUNDLE.top)),
    "group": (parse_group, _BUNDLE.group_bytes("acme-audit-log")),
    "bin": (parse_bin, _BUNDLE.bin_bytes("acme-audit-log")),
    "release": (
        parse_release,
        _payload(_BUNDLE.files["archives/acme-audit-log/acme-audit-log-1.0.0.zip.sig"]),
    ),
}
KINDS = sorted(SEEDS)
ALL_SEED_BYTES = tuple(seed for _, seed in SEEDS.values())
# Every field name of the format, for "add a key" edits.
FIELD_NAMES = sorted(
    {
        "type",
        "spec",
        "version",
        "expires",
        "keys",
        "roles",
        "publishers",
        "keytype",
        "public",
        "keyids",
        "threshold",
        "name",
        "namespaces",
        "index",
        "sha256",
        "length",
        "groups",
        "group_chars",
        "bin_chars",
        "prefix",
        "bins",
        "packages",
        "release",
        "yanked",
        "yanked_reason",
        "file",
        "requires_modelmesh",
        "connectors",
        "id",
        "payloadType",
        "payload",
        "signatures",
        "keyid",
        "sig",
        "root",
        "timestamp",
    }
)


def check(kind: str, data: bytes) -> None:
    parser, _ = SEEDS[kind]
    outcome = run_parser("metadata", MetadataError, parser, data, f"fuzz {kind}")
    if outcome.value is not None:
        # What parses re-serialises to a payload that parses to the same object (the re-parse
        # expects no error at all: any error here is a round-trip defect).
        payload = outcome.value.to_payload()
        again = run_parser("metadata-round-trip", (), parser, payload, f"fuzz {kind} again")
        assert again.value is not None and again.value.to_payload() == payload


def test_seeds_parse() -> None:
    for kind in KINDS:
        parser, seed = SEEDS[kind]
        assert parser(seed).to_payload() == seed, kind


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.binary(max_size=1024))
def test_random_bytes(kind: str, data: bytes) -> None:
    check(kind, data)


def _right_kind_documents(seed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The right "type" and field names; each field kept or replaced by any JSON value."""
    return st.fixed_dictionaries(
        {
            k: (st.just(v) if k == "type" else st.one_of(st.just(v), json_values(3)))
            for k, v in seed.items()
        },
        optional={k: json_values(2) for k in FIELD_NAMES if k not in seed},
    )


RIGHT_KIND = {kind: _right_kind_documents(json.loads(seed)) for kind, (_, seed) in SEEDS.items()}


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_random_fields_of_the_right_kind(kind: str, data: st.DataObject) -> None:
    check(kind, dumps(data.draw(RIGHT_KIND[kind])))


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_structurally_damaged_files(kind: str, data: st.DataObject) -> None:
    seed = json.loads(SEEDS[kind][1])
    check(kind, dumps(data.draw(mutated_json(seed, keys=FIELD_NAMES, max_edits=5))))


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_byte_damaged_files(kind: str, data: st.DataObject) -> None:
    damaged = data.draw(mutated(SEEDS[kind][1], tokens=JSON_TOKENS, others=ALL_SEED_BYTES))
    check(kind, damaged)


@given(value=st.one_of(st.text(max_size=300), objects()))
def test_name_hash_random(value: Any) -> None:
    outcome = run_parser("metadata", InvalidNameError, name_hash, value)
    if outcome.value is not None:
        assert len(outcome.value) == 64


# -- round trips: random valid objects -> payload -> parse -> same payload ------------------

hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
hex2 = st.binary(min_size=1, max_size=1).map(bytes.hex)
versions = st.integers(min_value=1, max_value=2**53 - 1)  # FORMAT.md §2 integer bound
# From year 1: years below 1000 are the ones "format-time-short-year" got wrong.
times = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
)
refs = st.builds(MetaRef, hex64, st.integers(min_value=1, max_value=2**40))
names = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True)
release_versions = st.from_regex(r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,20}", fullmatch=True)
connector_ids = st.from_regex(
    r"[a-z0-9]{1,6}([-_][a-z0-9]{1,4})?(\.[a-z0-9]{1,6}){1,3}", fullmatch=True
)
connector_types = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)
printable = st.text(
    st.characters(categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=40
).filter(str.isprintable)


@st.composite
def releases(draw: st.DrawFn) -> Release:
    name, version = draw(names), draw(release_versions)
    ids = draw(st.lists(connector_ids, min_size=1, max_size=4, unique=True))
    return Release(
        name=name,
        version=version,
        file=archive_path(name, version),
        sha256=draw(hex64),
        length=draw(st.integers(min_value=1, max_value=2**40)),
        requires_modelmesh=draw(st.none() | printable),
        connectors=tuple(ReleaseConnector(i, draw(connector_types)) for i in ids),
    )


@st.composite
def group_nodes(draw: st.DrawFn) -> GroupNode:
    group_chars, bin_chars = draw(st.sampled_from(SHARDING_LEVELS))
    prefix = draw(hex2)[:group_chars]
    suffixes = draw(st.lists(hex2, max_size=5, unique=True))
    return GroupNode(prefix, {(prefix + s)[:bin_chars]: draw(refs) for s in suffixes})


@st.composite
def index_tops(draw: st.DrawFn) -> IndexTop:
    group_chars, bin_chars = draw(st.sampled_from(SHARDING_LEVELS))
    groups = draw(st.dictionaries(hex2.map(lambda p: p[:group_chars]), refs, max_size=4))
    return IndexTop(draw(versions), draw(times), groups, group_chars, bin_chars)


_SIG = Signature("ab" * 32, bytes(64))


@st.composite
def bin_nodes(draw: st.DrawFn) -> BinNode:
    first = draw(names)
    prefix = bin_prefix(first, draw(st.sampled_from([0, 2, 4])))
    packages: dict[str, tuple[BinRelease, ...]] = {}
    for name in [first, *draw(st.lists(names, max_size=3))]:
        if not name_hash(name).startswith(prefix):
            continue
        entries = []
        for version in draw(st.lists(release_versions, min_size=1, max_size=3, unique=True)):
            yanked = draw(st.booleans())
            env = Envelope(RELEASE_TYPE, draw(st.binary(max_size=40)), (_SIG,))
            entries.append(
                BinRelease(version, env, yanked, draw(st.none() | printable) if yanked else None)
            )
        packages[name] = tuple(entries)
    return BinNode(prefix, packages)


@st.composite
def roots(draw: st.DrawFn) -> Any:
    counts = [draw(st.integers(min_value=1, max_value=3)) for _ in range(3)]
    keys = KeySet.generate(
        root=counts[0],
        index=counts[1],
        timestamp=counts[2],
        root_threshold=draw(st.integers(min_value=1, max_value=counts[0])),
        index_threshold=draw(st.integers(min_value=1, max_value=counts[1])),
        timestamp_threshold=draw(st.integers(min_value=1, max_value=counts[2])),
    )
    # A key may serve several roles.
    if draw(st.booleans()):
        keys.index.append(keys.root[0])
    for i in range(draw(st.integers(min_value=0, max_value=2))):
        namespaces = draw(
            st.lists(
                st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=3, unique=True
            )
        )
        keys.publishers.append(PublisherKeys(f"pub-{i}", make_keys(1), tuple(namespaces)))
    return make_root(keys, version=draw(versions), expires=draw(times))


objects_to_payloads = {
    "root": (roots(), parse_root),
    "timestamp": (st.builds(Timestamp, versions, times, versions, refs), parse_timestamp),
    "index": (
        index_tops(),
        parse_index_top,
    ),
    "group": (group_nodes(), parse_group),
    "bin": (bin_nodes(), parse_bin),
    "release": (releases(), parse_release),
}


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(kind: str, data: st.DataObject) -> None:
    strategy, parser = objects_to_payloads[kind]
    obj = data.draw(strategy)
    payload = obj.to_payload()
    parsed: Any = parser(payload)
    assert parsed.to_payload() == payload
