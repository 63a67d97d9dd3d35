"""Publishers submit, the index signs: submit → ingest over a real index directory.

An *arena* is an index whose root lists three publishers — ``team-a`` (namespace ``acme``),
``team-b`` (``globex``) and ``team-c`` (``acme-labs``, a longer prefix inside ``acme``'s
names) — and an inbox. The attack table submits what a hostile or careless publisher could,
and checks the machine-readable reason each rejection leaves for the publisher's CI, and
that the index changed only by what was accepted, in one update per run. Keys are in memory
here (fast); tests/e2e/test_ingest_keystores_e2e.py runs the same flow with SoftHSM and
OpenBao through the console script.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.index.envelope import RELEASE_TYPE, sign
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import Release, ReleaseConnector, archive_path
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.audit import audit_directory
from modelmesh_connectors.publish.inbox import read_status, submission_id, submit
from modelmesh_connectors.publish.ingest import REASONS, IngestLimits, IngestRun, ingest
from modelmesh_connectors.publish.repository import PublisherSpec
from modelmesh_connectors.publish.state import current_bin
from tests.support.packages import OBSERVABILITY_SOURCE, make_zip, raw_zip

NOW = datetime.now(UTC).replace(microsecond=0)
CANARY_INIT = '''\
"""Writes a canary when imported: ingest must never import a submission."""
import pathlib
pathlib.Path({path!r}).write_text("imported")
'''


@dataclass
class Arena:
    base: Path
    root_keys: list[SigningKey]
    index_key: SigningKey
    timestamp_key: SigningKey
    publishers: dict[str, SigningKey]
    namespaces: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def index(self) -> Path:
        return self.base / "index"

    @property
    def inbox(self) -> Path:
        return self.base / "inbox"

    @property
    def root1(self) -> bytes:
        return (self.index / "root" / "1.json").read_bytes()

    def archive(self, name: str, version: str, connectors: list[str] | None = None, **kw: object) -> Path:
        pkg = name.replace("-", "_")
        conns = [(c, "observability", f"{pkg}.sink:Sink") for c in (connectors or [f"{name.split('-')[0]}.x.v1"])]
        return make_zip(self.base / "src" / f"{name}-{version}-{len(list(self.base.glob('src/*')))}", name, version, connectors=conns, **kw)

    def submit(self, publisher: str, name: str, version: str, connectors: list[str] | None = None,
               key: SigningKey | None = None, **kw: object) -> str:
        archive = self.archive(name, version, connectors, **kw)
        return submit(self.inbox, archive, [key or self.publishers[publisher]], publisher=publisher).id

    def ingest(self, **kw: Any) -> Any:
        return ingest(self.index, self.inbox, index_keys=self.index_key,
                      timestamp_keys=self.timestamp_key, **kw)

    def status(self, publisher: str, sub_id: str) -> dict[str, object]:
        return read_status(self.inbox, publisher, sub_id)

    def listed(self, name: str) -> list[str]:
        state = repository.load_state(self.index)
        node = current_bin(state, state.top.bin_prefix(name))
        return [e.version for e in node.packages.get(name, ())]

    def top_version(self) -> int:
        return repository.load_state(self.index).top.version

    def rotate_publishers(self, publishers: dict[str, SigningKey]) -> None:
        """Publish root N+1 whose publishers use ``publishers``' keys (others dropped: revoked)."""
        staged = repository.root_rotate(
            self.index, expires=NOW + timedelta(days=30),
            publishers=[PublisherSpec(n, (k.public,), 1, self.namespaces[n]) for n, k in publishers.items()],
        )
        for key in self.root_keys:
            staged = staged.with_signature(key)
        repository.root_publish(self.index, staged.to_bytes())
        self.publishers = dict(publishers)


def make_arena(base: Path) -> Arena:
    a = Arena(base, [SigningKey.generate()], SigningKey.generate(), SigningKey.generate(),
              {n: SigningKey.generate() for n in ("team-a", "team-b", "team-c")})
    a.namespaces = {"team-a": ("acme",), "team-b": ("globex",), "team-c": ("acme-labs",)}
    staged = repository.root_init(
        root_keys=[a.root_keys[0].public], root_threshold=1,
        index_keys=[a.index_key.public], index_threshold=1,
        timestamp_keys=[a.timestamp_key.public], timestamp_threshold=1,
        expires=NOW + timedelta(days=30),
        publishers=[PublisherSpec(n, (k.public,), 1, a.namespaces[n]) for n, k in a.publishers.items()],
    ).with_signature(a.root_keys[0])
    repository.init_repository(a.index, staged.to_bytes(), a.index_key, a.timestamp_key)
    return a


@pytest.fixture
def arena(tmp_path: Path) -> Arena:
    return make_arena(tmp_path)


