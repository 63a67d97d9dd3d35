"""The attack matrix: "a URL in connectors.packages is safe", one table row per attack.

Every row builds a real signed index (``RepositorySimulator``, served on 127.0.0.1),
publishes the canary package (its code leaves a marker file when imported), lets the
attacker change what the server serves (or what the cache holds), and then loads twice:
once as a whole run (``build_registry``) and once into an existing registry
(``registry.load_package``). For both it asserts:

* the exact typed error class (``modelmesh_connectors.errors`` / ``MetadataError``);
* no registry was produced, and the existing registry is unchanged;
* no code from the package ran (no canary marker, no ``_mmpkg_*`` module left);
* nothing unverified entered the cache (:func:`tests.attack.hostile.cache_problems`);
* nothing off the machine was looked up (the ``lookups`` fixture).

A row's ``setup`` builds what the trusted keys signed (and may warm the cache); its
``attack`` does what the attacker can do and returns the :class:`Attempt` to make.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.errors import (
    ArchiveError,
    ArchiveFormatError,
    ArchiveLimitError,
    ConnectorError,
    DownloadError,
    ExpiredError,
    ForbiddenEntryError,
    HashMismatchError,
    LengthMismatchError,
    ManifestPlacementError,
    NameCollisionError,
    PackageImportError,
    PolicyError,
    RollbackError,
    RootRotationError,
    SignatureError,
    TrustError,
    UnsafeNameError,
)
from modelmesh_connectors.index.envelope import (
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    canonical_json,
    pae,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    MetadataError,
    MetaRef,
    Timestamp,
    archive_path,
    parse_group,
    parse_timestamp,
)
from modelmesh_connectors.publish import repository
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ID,
    CANARY_NAME,
    CANARY_SOURCE,
    DAY,
    Arena,
    cache_problems,
    canary_entries,
    canary_zip,
    commit_state,
    crafted_zip,
    force_publish,
    next_root,
    patch_zip_entry,
    private_modules,
    release_for,
    rename_problems,
    watch_renames,
    zip_of_length,
)
from tests.support.builders import raw_envelope
from tests.support.http_server import Reply
from tests.support.simulator import RepositorySimulator

CANARY_ZIP = archive_path(CANARY_NAME, "1.0.0")
HOSTILE = "6.6.6"  # version of every validly signed hostile canary zip
HOSTILE_SPEC = f"{CANARY_NAME}=={HOSTILE}"
ATTACKER_HOST = "mirror.attacker.example"  # must never be looked up, let alone contacted


@dataclass(frozen=True)
class Attempt:
    """The load to make after the attack, and what it must end in.

    Attributes:
        spec: The ``connectors.packages`` entry.
        error: The exact error class expected.
        match: Regex the error message must contain.
        overrides: Extra ``connectors:`` keys.
        now: Reference time of the load (default: the real clock).
        no_requests: The load must not make a single HTTP request.
        archives_allowed: The archive's bytes match the signature, so a verified cache entry
            may appear (the package is refused later, by the reader or the policy check).
        code_runs: The package's own code runs by design (a policy enforced at import).
        check: Extra assertion run after each load, given the arena.
    """

    spec: str
    error: type[ConnectorError]
    match: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None
    no_requests: bool = False
    archives_allowed: bool = False
    code_runs: bool = False
    check: Callable[[Arena], None] | None = None


@dataclass(frozen=True)
class Case:
    """One row: ``setup`` (what the trusted keys signed) then ``attack``."""

    id: str
    attack: Callable[[Arena], Attempt]
    setup: Callable[[Arena], None] = lambda arena: None
    bug: str | None = None  # xfail(strict) reason: a real defect in src, reported


def _canary(arena: Arena) -> None:
    arena.publish_canary()


def _case(
    id: str,
    attack: Callable[[Arena], Attempt],
    setup: Callable[[Arena], None] = _canary,
    bug: str | None = None,
) -> Case:
    return Case(id, attack, setup, bug)


# -- envelope surgery ------------------------------------------------------------------------


def _unsigned(data: bytes) -> bytes:
    env = parse_envelope(data)
    return Envelope(env.payload_type, env.payload, ()).to_bytes()


def _flip_signature(data: bytes) -> bytes:
    env = parse_envelope(data)
    first = env.signatures[0]
    bad = bytes([first.sig[0] ^ 0x01]) + first.sig[1:]
    return raw_envelope(
        env.payload_type,
        env.payload,
        [(first.keyid, bad), *((s.keyid, s.sig) for s in env.signatures[1:])],
    )


def _resign(data: bytes, keys: list[SigningKey]) -> bytes:
    env = parse_envelope(data)
    return sign(env.payload_type, env.payload, keys).to_bytes()


def _timestamp_of(arena: Arena) -> Timestamp:
    return parse_timestamp(parse_envelope(arena.sim.read("timestamp.json")).payload)


def _sign_timestamp(arena: Arena, ts: Timestamp, key: SigningKey | None = None) -> bytes:
    return sign(TIMESTAMP_TYPE, ts.to_payload(), [key or arena.sim.timestamp_key]).to_bytes()


def _node_paths(arena: Arena, name: str = CANARY_NAME) -> tuple[str, str]:
    """Index paths of the group and bin nodes on the way to ``name``."""
    state = repository.load_state(arena.sim.dir)
    gref = state.top.groups[state.top.group_prefix(name)]
    group = parse_group(arena.sim.read(gref.path))
    return gref.path, group.bins[state.top.bin_prefix(name)].path


def _pin_error(expected: bytes, served: bytes) -> type[TrustError]:
    return LengthMismatchError if len(expected) != len(served) else HashMismatchError


def _requirement(error: type[ConnectorError], match: str = "", **kw: Any) -> Attempt:
    return Attempt(CANARY_NAME, error, match, **kw)


# -- signatures ----------------------------------------------------------------------------


def _replace_timestamp(change: Callable[[bytes], bytes]) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        arena.sim.write("timestamp.json", change(arena.sim.read("timestamp.json")))
        return _requirement(SignatureError, "timestamp.json")

    return attack


def _replace_sig(
    change: Callable[[Arena, bytes], bytes], match: str = ""
) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        rel = CANARY_ZIP + ".sig"
        arena.sim.write(rel, change(arena, arena.sim.read(rel)))
        return Attempt(arena.canary_url, SignatureError, match)

    return attack


def _payload_swapped_under_signature(data: bytes) -> bytes:
    env = parse_envelope(data)
    obj = json.loads(env.payload)
    obj["expires"] = "2099-01-01T00:00:00Z"  # the freeze attacker's dream
    return raw_envelope(
        env.payload_type, canonical_json(obj), [(s.keyid, s.sig) for s in env.signatures]
    )


def _unsigned_top(arena: Arena) -> Attempt:
    commit_state(arena.sim, top_signers=[])
    return _requirement(SignatureError, "index top")


def _untrusted_top(arena: Arena) -> Attempt:
    commit_state(arena.sim, top_signers=[SigningKey.generate()])
    return _requirement(SignatureError, "index top")


def _timestamp_signed_by_index_key(arena: Arena) -> Attempt:
    arena.sim.write(
        "timestamp.json", _resign(arena.sim.read("timestamp.json"), [arena.sim.index_key])
    )
    return _requirement(SignatureError, "timestamp.json")


def _unsigned_release_in_bin(arena: Arena) -> None:
    force_publish(arena.sim, canary_zip(), signers=[])


def _untrusted_release_in_bin(arena: Arena) -> None:
    force_publish(arena.sim, canary_zip(), signers=[SigningKey.generate()])


def _root_rotation(signers: Callable[[Arena], list[SigningKey]]) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        next_root(arena.sim, signers=signers(arena))
        return _requirement(SignatureError, "root/2.json")

    return attack


def _new_keys_do_not_sign(arena: Arena) -> Attempt:
    # Old keys hand trust to keys nobody proved to hold: the new root role must sign too.
    fresh = [SigningKey.generate() for _ in range(3)]
    next_root(arena.sim, signers=arena.sim.root_keys[:2], root_keys=fresh)
    return _requirement(SignatureError, "its own root role")


def _one_key_counted_twice(arena: Arena) -> Attempt:
    # The attacker holds one root key (A) and lists it a second time under a made-up ID,
    # signing under both, to reach the old root's 2-of-3.
    a = arena.sim.root_keys[0]
    fake = hashlib.sha256(b"not a key id").hexdigest()
    data = next_root(arena.sim, signers=[a], write=False)
    payload = json.loads(parse_envelope(data).payload)
    payload["keys"][fake] = {"keytype": "ed25519", "public": a.public.public_hex}
    payload["roles"]["root"] = {"keyids": [a.keyid, fake], "threshold": 2}
    body = canonical_json(payload)
    sig = a.sign(pae(ROOT_TYPE, body))
    arena.sim.write("root/2.json", raw_envelope(ROOT_TYPE, body, [(a.keyid, sig), (fake, sig)]))
    return _requirement(SignatureError, "root/2.json")


def _two_signatures_by_one_key(arena: Arena) -> Attempt:
    a = arena.sim.root_keys[0]
    body = parse_envelope(next_root(arena.sim, signers=[a], write=False)).payload
    sig = a.sign(pae(ROOT_TYPE, body))
    arena.sim.write("root/2.json", raw_envelope(ROOT_TYPE, body, [(a.keyid, sig), (a.keyid, sig)]))
    return _requirement(SignatureError, "root/2.json")


def _malformed_key(arena: Arena) -> Attempt:
    body = json.loads(parse_envelope(next_root(arena.sim, signers=[], write=False)).payload)
    body["keys"][arena.sim.index_key.keyid]["public"] = "zz" * 32
    next_root(arena.sim, signers=arena.sim.root_keys[:2], payload=canonical_json(body))
    return _requirement(MetadataError, "64 lowercase hex")


def _malformed_signature(data: bytes) -> bytes:
    env = parse_envelope(data)
    return raw_envelope(env.payload_type, env.payload, [(env.signatures[0].keyid, b"short")])


def _release_served_as_timestamp(arena: Arena) -> Attempt:
    arena.sim.write("timestamp.json", arena.sim.read(CANARY_ZIP + ".sig"))
    return _requirement(SignatureError, "expected payload type")


def _timestamp_served_as_root(arena: Arena) -> Attempt:
    arena.sim.write("root/2.json", arena.sim.read("timestamp.json"))
    return _requirement(SignatureError, "expected payload type")


def _top_served_as_release(arena: Arena, sig: bytes) -> bytes:
    # The index key signs both index tops and releases: only the payload type tells them apart.
    ts = _timestamp_of(arena)
    return arena.sim.read(ts.index.path)


SIGNATURES = [
    _case("sig-unsigned-timestamp", _replace_timestamp(_unsigned)),
    _case("sig-unsigned-index-top", _unsigned_top),
    _case(
        "sig-unsigned-release-in-bin",
        lambda a: _requirement(SignatureError, "release"),
        _unsigned_release_in_bin,
    ),
    _case("sig-unsigned-release-sig-url", _replace_sig(lambda a, d: _unsigned(d))),
    _case("sig-invalid-signature-timestamp", _replace_timestamp(_flip_signature)),
    _case("sig-invalid-signature-release-url", _replace_sig(lambda a, d: _flip_signature(d))),
    _case(
        "sig-payload-changed-under-signature", _replace_timestamp(_payload_swapped_under_signature)
    ),
    _case(
        "sig-untrusted-key-timestamp",
        _replace_timestamp(lambda d: _resign(d, [SigningKey.generate()])),
    ),
    _case("sig-untrusted-key-index-top", _untrusted_top),
    _case(
        "sig-untrusted-key-release-in-bin",
        lambda a: _requirement(SignatureError, "release"),
        _untrusted_release_in_bin,
    ),
    _case(
        "sig-untrusted-key-release-url",
        _replace_sig(lambda a, d: _resign(d, [SigningKey.generate()])),
    ),
    _case("sig-wrong-role-index-key-signs-timestamp", _timestamp_signed_by_index_key),
    _case("sig-root-rotation-k-1-of-k", _root_rotation(lambda a: a.sim.root_keys[:1])),
    _case("sig-root-rotation-new-keys-do-not-sign", _new_keys_do_not_sign),
    _case("sig-one-key-counted-twice", _one_key_counted_twice),
    _case("sig-two-signatures-by-one-key", _two_signatures_by_one_key),
    _case("sig-malformed-key", _malformed_key),
    _case("sig-malformed-signature", _replace_timestamp(_malformed_signature)),
    _case("sig-malformed-envelope", _replace_timestamp(lambda d: b'{"payloadType": ')),
    _case("sig-wrong-type-release-served-as-timestamp", _release_served_as_timestamp),
    _case("sig-wrong-type-timestamp-served-as-root", _timestamp_served_as_root),
    _case(
        "sig-wrong-type-index-top-served-as-release",
        _replace_sig(_top_served_as_release, "expected payload type"),
    ),
]


# -- trust root ----------------------------------------------------------------------------


def _trust_root(
    write: Callable[[Arena], bytes | None], error: type[ConnectorError]
) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        path = arena.tmp / "attacked-root.json"
        data = write(arena)
        if data is not None:
            path.write_bytes(data)
        return _requirement(error, overrides={"trust_root": str(path)}, no_requests=True)

    return attack


def _warm_canary(arena: Arena) -> None:
    arena.publish_canary()
    arena.warm([CANARY_NAME])


def _rotation_skipped_version(arena: Arena) -> Attempt:
    next_root(arena.sim, signers=arena.sim.root_keys[:2], version=3)
    return _requirement(RootRotationError, "skipped")


def _badly_signed_intermediate(arena: Arena) -> Attempt:
    keys = arena.sim.root_keys
    next_root(arena.sim, signers=keys[:2])
    # root/3.json: version 3, but signed by one key of the 2-of-3 root role only.
    data = next_root(arena.sim, signers=keys[:1], write=False, version=3)
    body = parse_envelope(next_root(arena.sim, signers=[], write=False, version=4)).payload
    arena.sim.write("root/3.json", data)
    arena.sim.write("root/4.json", sign(ROOT_TYPE, body, keys[:2]).to_bytes())
    return _requirement(SignatureError, "root/3.json")


def _revoked_timestamp_key(arena: Arena) -> None:
    # A legitimate rotation of the timestamp key; the old key is then revoked.
    arena.publish_canary()
    new_ts = SigningKey.generate()
    next_root(arena.sim, signers=arena.sim.root_keys[:2], timestamp_keys=[new_ts])
    arena.notes["old_ts_key"] = arena.sim.timestamp_key
    arena.sim.timestamp_key = new_ts
    commit_state(arena.sim)


def _old_timestamp_key_signs(arena: Arena) -> Attempt:
    ts = _timestamp_of(arena)
    bumped = Timestamp(ts.version + 1, ts.expires, ts.index_version, ts.index)
    arena.sim.write("timestamp.json", _sign_timestamp(arena, bumped, arena.notes["old_ts_key"]))
    return _requirement(SignatureError, "timestamp.json")


TRUST_ROOT = [
    _case("trust-root-missing", _trust_root(lambda a: None, TrustError)),
    _case(
        "trust-root-unsigned",
        _trust_root(lambda a: _unsigned(a.sim.root_bytes), SignatureError),
    ),
    _case("trust-root-corrupt", _trust_root(lambda a: a.sim.root_bytes[:-40], SignatureError)),
    _case(
        "trust-root-k-1-of-k",
        _trust_root(lambda a: _resign(a.sim.root_bytes, a.sim.root_keys[:1]), SignatureError),
    ),
    _case(
        "trust-root-corrupt-with-warm-cache",
        _trust_root(lambda a: a.sim.root_bytes[:-40], SignatureError),
        _warm_canary,
    ),
    _case("rotation-skipped-version", _rotation_skipped_version),
    _case("rotation-badly-signed-intermediate", _badly_signed_intermediate),
    _case("rotation-revoked-timestamp-key", _old_timestamp_key_signs, _revoked_timestamp_key),
]


# -- freshness -----------------------------------------------------------------------------


def _freeze(days: int, match: str) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        return _requirement(ExpiredError, match, now=arena.sim.now + days * DAY)

    return attack


def _short_lived_top(arena: Arena) -> None:
    arena.publish_canary()
    repository.refresh_index(
        arena.sim.dir,
        index_keys=arena.sim.index_key,
        timestamp_keys=arena.sim.timestamp_key,
        now=arena.sim.now,
        index_expiry=DAY,
        timestamp_expiry=30 * DAY,
    )


def _two_states(arena: Arena) -> None:
    """Publish A (canary), remember it, publish B (another package), warm on B."""
    arena.publish_canary()
    arena.notes["snapshot"] = arena.sim.snapshot()
    arena.notes["old_top"] = arena.sim.read(_timestamp_of(arena).index.path)
    arena.sim.publish("acme-audit-log", "1.0.0")
    arena.warm([CANARY_NAME])


def _rollback(arena: Arena) -> Attempt:
    arena.sim.restore(arena.notes["snapshot"])
    return _requirement(RollbackError, "rollback", overrides={"metadata_max_age": 0})


def _rollback_index_version(arena: Arena) -> Attempt:
    # The timestamp key is stolen: a newer timestamp pins the older index top.
    ts = _timestamp_of(arena)
    old_top = arena.notes["old_top"]
    lower = Timestamp(ts.version + 1, ts.expires, ts.index_version - 1, MetaRef.of(old_top))
    arena.sim.write("timestamp.json", _sign_timestamp(arena, lower))
    return _requirement(RollbackError, "lower than", overrides={"metadata_max_age": 0})


def _same_version_other_bytes(arena: Arena) -> Attempt:
    ts = _timestamp_of(arena)
    other = Timestamp(ts.version, ts.expires + DAY, ts.index_version, ts.index)
    arena.sim.write("timestamp.json", _sign_timestamp(arena, other))
    return _requirement(
        RollbackError, "equals the trusted version", overrides={"metadata_max_age": 0}
    )


def _delete(which: Callable[[Arena], str]) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        rel = which(arena)
        (arena.sim.dir / rel).unlink()

        def not_a_missing_package(arena: Arena) -> None:
            assert arena.notes["last_error"].__class__ is DownloadError

        return _requirement(DownloadError, "404", check=not_a_missing_package)

    return attack


def _mix_top(arena: Arena) -> None:
    """State A (canary), then B = the same groups re-signed as a newer top of equal length."""
    arena.publish_canary()
    arena.notes["ts_a"] = arena.sim.read("timestamp.json")
    arena.notes["top_a_path"] = _timestamp_of(arena).index.path
    repository.refresh_index(
        arena.sim.dir,
        index_keys=arena.sim.index_key,
        timestamp_keys=arena.sim.timestamp_key,
        now=arena.sim.now,
    )


def _mix_and_match_top(arena: Arena) -> Attempt:
    top_b = arena.sim.read(_timestamp_of(arena).index.path)
    top_a_path = arena.notes["top_a_path"]
    top_a = arena.sim.read(top_a_path)
    arena.sim.write("timestamp.json", arena.notes["ts_a"])
    arena.sim.write(top_a_path, top_b)
    return _requirement(_pin_error(top_a, top_b), "index top")


def _canary_then_other(arena: Arena) -> None:
    """Publish the canary, then another package: the index holds two generations of bins."""
    arena.publish_canary()
    arena.sim.publish("acme-audit-log", "1.0.0")


def _mix_and_match_bin(arena: Arena) -> Attempt:
    # Serve some other bin (of the other package, or of an older index state: whichever the
    # fan-out makes exist) at the path the signed group pins for the canary's bin.
    _, canary_bin = _node_paths(arena, CANARY_NAME)
    expected = arena.sim.read(canary_bin)
    served = next(
        data
        for path, data in sorted(arena.index_files().items())
        if path.startswith("meta/") and data != expected and data.startswith(b'{"packages"')
    )
    arena.sim.write(canary_bin, served)
    # Longer bytes hit the fetch cap at the pinned length; shorter ones the MetaRef compare.
    error = LengthMismatchError if len(served) > len(expected) else HashMismatchError
    return _requirement(error, canary_bin)


def _rotated(arena: Arena) -> None:
    arena.publish_canary()
    next_root(arena.sim, signers=arena.sim.root_keys[:2])


def _root_3_says_2(arena: Arena) -> Attempt:
    arena.sim.write("root/3.json", arena.sim.read("root/2.json"))
    return _requirement(RootRotationError, "expected root version 3, got 2")


def _top_version_not_pinned(
    delta: int, error: type[ConnectorError], match: str
) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        ts = _timestamp_of(arena)
        lie = Timestamp(ts.version + 1, ts.expires, ts.index_version + delta, ts.index)
        arena.sim.write("timestamp.json", _sign_timestamp(arena, lie))
        return _requirement(error, match)

    return attack


FRESHNESS = [
    _case("fresh-expired-timestamp-freeze", _freeze(30, "timestamp.json: expired")),
    _case(
        "fresh-expired-timestamp-freeze-warm-cache",
        _freeze(30, "timestamp.json: expired"),
        _warm_canary,
    ),
    _case("fresh-expired-index-top", _freeze(2, "index top .*expired"), _short_lived_top),
    _case("fresh-expired-root", _freeze(400, "root/1.json: expired")),
    _case("fresh-rollback-timestamp", _rollback, _two_states),
    _case("fresh-rollback-index-version", _rollback_index_version, _two_states),
    _case("fresh-same-version-other-bytes", _same_version_other_bytes, _two_states),
    _case("fresh-deleted-bin-node", _delete(lambda a: _node_paths(a)[1])),
    _case("fresh-deleted-group-node", _delete(lambda a: _node_paths(a)[0])),
    _case("fresh-deleted-index-top", _delete(lambda a: _timestamp_of(a).index.path)),
    _case("fresh-deleted-archive", _delete(lambda a: CANARY_ZIP)),
    _case("fresh-mix-and-match-top", _mix_and_match_top, _mix_top),
    _case("fresh-mix-and-match-bin", _mix_and_match_bin, _canary_then_other),
    _case("fresh-root-3-contains-version-2", _root_3_says_2, _rotated),
    _case(
        "fresh-timestamp-pins-lower-version-than-top",
        _top_version_not_pinned(-1, MetadataError, "mix-and-match"),
    ),
    _case(
        "fresh-timestamp-pins-higher-version-than-top",
        _top_version_not_pinned(+1, RollbackError, "rollback"),
    ),
]


# -- lengths -------------------------------------------------------------------------------


def _respond(
    path_of: Callable[[Arena], str],
    reply: Callable[[bytes], Reply],
    spec: Callable[[Arena], str] = lambda a: CANARY_NAME,
) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        rel = path_of(arena)
        real = arena.sim.read(rel)
        arena.sim.server.respond_with("/" + rel, lambda request: reply(real))
        return Attempt(spec(arena), LengthMismatchError)

    return attack


def _grow(
    path_of: Callable[[Arena], str], extra: bytes = b"\0" * 100
) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        rel = path_of(arena)
        arena.sim.write(rel, arena.sim.read(rel) + extra)
        return _requirement(LengthMismatchError)

    return attack


def _shrink(arena: Arena) -> Attempt:
    arena.sim.write(CANARY_ZIP, arena.sim.read(CANARY_ZIP)[:-100])
    return _requirement(LengthMismatchError, "expected")


def _big_bin(arena: Arena) -> None:
    arena.publish_canary()
    for version in ("1.0.1", "1.0.2"):  # more releases in the canary's bin
        archive = arena.tmp / f"canary-{version}.zip"
        archive.write_bytes(crafted_zip(canary_entries(version)))
        arena.sim.publish_archive(archive)


def _node_over_cap(arena: Arena) -> Attempt:
    _, bin_path = _node_paths(arena)
    assert len(arena.sim.read(bin_path)) > 1024

    def never_asked(arena: Arena) -> None:
        assert arena.sim.server.request_count("/" + bin_path) == 0

    return _requirement(
        TrustError,
        "over the metadata cap",
        overrides={"max_metadata_bytes": 1024},
        check=never_asked,
    )


def _timestamp_path(arena: Arena) -> str:
    return "timestamp.json"


LENGTHS = [
    _case(
        "len-timestamp-endless",
        _respond(_timestamp_path, lambda real: Reply.ok(b"", endless=True, framing="chunked")),
    ),
    _case(
        "len-timestamp-over-cap-announced",
        _respond(_timestamp_path, lambda real: Reply.ok(real + b" " * (17 * 1024))),
    ),
    _case(
        "len-timestamp-over-cap-streamed",
        _respond(
            _timestamp_path, lambda real: Reply.ok(real + b" " * (17 * 1024), framing="close")
        ),
    ),
    _case("len-index-top-longer-than-pinned", _grow(lambda a: _timestamp_of(a).index.path)),
    _case("len-bin-node-over-configured-cap", _node_over_cap, _big_bin),
    _case("len-archive-longer-than-signed", _grow(lambda a: CANARY_ZIP)),
    _case(
        "len-archive-longer-streamed-chunked",
        _respond(
            lambda a: CANARY_ZIP, lambda real: Reply.ok(real + b"\0" * 10_000, framing="chunked")
        ),
    ),
    _case("len-archive-shorter-than-signed", _shrink),
    _case(
        "len-archive-endless",
        _respond(
            lambda a: CANARY_ZIP, lambda real: Reply.ok(real, endless=True, framing="chunked")
        ),
    ),
    _case(
        "len-archive-endless-url",
        _respond(
            lambda a: CANARY_ZIP,
            lambda real: Reply.ok(real, endless=True, framing="close"),
            lambda a: a.canary_url,
        ),
    ),
]


# -- hashes --------------------------------------------------------------------------------


def _flip_middle(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def _swap_archive(arena: Arena) -> Attempt:
    arena.sim.write(CANARY_ZIP, _flip_middle(arena.sim.read(CANARY_ZIP)))
    return _requirement(HashMismatchError, "sha256 mismatch")


def _replace_with_valid_zip(arena: Arena) -> Attempt:
    # The strongest swap: a valid, importable package of exactly the signed length, so the
    # hash is the only thing standing between the mirror and code execution.
    signed = arena.sim.read(CANARY_ZIP)
    entries = [
        (n, d + b"\nPWNED = True\n" if n == "demo_canary/canary.py" else d)
        for n, d in canary_entries("1.0.0")
        if n != "README.md"
    ]
    arena.sim.write(CANARY_ZIP, zip_of_length(entries, len(signed)))
    return _requirement(HashMismatchError, "sha256 mismatch")


def _swap_after_first_download(damage: Callable[[bytes], bytes]) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        entry = arena.archive_entry()
        entry.write_bytes(damage(entry.read_bytes()))
        arena.sim.write(CANARY_ZIP, _flip_middle(arena.sim.read(CANARY_ZIP)))

        def entry_gone(arena: Arena) -> None:
            assert not entry.exists(), "the corrupt cache entry is still there"

        return _requirement(HashMismatchError, "sha256 mismatch", check=entry_gone)

    return attack


def _pin(
    digest: Callable[[Arena], str], swap: bool = False, match: str = ""
) -> Callable[[Arena], Attempt]:
    def attack(arena: Arena) -> Attempt:
        if swap:
            arena.sim.write(CANARY_ZIP, _flip_middle(arena.sim.read(CANARY_ZIP)))
        return Attempt(f"{arena.canary_url}#sha256={digest(arena)}", HashMismatchError, match)

    return attack


def _pin_only_url(arena: Arena) -> Attempt:
    arena.sim.server.add_file("/loose/pkg.zip", arena.sim.read(CANARY_ZIP))
    return Attempt(f"{arena.url('loose/pkg.zip')}#sha256={'1' * 64}", HashMismatchError, "pin")


HASHES = [
    _case("hash-archive-swapped", _swap_archive),
    _case("hash-archive-replaced-by-valid-zip-of-signed-length", _replace_with_valid_zip),
    _case(
        "hash-archive-swapped-after-first-download",
        _swap_after_first_download(_flip_middle),
        _warm_canary,
    ),
    _case(
        "hash-cached-entry-truncated-and-server-swapped",
        _swap_after_first_download(lambda data: data[:-1]),
        _warm_canary,
    ),
    _case("hash-pin-mismatch", _pin(lambda a: "0" * 64, match="does not match the signed")),
    _case(
        "hash-pin-matches-swapped-archive",
        _pin(
            lambda a: hashlib.sha256(a.sim.read(CANARY_ZIP)).hexdigest(),
            swap=True,
            match="does not match the signed",
        ),
    ),
    _case("hash-pin-only-url-mismatch", _pin_only_url),
]


# -- archives: validly signed, hostile zips ------------------------------------------------


def _hostile(entries: Callable[[], bytes]) -> Callable[[Arena], None]:
    def setup(arena: Arena) -> None:
        data = entries()
        force_publish(arena.sim, data, release=release_for(data, version=HOSTILE))

    return setup


def _with(
    *extra: tuple[str | zipfile.ZipInfo, bytes], drop: str | None = None
) -> Callable[[], bytes]:
    def build() -> bytes:
        entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
            (n, d) for n, d in canary_entries(HOSTILE) if n != drop
        ]
        return crafted_zip([*entries, *extra])

    return build


def _symlink_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("demo_canary/link.py")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _bzip2_entry() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("demo_canary/packed.py")
    info.compress_type = zipfile.ZIP_BZIP2
    return info


def _patched(name: str, **fields: int) -> Callable[[], bytes]:
    return lambda: patch_zip_entry(_with()(), name, **fields)


def _canary_source() -> bytes:
    return dict(canary_entries(HOSTILE))["demo_canary/canary.py"]


def _unicode_path_entry() -> zipfile.ZipInfo:
    # Named notes.txt in the header; its Info-ZIP Unicode Path extra field (0x7075) names it
    # demo_canary/canary.py. Python 3.11 reads notes.txt, 3.12+ reads a second canary.py.
    info = zipfile.ZipInfo("demo_canary/notes.txt")
    other = b"demo_canary/canary.py"
    payload = b"\x01" + struct.pack("<I", zlib.crc32(info.filename.encode())) + other
    info.extra = struct.pack("<HH", 0x7075, len(payload)) + payload
    return info


def _zip_case(id: str, build: Callable[[], bytes], match: str, error: type[ArchiveError]) -> Case:
    return _case(
        id,
        lambda a: Attempt(HOSTILE_SPEC, error, match, archives_allowed=True),
        _hostile(build),
    )


EVIL = b"open('/tmp/pwned', 'w').write('x')\n"
ARCHIVES = [
    _zip_case("zip-traversal", _with(("../evil.py", EVIL)), "traversal", UnsafeNameError),
    _zip_case(
        "zip-traversal-nested",
        _with(("demo_canary/../../evil.py", EVIL)),
        "traversal",
        UnsafeNameError,
    ),
    _zip_case("zip-absolute-path", _with(("/tmp/evil.py", EVIL)), "absolute path", UnsafeNameError),
    _zip_case("zip-drive-letter", _with(("C:/evil.py", EVIL)), "drive-letter", UnsafeNameError),
    _zip_case(
        "zip-backslash", _with(("demo_canary\\..\\..\\evil.py", EVIL)), "backslash", UnsafeNameError
    ),
    _zip_case(
        "zip-symlink", _with((_symlink_entry(), b"/etc/passwd")), "symlink", ForbiddenEntryError
    ),
    _zip_case(
        "zip-duplicate-entry",
        _with(("demo_canary/canary.py", EVIL)),
        "duplicate",
        NameCollisionError,
    ),
    _zip_case(
        "zip-case-fold-collision",
        _with(("demo_canary/Canary.py", EVIL)),
        "case-folding",
        NameCollisionError,
    ),
    _zip_case(
        "zip-lying-size-smaller",
        lambda: patch_zip_entry(_with()(), "demo_canary/canary.py", file_size=10),
        "canary.py",
        ArchiveFormatError,
    ),
    _zip_case(
        "zip-lying-size-larger",
        lambda: patch_zip_entry(
            _with()(), "demo_canary/canary.py", file_size=len(_canary_source()) + 1000
        ),
        "canary.py",
        ArchiveFormatError,
    ),
    _zip_case(
        "zip-bomb",
        _with(("demo_canary/bomb.bin", b"\0" * (17 * 1024 * 1024))),
        "bomb",
        ArchiveLimitError,
    ),
    _zip_case(
        "zip-encrypted-entry",
        _patched("demo_canary/canary.py", flags=0x1),
        "encrypted",
        ArchiveFormatError,
    ),
    _zip_case(
        "zip-no-manifest",
        _with(drop="modelmesh-package.yaml"),
        "no modelmesh-package",
        ManifestPlacementError,
    ),
    _zip_case(
        "zip-manifest-not-at-root",
        _with(
            ("nested/modelmesh-package.yaml", b"name: x\n"),
            drop="modelmesh-package.yaml",
        ),
        "must be at the root",
        ManifestPlacementError,
    ),
    _zip_case(
        "zip-unsupported-compression",
        _with((_bzip2_entry(), EVIL)),
        "compression method",
        ArchiveFormatError,
    ),
    _zip_case(
        "zip-file-and-directory-clash",
        _with(("demo_canary/canary.py/x.py", EVIL)),
        "directory",
        NameCollisionError,
    ),
    _zip_case(
        "zip-not-a-zip",
        lambda: b"MZ\x90\x00 signed, but not a zip" * 20,
        "not a valid zip",
        ArchiveFormatError,
    ),
    _zip_case(
        "zip-unicode-path-extra",
        _with((_unicode_path_entry(), EVIL)),
        "entry 'demo_canary/notes.txt': Info-ZIP Unicode Path",
        UnsafeNameError,
    ),
]


# -- policy --------------------------------------------------------------------------------


def _no_lookup_attempt(spec: str, **overrides: Any) -> Attempt:
    return Attempt(spec, PolicyError, "refusing plain http", overrides=overrides, no_requests=True)


def _redirect_off_loopback(arena: Arena) -> Attempt:
    arena.sim.server.respond_with(
        "/" + CANARY_ZIP, lambda r: Reply.redirect(f"http://{ATTACKER_HOST}/canary.zip")
    )
    return _requirement(PolicyError, "refusing plain http")


def _sneaky(code: str) -> Callable[[Arena], None]:
    def setup(arena: Arena) -> None:
        entries = [
            (n, d + code.encode() if n == "demo_canary/canary.py" else d)
            for n, d in canary_entries(HOSTILE)
        ]
        archive = arena.tmp / "sneaky.zip"
        archive.write_bytes(crafted_zip(entries))
        arena.sim.publish_archive(archive)  # the real publisher: the zip itself is fine

    return setup


REGISTER_UNDECLARED = """
import gc as _gc
from modelmesh_connectors import ConnectorRegistry as _Registry
for _o in _gc.get_objects():
    if isinstance(_o, _Registry):
        try:
            _o.register("evil.backdoor.v1", Canary)
        except Exception:
            pass
