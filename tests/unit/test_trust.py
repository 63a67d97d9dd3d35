"""The trust core, rule by rule, with bytes (FORMAT.md §2–§4)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest

from modelmesh_connectors.errors import (
    ExpiredError,
    HashMismatchError,
    LengthMismatchError,
    PolicyError,
    ResolutionError,
    RollbackError,
    RootRotationError,
    SignatureError,
)
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    pae,
    parse_envelope,
)
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    MetadataError,
    MetaRef,
    group_prefix,
    parse_group,
)
from modelmesh_connectors.index.trust import (
    TrustedState,
    check_archive,
    check_expiry,
    trust_root_id,
    verify_anchor_root,
    verify_next_root,
    verify_release,
)
from tests.support.builders import (
    DAY,
    NOW,
    KeySet,
    PublisherKeys,
    ReleaseSpec,
    build_index,
    client_update,
    envelope_bytes,
    make_keys,
    make_release,
    make_root,
    make_timestamp,
    make_top,
    payload_dict,
    raw_envelope,
    root_bytes,
    signed_release,
    signed_root,
    signed_timestamp,
    signed_top,
    to_payload,
)

NAME = "acme-audit-log"


@pytest.fixture
def keys() -> KeySet:
    return KeySet.generate(root=3, root_threshold=2)


# -- anchor ----------------------------------------------------------------------


def test_trust_root_id_is_the_anchor_payload_not_its_signatures(keys: KeySet) -> None:
    """The state key: the same root with other signatures is the same trust root."""
    root = make_root(keys)
    two = signed_root(root, keys.root[:2])
    three = signed_root(root, keys.root)
    assert two != three
    assert trust_root_id(two) == trust_root_id(three)
    assert trust_root_id(two) == hashlib.sha256(root.to_payload()).hexdigest()
    other_keys = KeySet.generate(root=3, root_threshold=2)
    other = signed_root(make_root(other_keys), other_keys.root[:2])
    assert trust_root_id(two) != trust_root_id(other)  # another trust root, another record
    later = signed_root(make_root(keys, version=2), keys.root[:2])
    assert trust_root_id(two) != trust_root_id(later)  # identity comes from the shipped anchor


def test_trust_root_id_refuses_an_anchor_that_does_not_verify(keys: KeySet) -> None:
    with pytest.raises(SignatureError, match="got 1 valid"):
        trust_root_id(signed_root(make_root(keys), keys.root[:1]))



def test_anchor_accepts_threshold_of_own_keys(keys: KeySet) -> None:
    root = make_root(keys)
    state = TrustedState(signed_root(root, keys.root[:2]), NOW)
    assert state.root == root


def test_anchor_unsigned(keys: KeySet) -> None:
    with pytest.raises(SignatureError, match="got 0 valid"):
        TrustedState(signed_root(make_root(keys), []), NOW)


def test_anchor_k_minus_one_of_k(keys: KeySet) -> None:
    with pytest.raises(SignatureError, match=r"at least 2 .* got 1 valid"):
        TrustedState(signed_root(make_root(keys), keys.root[:1]), NOW)


def test_anchor_bad_signature(keys: KeySet) -> None:
    payload = make_root(keys).to_payload()
    sigs = [(k.keyid, k.sign(pae(ROOT_TYPE, payload + b" "))) for k in keys.root]
    with pytest.raises(SignatureError, match="got 0 valid"):
        TrustedState(raw_envelope(ROOT_TYPE, payload, sigs), NOW)


def test_anchor_untrusted_keys(keys: KeySet) -> None:
    with pytest.raises(SignatureError, match="got 0 valid"):
        TrustedState(signed_root(make_root(keys), make_keys(3)), NOW)


def test_anchor_two_signatures_by_one_key(keys: KeySet) -> None:
    payload = make_root(keys).to_payload()
    sig = keys.root[0].sign(pae(ROOT_TYPE, payload))
    data = raw_envelope(ROOT_TYPE, payload, [(keys.root[0].keyid, sig)] * 2)
    with pytest.raises(SignatureError, match="got 1 valid"):
        TrustedState(data, NOW)


def test_anchor_key_listed_twice_is_rejected(keys: KeySet) -> None:
    obj = payload_dict(make_root(keys))
    kid = keys.root[0].keyid
    obj["roles"]["root"]["keyids"] = [kid, kid, keys.root[1].keyid]
    data = signed_root(to_payload(obj), keys.root[:1])
    with pytest.raises(MetadataError, match="listed twice"):
        TrustedState(data, NOW)


def test_anchor_keyid_not_hash_of_key(keys: KeySet) -> None:
    # Attack: list key A a second time under a made-up ID to reach 2-of-3 with A alone.
    obj = payload_dict(make_root(keys))
    a = keys.root[0]
    fake_id = hashlib.sha256(b"fake").hexdigest()
    obj["keys"][fake_id] = {"keytype": "ed25519", "public": a.public.public_hex}
    obj["roles"]["root"]["keyids"] = [a.keyid, fake_id, keys.root[1].keyid]
    payload = to_payload(obj)
    sig = a.sign(pae(ROOT_TYPE, payload))
    data = raw_envelope(ROOT_TYPE, payload, [(a.keyid, sig), (fake_id, sig)])
    with pytest.raises(MetadataError, match="not the SHA-256 of its key"):
        TrustedState(data, NOW)


def test_anchor_malformed_key(keys: KeySet) -> None:
    obj = payload_dict(make_root(keys))
    obj["keys"][keys.index[0].keyid]["public"] = "zz" * 32
    with pytest.raises(MetadataError, match="64 lowercase hex"):
        TrustedState(signed_root(to_payload(obj), keys.root), NOW)


def test_anchor_malformed_signature(keys: KeySet) -> None:
    data = raw_envelope(ROOT_TYPE, make_root(keys).to_payload(), [(keys.root[0].keyid, b"short")])
    with pytest.raises(SignatureError, match="64-byte"):
        TrustedState(data, NOW)


def test_anchor_wrong_payload_type(keys: KeySet) -> None:
    # A validly signed timestamp (by the root keys even) is never a root.
    data = envelope_bytes(TIMESTAMP_TYPE, make_root(keys).to_payload(), keys.root)
    with pytest.raises(SignatureError, match="expected payload type"):
        TrustedState(data, NOW)


def test_anchor_needs_aware_now(keys: KeySet) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TrustedState(root_bytes(keys), NOW.replace(tzinfo=None))


def test_expired_anchor_is_accepted_until_walk_ends(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys, expires=NOW - DAY), NOW)
    assert state.root.version == 1


# -- root rotation ------------------------------------------------------------------


def rotate(old: KeySet, new: KeySet, version: int, signers: list | None = None) -> bytes:
    root = make_root(new, version=version)
    return signed_root(root, signers if signers is not None else [*old.root, *new.root])


def test_rotation_k_of_n_change(keys: KeySet) -> None:
    one = KeySet.generate()  # 1-of-1
    state = TrustedState(root_bytes(one), NOW)
    new = state.update_root(rotate(one, keys, 2, [*one.root, *keys.root[:2]]))
    assert new.version == 2
    assert new.root.threshold == 2
    assert state.root == new


def test_rotation_needs_threshold_of_old_root(keys: KeySet) -> None:
    new = KeySet.generate(root=2, root_threshold=2)
    state = TrustedState(root_bytes(keys), NOW)
    with pytest.raises(
        SignatureError, match=r"root/2\.json \(root role of trusted root version 1\)"
    ):
        state.update_root(rotate(keys, new, 2, [keys.root[0], *new.root]))
    assert state.root.version == 1


def test_rotation_needs_threshold_of_new_root(keys: KeySet) -> None:
    new = KeySet.generate(root=2, root_threshold=2)
    state = TrustedState(root_bytes(keys), NOW)
    with pytest.raises(SignatureError, match="its own root role"):
        state.update_root(rotate(keys, new, 2, [*keys.root, new.root[0]]))


def test_rotation_all_keys_replaced_then_old_keys_revoked(keys: KeySet) -> None:
    new = KeySet.generate(root=2, root_threshold=2)
    state = TrustedState(root_bytes(keys), NOW)
    state.update_root(rotate(keys, new, 2))
    # An attacker holding the old (revoked) root keys cannot sign root 3.
    evil = KeySet.generate()
    with pytest.raises(SignatureError, match="trusted root version 2"):
        state.update_root(signed_root(make_root(evil, version=3), [*keys.root, *evil.root]))


def test_rotation_with_intermediate_step(keys: KeySet) -> None:
    mid = KeySet.generate(root=2, root_threshold=1)
    last = KeySet.generate(root=1)
    state = TrustedState(root_bytes(keys), NOW)
    state.update_root(rotate(keys, mid, 2))
    # root 3 is signed by root 2's keys only: root 1's keys are no longer needed.
    state.update_root(rotate(mid, last, 3, [mid.root[1], *last.root]))
    assert state.root.version == 3
    assert state.root.root.keyids == (last.root[0].keyid,)


def test_rotation_skipped_version(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    with pytest.raises(RootRotationError, match=r"expected root version 2, got 3 .skipped"):
        state.update_root(rotate(keys, keys, 3))
    assert state.root.version == 1


def test_rotation_repeated_version(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    with pytest.raises(RootRotationError, match=r"expected root version 2, got 1 .repeated"):
        state.update_root(root_bytes(keys))


def test_badly_signed_intermediate_fails_whole_walk(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    state.update_root(rotate(keys, keys, 2))
    with pytest.raises(SignatureError):
        state.update_root(rotate(keys, keys, 3, keys.root[:1]))
    # The trusted root is the one the walk started from.
    assert state.root.version == 1


def test_bounded_walk(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW, max_root_rotations=2)
    state.update_root(rotate(keys, keys, 2))
    state.update_root(rotate(keys, keys, 3))
    with pytest.raises(RootRotationError, match="at most 2 new root versions"):
        state.update_root(rotate(keys, keys, 4))
    assert state.root.version == 3


def test_default_walk_bound_is_32(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    for v in range(2, 34):
        state.update_root(rotate(keys, keys, v))
    with pytest.raises(RootRotationError, match="at most 32"):
        state.update_root(rotate(keys, keys, 34))


def test_rotation_wrong_payload_type(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    data = envelope_bytes(INDEX_TYPE, make_root(keys, version=2).to_payload(), keys.root)
    with pytest.raises(SignatureError, match="expected payload type"):
        state.update_root(data)


def test_no_root_update_after_timestamp(keys: KeySet) -> None:
    bundle = build_index(keys)
    state = TrustedState(bundle.root, NOW)
    state.update_timestamp(bundle.timestamp)
    with pytest.raises(RuntimeError, match="after the timestamp"):
        state.update_root(rotate(keys, keys, 2))


def test_expired_root_allowed_during_walk_not_after(keys: KeySet) -> None:
    old = root_bytes(keys, expires=NOW - DAY)
    fresh = signed_root(make_root(keys, version=2), keys.root)
    bundle = build_index(keys, root=old, extra_roots=[fresh])
    assert client_update(bundle).root.version == 2
    stale = build_index(keys, root=old)
    state = TrustedState(stale.root, NOW)
    with pytest.raises(ExpiredError, match=r"root/1\.json: expired"):
        state.update_timestamp(stale.timestamp)


def test_pure_root_helpers(keys: KeySet) -> None:
    root1 = verify_anchor_root(root_bytes(keys))
    root2 = verify_next_root(root1, rotate(keys, keys, 2))
    assert root2.version == 2


# -- timestamp ---------------------------------------------------------------------


def ts_bytes(bundle_top: bytes, keys: KeySet, **kw: object) -> bytes:
    return signed_timestamp(make_timestamp(bundle_top, **kw), keys.timestamp)  # type: ignore[arg-type]


def test_timestamp_unsigned(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    with pytest.raises(SignatureError, match=r"timestamp\.json.*got 0 valid"):
        state.update_timestamp(signed_timestamp(make_timestamp(b.top), []))


def test_timestamp_signed_by_wrong_role(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    with pytest.raises(SignatureError, match="got 0 valid"):
        state.update_timestamp(signed_timestamp(make_timestamp(b.top), keys.index))


def test_timestamp_bad_signature(keys: KeySet) -> None:
    b = build_index(keys)
    env = parse_envelope(b.timestamp)
    k = keys.timestamp[0]
    data = raw_envelope(TIMESTAMP_TYPE, env.payload, [(k.keyid, bytes(64))])
    with pytest.raises(SignatureError, match="got 0 valid"):
        TrustedState(b.root, NOW).update_timestamp(data)


def test_timestamp_threshold(keys: KeySet) -> None:
    ks = KeySet.generate(timestamp=3, timestamp_threshold=2)
    b = build_index(ks)
    payload = make_timestamp(b.top).to_payload()
    with pytest.raises(SignatureError, match="got 1 valid"):
        TrustedState(b.root, NOW).update_timestamp(
            envelope_bytes(TIMESTAMP_TYPE, payload, ks.timestamp[:1])
        )
    TrustedState(b.root, NOW).update_timestamp(
        envelope_bytes(TIMESTAMP_TYPE, payload, ks.timestamp[1:])
    )


def test_timestamp_wrong_payload_type(keys: KeySet) -> None:
    b = build_index(keys)
    payload = make_timestamp(b.top).to_payload()
    with pytest.raises(SignatureError, match="expected payload type"):
        TrustedState(b.root, NOW).update_timestamp(
            envelope_bytes(INDEX_TYPE, payload, keys.timestamp)
        )


def test_timestamp_expired(keys: KeySet) -> None:
    b = build_index(keys, timestamp_expires=NOW)
    with pytest.raises(ExpiredError, match=r"timestamp\.json: expired at"):
        TrustedState(b.root, NOW).update_timestamp(b.timestamp)


def test_timestamp_expired_within_grace(keys: KeySet) -> None:
    b = build_index(keys, timestamp_expires=NOW - timedelta(hours=1))
    state = TrustedState(b.root, NOW, expiry_grace=timedelta(hours=2))
    state.update_timestamp(b.timestamp)
    assert state.expired_in_grace == [("timestamp.json", NOW - timedelta(hours=1))]
    with pytest.raises(ExpiredError):
        TrustedState(b.root, NOW, expiry_grace=timedelta(minutes=30)).update_timestamp(b.timestamp)


def test_timestamp_rollback(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    state.load_trusted_timestamp(ts_bytes(b.top, keys, version=5))
    with pytest.raises(RollbackError, match="version 3 is lower than trusted version 5"):
        state.update_timestamp(ts_bytes(b.top, keys, version=3))
    assert state.timestamp is not None
    assert state.timestamp.version == 5


def test_timestamp_same_version_other_bytes(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    state.load_trusted_timestamp(ts_bytes(b.top, keys, version=5))
    with pytest.raises(RollbackError, match="equals the trusted version"):
        state.update_timestamp(ts_bytes(b.top, keys, version=5, expires=NOW + 2 * DAY))


def test_timestamp_same_version_same_payload_is_fine(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    state.load_trusted_timestamp(ts_bytes(b.top, keys, version=5))
    assert state.update_timestamp(ts_bytes(b.top, keys, version=5)).version == 5


def test_timestamp_pins_lower_index_version(keys: KeySet) -> None:
    b = build_index(keys, top_version=7)
    state = TrustedState(b.root, NOW)
    state.load_trusted_timestamp(ts_bytes(b.top, keys, version=1, index_version=7))
    with pytest.raises(RollbackError, match="pins index version 6, lower than trusted"):
        state.update_timestamp(ts_bytes(b.top, keys, version=2, index_version=6))


def test_timestamp_same_index_version_other_hash(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    state.load_trusted_timestamp(ts_bytes(b.top, keys, version=1))
    other_top = signed_top(make_top(version=1, expires=NOW + 3 * DAY), keys.index)
    with pytest.raises(RollbackError, match="pins index version 1 with sha256"):
        state.update_timestamp(ts_bytes(other_top, keys, version=2))


def test_trusted_timestamp_may_be_expired(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    ts = state.load_trusted_timestamp(ts_bytes(b.top, keys, version=4, expires=NOW - 9 * DAY))
    assert ts.version == 4
    state.update_timestamp(ts_bytes(b.top, keys, version=5))


def test_trusted_timestamp_signature_checked(keys: KeySet) -> None:
    b = build_index(keys)
    with pytest.raises(SignatureError):
        TrustedState(b.root, NOW).load_trusted_timestamp(
            signed_timestamp(make_timestamp(b.top), make_keys(1))
        )


def test_timestamp_after_key_rotation_uses_new_keys(keys: KeySet) -> None:
    new = KeySet.generate(root=3, root_threshold=2)
    new.root = keys.root
    b = build_index(new, root=root_bytes(keys), extra_roots=[rotate(keys, new, 2, keys.root)])
    state = TrustedState(b.root, NOW)
    state.update_root(b.files["root/2.json"])
    # A timestamp signed by the old (rotated-out) timestamp key is refused.
    with pytest.raises(SignatureError):
        state.load_trusted_timestamp(ts_bytes(b.top, keys))
    state.update_timestamp(b.timestamp)


# -- index top ---------------------------------------------------------------------


def test_index_top_happy_path(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")], top_version=3)
    state = client_update(b)
    assert state.index is not None
    assert state.index.version == 3


def test_index_top_not_matching_pin(keys: KeySet) -> None:
    b = build_index(keys)
    other = signed_top(make_top(version=1, expires=NOW + 2 * DAY), keys.index)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(b.timestamp)
    with pytest.raises(HashMismatchError, match="sha256 mismatch for index top"):
        state.update_index(other)
    with pytest.raises(LengthMismatchError, match=r"expected .* bytes, got"):
        state.update_index(b.top + b" ")


def test_index_top_hash_checked_before_parsing(keys: KeySet) -> None:
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(b.timestamp)
    garbage = b"x" * len(b.top)
    with pytest.raises(HashMismatchError):
        state.update_index(garbage)


def test_index_top_signed_by_timestamp_key(keys: KeySet) -> None:
    b = build_index(keys)
    top = signed_top(make_top(), keys.timestamp)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2))
    with pytest.raises(SignatureError, match=r"index top.*got 0 valid"):
        state.update_index(top)


def test_root_signed_file_presented_as_index(keys: KeySet) -> None:
    b = build_index(keys)
    impostor = signed_root(make_root(keys), keys.root)  # valid root, wrong kind
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(impostor, keys, version=2))
    with pytest.raises(SignatureError, match="expected payload type"):
        state.update_index(impostor)


def test_index_top_unsigned_and_threshold(keys: KeySet) -> None:
    ks = KeySet.generate(index=2, index_threshold=2)
    b = build_index(ks)
    top = signed_top(make_top(), ks.index[:1])
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(top, ks, version=2))
    with pytest.raises(SignatureError, match="got 1 valid"):
        state.update_index(top)


def test_index_top_version_below_pin(keys: KeySet) -> None:
    b = build_index(keys)
    top = signed_top(make_top(version=4), keys.index)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2, index_version=5))
    with pytest.raises(RollbackError, match="version 4 is lower than version 5 pinned"):
        state.update_index(top)


def test_index_top_version_above_pin(keys: KeySet) -> None:
    b = build_index(keys)
    top = signed_top(make_top(version=6), keys.index)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2, index_version=5))
    with pytest.raises(MetadataError, match="mix-and-match"):
        state.update_index(top)


def test_index_top_expired(keys: KeySet) -> None:
    b = build_index(keys, top_expires=NOW - DAY)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(b.timestamp)
    with pytest.raises(ExpiredError, match=r"index top meta/.*expired"):
        state.update_index(b.top)
    assert state.index is None


def test_index_top_rollback_from_trusted_copy(keys: KeySet) -> None:
    old = build_index(keys, top_version=5, timestamp_version=5)
    state = TrustedState(old.root, NOW)
    state.load_trusted_timestamp(old.timestamp)
    state.load_trusted_index(old.top)
    # The timestamp signer pins an older top: caught by the pinned-version rule.
    older = signed_top(make_top(version=4), keys.index)
    with pytest.raises(RollbackError, match="rollback"):
        state.update_timestamp(ts_bytes(older, keys, version=6, index_version=4))


def test_index_top_newer_after_trusted_copy(keys: KeySet) -> None:
    old = build_index(keys, top_version=5, timestamp_version=5)
    state = TrustedState(old.root, NOW)
    state.load_trusted_timestamp(old.timestamp)
    state.load_trusted_index(old.top)
    new = build_index(keys, top_version=6, timestamp_version=6, root=old.root)
    state.update_timestamp(new.timestamp)
    with pytest.raises(RuntimeError, match="call update_index"):
        state.verify_group("00", b"")
    assert state.update_index(new.top).version == 6


def test_cached_top_reused_when_pin_unchanged(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")])
    state = TrustedState(b.root, NOW)
    state.update_timestamp(b.timestamp)
    state.load_trusted_index(b.top)
    group = state.verify_group(b.group_prefix(NAME), b.group_bytes(NAME))
    assert group.prefix == b.group_prefix(NAME) == ""  # one package: a single group


def test_offline_use_notices_expired_trusted_copies(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")], timestamp_expires=NOW - DAY)
    state = TrustedState(b.root, NOW)
    state.load_trusted_timestamp(b.timestamp)
    state.load_trusted_index(b.top)
    with pytest.raises(ExpiredError, match=r"timestamp\.json"):
        state.verify_group(b.group_prefix(NAME), b.group_bytes(NAME))


def test_update_index_requires_timestamp(keys: KeySet) -> None:
    b = build_index(keys)
    with pytest.raises(RuntimeError, match="no timestamp"):
        TrustedState(b.root, NOW).update_index(b.top)


def test_no_timestamp_update_after_index(keys: KeySet) -> None:
    b = build_index(keys)
    state = client_update(b)
    with pytest.raises(RuntimeError, match="after the index top"):
        state.update_timestamp(b.timestamp)


# -- groups and bins ---------------------------------------------------------------


def test_group_and_bin_happy_path(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0"), ReleaseSpec("other-pkg", "2.0")])
    state = client_update(b)
    group = state.verify_group(b.group_prefix(NAME), b.group_bytes(NAME))
    node = state.verify_bin(group, b.bin_prefix(NAME), b.bin_bytes(NAME))
    assert [e.version for e in node.packages[NAME]] == ["1.0.0"]


def test_group_bytes_not_matching_ref(keys: KeySet) -> None:
    specs = [ReleaseSpec(NAME, "1.0.0"), ReleaseSpec("other-pkg", "2.0")]
    b = build_index(keys, specs, level=(2, 4))
    state = client_update(b)
    assert b.group_prefix("other-pkg") != b.group_prefix(NAME)
    with pytest.raises((HashMismatchError, LengthMismatchError)):
        state.verify_group(b.group_prefix(NAME), b.group_bytes("other-pkg"))
    tampered = b.group_bytes(NAME).replace(b'"group"', b'"grouP"')
    with pytest.raises(HashMismatchError, match="sha256 mismatch for group"):
        state.verify_group(b.group_prefix(NAME), tampered)


def test_group_with_wrong_prefix_even_if_pinned(keys: KeySet) -> None:
    # The index role pinned a group whose own prefix disagrees with the path.
    gp = group_prefix(NAME, 2)
    wrong = "00" if gp != "00" else "01"
    group = GroupNode(wrong, {}).to_payload()
    top = signed_top(make_top(groups={gp: MetaRef.of(group)}, level=(2, 4)), keys.index)
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2))
    state.update_index(top)
    with pytest.raises(MetadataError, match=f"prefix: expected '{gp}'"):
        state.verify_group(gp, group)


def test_missing_group_is_resolution_error(keys: KeySet) -> None:
    b = build_index(keys)
    state = client_update(b)
    with pytest.raises(ResolutionError, match="has no group"):
        state.verify_group(b.group_prefix(NAME), b"{}")


def test_bad_prefix_arguments_are_misuse(keys: KeySet) -> None:
    state = client_update(build_index(keys, level=(2, 4)))
    with pytest.raises(ValueError, match="2 lowercase hex"):
        state.verify_group("ABC", b"")
    with pytest.raises(ValueError, match="4 lowercase hex"):
        state.verify_bin(GroupNode("00", {}), "0", b"")
    small = client_update(build_index(keys))  # (0, 0): only "" is a prefix
    with pytest.raises(ValueError, match="0 lowercase hex"):
        small.verify_group("00", b"")
    with pytest.raises(ValueError, match="0 lowercase hex"):
        small.verify_bin(GroupNode("", {}), "00", b"")


def test_bin_bytes_not_matching_ref(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")])
    state = client_update(b)
    group = state.verify_group(b.group_prefix(NAME), b.group_bytes(NAME))
    other = build_index(keys, [ReleaseSpec(NAME, "1.0.0"), ReleaseSpec(NAME, "1.1.0")])
    with pytest.raises((HashMismatchError, LengthMismatchError)):
        state.verify_bin(group, b.bin_prefix(NAME), other.bin_bytes(NAME))


def test_bin_from_unverified_group_is_refused(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")])
    state = client_update(b)
    forged = parse_group(b.group_bytes(NAME))  # parsed, not verified by this state
    with pytest.raises(RuntimeError, match="not verified against the current index top"):
        state.verify_bin(forged, b.bin_prefix(NAME), b.bin_bytes(NAME))


def test_bin_from_group_of_older_index_is_refused(keys: KeySet) -> None:
    old = build_index(keys, [ReleaseSpec(NAME, "1.0.0")])
    state = TrustedState(old.root, NOW)
    state.load_trusted_timestamp(old.timestamp)
    state.load_trusted_index(old.top)
    group = state.verify_group(old.group_prefix(NAME), old.group_bytes(NAME))
    new = build_index(keys, [ReleaseSpec(NAME, "1.1.0")], top_version=2, timestamp_version=2)
    state.update_timestamp(new.timestamp)
    state.update_index(new.top)
    with pytest.raises(RuntimeError, match="not verified"):
        state.verify_bin(group, old.bin_prefix(NAME), old.bin_bytes(NAME))


def test_missing_bin_is_resolution_error(keys: KeySet) -> None:
    b = build_index(keys, [ReleaseSpec(NAME, "1.0.0")], level=(2, 4))
    state = client_update(b)
    group = state.verify_group(b.group_prefix(NAME), b.group_bytes(NAME))
    other_bin = next(
        f"{group.prefix}{i:02x}" for i in range(256) if f"{group.prefix}{i:02x}" not in group.bins
    )
    with pytest.raises(ResolutionError, match="has no bin"):
        state.verify_bin(group, other_bin, b"")


# -- sharding levels -----------------------------------------------------------------


def _state_with_top(keys: KeySet, top_payload: bytes) -> TrustedState:
    """A state that has verified a hand-made top (signed by the index role)."""
    top = signed_top(top_payload, keys.index)
    state = TrustedState(build_index(keys).root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2))
    state.update_index(top)
    return state


@pytest.mark.parametrize("level", [(0, 0), (0, 2), (2, 4)])
def test_every_level_resolves(keys: KeySet, level: tuple[int, int]) -> None:
    specs = [ReleaseSpec(f"pkg-{i}", "1.0") for i in range(20)]
    b = build_index(keys, specs, level=level)
    state = client_update(b)
    assert state.index is not None and state.index.level == level
    assert len(state.index.groups) == (
        1 if level[0] == 0 else len({b.group_prefix(s.name) for s in specs})
    )
    for spec in specs:
        group = state.verify_group(b.group_prefix(spec.name), b.group_bytes(spec.name))
        assert all(len(bp) == level[1] for bp in group.bins)
        node = state.verify_bin(group, b.bin_prefix(spec.name), b.bin_bytes(spec.name))
        assert spec.name in node.packages


@pytest.mark.parametrize(
    ("group_chars", "bin_chars"), [(2, 2), (0, 4), (2, 0), (4, 4), (1, 2), (-1, 0), (True, 0)]
)
def test_top_with_an_invalid_level_is_refused(
    keys: KeySet, group_chars: Any, bin_chars: Any
) -> None:
    obj = payload_dict(make_top())
    obj["group_chars"], obj["bin_chars"] = group_chars, bin_chars
    top = signed_top(to_payload(obj), keys.index)
    state = TrustedState(build_index(keys).root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2))
    with pytest.raises(MetadataError, match="group_chars|bin_chars"):
        state.update_index(top)
    assert state.index is None


@pytest.mark.parametrize("missing", ["group_chars", "bin_chars"])
def test_top_without_a_level_is_refused(keys: KeySet, missing: str) -> None:
    obj = payload_dict(make_top())
    del obj[missing]
    with pytest.raises(MetadataError, match=f"missing field.*{missing}"):
        _state_with_top(keys, to_payload(obj))


@pytest.mark.parametrize(
    ("level", "key"), [((0, 0), "3f"), ((0, 2), "3f"), ((2, 4), ""), ((2, 4), "3fa2")]
)
def test_top_whose_group_keys_disagree_with_its_level_is_refused(
    keys: KeySet, level: tuple[int, int], key: str
) -> None:
    obj = payload_dict(make_top(level=level))
    obj["groups"] = {key: MetaRef("ab" * 32, 10).to_json_obj()}
    with pytest.raises(MetadataError, match="groups: expected a prefix of"):
        _state_with_top(keys, to_payload(obj))


@pytest.mark.parametrize(("level", "group_prefix_"), [((0, 2), "3f"), ((2, 4), "")])
def test_group_whose_prefix_length_disagrees_with_the_top(
    keys: KeySet, level: tuple[int, int], group_prefix_: str
) -> None:
    # Pinned under the right key, but the node's own prefix has the other level's length.
    key = "3f" if level[0] == 2 else ""
    group = GroupNode(group_prefix_, {}).to_payload()
    state = _state_with_top(
        keys, make_top(groups={key: MetaRef.of(group)}, level=level).to_payload()
    )
    with pytest.raises(MetadataError, match=f"expected {level[0]} hex characters"):
        state.verify_group(key, group)


@pytest.mark.parametrize(
    ("level", "gp", "bp"),
    [
        ((0, 2), "", ""),  # too short
        ((0, 2), "", "3fa2"),  # too long
        ((2, 4), "3f", "3f"),  # too short
        ((0, 0), "", "3f"),  # too long
    ],
)
def test_group_with_a_bin_prefix_of_the_wrong_length_is_refused(
    keys: KeySet, level: tuple[int, int], gp: str, bp: str
) -> None:
    group = GroupNode(gp, {bp: MetaRef("ab" * 32, 10)}).to_payload()
    state = _state_with_top(
        keys, make_top(groups={gp: MetaRef.of(group)}, level=level).to_payload()
    )
    with pytest.raises(MetadataError, match=f"prefixes of {level[1]} hex characters.*{bp!r}"):
        state.verify_group(gp, group)


def test_bin_node_whose_prefix_is_not_the_followed_one(keys: KeySet) -> None:
    # A bin pinned under "3f" in a (0, 2) index that calls itself "" (the (0, 0) bin).
    node = BinNode("", {}).to_payload()
    group = GroupNode("", {"3f": MetaRef.of(node)}).to_payload()
    state = _state_with_top(
        keys, make_top(groups={"": MetaRef.of(group)}, level=(0, 2)).to_payload()
    )
    verified = state.verify_group("", group)
    with pytest.raises(MetadataError, match="prefix: expected '3f', got ''"):
        state.verify_bin(verified, "3f", node)


# -- releases ----------------------------------------------------------------------


def test_release_signed_by_index_role(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    release = state.verify_release(signed_release(make_release(), keys.index).to_bytes())
    assert release.name == NAME


def test_release_unsigned_or_untrusted(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    with pytest.raises(SignatureError, match="neither"):
        state.verify_release(signed_release(make_release(), []).to_bytes())
    with pytest.raises(SignatureError, match="neither"):
        state.verify_release(signed_release(make_release(), make_keys(1)).to_bytes())
    with pytest.raises(SignatureError, match="neither"):
        state.verify_release(signed_release(make_release(), keys.timestamp).to_bytes())


def test_release_wrong_payload_type(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    data = envelope_bytes(INDEX_TYPE, make_release().to_payload(), keys.index)
    with pytest.raises(SignatureError, match="expected payload type"):
        state.verify_release(data)


def test_release_malformed_envelope(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    with pytest.raises(SignatureError, match="release: envelope"):
        state.verify_release(b"{}")


def publisher_keys(namespaces: tuple[str, ...] = ("acme",), n: int = 1, t: int = 1) -> KeySet:
    ks = KeySet.generate()
    ks.publishers.append(PublisherKeys("acme", make_keys(n), namespaces, threshold=t))
    return ks


def test_publisher_in_scope_allowed() -> None:
    ks = publisher_keys()
    state = TrustedState(root_bytes(ks), NOW)
    release = make_release(connectors=[("acme.a.v1", "provider"), ("acme.b.v1", "storage")])
    assert (
        state.verify_release(signed_release(release, ks.publishers[0].keys).to_bytes()) == release
    )


def test_publisher_one_connector_outside_scope_denied() -> None:
    ks = publisher_keys()
    pub = ks.publishers[0].keys[0]
    state = TrustedState(root_bytes(ks), NOW)
    release = make_release(
        connectors=[("acme.a.v1", "provider"), ("modelmesh.env.v1", "secret_store")]
    )
    with pytest.raises(
        PolicyError, match=r"connector 'modelmesh\.env\.v1'.*publisher 'acme'"
    ) as info:
        state.verify_release(signed_release(release, [pub]).to_bytes())
    assert pub.keyid in str(info.value)


def test_publisher_namespace_is_exact_first_segment() -> None:
    ks = publisher_keys()
    state = TrustedState(root_bytes(ks), NOW)
    release = make_release(connectors=[("acmecorp.a.v1", "provider")])
    with pytest.raises(PolicyError):
        state.verify_release(signed_release(release, ks.publishers[0].keys).to_bytes())


def test_publisher_below_threshold() -> None:
    ks = publisher_keys(n=2, t=2)
    state = TrustedState(root_bytes(ks), NOW)
    with pytest.raises(SignatureError, match="neither"):
        state.verify_release(signed_release(make_release(), ks.publishers[0].keys[:1]).to_bytes())


def test_second_publisher_covering_scope_is_enough() -> None:
    ks = publisher_keys(("other",))
    ks.publishers.append(PublisherKeys("acme2", make_keys(1), ("acme",)))
    state = TrustedState(root_bytes(ks), NOW)
    signers = [*ks.publishers[0].keys, *ks.publishers[1].keys]
    assert state.verify_release(signed_release(make_release(), signers).to_bytes()).name == NAME


def test_index_role_may_sign_any_namespace(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    release = make_release(connectors=[("modelmesh.env.v1", "secret_store")])
    state.verify_release(signed_release(release, keys.index).to_bytes())


def test_release_requires_fresh_root(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys, expires=NOW), NOW)
    with pytest.raises(ExpiredError):
        state.verify_release(signed_release(make_release(), keys.index).to_bytes())


def test_pure_verify_release_accepts_embedded_object(keys: KeySet) -> None:
    root = make_root(keys)
    env = signed_release(make_release(), keys.index)
    assert verify_release(root, env.to_json_obj()).name == NAME
    assert verify_release(root, env).name == NAME


def test_bin_release_name_and_version_must_match(keys: KeySet) -> None:
    state = TrustedState(root_bytes(keys), NOW)
    env = signed_release(make_release(NAME, "1.0.0"), keys.index)
    assert state.verify_bin_release(NAME, BinRelease("1.0.0", env)).version == "1.0.0"
    with pytest.raises(PolicyError, match=r"expected a release of acme-audit-log 2.0.0"):
        state.verify_bin_release(NAME, BinRelease("2.0.0", env))
    with pytest.raises(PolicyError, match=r"expected a release of other 1.0.0"):
        state.verify_bin_release("other", BinRelease("1.0.0", env))


def test_release_type_signature_cannot_be_reused_as_index(keys: KeySet) -> None:
    # An index-role signature over a release is not an index top.
    env = signed_release(make_release(), keys.index)
    b = build_index(keys)
    state = TrustedState(b.root, NOW)
    data = env.to_bytes()
    state.update_timestamp(ts_bytes(data, keys, version=2))
    with pytest.raises(SignatureError, match=re.escape(f"expected payload type '{INDEX_TYPE}'")):
        state.update_index(data)


# -- archive and expiry helpers ------------------------------------------------------


def test_check_archive() -> None:
    release = make_release(archive=b"abc")
    check_archive(release, sha256=hashlib.sha256(b"abc").hexdigest(), length=3)
    with pytest.raises(LengthMismatchError, match="expected 3 bytes, got 4"):
        check_archive(release, sha256=hashlib.sha256(b"abcd").hexdigest(), length=4)
    with pytest.raises(HashMismatchError, match=r"sha256 mismatch for acme-audit-log 1.0.0"):
        check_archive(release, sha256=hashlib.sha256(b"abd").hexdigest(), length=3)


def test_check_expiry_boundaries() -> None:
    assert check_expiry("x", NOW + timedelta(seconds=1), NOW) is False
    with pytest.raises(ExpiredError, match="x: expired at"):
        check_expiry("x", NOW, NOW)  # expired from the instant on
    assert check_expiry("x", NOW, NOW, timedelta(seconds=1)) is True


def test_full_client_flow_with_embedded_releases(keys: KeySet) -> None:
    b = build_index(
        keys,
        [ReleaseSpec(NAME, "1.0.0"), ReleaseSpec(NAME, "1.1.0", yanked=True, yanked_reason="bug")],
    )
    state = client_update(b)
    group = state.verify_group(b.group_prefix(NAME), b.group_bytes(NAME))
    node = state.verify_bin(group, b.bin_prefix(NAME), b.bin_bytes(NAME))
    versions = []
    for entry in node.packages[NAME]:
        release = state.verify_bin_release(NAME, entry)
        archive = b.files[release.file]
        check_archive(release, sha256=hashlib.sha256(archive).hexdigest(), length=len(archive))
        versions.append((release.version, entry.yanked))
    assert versions == [("1.0.0", False), ("1.1.0", True)]


def test_index_top_unsigned(keys: KeySet) -> None:
    b = build_index(keys)
    top = signed_top(make_top(version=1, expires=NOW + 2 * DAY), [])
    state = TrustedState(b.root, NOW)
    state.update_timestamp(ts_bytes(top, keys, version=2))
    with pytest.raises(SignatureError, match="got 0 valid"):
        state.update_index(top)
    assert state.index is None


def test_trust_core_has_no_io() -> None:
    # Sans-I/O: the trust core never opens files or sockets and never reads the clock.
    import ast
    import inspect

    from modelmesh_connectors.index import trust

    tree = ast.parse(inspect.getsource(trust))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & {"os", "io", "socket", "pathlib", "httpx", "urllib", "time"}
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert not calls & {"open", "now", "utcnow", "today", "time"}
