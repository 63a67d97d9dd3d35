"""The warm path is faster, and checks no less (issue 14).

Each optimisation of a run with everything cached gets a test that fails if it ever skips a
check: a release's signature is checked once per trust root and afterwards accepted only by
the digest of bytes reached by hash from the verified index top; cached archives and nodes
are still re-hashed on every use; the rollback reference is still written durably whenever
it changes; a small warm run starts no thread (a large one re-hashes on two, every entry
still in full) but a cold one still downloads concurrently.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors import ConnectorRegistry
from modelmesh_connectors.client import loader as loader_module
from modelmesh_connectors.client import updater as updater_module
from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.client.fetch import HttpFetcher
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.client.resolve import ResolvedArchive
from modelmesh_connectors.client.state import OriginMetadata
from modelmesh_connectors.errors import DownloadError, HashMismatchError, SignatureError
from modelmesh_connectors.index.envelope import (
    TIMESTAMP_TYPE,
    Envelope,
    Signature,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinRelease,
    Timestamp,
    TimestampLink,
    parse_timestamp,
)
from modelmesh_connectors.index.trust import TrustedState, VerifiedReleases
from modelmesh_connectors.index.verify import release_digest
from modelmesh_connectors.package.requirements import RequirementSpec
from tests.attack.hostile import next_root
from tests.support.simulator import RepositorySimulator

NAMES = ("acme-audit-log", "acme-metrics", "acme-tracer")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        for name in NAMES:
            pkg = name.replace("-", "_")
            cid = f"acme.{name.removeprefix('acme-')}.v1"
            simulator.publish(
                name, "1.0.0", connectors=[(cid, "observability", f"{pkg}.sink:Sink")]
            )
        yield simulator


def _install(sim: RepositorySimulator, **overrides: Any) -> list[Path]:
    config = parse_config(sim.config(list(NAMES), metadata_max_age=0, **overrides))
    with Loader(config) as loader:
        return [path for _, path in loader.install(config.packages)]


def _count_release_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every full signature check of a release envelope."""
    calls: list[str] = []
    real = TrustedState.verify_release_signed

    def counted(self: TrustedState, envelope: Any) -> Any:
        calls.append("release")
        return real(self, envelope)

    monkeypatch.setattr(TrustedState, "verify_release_signed", counted)
    return calls


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _record(sim: RepositorySimulator) -> Path:
    [record] = sim.cache.glob("metadata/trust-*/verified-releases.json")
    return record