"""

HIJACK_UPSTREAM = """
from modelmesh.connectors import CONNECTOR_REGISTRY as _TABLE
_TABLE["openai.llm.v1"] = Canary
"""


def _undeclared(arena: Arena) -> Attempt:
    def no_backdoor(arena: Arena) -> None:
        registry = arena.notes.get("registry")
        if registry is not None:
            assert "evil.backdoor.v1" not in {i.id for i in registry.list_connectors()}

    return Attempt(
        HOSTILE_SPEC,
        PackageImportError,
        "evil.backdoor.v1",
        archives_allowed=True,
        code_runs=True,
        check=no_backdoor,
    )


def _hijack(arena: Arena) -> Attempt:
    from modelmesh.connectors import CONNECTOR_REGISTRY

    original = dict(CONNECTOR_REGISTRY)

    def restored(arena: Arena) -> None:
        assert dict(CONNECTOR_REGISTRY) == original

    return Attempt(
        HOSTILE_SPEC,
        PackageImportError,
        "openai.llm.v1",
        archives_allowed=True,
        code_runs=True,
        check=restored,
    )


def _publisher(name: str, namespaces: list[str]) -> Callable[[Arena], SigningKey]:
    def add(arena: Arena) -> SigningKey:
        key = SigningKey.generate()
        next_root(
            arena.sim, signers=arena.sim.root_keys[:2], publishers=[(name, [key], namespaces)]
        )
        return key

    return add


def _outside_namespace(arena: Arena) -> None:
    key = _publisher("acme", ["acme"])(arena)
    data = canary_zip()
    force_publish(arena.sim, data, signers=[key])  # declares demo.canary.v1, not acme.*


def _manifest_mismatch(signer: str) -> Callable[[Arena], None]:
    def setup(arena: Arena) -> None:
        extra = (
            "  - id: modelmesh.hijack.v1\n    type: observability\n"
            "    entry: demo_canary.canary:Canary\n"
        )
        data = crafted_zip(canary_entries(HOSTILE, extra_manifest=extra))
        keys = [_publisher("demo", ["demo"])(arena)] if signer == "publisher" else None
        # The release lists only demo.canary.v1, which the demo publisher may sign.
        force_publish(arena.sim, data, release=release_for(data, version=HOSTILE), signers=keys)

    return setup


def _version_mismatch(arena: Arena) -> None:
    data = crafted_zip(canary_entries("6.6.7"))
    force_publish(arena.sim, data, release=release_for(data, version=HOSTILE))


def _moved_entry(arena: Arena) -> None:
    # A valid, signed release of another package listed under demo-canary.
    release = arena.sim.publish("acme-audit-log", "1.0.0")
    env = parse_envelope(arena.sim.read(release.file + ".sig"))
    force_publish(
        arena.sim,
        arena.sim.read(release.file),
        release=release,
        envelope=env,
        list_as=(CANARY_NAME, HOSTILE),
        write_sig=False,
    )


POLICY = [
    _case(
        "policy-plain-http-index-off-loopback",
        lambda a: _no_lookup_attempt(CANARY_NAME, index=f"http://{ATTACKER_HOST}/"),
    ),
    _case(
        "policy-plain-http-archive-url-off-loopback",
        lambda a: _no_lookup_attempt(f"http://{ATTACKER_HOST}/{CANARY_ZIP}"),
    ),
    _case("policy-redirect-to-plain-http-off-loopback", _redirect_off_loopback),
    _case("policy-undeclared-connector-id", _undeclared, _sneaky(REGISTER_UNDECLARED)),
    _case("policy-upstream-table-hijack", _hijack, _sneaky(HIJACK_UPSTREAM)),
    _case(
        "policy-publisher-outside-namespace",
        lambda a: _requirement(PolicyError, "outside the namespaces"),
        _outside_namespace,
    ),
    _case(
        "policy-publisher-outside-namespace-url",
        lambda a: Attempt(a.canary_url, PolicyError, "outside the namespaces"),
        _outside_namespace,
    ),
    _case(
        "policy-release-differs-from-manifest-publisher",
        lambda a: Attempt(HOSTILE_SPEC, PolicyError, "manifest", archives_allowed=True),
        _manifest_mismatch("publisher"),
    ),
    _case(
        "policy-release-differs-from-manifest-index-role",
        lambda a: Attempt(HOSTILE_SPEC, PolicyError, "manifest", archives_allowed=True),
        _manifest_mismatch("index"),
    ),
    _case(
        "policy-release-version-differs-from-manifest",
        lambda a: Attempt(HOSTILE_SPEC, PolicyError, "6.6.7", archives_allowed=True),
        _version_mismatch,
    ),
    _case(
        "policy-bin-entry-moved-to-other-package",
        lambda a: Attempt(HOSTILE_SPEC, PolicyError, "expected a release of demo-canary"),
        _moved_entry,
    ),
]

CASES = SIGNATURES + TRUST_ROOT + FRESHNESS + LENGTHS + HASHES + ARCHIVES + POLICY


def _params() -> list[Any]:
    out = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {case.bug}")] if case.bug else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", _params())
def test_attack(
    case: Case,
    tmp_path: Path,
    canary: Path,
    lookups: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Arena(tmp_path) as arena:
        case.setup(arena)
        assert not canary.exists(), "setup must never import package code"
        trusted = arena.index_files()
        before = arena.cache_files()
        modules = private_modules()
        attempt = case.attack(arena)
        renames = watch_renames(monkeypatch, arena.sim.cache)
        server = arena.sim.server

        # 1. A whole run: all or nothing, so no registry at all.
        server.clear_requests()
        cfg = arena.sim.config([attempt.spec], **attempt.overrides)
        with pytest.raises(ConnectorError) as whole:
            build_registry(cfg, now=attempt.now)
        _assert_refused(arena, attempt, whole.value, trusted, before, modules, canary)

        # 2. Into an existing registry: it must be left exactly as it was.
        registry = build_registry(arena.sim.config([], **attempt.overrides), now=attempt.now)
        arena.notes["registry"] = registry
        listed = registry.list_connectors()
        server.clear_requests()
        with pytest.raises(ConnectorError) as into:
            registry.load_package(attempt.spec)
        _assert_refused(arena, attempt, into.value, trusted, before, modules, canary)
        assert registry.list_connectors() == listed
        assert CANARY_ID not in {i.id for i in listed}
    visible = rename_problems(renames, trusted, archives_allowed=attempt.archives_allowed)
    assert visible == [], "unverified bytes were renamed into the cache"
    assert lookups == [], f"looked up non-loopback hosts: {lookups}"


def _assert_refused(
    arena: Arena,
    attempt: Attempt,
    error: ConnectorError,
    trusted: dict[str, bytes],
    before: dict[str, bytes],
    modules: set[str],
    canary: Path,
) -> None:
    arena.notes["last_error"] = error
    assert type(error) is attempt.error, f"expected {attempt.error.__name__}, got {error!r}"
    if attempt.match:
        import re

        assert re.search(attempt.match, str(error)), f"{attempt.match!r} not in {error}"
    if attempt.no_requests:
        assert arena.sim.server.requests == []
    problems = cache_problems(
        before, arena.cache_files(), trusted, archives_allowed=attempt.archives_allowed
    )
    assert problems == []
    assert private_modules() == modules, "package modules stayed imported"
    if not attempt.code_runs:
        assert not canary.exists(), "code from the refused package ran"
    if attempt.check is not None:
        attempt.check(arena)


# -- controls: the same harness sees a success when there is no attack ----------------------


def _good_rotation(arena: Arena) -> str:
    fresh = [SigningKey.generate() for _ in range(3)]
    next_root(arena.sim, signers=[*arena.sim.root_keys[:2], *fresh[:2]], root_keys=fresh)
    return CANARY_NAME


def _corrupt_cache_honest_server(arena: Arena) -> str:
    arena.warm([CANARY_NAME])
    entry = arena.archive_entry()
    entry.write_bytes(_flip_middle(entry.read_bytes()))
    return CANARY_NAME


def _good_rotation_two_steps(arena: Arena) -> str:
    mid = [SigningKey.generate() for _ in range(3)]
    next_root(arena.sim, signers=[*arena.sim.root_keys[:2], *mid[:2]], root_keys=mid)
    end = [SigningKey.generate() for _ in range(3)]
    body = parse_envelope(next_root(arena.sim, signers=[], root_keys=end, write=False)).payload
    arena.sim.write("root/3.json", sign(ROOT_TYPE, body, [*mid[:2], *end[:2]]).to_bytes())
    return CANARY_NAME


CONTROLS: list[tuple[str, Callable[[Arena], str]]] = [
    ("requirement", lambda a: CANARY_NAME),
    ("archive-url", lambda a: a.canary_url),
    (
        "archive-url-pinned",
        lambda a: f"{a.canary_url}#sha256={hashlib.sha256(a.sim.read(CANARY_ZIP)).hexdigest()}",
    ),
    ("good-rotation-accepted", _good_rotation),
    ("good-rotation-two-steps", _good_rotation_two_steps),
    ("corrupt-cache-refetched-from-honest-server", _corrupt_cache_honest_server),
]


@pytest.mark.parametrize(("name", "prepare"), CONTROLS, ids=[c[0] for c in CONTROLS])
def test_control_loads_and_runs_canary(
    name: str,
    prepare: Callable[[Arena], str],
    tmp_path: Path,
    canary: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without an attack the canary loads and its marker appears: the checks can fail."""
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        spec = prepare(arena)
        trusted = arena.index_files()
        renames = watch_renames(monkeypatch, arena.sim.cache)
        registry = build_registry(arena.sim.config([spec]))
        # The rename watch sees the archive being made visible, and judges it.
        assert any(rel.startswith("archives/") for rel, _ in renames)
        assert rename_problems(renames, trusted, archives_allowed=True) == []
        assert rename_problems(renames, trusted, archives_allowed=False) != []
        assert registry.origin(CANARY_ID).kind == "package"
        assert canary.read_text().startswith("_mmpkg_demo_canary")
        problems = cache_problems({}, arena.cache_files(), trusted, archives_allowed=True)
        assert problems == []
        if name.startswith("good-rotation"):
            # The walked chain is stored whole (re-verified from the anchor on every run).
            stored = sorted(arena.sim.cache.glob("metadata/*/roots/*.json"))
            expected = ["2.json", "3.json"] if "two" in name else ["2.json"]
            assert [p.name for p in stored] == expected
            for path in stored:
                assert path.read_bytes() == arena.sim.read(f"root/{path.name}")


