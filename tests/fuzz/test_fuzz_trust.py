"""Fuzz the trust core: TrustedState fed damaged bytes, and signed-but-malformed files.

Two kinds of hostile input: bytes damaged on the way (they must fail the signature or the
pin before any parser sees them), and files a compromised or buggy signer produced (valid
signatures and pins over malformed payloads: they reach the metadata parsers). Either way
only a TrustError may come out, and a failed update must leave the trusted files as they were.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from modelmesh_connectors.errors import SignatureError, TrustError
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    parse_envelope,
    verify_threshold,
)
from modelmesh_connectors.index.metadata import (
    GroupNode,
    IndexTop,
    MetaRef,
)
from modelmesh_connectors.index.trust import TrustedState
from tests.fuzz.contract import run_parser
from tests.fuzz.mutations import JSON_TOKENS, dumps, mutated, mutated_json
from tests.support.builders import (
    FAR,
    NOW,
    KeySet,
    PublisherKeys,
    ReleaseSpec,
    build_index,
    envelope_bytes,
    make_keys,
    make_root,
    make_timestamp,
    signed_root,
    signed_timestamp,
)

SLOW = [HealthCheck.too_slow]
FIELDS = [
    "type",
    "spec",
    "version",
    "expires",
    "keys",
    "roles",
    "publishers",
    "keyids",
    "threshold",
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
    "name",
    "file",
    "requires_modelmesh",
    "connectors",
    "id",
    "namespaces",
]

# -- one consistent world of throw-away keys -------------------------------------------------

KEYS = KeySet.generate()
KEYS.publishers.append(PublisherKeys("acme-corp", make_keys(1), ("acme",)))
OUTSIDER = make_keys(1)  # signs, but is in no role
PACKAGE = "acme-audit-log"
RELEASES = [
    ReleaseSpec(PACKAGE, "1.0.0"),
    ReleaseSpec(PACKAGE, "1.1.0", signers=KEYS.publishers[0].keys),
    ReleaseSpec(
        PACKAGE,
        "2.0.0",
        connectors=(("modelmesh.squat.v1", "provider"),),
        signers=KEYS.publishers[0].keys,
    ),
]
LEVEL = (2, 4)  # the deepest fan-out: most prefix structure to damage
BUNDLES = [
    build_index(KEYS, RELEASES, top_version=v, timestamp_version=v, level=LEVEL) for v in (1, 2, 3)
]
ROOT1 = BUNDLES[0].root
ROOTS = {n: signed_root(make_root(KEYS, version=n), KEYS.root) for n in (2, 3, 4)}
SIG_FILES = [
    BUNDLES[0].files[f"archives/{PACKAGE}/{PACKAGE}-{r.version}.zip.sig"] for r in RELEASES
]
SEEDS = (
    ROOT1,
    *ROOTS.values(),
    *(b.timestamp for b in BUNDLES),
    *(b.top for b in BUNDLES),
    *SIG_FILES,
)


def payload_of(envelope: bytes) -> Any:
    return json.loads(parse_envelope(envelope).payload)


def signers_for(role: str) -> st.SearchStrategy[list[Any]]:
    """The role's own keys most of the time; sometimes a publisher, an outsider or nobody."""
    own = {"root": KEYS.root, "timestamp": KEYS.timestamp, "index": KEYS.index}[role]
    return st.sampled_from(
        [own, own, own, KEYS.publishers[0].keys, OUTSIDER, [], [*own, *OUTSIDER]]
    )


def signed_damaged(role: str, payload_type: str, seed_envelope: bytes) -> st.SearchStrategy[bytes]:
    """A payload damaged as a JSON tree or as bytes, then validly signed."""
    base = payload_of(seed_envelope)
    payloads = st.one_of(
        mutated_json(base, keys=FIELDS, max_edits=4).map(dumps),
        mutated(json.dumps(base).encode(), tokens=JSON_TOKENS, max_edits=3),
    )
    types = st.sampled_from(
        [payload_type, payload_type, payload_type, ROOT_TYPE, RELEASE_TYPE, "text/plain"]
    )
    return st.builds(envelope_bytes, types, payloads, signers_for(role))


def damaged(*seeds: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated(st.sampled_from(seeds), tokens=JSON_TOKENS, others=SEEDS),
        st.binary(max_size=512),
    )


def fresh_state(**kwargs: Any) -> TrustedState:
    return TrustedState(ROOT1, NOW, **kwargs)


# -- the anchor and the root walk -------------------------------------------------------------


@given(data=st.one_of(damaged(ROOT1, *ROOTS.values()), signed_damaged("root", ROOT_TYPE, ROOT1)))
@settings(suppress_health_check=SLOW)
def test_anchor_root(data: bytes) -> None:
    outcome = run_parser("trust", TrustError, TrustedState, data, NOW)
    if outcome.value is not None:
        assert outcome.value.root.version >= 1