def test_two_publishers_submit_and_one_ingest_publishes_both_in_one_update(arena: Arena) -> None:
    top = arena.top_version()
    a = arena.submit("team-a", "acme-audit", "1.0.0")
    b = arena.submit("team-b", "globex-probe", "2.0.0")
    c = arena.submit("team-c", "acme-labs-probe", "0.1.0", ["acme-labs.probe.v1"])
    report = arena.ingest()
    assert sorted(r.id for r in report.published) == sorted([a, b, c])
    assert report.rejected == []
    assert arena.top_version() == top + 1  # one index update for all three
    assert arena.listed("acme-audit") == ["1.0.0"] and arena.listed("globex-probe") == ["2.0.0"]
    assert arena.status("team-a", a)["status"] == "published"
    assert arena.status("team-a", a)["index_version"] == top + 1
    assert not any((arena.inbox / "pending").rglob("*.zip"))
    audit = audit_directory(arena.index, trusted_root=arena.root1)
    assert audit.ok, [f.message for f in audit.errors]
    # The next run has nothing to do and does not touch the index.
    assert arena.ingest().index_version is None and arena.top_version() == top + 1


Attack = Callable[[Arena], tuple[str, str]]  # returns (publisher, submission id)


def _other_namespace(a: Arena) -> tuple[str, str]:
    return "team-b", a.submit("team-b", "globex-spy", "1.0.0", ["acme.audit.v1"])


def _other_package_name(a: Arena) -> tuple[str, str]:
    # Connectors in its own namespace, but a package name in acme's.
    return "team-b", a.submit("team-b", "acme-audit", "9.0.0", ["globex.audit.v1"])


def _longer_prefix_belongs_to_another(a: Arena) -> tuple[str, str]:
    # 'acme-labs-…' belongs to team-c (longest namespace wins), even for team-a.
    return "team-a", a.submit("team-a", "acme-labs-x", "1.0.0", ["acme.x.v1"])


def _unowned_name(a: Arena) -> tuple[str, str]:
    return "team-a", a.submit("team-a", "utility", "1.0.0", ["acme.x.v1"])


def _foreign_folder(a: Arena) -> tuple[str, str]:
    sub = a.submit("team-b", "globex-probe", "1.0.0")
    src = a.inbox / "pending" / "team-b" / sub
    shutil.move(src, a.inbox / "pending" / "team-a" / sub)  # team-b's release in team-a's folder
    return "team-a", sub


def _unknown_folder(a: Arena) -> tuple[str, str]:
    return "mallory", a.submit("mallory", "acme-audit", "1.0.0", key=SigningKey.generate())


def _unlisted_key(a: Arena) -> tuple[str, str]:
    return "team-a", a.submit("team-a", "acme-audit", "1.0.0", key=SigningKey.generate())


def _swapped_archive(a: Arena) -> tuple[str, str]:
    sub = a.submit("team-a", "acme-audit", "1.0.0")
    other = a.archive("acme-audit", "1.0.0", modules={"acme_audit/__init__.py": "X = 1\n", "acme_audit/sink.py": OBSERVABILITY_SOURCE})
    shutil.copyfile(other, a.inbox / "pending" / "team-a" / sub / "archive.zip")
    return "team-a", sub


def _manifest_differs_from_release(a: Arena) -> tuple[str, str]:
    # A valid archive of acme-audit 1.0.0, and a release that signs its bytes but claims
    # other connectors: the manifest is what gets imported, the release what was checked.
    archive = a.archive("acme-audit", "1.0.0").read_bytes()
    import hashlib

    release = Release("acme-audit", "1.0.0", archive_path("acme-audit", "1.0.0"),
                      hashlib.sha256(archive).hexdigest(), len(archive), None,
                      (ReleaseConnector("acme.other.v1", "observability"),))
    return "team-a", _place(a, "team-a", archive, release)


def _hostile_zip(a: Arena) -> tuple[str, str]:
    data = raw_zip([("modelmesh-package.yaml", b"name: acme-evil\nversion: '1.0.0'\n"),
                    ("../../escape.py", b"print('x')")])
    import hashlib

    release = Release("acme-evil", "1.0.0", archive_path("acme-evil", "1.0.0"),
                      hashlib.sha256(data).hexdigest(), len(data), None,
                      (ReleaseConnector("acme.evil.v1", "observability"),))
    return "team-a", _place(a, "team-a", data, release)


def _symlinked_archive(a: Arena) -> tuple[str, str]:
    sub = a.submit("team-a", "acme-audit", "1.0.0")
    target = a.inbox / "pending" / "team-a" / sub / "archive.zip"
    real = a.base / "elsewhere.zip"
    shutil.move(target, real)
    target.symlink_to(real)
    return "team-a", sub