def test_cache_check_catches_unverified_files(tmp_path: Path) -> None:
    """The cache check itself can fail: it flags every kind of unverified leftover."""
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        trusted = arena.index_files()
        good = {
            "archives/sha256/"
            + hashlib.sha256(arena.sim.read(CANARY_ZIP)).hexdigest()[:2]
            + "/"
            + hashlib.sha256(arena.sim.read(CANARY_ZIP)).hexdigest(): arena.sim.read(CANARY_ZIP),
            "metadata/x/timestamp.json": trusted["timestamp.json"],
        }
        assert cache_problems({}, good, trusted, archives_allowed=True) == []
        bad = {
            "archives/sha256/00/" + "0" * 64: b"junk",
            "archives/sha256/00/" + "0" * 64 + ".abc.tmp": b"half",
            "metadata/x/timestamp.json": _unsigned(trusted["timestamp.json"]),
            "metadata/x/nodes/" + "1" * 64 + ".json": b"{}",
        }
        assert len(cache_problems({}, bad, trusted, archives_allowed=True)) == 4
        assert cache_problems({}, good, trusted, archives_allowed=False) != []


def test_root_planted_in_cache_does_not_replace_the_anchor(tmp_path: Path, canary: Path) -> None:
    with Arena(tmp_path / "victim") as victim:
        victim.sim.publish("acme-audit-log", "1.0.0")
        build_registry(victim.sim.config(["acme-audit-log"]))  # stored state exists
        evil = RepositorySimulator(tmp_path / "evil", serve=False)  # the attacker's own keys
        evil.publish_dir(CANARY_SOURCE)
        staged = repository.root_init(
            root_keys=[k.public for k in evil.root_keys],
            root_threshold=2,
            index_keys=[evil.index_key.public],
            index_threshold=1,
            timestamp_keys=[evil.timestamp_key.public],
            timestamp_threshold=1,
            expires=evil.now + 30 * DAY,
            version=2,
        )
        for key in evil.root_keys[:2]:
            staged = staged.with_signature(key)  # signed by the attacker's keys only
        [origin] = (victim.sim.cache / "metadata").iterdir()
        (origin / "root.json").write_bytes(staged.to_bytes())  # written into the cache,
        (origin / "roots").mkdir(exist_ok=True)
        (origin / "roots" / "2.json").write_bytes(staged.to_bytes())  # as the next chain link
        for name in ("timestamp.json", "index.json", "state.json"):
            (origin / name).unlink()
        shutil.copytree(evil.dir, victim.sim.dir, dirs_exist_ok=True)  # and served
        try:
            with pytest.raises(TrustError):
                build_registry(victim.sim.config([CANARY_NAME], metadata_max_age=0))
        finally:
            assert not canary.exists(), "attacker code ran"