@given(
    data=st.one_of(damaged(ROOTS[2]), signed_damaged("root", ROOT_TYPE, ROOTS[2])),
    walk=st.integers(min_value=0, max_value=1),
)
@settings(suppress_health_check=SLOW)
def test_update_root(data: bytes, walk: int) -> None:
    state = fresh_state()
    if walk:
        state.update_root(ROOTS[2])
    start = state.root.version - walk
    outcome = run_parser("trust", TrustError, state.update_root, data)
    if outcome.value is None:
        # A failed step sends the whole walk back to where it started.
        assert state.root.version == start
    else:
        assert state.root is outcome.value and outcome.value.version == start + walk + 1


# -- timestamp and index top ------------------------------------------------------------------


@given(
    data=st.one_of(
        damaged(*(b.timestamp for b in BUNDLES)),
        signed_damaged("timestamp", TIMESTAMP_TYPE, BUNDLES[1].timestamp),
    ),
    trusted=st.sampled_from([None, 0, 1, 2]),
    grace=st.sampled_from([timedelta(0), timedelta(days=1)]),
)
@settings(suppress_health_check=SLOW)
def test_update_timestamp(data: bytes, trusted: int | None, grace: timedelta) -> None:
    state = fresh_state(expiry_grace=grace)
    if trusted is not None:
        state.load_trusted_timestamp(BUNDLES[trusted].timestamp)
    before = state.timestamp
    outcome = run_parser("trust", TrustError, state.update_timestamp, data)
    if outcome.value is None:
        assert state.timestamp is before
    else:
        assert state.timestamp is outcome.value
        assert before is None or outcome.value.version >= before.version


@given(
    data=st.one_of(
        damaged(*(b.top for b in BUNDLES)), signed_damaged("index", INDEX_TYPE, BUNDLES[1].top)
    ),
    index_version=st.sampled_from([1, 2, 3, 2**53 - 1]),  # the largest the format allows
    trusted=st.booleans(),
)
@settings(suppress_health_check=SLOW)
def test_update_index(data: bytes, index_version: int, trusted: bool) -> None:
    assume(data)  # a pin has a length of at least 1
    state = fresh_state()
    if trusted:
        index_version = max(index_version, 2)  # pinning trusted version 1 anew is a rollback
        state.load_trusted_timestamp(BUNDLES[0].timestamp)
        state.load_trusted_index(BUNDLES[0].top)
    # The timestamp pins exactly these bytes, so they get past the pin to the signature
    # check and (when validly signed) to the index-top parser.
    state.update_timestamp(
        signed_timestamp(
            make_timestamp(data, version=5, index_version=index_version), KEYS.timestamp
        )
    )
    before = state.index
    outcome = run_parser("trust", TrustError, state.update_index, data)
    if outcome.value is None:
        assert state.index is before
    else:
        assert outcome.value.version == index_version
        assert before is None or outcome.value.version >= before.version


def _state_pinning_group(prefix: str, group: bytes) -> TrustedState:
    top = envelope_bytes(
        INDEX_TYPE, IndexTop(7, FAR, {prefix: MetaRef.of(group)}, *LEVEL).to_payload(), KEYS.index
    )
    state = fresh_state()
    state.update_timestamp(
        signed_timestamp(make_timestamp(top, version=7, index_version=7), KEYS.timestamp)
    )
    state.update_index(top)
    return state


GROUP_PREFIX = BUNDLES[0].group_prefix(PACKAGE)
BIN_PREFIX = BUNDLES[0].bin_prefix(PACKAGE)
SEED_GROUP = BUNDLES[0].group_bytes(PACKAGE)
SEED_BIN = BUNDLES[0].bin_bytes(PACKAGE)


@given(
    group=st.one_of(
        mutated_json(json.loads(SEED_GROUP), keys=FIELDS).map(dumps),
        mutated(SEED_GROUP, tokens=JSON_TOKENS),
    )
)
@settings(suppress_health_check=SLOW)
def test_verify_group_pinned_but_malformed(group: bytes) -> None:
    assume(group)
    state = _state_pinning_group(GROUP_PREFIX, group)
    outcome = run_parser("trust", TrustError, state.verify_group, GROUP_PREFIX, group)
    if outcome.value is not None:
        assert outcome.value.prefix == GROUP_PREFIX


@given(
    bin_bytes=st.one_of(
        mutated_json(json.loads(SEED_BIN), keys=FIELDS, max_edits=5).map(dumps),
        mutated(SEED_BIN, tokens=JSON_TOKENS),
    ),
    name=st.sampled_from([PACKAGE, "other-pkg", "ACME", ""]),
)
@settings(suppress_health_check=SLOW)
def test_verify_bin_pinned_but_malformed(bin_bytes: bytes, name: str) -> None:
    assume(bin_bytes)
    group = GroupNode(GROUP_PREFIX, {BIN_PREFIX: MetaRef.of(bin_bytes)}).to_payload()
    state = _state_pinning_group(GROUP_PREFIX, group)
    verified_group = state.verify_group(GROUP_PREFIX, group)
    outcome = run_parser(
        "trust", TrustError, state.verify_bin, verified_group, BIN_PREFIX, bin_bytes
    )
    node = outcome.value
    if node is None:
        return
    assert node.prefix == BIN_PREFIX
    for entry in node.packages.get(name, ()):
        # The bin's embedded envelopes are unverified: verifying them may only raise TrustError.
        release = run_parser("trust", TrustError, state.verify_bin_release, name, entry).value
        if release is not None:
            assert (release.name, release.version) == (name, entry.version)


