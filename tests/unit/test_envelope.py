"""DSSE envelopes: PAE, strict parsing, deterministic output, threshold counting."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmesh_connectors.errors import SignatureError
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    MAX_ENVELOPE_BYTES,
    MAX_SIGNATURES,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    JSONFormatError,
    Signature,
    canonical_json,
    pae,
    parse_envelope,
    sign,
    strict_json,
    verify_threshold,
)
from modelmesh_connectors.index.keys import PublicKey
from tests.support.builders import make_keys, raw_envelope


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_pae_matches_dsse_spec_vector() -> None:
    # Test vector from the DSSE v1 protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_utf8_bytes() -> None:
    assert pae("é", b"") == b"DSSEv1 2 \xc3\xa9 0 "


def test_sign_round_trip_and_determinism() -> None:
    a, b = make_keys(2)
    env1 = sign(ROOT_TYPE, b"payload", [a, b])
    env2 = sign(ROOT_TYPE, b"payload", [b, a])
    assert env1.to_bytes() == env2.to_bytes()  # signing order does not matter
    assert parse_envelope(env1.to_bytes()) == env1
    assert parse_envelope(env1.to_json_obj()) == env1
    assert [s.keyid for s in env1.signatures] == sorted([a.keyid, b.keyid])
    obj = json.loads(env1.to_bytes())
    assert set(obj) == {"payloadType", "payload", "signatures"}
    assert base64.b64decode(obj["payload"]) == b"payload"


def test_sign_with_same_key_twice_signs_once() -> None:
    (a,) = make_keys(1)
    assert len(sign(ROOT_TYPE, b"p", [a, a]).signatures) == 1


def test_with_signature_adds_and_replaces() -> None:
    a, b = make_keys(2)
    env = Envelope(ROOT_TYPE, b"p")
    env = env.with_signature(a)
    assert [s.keyid for s in env.signatures] == [a.keyid]
    env = env.with_signature(b).with_signature(a)
    assert sorted(s.keyid for s in env.signatures) == sorted([a.keyid, b.keyid])
    assert len(env.signatures) == 2


# -- strict parsing ----------------------------------------------------------------


def good_obj() -> dict[str, Any]:
    (a,) = make_keys(1)
    return sign(TIMESTAMP_TYPE, b"{}", [a]).to_json_obj()


def mutated(**changes: Any) -> dict[str, Any]:
    obj = good_obj()
    obj.update(changes)
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "expected a JSON object"),
        ({"payloadType": ROOT_TYPE, "payload": ""}, "expected exactly the keys"),
        ({**good_obj(), "extra": 1}, "expected exactly the keys"),
        (mutated(payloadType=""), "payloadType"),
        (mutated(payloadType=7), "payloadType"),
        (mutated(payloadType="x" * 200), "payloadType"),
        (mutated(payload="not base64!"), "base64"),
        (mutated(payload="YQ"), "base64"),  # missing padding
        (mutated(payload="YR=="), "canonical"),  # non-zero padding bits
        (mutated(payload=5), "base64 string"),
        (mutated(signatures={}), "signatures to be a list"),
        (mutated(signatures=[{"keyid": "00" * 32}]), "keys \\['keyid', 'sig'\\]"),
        (mutated(signatures=[{"keyid": "00" * 32, "sig": b64(b"x" * 64), "x": 1}]), "keyid"),
        (mutated(signatures=["sig"]), "keyid"),
        (mutated(signatures=[{"keyid": "AB" * 32, "sig": b64(b"x" * 64)}]), "64 lowercase hex"),
        (mutated(signatures=[{"keyid": "ab" * 31, "sig": b64(b"x" * 64)}]), "64 lowercase hex"),
        (mutated(signatures=[{"keyid": "ab" * 32, "sig": b64(b"x" * 63)}]), "64-byte"),
        (mutated(signatures=[{"keyid": "ab" * 32, "sig": "%%%"}]), "base64"),
    ],
)
def test_parse_rejects_malformed(obj: Any, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        parse_envelope(obj)
    if isinstance(obj, dict):
        with pytest.raises(SignatureError, match=message):
            parse_envelope(json.dumps(obj).encode())


def test_parse_rejects_too_many_signatures() -> None:
    sigs = [{"keyid": f"{i:064x}", "sig": b64(b"x" * 64)} for i in range(MAX_SIGNATURES + 1)]
    with pytest.raises(SignatureError, match=f"at most {MAX_SIGNATURES} signatures"):
        parse_envelope(mutated(signatures=sigs))


def test_parse_rejects_oversized_bytes() -> None:
    with pytest.raises(SignatureError, match="at most"):
        parse_envelope(b" " * (MAX_ENVELOPE_BYTES + 1))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"payloadType": "a", "payloadType": "b", "payload": "", "signatures": []}',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_parse_rejects_non_strict_json(data: bytes) -> None:
    with pytest.raises(SignatureError) as info:
        parse_envelope(data)
    assert info.value.__cause__ is not None


def test_unsigned_envelope_parses() -> None:
    env = parse_envelope({"payloadType": ROOT_TYPE, "payload": "", "signatures": []})
    assert env == Envelope(ROOT_TYPE, b"", ())


# -- strict JSON -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": 1.5}', "floating-point"),
        (b'{"a": 1e3}', "floating-point"),
        (b'{"a": NaN}', "non-standard constant"),
        (b'{"a": Infinity}', "non-standard constant"),
        (b'{"a": ' + b"1" * 5000 + b"}", "strict JSON"),
        (b"\xc3\x28", "UTF-8"),
    ],
)
def test_strict_json_rejects(data: bytes, message: str) -> None:
    with pytest.raises(JSONFormatError, match=message):
        strict_json(data)


@pytest.mark.parametrize(
    "data",
    [
        b"9007199254740992",
        b"-9007199254740992",
        b'{"length": 18446744073709551616}',
        b"[" * 513 + b"]" * 513,
        b'{"a":' * 513 + b"1" + b"}" * 513,
    ],
)
def test_strict_json_bounds_integers_and_depth(data: bytes) -> None:
    with pytest.raises(JSONFormatError) as info:
        strict_json(data)
    assert info.value.code == "input.json"


def test_strict_json_accepts_the_bounds() -> None:
    assert strict_json(b"[9007199254740991,-9007199254740991]") == [2**53 - 1, -(2**53 - 1)]
    assert strict_json(b"[" * 512 + b"]" * 512) is not None
    # Many containers, shallow: the opener count passes the bound, the depth walk accepts.
    assert len(strict_json(b"[" + b"{},[]," * 600 + b"1]")) == 1201
    # Openers inside strings do not nest.
    assert strict_json(b'["' + b"[" * 600 + b'"]') == ["[" * 600]


def test_strict_json_depth_found_among_many_shallow_containers() -> None:
    # Over 512 openers before the deep part: the bracket balance is computed, depth 513.
    with pytest.raises(JSONFormatError, match="nested at most 512"):
        strict_json(b"[" + b"[]," * 600 + b"[" * 512 + b"]" * 512 + b"]")
    # Closing brackets inside a string (after an escaped quote) do not hide the depth...
    with pytest.raises(JSONFormatError, match="nested at most 512"):
        strict_json(b"[" * 513 + b'"\\"]]]]"' + b"]" * 513)
    # ...and openers inside strings do not add to it.
    assert strict_json(b"[" * 512 + b'"\\"[[[[", ' * 200 + b"1" + b"]" * 512) is not None
    # An escaped backslash ends before the quote: the quote closes the string, and the
    # brackets after it count (depth 513 hidden behind '"\\\\"' and a bracket-only string).
    with pytest.raises(JSONFormatError, match="nested at most 512"):
        strict_json(b"[" * 513 + b'"\\\\", "]]]]"' + b"]" * 513)
    assert strict_json(b"[" * 512 + b'"\\\\", "[[[["' + b"]" * 512) is not None
    # Escapes of every kind, a unicode escape of a quote included, between the brackets.
    with pytest.raises(JSONFormatError, match="nested at most 512"):
        strict_json(b"[" * 513 + b'"\\u0022]]", "\\n\\/"' + b"]" * 513)


def test_canonical_json_is_sorted_compact_ascii() -> None:
    assert canonical_json({"b": 1, "a": ["é"]}) == b'{"a":["\\u00e9"],"b":1}'


# -- verify_threshold --------------------------------------------------------------


def keymap(*keys: Any) -> dict[str, PublicKey]:
    return {k.keyid: k.public for k in keys}


def test_threshold_met() -> None:
    a, b, c = make_keys(3)
    env = sign(ROOT_TYPE, b"p", [a, b])
    valid = verify_threshold(
        env,
        expected_type=ROOT_TYPE,
        keys=keymap(a, b, c),
        keyids=[a.keyid, b.keyid, c.keyid],
        threshold=2,
        what="root",
    )
    assert valid == {a.keyid, b.keyid}


def test_threshold_k_minus_one_fails() -> None:
    a, b, c = make_keys(3)
    env = sign(ROOT_TYPE, b"p", [a])
    with pytest.raises(SignatureError, match=r"root/2\.json.*at least 2.*got 1 valid"):
        verify_threshold(
            env,
            expected_type=ROOT_TYPE,
            keys=keymap(a, b, c),
            keyids=[a.keyid, b.keyid, c.keyid],
            threshold=2,
            what="root/2.json",
        )


def test_duplicate_signatures_by_one_key_count_once() -> None:
    a, b = make_keys(2)
    sig = a.sign(pae(ROOT_TYPE, b"p"))
    env = parse_envelope(raw_envelope(ROOT_TYPE, b"p", [(a.keyid, sig), (a.keyid, sig)]))
    with pytest.raises(SignatureError, match="got 1 valid"):
        verify_threshold(
            env,
            expected_type=ROOT_TYPE,
            keys=keymap(a, b),
            keyids=[a.keyid, b.keyid],
            threshold=2,
            what="root",
        )


def test_key_listed_twice_in_role_counts_once() -> None:
    a, b = make_keys(2)
    env = sign(ROOT_TYPE, b"p", [a])
    with pytest.raises(SignatureError, match="got 1 valid"):
        verify_threshold(
            env,
            expected_type=ROOT_TYPE,
            keys=keymap(a, b),
            keyids=[a.keyid, a.keyid],
            threshold=2,
            what="root",
        )


def test_unknown_and_invalid_signatures_are_ignored() -> None:
    a, stranger = make_keys(2)
    good = a.sign(pae(ROOT_TYPE, b"p"))
    bad = bytes(64)
    env = parse_envelope(
        raw_envelope(
            ROOT_TYPE,
            b"p",
            [
                (stranger.keyid, stranger.sign(pae(ROOT_TYPE, b"p"))),
                (a.keyid, bad),
                (a.keyid, good),
            ],
        )
    )
    valid = verify_threshold(
        env, expected_type=ROOT_TYPE, keys=keymap(a), keyids=[a.keyid], threshold=1, what="root"
    )
    assert valid == {a.keyid}


def test_untrusted_key_signature_does_not_count() -> None:
    a, stranger = make_keys(2)
    env = sign(ROOT_TYPE, b"p", [stranger])
    with pytest.raises(SignatureError, match="got 0 valid"):
        verify_threshold(
            env,
            expected_type=ROOT_TYPE,
            keys=keymap(a, stranger),  # known key, but not in the role
            keyids=[a.keyid],
            threshold=1,
            what="root",
        )


def test_signature_over_other_payload_type_is_invalid() -> None:
    # The type is inside PAE: re-labelling an envelope breaks its signatures.
    (a,) = make_keys(1)
    env = sign(TIMESTAMP_TYPE, b"p", [a])
    relabelled = Envelope(ROOT_TYPE, env.payload, env.signatures)
    with pytest.raises(SignatureError, match="got 0 valid"):
        verify_threshold(
            relabelled,
            expected_type=ROOT_TYPE,
            keys=keymap(a),
            keyids=[a.keyid],
            threshold=1,
            what="root",
        )


def test_key_stored_under_wrong_id_is_ignored() -> None:
    a, b = make_keys(2)
    env = parse_envelope(raw_envelope(ROOT_TYPE, b"p", [(b.keyid, a.sign(pae(ROOT_TYPE, b"p")))]))
    with pytest.raises(SignatureError, match="got 0 valid"):
        verify_threshold(
            env,
            expected_type=ROOT_TYPE,
            keys={b.keyid: a.public},  # mapping lies about the ID
            keyids=[b.keyid],
            threshold=1,
            what="root",
        )


class _Exploding(Mapping[str, PublicKey]):
    def __getitem__(self, key: str) -> PublicKey:
        raise AssertionError("signature work before the type check")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("signature work before the type check")

    def __len__(self) -> int:
        raise AssertionError("signature work before the type check")


def test_wrong_payload_type_rejected_before_signature_work() -> None:
    (a,) = make_keys(1)
    env = sign(TIMESTAMP_TYPE, b"p", [a])
    with pytest.raises(SignatureError, match=r"root/1\.json: expected payload type .*root"):
        verify_threshold(
            env,
            expected_type=ROOT_TYPE,
            keys=_Exploding(),
            keyids=[a.keyid],
            threshold=1,
            what="root/1.json",
        )


def test_unsigned_envelope_fails() -> None:
    (a,) = make_keys(1)
    with pytest.raises(SignatureError, match="got 0 valid"):
        verify_threshold(
            Envelope(INDEX_TYPE, b"p"),
            expected_type=INDEX_TYPE,
            keys=keymap(a),
            keyids=[a.keyid],
            threshold=1,
            what="index",
        )


def test_zero_threshold_is_misuse() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        verify_threshold(
            Envelope(INDEX_TYPE, b"p"),
            expected_type=INDEX_TYPE,
            keys={},
            keyids=[],
            threshold=0,
            what="index",
        )


def test_signature_dataclass_is_frozen() -> None:
    sig = Signature("ab" * 32, b"x" * 64)
    with pytest.raises(AttributeError):
        sig.keyid = "other"  # type: ignore[misc]


_TRICKY = st.text(alphabet='[]{}"\\/ ab\n\u0022', max_size=8)


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(min_value=505, max_value=520), strings=st.lists(_TRICKY, max_size=12))
def test_strict_json_depth_is_the_nesting_of_the_value(depth: int, strings: list[str]) -> None:
    # The depth check cuts strings out by splitting at quotes once escape pairs are gone:
    # whatever brackets, quotes and backslashes the strings hold, its verdict is the real
    # nesting of the value (the innermost list holds the strings).
    value: Any = list(strings)
    for _ in range(depth - 1):
        value = [value, "]", "[{"]
    text = json.dumps(value).encode()
    if depth > 512:
        with pytest.raises(JSONFormatError, match="nested at most 512"):
            strict_json(text)
    else:
        assert strict_json(text) == value
