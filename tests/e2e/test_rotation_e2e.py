"""Root and key rotation, end to end: the publisher rotates, real clients over HTTP follow.

Root 1 (2-of-3 root keys, timestamp key T1) is what clients ship. Root 2 replaces every root
key (3-of-4) and the timestamp key (T2); root 3 changes them again (2-of-2, T3). A client
trusting root 1 walks the chain — one step, or two with root 2 as an intermediate step — and
keeps loading packages; keys a later root dropped (T1, T2, the old root keys) are revoked: a
timestamp they sign is refused, and so is a root that only the *new* keys signed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from modelmesh_connectors.client.state import MetadataStore
from modelmesh_connectors.errors import SignatureError
from modelmesh_connectors.index.envelope import TIMESTAMP_TYPE, sign
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import Timestamp
from modelmesh_connectors.index.trust import (
    trust_root_id,
    verify_anchor_root,
    verify_release,
)
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.audit import audit_directory
from modelmesh_connectors.registry import build_registry
from tests.support.simulator import DAY, RepositorySimulator

CONNECTOR = "acme.audit-log.v1"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        simulator.publish("acme-audit-log", "1.0.0")
        yield simulator


def load(sim: RepositorySimulator, cache: str = "cache") -> str:
    """Load the package with a client trusting root 1 (``sim.trust_root``); its version."""
    config = sim.config(["acme-audit-log"], metadata_max_age=0, cache_dir=str(sim.tmp / cache))
    registry = build_registry(config)
    return {i.id: i.version for i in registry.list_connectors()}[CONNECTOR]


def stored_root(sim: RepositorySimulator, cache: str = "cache") -> bytes:
    """The root the client's next update starts from, as its state store holds it.

    A store holding no root (never updated, or a store that keeps only walked roots) means
    the shipped anchor, root 1.
    """
    versions = MetadataStore(sim.tmp / cache).trust_root(trust_root_id(sim.root_bytes)).load_root_versions()
    return versions[-1][1] if versions else sim.root_bytes


def stage(sim: RepositorySimulator, signers: Sequence[SigningKey], **changes: object) -> bytes:
    """Stage the next root with ``changes`` and sign it with ``signers``."""
    staged = repository.root_rotate(sim.dir, expires=sim.now + 300 * DAY, **changes)  # type: ignore[arg-type]
    for key in signers:
        staged = staged.with_signature(key)
    return staged.to_bytes()


def keys(n: int) -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(n)]


class Rotation:
    """The publisher's side of root 1 → 2 → 3."""

    def __init__(self, sim: RepositorySimulator) -> None:
        self.sim = sim
        self.r1, self.t1 = sim.root_keys, sim.timestamp_key
        self.r2, self.t2 = keys(4), SigningKey.generate()
        self.r3, self.t3 = [self.r2[3], SigningKey.generate()], SigningKey.generate()

    def to_v2(self) -> None:
        """Replace all root keys (2-of-3 → 3-of-4) and the timestamp key."""
        data = stage(
            self.sim,
            [self.r1[0], self.r1[2], *self.r2[:3]],  # root 1's threshold AND root 2's own
            root_keys=[k.public for k in self.r2],
            root_threshold=3,
            timestamp_keys=[self.t2.public],
        )
        self._publish(data, self.t2)

    def to_v3(self) -> None:
        """Root keys 3-of-4 → 2-of-2 (one kept, one new) and a third timestamp key."""
        data = stage(
            self.sim,
            [*self.r2[1:4], self.r3[1]],  # 3 of root 2's keys; both of root 3's (r2[3] is in both)
            root_keys=[k.public for k in self.r3],
            root_threshold=2,
            timestamp_keys=[self.t3.public],
        )
        self._publish(data, self.t3)

    def _publish(self, data: bytes, timestamp_key: SigningKey) -> None:
        root = repository.root_publish(self.sim.dir, data, now=self.sim.now)
        assert repository.load_state(self.sim.dir).stale_signatures  # the old key signed it
        # Re-sign the timestamp with the NEW key; the index key did not change.
        repository.refresh_timestamp(self.sim.dir, timestamp_key, now=self.sim.now)
        self.sim.timestamp_key = timestamp_key  # later publishes sign with it
        assert not repository.load_state(self.sim.dir).stale_signatures
        assert root.version == repository.load_state(self.sim.dir).root.version


