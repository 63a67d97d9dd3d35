"""Threshold errors name the keys that signed, the roles the root lists them for, and the
keys that would have counted (pure: bytes in, one error out)."""

from __future__ import annotations

import pytest

from modelmesh_connectors.errors import SignatureError
from modelmesh_connectors.index.trust import verify_release_signed, verify_timestamp
from tests.support.builders import (
    KeySet,
    PublisherKeys,
    make_key,
    make_release,
    make_root,
    make_timestamp,
    signed_release,
    signed_timestamp,
)


def short(key: object) -> str:
    return key.keyid[:8] + "…"  # type: ignore[attr-defined]


def test_timestamp_signed_with_the_index_key_names_both_roles() -> None:
    keys = KeySet.generate()
    root = make_root(keys)
    data = signed_timestamp(make_timestamp(b"top"), keys.index)
    with pytest.raises(SignatureError) as info:
        verify_timestamp(root, data)
    message = info.value.message
    assert message.startswith("timestamp.json: expected signatures by at least 1 distinct trusted key(s), got 0 valid")
    assert f"signed by {short(keys.index[0])}, which root v1 lists for the index role" in message
    assert f"the timestamp role's keys are {short(keys.timestamp[0])}" in message


def test_unknown_key_and_bad_signature_are_told_apart() -> None:
    keys = KeySet.generate(timestamp=2, timestamp_threshold=2)
    root = make_root(keys)
    stranger = make_key()
    data = signed_timestamp(make_timestamp(b"top"), [keys.timestamp[0], stranger])
    with pytest.raises(SignatureError) as info:
        verify_timestamp(root, data)
    message = info.value.message
    assert "got 1 valid" in message
    assert f"{short(stranger)}, which root v1 does not list" in message
    assert short(keys.timestamp[0]) in message.split("keys are")[1]
    assert short(keys.timestamp[1]) in message.split("keys are")[1]


def test_release_by_a_root_key_names_the_root_role() -> None:
    keys = KeySet.generate()
    keys.publishers.append(PublisherKeys("acme", [make_key()], ("acme",)))
    root = make_root(keys)
    envelope = signed_release(make_release(), keys.root)
    with pytest.raises(SignatureError) as info:
        verify_release_signed(root, envelope)
    message = info.value.message
    assert f"{short(keys.root[0])}, which root v1 lists for the root role" in message
    assert f"the index role's keys are {short(keys.index[0])}" in message
