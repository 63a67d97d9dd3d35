"""Strategies that damage valid inputs: byte-level edits and JSON-tree edits.

Fuzzing from valid inputs reaches the deep checks (a random byte string rarely gets past
"not a zip"); the edits are the ones that break parsers in practice: bit flips, length
fields set to extremes, truncation, splicing two files, inserting format tokens.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "JSON_TOKENS",
    "YAML_TOKENS",
    "ZIP_TOKENS",
    "dumps",
    "json_values",
    "mutated",
    "mutated_json",
    "objects",
]

ZIP_TOKENS: tuple[bytes, ...] = (
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"PK\x06\x07",
    b"PK\x07\x08",
    b"\xff\xff\xff\xff",
    b"\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x08\x00",  # deflate
    b"\x0c\x00",  # bzip2
    b"\x0e\x00",  # lzma
    b"\x63\x00",  # AES
    b"\x01\x00",  # encrypted flag
    b"\x00\x08",  # UTF-8 flag
    b"../",
    b"/",
    b"\\",
    b"C:",
    b"\x00",
)

YAML_TOKENS: tuple[bytes, ...] = (
    b"&a ",
    b"*a",
    b"<<: ",
    b"? ",
    b"!!binary ",
    b"!!set ",
    b"!!omap ",
    b"!!timestamp ",
    b"!!int ",
    b"!!float ",
    b"!!bool ",
    b"!!str ",
    b"!!python/object/apply:os.system ",
    b"!custom ",
    b"2001-13-45",
    b"2001-02-30 25:61:61",
    b"0b",
    b"0x",
    b"1:70",
    b"_",
    b".nan",
    b"-.inf",
    b"~",
    b"null",
    b"yes",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b": ",
    b"- ",
    b"\n",
    b"\n  ",
    b"\t",
    b"'",
    b'"',
    b"|",
    b">-",
    b"#",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"%TAG ! tag:x,2000:\n",
    b"\xef\xbb\xbf",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\x00",
    b"\xff",
    b"1" * 4400,
    b"[" * 1200,
    b"acme.sink.v0",
    b"acme.sink.v" + b"9" * 40,
    b"observability",
    b"x.y:Z",
)

JSON_TOKENS: tuple[bytes, ...] = (
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-0",
    b"1e9",
    b"1.5",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00",
    b"\\u0041",
    b"\\",
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"9" * 4400,
    b"[" * 1200,
    b'"type":"root",',
    b'"type":',
    b'"keyid":',
    b'"sig":',
    b'"payload":',
    b'"payloadType":',
    b'"signatures":[],',
    b"====",
    b"A===",
    b"AB==",
    b"ABC=",
    b"2027-13-40T25:61:61Z",
    b"0000-00-00T00:00:00Z",
    b"9999-12-31T23:59:59Z",
)

_INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x2F, 0x5C, 0x2E, 0x0A, 0x22)
_INTERESTING_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


@functools.cache
def objects(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Python values of many types, nested: what a caller or a YAML file can hand over."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.binary(max_size=16),
        st.dates(),
        st.builds(pow, st.just(10), st.integers(min_value=300, max_value=400)),  # float() overflows
        st.just(float("nan")),
        st.builds(object),
        st.just(...),
    )
    hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(hashable, children, max_size=4),
            st.frozensets(hashable, max_size=3),
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def json_values(max_leaves: int = 12, *, floats: bool = True) -> st.SearchStrategy[Any]:
    """Values ``json.dumps`` can write (floats optional: the strict codec refuses them)."""
    scalars: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        # The format's integer bound (FORMAT.md §2); beyond it see test_strict_json_bounds_*.
        st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1),
        st.text(max_size=30),
        st.sampled_from(
            ["", "root", "timestamp", "index", "group", "bin", "release", "ed25519", "a" * 64]
        ),
    ]
    if floats:
        scalars.append(st.floats(allow_nan=False, allow_infinity=False))
    return st.recursive(
        st.one_of(scalars),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=12), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def mutated(
    draw: st.DrawFn,
    base: bytes | st.SearchStrategy[bytes],
    *,
    tokens: Sequence[bytes] = (),
    others: Sequence[bytes] = (),
    max_edits: int = 6,
) -> bytes:
    """Apply 1..``max_edits`` random edits to ``base``.

    Args:
        base: The bytes to damage (or a strategy for them).
        tokens: Format tokens worth inserting or overwriting with.
        others: Other valid samples to splice with.
        max_edits: Most edits applied.

    Returns:
        The damaged bytes (possibly equal to ``base`` when edits cancel out).
    """
    data = bytearray(draw(base) if isinstance(base, st.SearchStrategy) else base)
    edits = ["flip", "set", "delete", "insert", "duplicate", "truncate", "int"]
    if tokens:
        edits += ["token", "token"]
    if others:
        edits.append("splice")
    for _ in range(draw(st.integers(min_value=1, max_value=max_edits))):
        edit = draw(st.sampled_from(edits))
        pos = draw(st.integers(min_value=0, max_value=len(data)))
        if edit == "flip" and data:
            pos = min(pos, len(data) - 1)
            data[pos] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif edit == "set" and data:
            pos = min(pos, len(data) - 1)
            data[pos] = draw(st.sampled_from(_INTERESTING_BYTES) | st.integers(0, 255))
        elif edit == "delete":
            del data[pos : pos + draw(st.integers(min_value=1, max_value=32))]
        elif edit == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "duplicate":
            end = draw(st.integers(min_value=pos, max_value=min(len(data), pos + 64)))
            at = draw(st.integers(min_value=0, max_value=len(data)))
            data[at:at] = data[pos:end]
        elif edit == "truncate":
            del data[pos:]
        elif edit == "int":
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from((*_INTERESTING_INTS, len(data), max(len(data) - 1, 0))))
            data[pos : pos + width] = (value & (256**width - 1)).to_bytes(width, "little")
        elif edit == "token":
            token = draw(st.sampled_from(tokens))
            if draw(st.booleans()):
                data[pos:pos] = token
            else:
                data[pos : pos + len(token)] = token
        elif edit == "splice":
            other = draw(st.sampled_from(others))
            cut = draw(st.integers(min_value=0, max_value=len(other)))
            data = data[:pos] + bytearray(other[cut:])
    return bytes(data)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a JSON tree, the root's parent included."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                found.append((node, key))
                stack.append(child)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                found.append((node, index))
                stack.append(child)
    return found


@st.composite
def mutated_json(
    draw: st.DrawFn,
    base: Any,
    *,
    keys: Sequence[str] = (),
    max_edits: int = 4,
    floats: bool = False,
) -> Any:
    """Apply 1..``max_edits`` structural edits to a JSON tree (a deep copy of ``base``).

    Edits: replace a value by a random one or a near miss (off-by-one integer, bool for int,
    empty container, wrapped in a list), delete a key, add a key (from ``keys`` or random),
    duplicate or drop a list item.
    """
    root: dict[str, Any] = {"": copy.deepcopy(base)}
    for _ in range(draw(st.integers(min_value=1, max_value=max_edits))):
        slots = [(root, ""), *_slots(root[""])]
        container, key = draw(st.sampled_from(slots))
        old = container[key]
        edit = draw(st.sampled_from(["replace", "near", "delete", "add", "list"]))
        if edit == "replace":
            container[key] = draw(json_values(4, floats=floats))
        elif edit == "near":
            container[key] = draw(_near_misses(old))
        elif edit == "delete" and container is not root:
            del container[key]
        elif edit == "add" and isinstance(old, dict):
            name = draw(st.sampled_from(keys) if keys else st.text(max_size=8))
            old[name] = draw(json_values(4, floats=floats))
        elif edit == "list" and isinstance(old, list):
            duplicate: bool = draw(st.booleans())
            if old and duplicate:
                old.append(copy.deepcopy(draw(st.sampled_from(old))))
            elif old:
                old.pop(draw(st.integers(min_value=0, max_value=len(old) - 1)))
    return root[""]


def _near_misses(value: Any) -> st.SearchStrategy[Any]:
    options: list[Any] = [None, True, False, [], {}, "", [value]]
    if isinstance(value, int) and not isinstance(value, bool):
        options += [value - 1, value + 1, -value, 0, -1, 2**63, str(value)]
    if isinstance(value, str):
        options += [
            value.upper(),
            value + "\x00",
            " " + value,
            value[:-1],
            value * 2,
            value + "/../x",
        ]
    return st.sampled_from(options)


def dumps(value: Any) -> bytes:
    """Serialise a (possibly damaged) JSON tree the way a sloppy writer would."""
    return json.dumps(value).encode("utf-8")