def timestamp_signed_by(sim: RepositorySimulator, key: SigningKey) -> bytes:
    """A newer timestamp with the current pin, signed by ``key``."""
    current = repository.load_state(sim.dir).timestamp
    forged = Timestamp(current.version + 1, sim.now + 2 * DAY, current.index_version, current.index)
    return sign(TIMESTAMP_TYPE, forged.to_payload(), [key]).to_bytes()


def test_clients_trusting_root_1_walk_to_root_2_and_3(sim: RepositorySimulator) -> None:
    rotation = Rotation(sim)
    assert load(sim, "client-a") == "1.0.0"
    assert stored_root(sim, "client-a") == sim.root_bytes

    rotation.to_v2()
    assert load(sim, "client-b") == "1.0.0"  # v1 → v2
    assert stored_root(sim, "client-b") == sim.read("root/2.json")

    rotation.to_v3()
    sim.publish("acme-audit-log", "1.1.0")  # index key unchanged, timestamp key T3
    assert load(sim, "client-c") == "1.1.0"  # v1 → v2 → v3: root 2 is an intermediate step
    assert stored_root(sim, "client-c") == sim.read("root/3.json")
    report = audit_directory(sim.dir, trusted_root=sim.root_bytes)
    assert report.ok, report.errors


@pytest.mark.parametrize("revoked", ["t1", "t2"])
def test_timestamp_signed_by_a_revoked_key_is_refused(sim: RepositorySimulator, revoked: str) -> None:
    rotation = Rotation(sim)
    rotation.to_v2()
    rotation.to_v3()
    old_key = {"t1": rotation.t1, "t2": rotation.t2}[revoked]
    # The publisher's own check refuses to sign with it, and writes nothing.
    before = sim.read("timestamp.json")
    with pytest.raises(SignatureError, match=r"timestamp\.json"):
        repository.refresh_timestamp(sim.dir, old_key, now=sim.now)
    assert sim.read("timestamp.json") == before
    # A mirror serving it anyway: the client (whose anchor, root 1, lists T1) refuses it.
    sim.write("timestamp.json", timestamp_signed_by(sim, old_key))
    with pytest.raises(SignatureError, match=r"timestamp\.json"):
        load(sim, "client")
    # The walk itself succeeded: roots 2 and 3 are stored though the update failed (FORMAT.md
    # §3), so the revocation of the old key is learnt and kept; nothing else is stored.
    assert verify_anchor_root(stored_root(sim, "client")).version == 3
    assert not audit_directory(sim.dir, trusted_root=sim.root_bytes).ok
    sim.write("timestamp.json", before)
    assert load(sim, "client") == "1.0.0"


@pytest.mark.parametrize(
    "signed_by",
    [
        "new keys only",  # none of root 1's root keys
        "old keys only",  # none of its own
        "below the new threshold",  # 2 of root 1's, but 2 of its own 3-of-4
    ],
)
@pytest.mark.parametrize("client", ["fresh", "cached"])
def test_root_2_without_both_thresholds_is_refused(sim: RepositorySimulator, signed_by: str, client: str) -> None:
    r1, r2 = sim.root_keys, keys(4)
    signers = {
        "new keys only": r2[:4],
        "old keys only": r1,
        "below the new threshold": [*r1[:2], *r2[:2]],
    }[signed_by]
    data = stage(sim, signers, root_keys=[k.public for k in r2], root_threshold=3)
    with pytest.raises(SignatureError):
        repository.root_publish(sim.dir, data, now=sim.now)
    assert not (sim.dir / "root" / "2.json").exists()
    if client == "cached":
        assert load(sim) == "1.0.0"  # a timestamp and index top are now cached
    sim.write("root/2.json", data)  # placed by hand (or by a compromised mirror)
    with pytest.raises(SignatureError, match=r"root/2\.json"):
        load(sim)
    assert stored_root(sim) == sim.root_bytes  # the trusted root stays root 1
    (sim.dir / "root" / "2.json").unlink()
    assert load(sim) == "1.0.0"