def _renamed_folder(a: Arena) -> tuple[str, str]:
    sub = a.submit("team-a", "acme-audit", "1.0.0")
    fake = "0" * 32
    (a.inbox / "pending" / "team-a" / sub).rename(a.inbox / "pending" / "team-a" / fake)
    return "team-a", fake


def _place(a: Arena, publisher: str, data: bytes, release: Release) -> str:
    env = sign(RELEASE_TYPE, release.to_payload(), [a.publishers[publisher]]).to_bytes()
    sub = submission_id(env)
    folder = a.inbox / "pending" / publisher / sub
    folder.mkdir(parents=True)
    (folder / "archive.zip").write_bytes(data)
    (folder / "release.sig").write_bytes(env)
    return sub


ATTACKS: list[tuple[str, Attack, str, str]] = [
    ("another publisher's namespace", _other_namespace, "namespace", "outside"),
    ("another publisher's package name", _other_package_name, "package-name", "belongs to publisher 'team-a'"),
    ("a longer namespace's package name", _longer_prefix_belongs_to_another, "package-name", "belongs to publisher 'team-c'"),
    ("a name no namespace owns", _unowned_name, "package-name", "belongs to the index role"),
    ("a release in another publisher's folder", _foreign_folder, "untrusted-signer", "not publisher 'team-a'"),
    ("a folder no publisher owns", _unknown_folder, "unknown-publisher", "mallory"),
    ("a key the root does not list", _unlisted_key, "untrusted-signer", "threshold"),
    ("the archive swapped after signing", _swapped_archive, "mismatch", "sha256"),
    ("a manifest other than the signed release", _manifest_differs_from_release, "mismatch", "manifest"),
    ("a hostile zip (path traversal)", _hostile_zip, "bad-archive", ""),
    ("an archive that is a symbolic link", _symlinked_archive, "malformed", "symbolic link"),
    ("a folder not named by its envelope", _renamed_folder, "malformed", "not the ID"),
]


