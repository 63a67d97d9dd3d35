"""Strict metadata parsers: exact keys, types, hex, times, role rules, bin paths."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from modelmesh_connectors.errors import TrustError
from modelmesh_connectors.index.envelope import parse_envelope
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    InvalidNameError,
    MetadataError,
    MetaRef,
    Release,
    ReleaseConnector,
    _plain_release,
    _read_release,
    archive_path,
    bin_prefix,
    format_time,
    group_prefix,
    name_hash,
    parse_bin,
    parse_group,
    parse_index_top,
    parse_release,
    parse_root,
    parse_time,
    parse_timestamp,
)
from tests.support.builders import (
    FAR,
    NOW,
    KeySet,
    PublisherKeys,
    make_keys,
    make_release,
    make_root,
    make_timestamp,
    make_top,
    payload_dict,
    signed_release,
    to_payload,
)


def test_metadata_error_is_trust_error() -> None:
    assert issubclass(MetadataError, TrustError)


# -- times -----------------------------------------------------------------------


def test_time_round_trip() -> None:
    when = parse_time("2027-11-25T00:00:00Z")
    assert when == datetime(2027, 11, 25, tzinfo=UTC)
    assert format_time(when) == "2027-11-25T00:00:00Z"


def test_format_time_converts_to_utc_and_truncates() -> None:
    when = datetime(2027, 1, 1, 2, 0, 0, 999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(when) == "2027-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "text",
    [
        "2027-11-25T00:00:00",
        "2027-11-25T00:00:00+00:00",
        "2027-11-25T00:00:00.5Z",
        "2027-11-25 00:00:00Z",
        "2027-11-25t00:00:00z",
        "2027-13-01T00:00:00Z",
    ],
)
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|does not match|out of range|unconverted"):
        parse_time(text)


# -- root ------------------------------------------------------------------------


def root_dict(keys: KeySet | None = None) -> dict[str, Any]:
    return payload_dict(make_root(keys or KeySet.generate(root=3, root_threshold=2)))


def test_root_round_trip() -> None:
    keys = KeySet.generate(root=3, root_threshold=2)
    keys.publishers.append(PublisherKeys("acme", make_keys(1), ("acme", "acme-labs")))
    root = make_root(keys, version=3)
    parsed = parse_root(root.to_payload())
    assert parsed == root
    assert parsed.version == 3
    assert parsed.expires == FAR.replace(microsecond=0)
    assert parsed.expires.tzinfo is not None
    assert parsed.root.threshold == 2
    assert parsed.publishers[0].namespaces == ("acme", "acme-labs")
    assert parsed.publishers[0].covers("acme.audit-log.v1")
    assert not parsed.publishers[0].covers("acmex.audit-log.v1")


def test_root_without_publishers_omits_field() -> None:
    assert "publishers" not in root_dict()


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        obj = obj[p]
    if value is _DELETE:
        del obj[last]
    else:
        obj[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("type", "timestamp", "type: expected 'root'"),
        ("spec", 2, "spec: expected spec version 1"),
        ("spec", True, "spec: expected an integer, got boolean"),
        ("version", True, "version: expected an integer, got boolean true"),
        ("version", 0, "version: expected an integer >= 1, got 0"),
        ("version", -1, "version"),
        ("version", "2", "version: expected an integer, got str"),
        ("expires", "2027-01-01", "expires"),
        ("expires", 5, "expires"),
        ("extra", 1, r"unknown field\(s\) \['extra'\]"),
        ("version", _DELETE, r"missing field\(s\) \['version'\]"),
        ("roles.mirror", {"keyids": [], "threshold": 1}, "unknown field"),
        ("roles.index", _DELETE, "missing field"),
        ("roles.root.threshold", 0, "roles.root.threshold: expected an integer >= 1"),
        ("roles.root.threshold", 4, "between 1 and 3"),
        ("roles.root.threshold", True, "boolean"),
        ("roles.root.keyids", [], "non-empty list"),
        ("roles.root.keyids", "ab", "expected a list"),
        ("roles.index.keyids", ["ab" * 32], "is not in 'keys'"),
        ("roles.index.keyids", ["AB" * 32], "64 lowercase hex"),
        ("roles.root.extra", 1, "unknown field"),
        ("keys", [], "keys: expected an object"),
        ("publishers", {}, "publishers: expected a list"),
    ],
)
def test_root_rejects(path: str, value: Any, message: str) -> None:
    obj = root_dict()
    _set(obj, path, value)
    with pytest.raises(MetadataError, match=message) as info:
        parse_root(to_payload(obj), "root/2.json")
    assert str(info.value).startswith("root/2.json: ")


def test_root_rejects_key_listed_twice_in_role() -> None:
    obj = root_dict()
    kid = obj["roles"]["root"]["keyids"][0]
    obj["roles"]["root"]["keyids"] = [kid, kid]
    obj["roles"]["root"]["threshold"] = 2
    with pytest.raises(MetadataError, match="listed twice"):
        parse_root(to_payload(obj))


def test_root_rejects_keyid_that_is_not_hash_of_key() -> None:
    obj = root_dict()
    _, entry = next(iter(obj["keys"].items()))
    other = make_keys(1)[0]
    # Same key under a second, made-up ID: would count twice toward a threshold.
    obj["keys"][other.keyid] = dict(entry)
    with pytest.raises(MetadataError, match="is not the SHA-256 of its key"):
        parse_root(to_payload(obj))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"keytype": "rsa", "public": "00" * 32}, "keytype: expected 'ed25519'"),
        ({"keytype": "ed25519", "public": "00" * 31}, "64 lowercase hex"),
        ({"keytype": "ed25519", "public": 5}, "64 lowercase hex"),
        ({"keytype": "ed25519"}, "missing field"),
        ({"keytype": "ed25519", "public": "00" * 32, "scheme": "x"}, "unknown field"),
    ],
)
def test_root_rejects_malformed_key(entry: dict[str, Any], message: str) -> None:
    obj = root_dict()
    kid = next(iter(obj["keys"]))
    obj["keys"][kid] = entry
    with pytest.raises(MetadataError, match=message):
        parse_root(to_payload(obj))


@pytest.mark.parametrize(
    "public",
    [
        "0100000000000000000000000000000000000000000000000000000000000000",  # identity
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    ],
)
def test_root_rejects_small_order_key(public: str) -> None:
    obj = root_dict()
    kid = next(iter(obj["keys"]))
    del obj["keys"][kid]
    new_kid = hashlib.sha256(bytes.fromhex(public)).hexdigest()
    obj["keys"][new_kid] = {"keytype": "ed25519", "public": public}
    for role in obj["roles"].values():
        role["keyids"] = [new_kid if k == kid else k for k in role["keyids"]]
    with pytest.raises(MetadataError, match="small order"):
        parse_root(to_payload(obj))


def test_root_rejects_keyid_not_hex() -> None:
    obj = root_dict()
    obj["keys"]["nothex"] = {"keytype": "ed25519", "public": "00" * 32}
    with pytest.raises(MetadataError, match="64 lowercase hex"):
        parse_root(to_payload(obj))


def publisher_root_dict() -> dict[str, Any]:
    keys = KeySet.generate()
    keys.publishers.append(PublisherKeys("acme", make_keys(2), ("acme",), threshold=1))
    return payload_dict(make_root(keys))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("namespaces", [], "non-empty list"),
        ("namespaces", ["acme", "acme"], "listed twice"),
        ("namespaces", ["acme.sub"], "connector namespace"),
        ("namespaces", [""], "connector namespace"),
        ("namespaces", ["*"], "connector namespace"),
        ("threshold", 3, "between 1 and 2"),
        ("name", "", "publisher name"),
        ("keyids", ["ab" * 32], "not in 'keys'"),
        ("extra", 1, "unknown field"),
    ],
)
def test_root_rejects_bad_publisher(field: str, value: Any, message: str) -> None:
    obj = publisher_root_dict()
    obj["publishers"][0][field] = value
    with pytest.raises(MetadataError, match=message):
        parse_root(to_payload(obj))


def test_root_rejects_duplicate_publisher_name() -> None:
    obj = publisher_root_dict()
    obj["publishers"].append(dict(obj["publishers"][0]))
    with pytest.raises(MetadataError, match="used twice"):
        parse_root(to_payload(obj))


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"type": "root", "type": "root"}',
        b'{"type": "root", "version": 1.0}',
    ],
)
def test_root_rejects_bad_json(payload: bytes) -> None:
    with pytest.raises(MetadataError) as info:
        parse_root(payload)
    assert "root" in str(info.value)


# -- timestamp and top -------------------------------------------------------------


def test_timestamp_round_trip() -> None:
    ts = make_timestamp(b"top bytes", version=17, index_version=12, expires=NOW)
    parsed = parse_timestamp(ts.to_payload())
    assert parsed == ts
    assert parsed.index == MetaRef(hashlib.sha256(b"top bytes").hexdigest(), 9)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("index.sha256", "AB" * 32, "index.sha256: expected 64 lowercase hex"),
        ("index.sha256", "ab" * 31, "64 lowercase hex"),
        ("index.length", 0, "index.length: expected an integer >= 1"),
        ("index.length", False, "boolean"),
        ("index.version", 0, "index.version"),
        ("index.extra", 1, "unknown field"),
        ("type", "index", "type: expected 'timestamp'"),
        ("extra", None, "unknown field"),
    ],
)
def test_timestamp_rejects(path: str, value: Any, message: str) -> None:
    obj = payload_dict(make_timestamp(b"top"))
    _set(obj, path, value)
    with pytest.raises(MetadataError, match=message):
        parse_timestamp(to_payload(obj))


@pytest.mark.parametrize(("level", "prefix"), [((0, 0), ""), ((0, 2), ""), ((2, 4), "3f")])
def test_index_top_round_trip(level: tuple[int, int], prefix: str) -> None:
    top = make_top(version=12, groups={prefix: MetaRef("ab" * 32, 5120)}, level=level)
    assert parse_index_top(top.to_payload()) == top
    assert json.loads(top.to_payload())["group_chars"] == level[0]
    assert json.loads(top.to_payload())["bin_chars"] == level[1]


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"3F": {"sha256": "ab" * 32, "length": 1}}, "groups: expected a prefix of 2"),
        ({"3": {"sha256": "ab" * 32, "length": 1}}, "groups: expected a prefix of 2"),
        ({"": {"sha256": "ab" * 32, "length": 1}}, "groups: expected a prefix of 2"),
        ({"3f": {"sha256": "ab" * 32}}, "missing field"),
        ({"3f": {"sha256": "ab" * 32, "length": 1, "x": 1}}, "unknown field"),
        ([], "groups: expected an object"),
    ],
)
def test_index_top_rejects(groups: Any, message: str) -> None:
    obj = payload_dict(make_top(level=(2, 4)))
    obj["groups"] = groups
    with pytest.raises(MetadataError, match=message):
        parse_index_top(to_payload(obj))


# -- nodes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "level_message"),
    [
        ((2, 2), r"expected one of \(0, 0\), \(0, 2\), \(2, 4\), got \(2, 2\)"),
        ((4, 4), "got \\(4, 4\\)"),
        ((-1, 0), "group_chars: expected an integer >= 0"),
        ((0, True), "bin_chars: expected an integer"),
        ((0, "2"), "bin_chars: expected an integer"),
    ],
)
def test_index_top_rejects_a_level_not_allowed(level: Any, level_message: str) -> None:
    obj = payload_dict(make_top())
    obj["group_chars"], obj["bin_chars"] = level
    with pytest.raises(MetadataError, match=level_message):
        parse_index_top(to_payload(obj))


def test_index_top_of_a_single_group_has_only_the_empty_prefix() -> None:
    obj = payload_dict(make_top(level=(0, 2)))
    obj["groups"] = {"3f": {"sha256": "ab" * 32, "length": 1}}
    with pytest.raises(MetadataError, match="groups: expected a prefix of 0 lowercase hex"):
        parse_index_top(to_payload(obj))


@pytest.mark.parametrize(("gp", "bp"), [("3f", "3fa2"), ("", "3f"), ("", "")])
def test_group_round_trip_and_checks(gp: str, bp: str) -> None:
    group = GroupNode(gp, {bp: MetaRef("ab" * 32, 900)})
    assert parse_group(group.to_payload()) == group
    bad = GroupNode("3f", {"40a2": MetaRef("ab" * 32, 900)}).to_payload()
    with pytest.raises(MetadataError, match="does not start with group prefix"):
        parse_group(bad)
    with pytest.raises(MetadataError, match="type: expected 'group'"):
        parse_group(json.dumps({"type": "bin", "prefix": "3f", "bins": {}}).encode())


def make_bin(name: str = "acme-audit-log", chars: int = 4, **entry: Any) -> BinNode:
    env = signed_release(make_release(name), make_keys(1))
    return BinNode(bin_prefix(name, chars), {name: (BinRelease("1.0.0", env, **entry),)})


@pytest.mark.parametrize("chars", [0, 2, 4])
def test_bin_round_trip(chars: int) -> None:
    node = make_bin(chars=chars, yanked=True, yanked_reason="CVE-2026-1")
    assert parse_bin(node.to_payload()) == node


@pytest.mark.parametrize("prefix", ["3", "3fa", "3fa2b", "3FA2", 7, None])
def test_bin_rejects_a_prefix_of_no_level(prefix: Any) -> None:
    obj = bin_dict()
    obj["prefix"] = prefix
    with pytest.raises(MetadataError, match="prefix: expected a prefix of 0 or 2 or 4"):
        parse_bin(json.dumps(obj).encode())


def bin_dict() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(make_bin().to_payload())
    return result


def entry_of(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = obj["packages"]["acme-audit-log"][0]
    return result


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("yanked", 0, "yanked: expected true or false"),
        ("yanked_reason", "why", "expected null for a release that is not yanked"),
        ("yanked_reason", 5, "yanked_reason"),
        ("version", "../x", "a version"),
        ("version", "", "a version"),
        ("release", {"payloadType": "x"}, "release: envelope"),
        ("release", "x", "release: expected an object"),
        ("extra", 1, "unknown field"),
    ],
)
def test_bin_rejects_bad_entry(field: str, value: Any, message: str) -> None:
    obj = bin_dict()
    entry_of(obj)[field] = value
    with pytest.raises(MetadataError, match=message):
        parse_bin(json.dumps(obj).encode())


def test_bin_rejects_package_in_wrong_bin() -> None:
    obj = bin_dict()
    obj["packages"]["other-package"] = obj["packages"].pop("acme-audit-log")
    assert bin_prefix("other-package", 4) != obj["prefix"]
    with pytest.raises(MetadataError, match="does not start with bin prefix"):
        parse_bin(json.dumps(obj).encode())


def test_bin_rejects_unnormalized_name_and_duplicate_version() -> None:
    obj = bin_dict()
    obj["packages"]["Acme"] = obj["packages"]["acme-audit-log"]
    with pytest.raises(MetadataError, match="package name"):
        parse_bin(json.dumps(obj).encode())
    obj = bin_dict()
    entries = obj["packages"]["acme-audit-log"]
    entries.append(dict(entries[0]))
    with pytest.raises(MetadataError, match="listed twice"):
        parse_bin(json.dumps(obj).encode())


def test_bin_rejects_empty_release_list() -> None:
    obj = bin_dict()
    obj["packages"]["acme-audit-log"] = []
    with pytest.raises(MetadataError, match="non-empty list"):
        parse_bin(json.dumps(obj).encode())


# -- release ---------------------------------------------------------------------


def test_release_round_trip() -> None:
    release = make_release(connectors=[("acme.a.v1", "provider"), ("acme.b.v2", "secret_store")])
    assert parse_release(release.to_payload()) == release
    assert [c.namespace for c in release.connectors] == ["acme", "acme"]


def release_dict(**changes: Any) -> dict[str, Any]:
    obj = payload_dict(make_release())
    obj.update(changes)
    return obj


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"file": "archives/other/other-1.0.0.zip"}, "file: expected"),
        ({"file": "../../etc/passwd"}, "file: expected"),
        ({"name": "Acme"}, "normalized package name"),
        ({"version": "1.0/../../x"}, "a version"),
        ({"length": 0}, "length"),
        ({"length": True}, "boolean"),
        ({"sha256": "00"}, "64 lowercase hex"),
        ({"connectors": []}, "non-empty list"),
        ({"connectors": [{"id": "noseparator", "type": "provider"}]}, "connector ID"),
        ({"connectors": [{"id": "Acme.x.v1", "type": "provider"}]}, "connector ID"),
        ({"connectors": [{"id": "acme.x.v1", "type": "Provider"}]}, "connector type"),
        ({"connectors": [{"id": "acme.x.v1"}]}, "missing field"),
        (
            {"connectors": [{"id": "acme.x.v1", "type": "a"}, {"id": "acme.x.v1", "type": "a"}]},
            "listed twice",
        ),
        ({"requires_modelmesh": 5}, "version specifier"),
        ({"requires_modelmesh": ""}, "requires_modelmesh"),
        ({"spec": 2}, "spec"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_release_rejects(changes: dict[str, Any], message: str) -> None:
    obj = release_dict(**changes)
    with pytest.raises(MetadataError, match=message):
        parse_release(to_payload(obj))


def test_release_requires_modelmesh_may_be_null() -> None:
    release = make_release(requires_modelmesh=None)
    assert parse_release(release.to_payload()).requires_modelmesh is None


def test_signed_release_envelope_payload_parses() -> None:
    env = signed_release(make_release(), make_keys(1))
    assert parse_release(parse_envelope(env.to_bytes()).payload).name == "acme-audit-log"


# -- bin path helpers ----------------------------------------------------------------


def test_bin_path_helpers() -> None:
    h = hashlib.sha256(b"acme-audit-log").hexdigest()
    assert name_hash("acme-audit-log") == h
    assert group_prefix("acme-audit-log", 2) == h[:2]
    assert bin_prefix("acme-audit-log", 4) == h[:4]
    assert group_prefix("acme-audit-log", 0) == bin_prefix("acme-audit-log", 0) == ""
    assert bin_prefix("acme-audit-log", 2) == h[:2]
    assert archive_path("a", "1.0") == "archives/a/a-1.0.zip"


@pytest.mark.parametrize("name", ["", "Acme", "acme_audit", "acme--x", "-acme", "acme-", "a" * 201])
def test_name_hash_rejects_unnormalized(name: str) -> None:
    with pytest.raises(InvalidNameError, match="package name"):
        name_hash(name)


@pytest.mark.parametrize("expires", ["0027-06-01T12:00:00Z", "0999-12-31T23:59:59Z"])
def test_years_before_1000_round_trip(expires: str) -> None:
    # Found by fuzzing: strftime("%Y") does not zero-pad on glibc, so year 27 was written as
    # "27-06-01T12:00:00Z", which parse_time refuses.
    payload = (
        b'{"expires":"'
        + expires.encode()
        + b'","index":{"length":7,"sha256":"'
        + b"ab" * 32
        + b'",'
        b'"version":1},"spec":1,"type":"timestamp","version":1}'
    )
    parsed = parse_timestamp(payload)
    again = parse_timestamp(parsed.to_payload())
    assert again == parsed
    assert format_time(again.expires) == expires


# -- the release fast path reads exactly what the field reader reads -------------------------

_JSON_ODDITIES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    -1,
    2**53,
    "",
    "x",
    "X",
    "a\nb",
    "1.0.0",
    "acme.audit.v1",
    "a" * 65,
    "a" * 201,
    "0" * 64,
    "f" * 63,
    "F" * 64,
    [],
    {},
    ["x"],
]


def _release_obj() -> dict[str, Any]:
    payload = Release(
        name="acme-audit",
        version="1.2.0",
        file="archives/acme-audit/acme-audit-1.2.0.zip",
        sha256="ab" * 32,
        length=123,
        requires_modelmesh=">=0.4",
        connectors=(ReleaseConnector("acme.audit.v1", "observability"),),
    ).to_payload()
    obj: dict[str, Any] = json.loads(payload)
    return obj


def _mutations() -> list[dict[str, Any]]:
    base = _release_obj()
    out = [base]
    for key in base:
        for value in _JSON_ODDITIES:
            out.append({**base, key: value})
        out.append({k: v for k, v in base.items() if k != key})
    out.append({**base, "extra": 1})
    out.append({**base, "runtimes": ["node", "python"]})
    out.append({**base, "requires_modelmesh": None})
    out.append({**base, "file": "archives/acme-audit/acme-audit-1.2.1.zip"})
    connector = base["connectors"][0]
    for connectors in (
        [connector, connector],  # an ID listed twice
        [connector, {"id": "acme.other.v1", "type": "observability"}],
        [{**connector, "extra": 1}],
        [{"id": connector["id"]}],
        [{"id": "acme", "type": "observability"}],
        [{"id": connector["id"], "type": "Bad"}],
        [{"id": connector["id"], "type": "a" * 65}],
        [{"id": "a." + "b" * 199, "type": "observability"}],
        [{"id": 5, "type": "observability"}],
        ["acme.audit.v1"],
    ):
        out.append({**base, "connectors": connectors})
    return out


def test_the_release_fast_path_accepts_only_what_the_field_reader_accepts() -> None:
    # parse_release takes _plain_release's answer when it has one: a fast path that accepted
    # one payload the field reader refuses (or read it otherwise) would let two clients
    # read one signed release two ways.
    accepted = 0
    for obj in _mutations():
        fast = _plain_release(obj)
        if fast is None:
            continue
        accepted += 1
        assert _read_release(obj, "release") == fast, obj
    assert _plain_release(_release_obj()) is not None  # the fast path is really taken
    assert accepted > 1