def test_a_client_with_cached_state_follows_each_rotation(sim: RepositorySimulator) -> None:
    """The client's cached timestamp (signed by T1) must not stop the walk to root 2.

    Regression: the cached timestamp was loaded as the rollback reference before the root
    walk, which ends the walk (RuntimeError on the first new root).
    """
    rotation = Rotation(sim)
    assert load(sim) == "1.0.0"
    assert stored_root(sim) == sim.root_bytes
    rotation.to_v2()
    assert load(sim) == "1.0.0"  # v1 → v2 with a cached timestamp signed by revoked T1
    assert stored_root(sim) == sim.read("root/2.json")
    rotation.to_v3()
    sim.publish("acme-audit-log", "1.1.0")
    assert load(sim) == "1.1.0"
    root_3 = sim.read("root/3.json")
    assert stored_root(sim) == root_3
    # A timestamp by the revoked T2: refused, the cached timestamp is kept.
    stored_ts = MetadataStore(sim.cache).trust_root(trust_root_id(sim.root_bytes)).load_timestamp()
    good_ts = sim.read("timestamp.json")
    sim.write("timestamp.json", timestamp_signed_by(sim, rotation.t2))
    with pytest.raises(SignatureError, match=r"timestamp\.json"):
        load(sim)
    assert MetadataStore(sim.cache).trust_root(trust_root_id(sim.root_bytes)).load_timestamp() == stored_ts
    sim.write("timestamp.json", good_ts)
    # Root 4 signed only by new keys: refused, the stored trusted root stays root 3.
    new_key = SigningKey.generate()
    sim.write("root/4.json", stage(sim, [new_key], root_keys=[new_key.public], root_threshold=1))
    with pytest.raises(SignatureError, match=r"root/4\.json"):
        load(sim)
    assert stored_root(sim) == root_3


def test_a_new_client_walks_two_roots_then_runs_on_its_cache(sim: RepositorySimulator) -> None:
    """Root 2 as an intermediate step in one update, then no walk while the cache is fresh."""
    rotation = Rotation(sim)
    rotation.to_v2()
    rotation.to_v3()
    assert load(sim) == "1.0.0"
    assert stored_root(sim) == sim.read("root/3.json")
    # The cache alone (metadata still fresh) serves the next load without walking again.
    before = sim.server.request_count("/root/4.json"), sim.server.request_count("/timestamp.json")
    registry = build_registry(sim.config(["acme-audit-log"]))
    assert CONNECTOR in {i.id for i in registry.list_connectors()}
    assert (sim.server.request_count("/root/4.json"), sim.server.request_count("/timestamp.json")) == before
    assert before == (1, 1)


def test_index_key_rotation_re_signs_releases_and_clients_keep_loading(sim: RepositorySimulator) -> None:
    """Root 2 replaces the index key; 'refresh' with the new key re-signs the old release.

    A client that cached the old index top, a new client, and a client loading the archive
    by URL (its detached .sig) all keep loading the package published before the rotation.
    """
    sig_path = "archives/acme-audit-log/acme-audit-log-1.0.0.zip.sig"
    archive_path = "archives/acme-audit-log/acme-audit-log-1.0.0.zip"
    url = sim.url + archive_path
    assert load(sim, "cached") == "1.0.0"
    old_sig, archive = sim.read(sig_path), sim.read(archive_path)
    new_index = SigningKey.generate()
    repository.root_publish(sim.dir, stage(sim, sim.root_keys[:2], index_keys=[new_index.public]), now=sim.now)
    with pytest.raises(SignatureError):
        load(sim, "too-early")  # the top and the release are signed by the revoked key

    repository.refresh_index(sim.dir, index_keys=new_index, timestamp_keys=sim.timestamp_key, now=sim.now)
    sim.index_key = new_index
    assert load(sim, "cached") == "1.0.0"  # walks to root 2, drops its cached top
    assert load(sim, "fresh") == "1.0.0"
    assert stored_root(sim, "fresh") == sim.read("root/2.json")
    # The .sig was replaced by the new envelope; the archive is unchanged.
    new_sig = sim.read(sig_path)
    assert new_sig != old_sig
    assert sim.read(archive_path) == archive
    root_2 = verify_anchor_root(sim.read("root/2.json"))
    assert verify_release(root_2, new_sig).version == "1.0.0"
    with pytest.raises(SignatureError):
        verify_release(root_2, old_sig)
    registry = build_registry(sim.config([url], metadata_max_age=0, cache_dir=str(sim.tmp / "by-url")))
    assert registry.origin(CONNECTOR).signed_by == (new_index.keyid,)
    report = audit_directory(sim.dir, trusted_root=sim.root_bytes)
    assert report.ok, report.errors
    # Publishing continues with the new index key.
    sim.publish("acme-audit-log", "1.1.0")
    assert load(sim, "cached") == "1.1.0"
    assert audit_directory(sim.dir, trusted_root=sim.root_bytes).ok