@pytest.mark.parametrize(("what", "attack", "reason", "text"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_ingest_attack_table(arena: Arena, what: str, attack: Attack, reason: str, text: str) -> None:
    top = arena.top_version()
    publisher, sub = attack(arena)
    good = arena.submit("team-b", "globex-good", "1.0.0")  # an honest neighbour in the same run
    report = arena.ingest()
    record = arena.status(publisher, sub)
    assert record["status"] == "rejected", record
    assert record["reason"] == reason and reason in REASONS, record
    assert text in str(record["message"]), record
    assert [r.id for r in report.published] == [good]
    assert arena.top_version() == top + 1
    assert not (arena.inbox / "pending" / publisher / sub).exists()
    # The rejection file is what the publisher's CI reads back.
    on_disk = json.loads((arena.inbox / "rejected" / publisher / f"{sub}.json").read_text())
    assert on_disk["reason"] == reason


def test_a_key_revoked_after_submission_is_refused(arena: Arena) -> None:
    sub = arena.submit("team-a", "acme-audit", "1.0.0")
    arena.rotate_publishers({**arena.publishers, "team-a": SigningKey.generate()})
    arena.ingest()
    record = arena.status("team-a", sub)
    assert (record["reason"], record["root_version"]) == ("untrusted-signer", 2), record
    assert arena.listed("acme-audit") == []


def test_a_root_rotation_during_the_run_is_honoured_at_commit(arena: Arena) -> None:
    revoked = arena.submit("team-a", "acme-audit", "1.0.0")
    fine = arena.submit("team-b", "globex-probe", "1.0.0")
    run = IngestRun(arena.index, arena.inbox, index_keys=arena.index_key, timestamp_keys=arena.timestamp_key)
    run.prepare()  # verified under root 1: both fine
    arena.rotate_publishers({**arena.publishers, "team-a": SigningKey.generate()})
    report = run.commit()  # decided again under root 2
    assert [r.id for r in report.published] == [fine]
    assert arena.status("team-a", revoked)["reason"] == "untrusted-signer"
    assert arena.status("team-a", revoked)["root_version"] == 2
    assert not list((arena.index / "archives").glob(".ingest-*"))  # staged copies cleaned up


def test_replays_already_published_other_bytes_and_after_a_yank(arena: Arena) -> None:
    sub = arena.submit("team-a", "acme-audit", "1.0.0")
    saved = arena.base / "saved"
    shutil.copytree(arena.inbox / "pending" / "team-a" / sub, saved)
    arena.ingest()
    # The identical submission again: submit refuses, a raw copy is recognised as a replay.
    with pytest.raises(Exception, match="already published"):
        submit(arena.inbox, saved / "archive.zip", [arena.publishers["team-a"]], publisher="team-a")
    shutil.copytree(saved, arena.inbox / "pending" / "team-a" / sub)
    top = arena.top_version()
    report = arena.ingest()
    assert [r.reason for r in report.published] == ["already-published"]
    assert arena.top_version() == top  # nothing to write
    # Same version, other bytes.
    other = arena.submit("team-a", "acme-audit", "1.0.0", modules={"acme_audit/__init__.py": "Y = 2\n", "acme_audit/sink.py": OBSERVABILITY_SOURCE})
    arena.ingest()
    assert arena.status("team-a", other)["reason"] == "version-exists"
    # After a yank, the identical release again does not bring it back.
    repository.yank(arena.index, "acme-audit", "1.0.0", "broken", index_keys=arena.index_key, timestamp_keys=arena.timestamp_key)
    shutil.copytree(saved, arena.inbox / "pending" / "team-a" / sub)
    arena.ingest()
    assert arena.status("team-a", sub)["reason"] == "version-yanked"


def test_a_flood_from_one_publisher_does_not_starve_another(arena: Arena) -> None:
    for i in range(12):
        arena.submit("team-a", "acme-flood", f"1.0.{i}")
    for i in range(20):  # and garbage in its folder
        junk = arena.inbox / "pending" / "team-a" / f"{i:032x}"
        junk.mkdir()
        (junk / "release.sig").write_bytes(b"{" * 1000)
    b = arena.submit("team-b", "globex-probe", "1.0.0")
    limits = IngestLimits(per_publisher=5, total=50)
    report = arena.ingest(limits=limits)
    assert b in [r.id for r in report.published]
    assert len(report.published) + len(report.rejected) == 6  # 5 of team-a's, 1 of team-b's
    assert report.deferred == {"team-a": 27}
    runs = 1
    while (arena.inbox / "pending" / "team-a").exists() and any((arena.inbox / "pending" / "team-a").iterdir()):
        arena.ingest(limits=limits)
        runs += 1
        assert runs < 10
    assert len(arena.listed("acme-flood")) == 12


def test_two_of_one_version_in_one_run(arena: Arena) -> None:
    first = arena.submit("team-a", "acme-audit", "1.0.0")
    second = arena.submit("team-a", "acme-audit", "1.0.0", modules={"acme_audit/__init__.py": "Z = 3\n", "acme_audit/sink.py": OBSERVABILITY_SOURCE})
    arena.ingest()
    reasons = {arena.status("team-a", s)["reason"] for s in (first, second)}
    assert reasons == {"published", "duplicate"}


def test_an_unlisted_file_in_the_way_is_refused_and_left(arena: Arena) -> None:
    """An interrupted publish left other bytes at the archive's path: the release is refused
    ("stray-file", for the operator), the file is not overwritten, the other release in the
    run is still published."""
    blocked = arena.submit("team-a", "acme-audit", "1.0.0")
    fine = arena.submit("team-b", "globex-probe", "1.0.0")
    stray = arena.index / archive_path("acme-audit", "1.0.0")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"left by a crashed publish")
    report = arena.ingest()
    assert [r.id for r in report.published] == [fine]
    assert arena.status("team-a", blocked)["reason"] == "stray-file"
    assert stray.read_bytes() == b"left by a crashed publish"
    assert arena.listed("acme-audit") == [] and len(arena.listed("globex-probe")) == 1


def test_ingest_never_imports_a_submission(arena: Arena, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    modules_before = set(sys.modules)
    sub = arena.submit("team-a", "acme-canary", "1.0.0", modules={
        "acme_canary/__init__.py": CANARY_INIT.format(path=str(canary)),
        "acme_canary/sink.py": OBSERVABILITY_SOURCE,
    })
    arena.ingest()
    assert arena.status("team-a", sub)["status"] == "published"
    assert not canary.exists()
    assert not {m for m in set(sys.modules) - modules_before if "canary" in m}


def test_submit_prechecks_against_the_root(arena: Arena) -> None:
    archive = arena.archive("acme-audit", "1.0.0")
    with pytest.raises(Exception, match="belongs to publisher 'team-a'"):
        submit(arena.inbox, arena.archive("acme-x", "1.0.0", ["globex.x.v1"]), [arena.publishers["team-b"]], publisher="team-b", root=arena.root1)
    with pytest.raises(Exception, match="not in root"):
        submit(arena.inbox, archive, [arena.publishers["team-a"]], publisher="nobody", root=arena.root1)
    s = submit(arena.inbox, archive, [arena.publishers["team-a"]], publisher="team-a", root=arena.root1)
    again = submit(arena.inbox, archive, [arena.publishers["team-a"]], publisher="team-a", root=arena.root1)
    assert again.already and again.id == s.id
    assert arena.status("team-a", s.id)["status"] == "pending"