def test_a_release_signature_is_checked_once_per_trust_root(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _count_release_checks(monkeypatch)
    _install(sim)
    assert len(checks) == len(NAMES)  # cold: every release verified in full
    checks.clear()
    _install(sim)
    assert checks == []  # warm: accepted by digest, under the same root
    stored = json.loads(_record(sim).read_bytes())
    assert len(stored["releases"]) == len(NAMES)
    # Recorded under another root (a rotation changes the identity): all checked again.
    stored["root"] = "0" * 64
    _record(sim).write_text(json.dumps(stored))
    _install(sim)
    assert len(checks) == len(NAMES)


def test_a_malformed_record_only_costs_the_checks(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(sim)
    _record(sim).write_bytes(b'{"root": 1, "releases": {"zz": "not a list"}}')
    checks = _count_release_checks(monkeypatch)
    assert len(_install(sim)) == len(NAMES)
    assert len(checks) == len(NAMES)


def test_a_recorded_digest_never_vouches_for_other_bytes(sim: RepositorySimulator) -> None:
    """Trust core: a release is skipped only when its exact envelope was recorded."""
    config = parse_config(sim.config(list(NAMES)))
    with Loader(config) as loader:
        view = loader.view()
        state = view.state()
        [entry] = view.releases(NAMES[0])
        good_digest = release_digest(entry.release)
        # The same payload with a forged signature: another digest, so checked, and refused.
        forged_sig = Signature(entry.release.signatures[0].keyid, bytes(64))
        forged = BinRelease(
            entry.version,
            Envelope(entry.release.payload_type, entry.release.payload, (forged_sig,)),
        )
        record = VerifiedReleases(state.root_identity, {good_digest: frozenset({"k"})})
        with pytest.raises(SignatureError):
            state.verify_bin_release_signed(NAMES[0], forged, verified=record)
        assert record.added == {}
        # Recorded, but under another root: checked in full, and refused.
        other = VerifiedReleases("f" * 64, {release_digest(forged.release): frozenset({"k"})})
        with pytest.raises(SignatureError):
            state.verify_bin_release_signed(NAMES[0], forged, verified=other)
        # A genuine release passes in full and is recorded with its real signers.
        fresh = VerifiedReleases(state.root_identity)
        _, signers = state.verify_bin_release_signed(NAMES[0], entry, verified=fresh)
        assert fresh.added == {good_digest: signers} and signers == {sim.index_key.keyid}


def test_a_planted_record_cannot_bring_in_a_bin_the_top_does_not_pin(
    sim: RepositorySimulator,
) -> None:
    """The record is consulted only for envelopes inside a bin reached by hash."""
    _install(sim)
    # The attacker can write the cache and serve anything, but holds no key: a tampered
    # bin (whatever the record says) fails its pin before any envelope is looked at.
    nodes = sorted(sim.cache.glob("metadata/trust-*/nodes/*.json"))
    for node in nodes:
        node.write_bytes(node.read_bytes().replace(b"1.0.0", b"1.0.1"))
    for rel in [p for p in sim.dir.glob("meta/*.json")]:
        rel.write_bytes(rel.read_bytes().replace(b"1.0.0", b"1.0.1"))
    with pytest.raises((HashMismatchError, DownloadError)):
        _install(sim)


def test_a_warm_run_still_rehashes_every_cached_archive(sim: RepositorySimulator) -> None:
    paths = _install(sim)
    victim = paths[1]
    _flip_a_byte(victim)  # same size, other bytes
    sim.server.clear_requests()
    again = _install(sim)
    assert again[1].read_bytes() != b"" and victim.exists()
    archive = f"/{sim.archives[(NAMES[1], '1.0.0')].relative_to(sim.dir).as_posix()}"
    assert sim.server.request_count(archive) == 1  # found corrupt, fetched again
    _flip_a_byte(victim)
    with pytest.raises(DownloadError):  # offline nothing can replace it: refused, not used
        ConnectorRegistry.from_config(sim.config(list(NAMES), offline=True))


def test_the_rollback_reference_is_written_when_it_changes_and_only_then(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(sim)
    saved: list[bytes] = []
    real = OriginMetadata.save_timestamp

    def save(self: OriginMetadata, data: bytes) -> None:
        saved.append(data)
        real(self, data)

    monkeypatch.setattr(OriginMetadata, "save_timestamp", save)
    _install(sim)
    assert saved == []  # the mirror served the stored bytes: already durable on disk
    sim.publish("acme-extra", "1.0.0")  # a new timestamp
    _install(sim)
    assert saved == [sim.read("timestamp.json")]
    [stored] = sim.cache.glob("metadata/trust-*/timestamp.json")
    assert stored.read_bytes() == sim.read("timestamp.json")


def _record_pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``max_workers`` of every thread pool the loader starts from now on."""
    pools: list[int] = []
    real = concurrent.futures.ThreadPoolExecutor

    def pool(max_workers: int, **kwargs: Any) -> Any:
        pools.append(max_workers)
        return real(max_workers=max_workers, **kwargs)

    monkeypatch.setattr(loader_module, "ThreadPoolExecutor", pool)
    return pools


def test_a_warm_run_starts_no_thread_and_a_cold_one_downloads_concurrently(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools = _record_pools(monkeypatch)
    # On a fast link (this loopback simulator) the pool is one thread per spare core, at
    # most 4; pretend there are 4 spare cores.
    monkeypatch.setattr(loader_module, "_FAST_LINK_WORKERS", 4)
    _install(sim)
    assert pools == [len(NAMES)]  # the archive downloads (the one small bin: no pool)
    pools.clear()
    _install(sim)
    ConnectorRegistry.from_config(sim.config(list(NAMES), metadata_max_age=0))
    assert pools == []


def test_a_cold_run_on_a_fast_link_with_one_spare_core_downloads_inline(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools = _record_pools(monkeypatch)
    monkeypatch.setattr(loader_module, "_FAST_LINK_WORKERS", 1)
    paths = _install(sim)
    assert pools == []  # threads would only contend for the interpreter lock
    assert len(paths) == len(NAMES)


def test_a_large_warm_run_rehashes_on_two_threads_and_still_finds_a_bad_entry(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[str] = []
    real = concurrent.futures.ThreadPoolExecutor

    def pool(max_workers: int, **kwargs: Any) -> Any:
        pools.append(f"{kwargs.get('thread_name_prefix')}:{max_workers}")
        return real(max_workers=max_workers, **kwargs)

    paths = _install(sim)
    monkeypatch.setattr(loader_module, "ThreadPoolExecutor", pool)
    monkeypatch.setattr(loader_module, "_PARALLEL_HASH_BYTES", 0)  # every set counts as large
    _flip_a_byte(paths[2])  # same size, other bytes
    sim.server.clear_requests()
    again = _install(sim)
    # The lookups ran on two hashing threads; the corrupt entry was found there and is the
    # only archive fetched again (one download: no pool for a single miss).
    assert pools == ["mmc-hash:2"]
    archive = f"/{sim.archives[(NAMES[2], '1.0.0')].relative_to(sim.dir).as_posix()}"
    assert sim.server.request_count(archive) == 1
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths[:2]] + [
        sim.archives[(NAMES[2], "1.0.0")].read_bytes()
    ]


def test_a_warm_run_asks_for_the_timestamp_during_the_root_walk_and_checks_it_after(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FORMAT.md §4 step 2: the timestamp request overlaps the root/<N+1>.json probe on every
    # run, but its bytes are verified only after the walk, with the newest root. Stops a
    # timestamp signed by a key the new root rotated out from being accepted on the strength
    # of the stored (older) root.
    _install(sim)
    asked: list[str] = []
    real = HttpFetcher.prefetch

    def prefetch(self: HttpFetcher, url: str, *, max_length: int) -> None:
        asked.append(url.rsplit("/", 1)[-1])
        real(self, url, max_length=max_length)

    monkeypatch.setattr(HttpFetcher, "prefetch", prefetch)
    _install(sim)
    assert asked == []  # a later run against a loopback mirror asks in turn
    monkeypatch.setattr(updater_module, "_on_loopback", lambda url: False)  # a remote mirror
    old_key, new_key = sim.timestamp_key, SigningKey.generate()
    next_root(sim, signers=sim.root_keys[:2], timestamp_keys=[new_key])
    sim.timestamp_key = new_key
    sim.publish("acme-extra", "1.0.0")  # a timestamp signed by the new key only
    assert len(_install(sim)) == len(NAMES)  # verified with root 2, after the walk
    assert asked == ["timestamp.json"]
    # The next version, signed by the rotated-out key (valid under root 1): refused.
    payload = parse_envelope(sim.read("timestamp.json")).payload
    ts = parse_timestamp(payload)
    link = TimestampLink(ts.version, hashlib.sha256(payload).hexdigest())
    bumped = Timestamp(ts.version + 1, ts.expires, ts.index_version, ts.index, link)
    sim.write("timestamp.json", sign(TIMESTAMP_TYPE, bumped.to_payload(), [old_key]).to_bytes())
    with pytest.raises(SignatureError, match="timestamp.json"):
        _install(sim)


@pytest.mark.parametrize(
    "lengths",
    [[5, 5], [1, 1, 1, 1, 1], [100, 1, 1, 1], [1, 1, 1, 100], [7] * 200, [3, 0, 0, 9, 2]],
)
def test_the_rehash_shares_cover_every_entry_once_in_order(lengths: list[int]) -> None:
    # Every cached archive is re-hashed on use: the shares given to the hashing threads
    # must hold each entry exactly once (a dropped one would be returned unchecked).
    remote = [
        ResolvedArchive(RequirementSpec("a", None, "a"), "a", "1", "0" * 64, n, (), None, (), "")
        for n in lengths
    ]
    shares = loader_module._split_by_bytes(remote, 2)
    assert 1 <= len(shares) <= 2
    assert all(shares)
    assert [r for share in shares for r in share] == remote
    if len(shares) == 2:  # about equal bytes: neither share is more than half plus one entry
        assert sum(r.length or 0 for r in shares[0]) - max(lengths) <= sum(lengths) / 2


def test_the_refresh_time_is_written_unless_recorded_less_than_a_second_before(
    sim: RepositorySimulator,
) -> None:
    # A run that asked the mirror records when; one recorded under a second earlier is kept
    # (runs starting together write state.json once). It may only ever make the state look
    # older than it is: a time in the future (a clock set back) is always replaced.
    config = parse_config(sim.config(list(NAMES), metadata_max_age=0))
    start = datetime.now(UTC)

    def run_at(offset: float) -> datetime | None:
        with Loader(config, now=start + timedelta(seconds=offset)) as loader:
            loader.install(config.packages)
        [state] = sim.cache.glob("metadata/trust-*/state.json")
        return datetime.fromisoformat(json.loads(state.read_text())["last_refresh"])

    assert run_at(0) == start
    assert run_at(0.5) == start  # kept: recorded 0.5 s before
    assert run_at(1.5) == start + timedelta(seconds=1.5)
    assert run_at(-10) == start - timedelta(seconds=10)  # the clock went back: replaced
