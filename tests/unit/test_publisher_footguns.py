"""Publisher-side footguns: stray root signatures, shared role keys, exposed private keys,
and what ``verify`` warns about (stray signatures, orphan files)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelmesh_connectors.errors import PublishError
from modelmesh_connectors.index.envelope import (
    RELEASE_TYPE,
    TIMESTAMP_TYPE,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import parse_root
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.audit import (
    AuditReport,
    audit_directory,
    stray_signatures,
)
from modelmesh_connectors.publish.keyfiles import (
    KeyFileError,
    read_public_key,
    read_signing_key,
    write_public_key,
    write_signing_key,
)
from modelmesh_connectors.publish.repository import PublisherSpec
from tests.attack.hostile import force_publish, release_for
from tests.support.simulator import RepositorySimulator

DAY = timedelta(days=1)
NOW = datetime.now(UTC).replace(microsecond=0)

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def keys(n: int) -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(n)]


# -- private key file permissions ---------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602, 0o660, 0o610, 0o601], ids=oct)
def test_private_key_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.pem"
    write_signing_key(path, SigningKey.generate(), None)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        read_signing_key(path, passphrase_env=None, prompt=False)
    assert info.value.message == (
        f"key file {path}: expected permissions 0600 (owner only), got {mode:04o}: a private "
        "key that group or others can access is refused"
    )
    assert info.value.hint is not None and f"chmod 600 {path}" in info.value.hint


@posix_only
def test_private_key_refused_before_a_passphrase_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.pem"
    write_signing_key(path, SigningKey.generate(), b"s3cret")
    path.chmod(0o640)
    monkeypatch.setenv("MODELMESH_KEY_PASSPHRASE", "s3cret")
    with pytest.raises(KeyFileError, match="expected permissions 0600"):
        read_signing_key(path)


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700], ids=oct)
def test_owner_only_private_key_is_read(tmp_path: Path, mode: int) -> None:
    key = SigningKey.generate()
    path = tmp_path / "k.pem"
    write_signing_key(path, key, None)
    path.chmod(mode)
    assert read_signing_key(path, passphrase_env=None, prompt=False).keyid == key.keyid


@posix_only
def test_public_key_files_may_be_world_readable(tmp_path: Path) -> None:
    key = SigningKey.generate()
    write_public_key(tmp_path / "k.pub.pem", key.public)
    (tmp_path / "k.pub.pem").chmod(0o644)
    assert read_public_key(tmp_path / "k.pub.pem") == key.public


@posix_only
def test_mode_checked_on_the_file_read_not_the_link(tmp_path: Path) -> None:
    key = SigningKey.generate()
    target = tmp_path / "real.pem"
    write_signing_key(target, key, None)
    target.chmod(0o644)
    link = tmp_path / "link.pem"
    link.symlink_to(target)
    with pytest.raises(KeyFileError, match="got 0644"):
        read_signing_key(link, passphrase_env=None, prompt=False)


# -- shared keys across roles -------------------------------------------------------------------


def stage(
    root: list[SigningKey],
    index: list[SigningKey],
    timestamp: list[SigningKey],
    publishers: tuple[PublisherSpec, ...] = (),
    **kw: object,
) -> bytes:
    return repository.root_init(
        root_keys=[k.public for k in root],
        root_threshold=1,
        index_keys=[k.public for k in index],
        index_threshold=1,
        timestamp_keys=[k.public for k in timestamp],
        timestamp_threshold=1,
        expires=NOW + 30 * DAY,
        publishers=publishers,
        **kw,  # type: ignore[arg-type]
    ).to_bytes()


ROOT, INDEX, TS, PUB, ROOT_2 = keys(5)


@pytest.mark.parametrize(
    ("roles", "shared", "names"),
    [
        (dict(root=[ROOT], index=[ROOT], timestamp=[TS]), ROOT, "root and index"),
        (dict(root=[ROOT], index=[INDEX], timestamp=[INDEX]), INDEX, "index and timestamp"),
        (dict(root=[ROOT, ROOT_2], index=[INDEX], timestamp=[ROOT_2]), ROOT_2, "root and timestamp"),
        (dict(root=[ROOT], index=[ROOT], timestamp=[ROOT]), ROOT, "root and index and timestamp"),
        (
            dict(root=[ROOT], index=[INDEX], timestamp=[TS], publishers=(PublisherSpec("acme", (INDEX.public,), 1, ("acme",)),)),
            INDEX,
            "index and publisher 'acme'",
        ),
        (
            dict(root=[ROOT], index=[INDEX], timestamp=[TS], publishers=(PublisherSpec("acme", (ROOT.public,), 1, ("acme",)),)),
            ROOT,
            "root and publisher 'acme'",
        ),
        (
            dict(
                root=[ROOT],
                index=[INDEX],
                timestamp=[TS],
                publishers=(
                    PublisherSpec("acme", (PUB.public,), 1, ("acme",)),
                    PublisherSpec("other", (PUB.public,), 1, ("other",)),
                ),
            ),
            PUB,
            "publisher 'acme' and publisher 'other'",
        ),
    ],
)
def test_one_key_in_two_roles_is_refused(roles: dict[str, object], shared: SigningKey, names: str) -> None:
    with pytest.raises(PublishError) as info:
        stage(**roles)  # type: ignore[arg-type]
    assert f"key {shared.keyid} is in {names}" in info.value.message
    assert info.value.hint is not None and "--allow-shared-keys" in info.value.hint
    # Explicitly allowed: staged as before.
    root = parse_root(parse_envelope(stage(**roles, allow_shared_keys=True)).payload)  # type: ignore[arg-type]
    assert shared.keyid in root.keys


def test_separate_keys_are_accepted() -> None:
    publishers = (PublisherSpec("acme", (PUB.public,), 1, ("acme",)),)
    parse_root(parse_envelope(stage([ROOT, ROOT_2], [INDEX], [TS], publishers)).payload)


def test_rotation_refuses_a_new_key_shared_with_another_role(tmp_path: Path) -> None:
    sim = RepositorySimulator(tmp_path, serve=False)
    before = sorted(p.name for p in (sim.dir / "root").iterdir())
    with pytest.raises(PublishError, match=f"key {sim.index_key.keyid} is in index and timestamp"):
        repository.root_rotate(sim.dir, expires=sim.now + 30 * DAY, timestamp_keys=[sim.index_key.public])
    with pytest.raises(PublishError, match=f"key {sim.root_keys[0].keyid} is in root and publisher 'acme'"):
        repository.root_rotate(
            sim.dir,
            expires=sim.now + 30 * DAY,
            publishers=[PublisherSpec("acme", (sim.root_keys[0].public,), 1, ("acme",))],
        )
    staged = repository.root_rotate(
        sim.dir, expires=sim.now + 30 * DAY, timestamp_keys=[sim.index_key.public], allow_shared_keys=True
    )
    assert parse_root(staged.payload).timestamp.keyids == (sim.index_key.keyid,)
    assert sorted(p.name for p in (sim.dir / "root").iterdir()) == before


# -- root sign: only keys whose signature counts --------------------------------------------------


def test_root_sign_refuses_a_key_that_is_not_a_root_key(tmp_path: Path) -> None:
    staged = tmp_path / "root.json"
    staged.write_bytes(stage([ROOT, ROOT_2], [INDEX], [TS]))
    before = staged.read_bytes()
    for stranger in (INDEX, TS, SigningKey.generate()):
        with pytest.raises(PublishError) as info:
            repository.root_sign(staged, stranger)
        message = info.value.message
        assert f"expected a root key, got key {stranger.keyid}" in message
        assert ROOT.keyid in message and ROOT_2.keyid in message
        assert staged.read_bytes() == before  # nothing written
    env = repository.root_sign(staged, ROOT_2)
    assert [s.keyid for s in env.signatures] == [ROOT_2.keyid]


def test_root_sign_for_a_rotation_accepts_old_root_keys_with_the_index(tmp_path: Path) -> None:
    sim = RepositorySimulator(tmp_path, serve=False)
    new_root = keys(2)
    staged = tmp_path / "root-2.json"
    staged.write_bytes(
        repository.root_rotate(
            sim.dir, expires=sim.now + 30 * DAY, root_keys=[k.public for k in new_root], root_threshold=2
        ).to_bytes()
    )
    old = sim.root_keys[0]
    # Root 2 drops the old keys: without the index, root 1 is unknown and old is refused.
    with pytest.raises(PublishError) as info:
        repository.root_sign(staged, old)
    assert "--index" in (info.value.hint or "")
    # With it, root 1's root keys count; a key of neither root is still refused.
    repository.root_sign(staged, old, index=sim.dir)
    with pytest.raises(PublishError, match=f"root 1 of {sim.dir}"):
        repository.root_sign(staged, sim.index_key, index=sim.dir)
    for key in (sim.root_keys[1], *new_root):
        repository.root_sign(staged, key, index=sim.dir)
    assert repository.root_publish(sim.dir, staged, now=sim.now).version == 2


# -- verify: stray signatures and orphans ---------------------------------------------------------


def warnings(report: AuditReport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in report.warnings:
        out.setdefault(f.path, []).append(f.message)
    return out


@pytest.fixture
def sim(tmp_path: Path) -> RepositorySimulator:
    sim = RepositorySimulator(tmp_path, serve=False)
    sim.publish("acme-audit-log", "1.0.0")
    sim.publish("acme-audit-log", "1.1.0")
    return sim


def audit(sim: RepositorySimulator) -> AuditReport:
    return audit_directory(sim.dir, trusted_root=sim.root_bytes, now=sim.now)


def test_clean_published_index_has_no_warnings(sim: RepositorySimulator) -> None:
    report = audit(sim)
    assert report.ok and report.warnings == ()
    assert report.to_json_obj()["warnings"] == 0
    # Superseded meta nodes are there (three publishes), and not reported.
    assert len(list((sim.dir / "meta").iterdir())) > 3


def test_stray_signature_on_the_timestamp(sim: RepositorySimulator) -> None:
    stranger = SigningKey.generate()
    env = parse_envelope(sim.read("timestamp.json"))
    sim.write("timestamp.json", sign(TIMESTAMP_TYPE, env.payload, [sim.timestamp_key, stranger]).to_bytes())
    report = audit(sim)
    assert report.ok  # a warning, not an error: the threshold is met
    [message] = warnings(report)["timestamp.json"]
    assert message.startswith(f"stray signature by key {stranger.keyid}: expected a key of the timestamp role")
    assert sim.timestamp_key.keyid in message
    obj = report.to_json_obj()
    assert obj["warnings"] == 1 and obj["errors"] == 0
    [finding] = [f for f in obj["findings"] if f["level"] == "warning"]
    assert finding["ok"] is True and finding["path"] == "timestamp.json"


def test_other_roles_key_on_the_timestamp_is_stray(sim: RepositorySimulator) -> None:
    env = parse_envelope(sim.read("timestamp.json"))
    sim.write("timestamp.json", sign(TIMESTAMP_TYPE, env.payload, [sim.timestamp_key, sim.index_key]).to_bytes())
    [message] = warnings(audit(sim))["timestamp.json"]
    assert f"stray signature by key {sim.index_key.keyid}" in message


def test_stray_signature_on_root_1(sim: RepositorySimulator) -> None:
    env = parse_envelope(sim.read("root/1.json"))
    signed = env.with_signature(sim.index_key)
    sim.write("root/1.json", signed.to_bytes())
    report = audit_directory(sim.dir, trusted_root=signed.to_bytes(), now=sim.now)
    assert report.ok
    [message] = warnings(report)["root/1.json"]
    assert f"stray signature by key {sim.index_key.keyid}: expected a key of root 1's root role" in message


def test_stray_and_invalid_signatures_on_a_release(tmp_path: Path) -> None:
    sim = RepositorySimulator(tmp_path, serve=False)
    sim.publish("acme-audit-log", "1.0.0")
    data = sim.read("archives/acme-audit-log/acme-audit-log-1.0.0.zip")
    stranger = SigningKey.generate()
    release = release_for(data, "acme-audit-log", "2.0.0", (("acme.audit-log.v1", "observability"),))
    good = sign(RELEASE_TYPE, release.to_payload(), [sim.index_key, stranger])
    force_publish(sim, data, release=release, envelope=good)
    report = audit(sim)
    assert report.ok, report.to_json()
    found = [m for ms in warnings(report).values() for m in ms]
    assert len(found) == 1
    assert f"stray signature by key {stranger.keyid}: expected a key of the index role or a publisher" in found[0]


def test_duplicate_and_broken_signatures_are_reported(sim: RepositorySimulator) -> None:
    env = parse_envelope(sim.read("timestamp.json"))
    good = env.signatures[0]
    other = SigningKey.generate()
    bad_sig = sign(TIMESTAMP_TYPE, b"other payload", [sim.timestamp_key]).signatures[0]
    messages = stray_signatures(
        type(env)(env.payload_type, env.payload, (good, good)),
        {sim.timestamp_key.keyid: sim.timestamp_key.public, other.keyid: other.public},
        {sim.timestamp_key.keyid},
        "the timestamp role",
    )
    assert messages == [f"key {good.keyid} signed twice (the second signature counts for nothing)"]
    messages = stray_signatures(
        type(env)(env.payload_type, env.payload, (bad_sig,)),
        {sim.timestamp_key.keyid: sim.timestamp_key.public},
        {sim.timestamp_key.keyid},
        "the timestamp role",
    )
    assert messages == [f"signature by key {good.keyid} of the timestamp role does not verify"]


@pytest.mark.parametrize(
    "rel",
    [
        "archives/acme-audit-log/acme-audit-log-9.9.9.zip",  # an archive nothing lists
        "archives/evil/evil-1.0.0.zip.sig",
        "meta/.tmp-abc.part",  # left by an interrupted publish
        "meta/" + "0" * 64 + ".json",  # not named by its own hash
        "root/7.json",  # beyond a gap in the chain: never walked
        "stray.txt",
    ],
)
def test_orphan_files_are_warned(sim: RepositorySimulator, rel: str) -> None:
    (sim.dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (sim.dir / rel).write_bytes(b"planted")
    report = audit(sim)
    assert report.ok
    assert list(warnings(report)) == [rel]
    assert warnings(report)[rel][0].startswith("orphan: nothing the current timestamp pins refers")


def test_lock_file_is_not_an_orphan(sim: RepositorySimulator) -> None:
    (sim.dir / ".modelmesh-publish.lock").write_bytes(b"")  # left by an older publisher
    assert audit(sim).warnings == ()


def test_no_orphan_check_when_the_walk_failed(sim: RepositorySimulator) -> None:
    sim.corrupt("timestamp.json", 40)
    (sim.dir / "stray.txt").write_bytes(b"x")
    report = audit(sim)
    assert not report.ok
    assert report.warnings == ()


def test_committed_index_warns_only_of_its_sources() -> None:
    repo = Path(__file__).resolve().parents[2]
    report = audit_directory(repo / "index", trusted_root=(repo / "keys" / "root.json").read_bytes())
    assert report.ok, report.to_json()
    # No stray signature anywhere; the only unreferenced files are the demo packages' sources.
    assert report.warnings
    assert all(f.path.startswith("sources/") and f.message.startswith("orphan:") for f in report.warnings)