# -- releases -----------------------------------------------------------------------------------


@given(
    data=st.one_of(
        damaged(*SIG_FILES),
        signed_damaged("index", RELEASE_TYPE, SIG_FILES[0]),
        st.builds(
            envelope_bytes,
            st.just(RELEASE_TYPE),
            mutated_json(payload_of(SIG_FILES[1]), keys=FIELDS).map(dumps),
            st.just(KEYS.publishers[0].keys),
        ),
    )
)
@settings(suppress_health_check=SLOW)
def test_verify_release(data: bytes) -> None:
    state = fresh_state()
    outcome = run_parser("trust", TrustError, state.verify_release, data)
    release = outcome.value
    if release is not None:
        assert release.file == f"archives/{release.name}/{release.name}-{release.version}.zip"
        try:
            verify_threshold(
                parse_envelope(data),
                expected_type=RELEASE_TYPE,
                keys=state.root.keys,
                keyids=state.root.index.keyids,
                threshold=1,
                what="fuzz",
            )
        except SignatureError:
            # Accepted on the publisher's word alone: every connector is in its namespace.
            assert all(c.id.split(".", 1)[0] == "acme" for c in release.connectors)


def test_seed_world_is_valid() -> None:
    state = fresh_state()
    for n in (2, 3, 4):
        state.update_root(ROOTS[n])
    state.update_timestamp(BUNDLES[2].timestamp)
    state.update_index(BUNDLES[2].top)
    assert state.verify_release(SIG_FILES[0]).version == "1.0.0"
    assert state.verify_release(SIG_FILES[1]).version == "1.1.0"


# -- a client update driven in random order ---------------------------------------------------


class TrustedStateMachine(RuleBasedStateMachine):
    """Feeds TrustedState valid and damaged files in any order its contract allows."""

    def __init__(self) -> None:
        super().__init__()
        self.state = fresh_state()
        self.walk_over = False  # a timestamp or release call ends the root walk
        self.index_updated = False
        self.max_ts = 0
        self.max_index = 0

    def _call(self, method: Any, data: Any) -> Any:
        return run_parser("trust", TrustError, method, data).value

    @precondition(lambda self: not self.walk_over)
    @rule(data=st.one_of(st.sampled_from(list(ROOTS.values())), damaged(*ROOTS.values())))
    def update_root(self, data: bytes) -> None:
        before = self.state.root.version
        new = self._call(self.state.update_root, data)
        if new is not None:
            assert new.version == before + 1

    @precondition(lambda self: self.state.timestamp is None)
    @rule(
        data=st.one_of(
            st.sampled_from([b.timestamp for b in BUNDLES]), damaged(BUNDLES[0].timestamp)
        )
    )
    def load_trusted_timestamp(self, data: bytes) -> None:
        self.walk_over = True
        self._call(self.state.load_trusted_timestamp, data)

    @precondition(lambda self: not self.index_updated)
    @rule(
        data=st.one_of(
            st.sampled_from([b.timestamp for b in BUNDLES]), damaged(BUNDLES[1].timestamp)
        )
    )
    def update_timestamp(self, data: bytes) -> None:
        self.walk_over = True
        self._call(self.state.update_timestamp, data)

    @precondition(lambda self: self.state.timestamp is not None and self.state.index is None)
    @rule(data=st.one_of(st.sampled_from([b.top for b in BUNDLES]), damaged(BUNDLES[0].top)))
    def load_trusted_index(self, data: bytes) -> None:
        self._call(self.state.load_trusted_index, data)

    @precondition(lambda self: self.state.timestamp is not None)
    @rule(data=st.one_of(st.sampled_from([b.top for b in BUNDLES]), damaged(BUNDLES[2].top)))
    def update_index(self, data: bytes) -> None:
        if self._call(self.state.update_index, data) is not None:
            self.index_updated = True

    @rule(data=st.one_of(st.sampled_from(SIG_FILES), damaged(*SIG_FILES)))
    def verify_release(self, data: bytes) -> None:
        self.walk_over = True
        self._call(self.state.verify_release, data)

    @invariant()
    def versions_never_go_back(self) -> None:
        ts, top = self.state.timestamp, self.state.index
        if ts is not None:
            assert ts.version >= self.max_ts
            self.max_ts = ts.version
            if top is not None:
                assert top.version <= ts.index_version
        if top is not None:
            assert top.version >= self.max_index
            self.max_index = top.version


TestTrustedStateMachine = TrustedStateMachine.TestCase
TestTrustedStateMachine.settings = settings(stateful_step_count=20, suppress_health_check=SLOW)
