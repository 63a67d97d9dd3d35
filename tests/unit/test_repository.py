"""The publisher: init, publish, yank, refresh and root management on a real directory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.errors import (
    ExpiredError,
    PolicyError,
    PublishError,
    RootRotationError,
    SignatureError,
)
from modelmesh_connectors.index.envelope import Envelope, parse_envelope
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    MetaRef,
    archive_path,
    parse_bin,
    parse_group,
)
from modelmesh_connectors.index.trust import TrustedState, verify_release
from modelmesh_connectors.publish import repository, resign
from modelmesh_connectors.publish import state as publish_state
from modelmesh_connectors.publish.audit import audit_directory
from modelmesh_connectors.publish.local_storage import LocalStorage
from modelmesh_connectors.publish.repository import PublisherSpec
from tests.support.builders import DAY, NOW, make_keys
from tests.support.packages import make_zip

NAME = "acme-audit-log"

# -- a fake package inspector (the shape of package.inspect_archive) --------------------


@dataclass(frozen=True)
class FakeType:
    value: str


@dataclass(frozen=True)
class FakeConnector:
    id: str
    type: FakeType


@dataclass(frozen=True)
class FakeManifest:
    name: str
    version: str
    requires_modelmesh: str | None
    connectors: tuple[FakeConnector, ...]


@dataclass(frozen=True)
class FakeInfo:
    manifest: FakeManifest
    sha256: str
    length: int


def inspector(
    name: str = NAME,
    version: str = "1.0.0",
    connectors: Sequence[str] = ("acme.audit-log.v1",),
) -> Callable[[Path], FakeInfo]:
    def inspect(path: Path) -> FakeInfo:
        data = path.read_bytes()
        manifest = FakeManifest(
            name,
            version,
            ">=0.1.1,<0.2",
            tuple(FakeConnector(c, FakeType("observability")) for c in connectors),
        )
        return FakeInfo(manifest, hashlib.sha256(data).hexdigest(), len(data))

    return inspect


# -- a repository fixture ------------------------------------------------------------


@dataclass
class Repo:
    dir: Path
    root_keys: list[SigningKey]
    index_key: SigningKey
    timestamp_key: SigningKey
    root_bytes: bytes
    tmp: Path

    def archive(self, content: bytes = b"zip bytes") -> Path:
        path = self.tmp / f"a-{hashlib.sha256(content).hexdigest()[:8]}.zip"
        path.write_bytes(content)
        return path

    def publish(self, version: str = "1.0.0", content: bytes | None = None, **kw: Any):
        kw.setdefault("inspect", inspector(version=version))
        return repository.publish(
            self.dir,
            self.archive(content if content is not None else version.encode()),
            index_keys=self.index_key,
            timestamp_keys=self.timestamp_key,
            now=NOW,
            **kw,
        )

    def files(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.dir)): p.read_bytes()
            for p in sorted(self.dir.rglob("*"))
            if p.is_file()
        }

    def client(self, now: datetime = NOW) -> TrustedState:
        state = TrustedState(self.root_bytes, now)
        n = 2
        while (self.dir / f"root/{n}.json").exists():
            state.update_root((self.dir / f"root/{n}.json").read_bytes())
            n += 1
        state.update_timestamp((self.dir / "timestamp.json").read_bytes())
        assert state.timestamp is not None
        state.update_index((self.dir / state.timestamp.index.path).read_bytes())
        return state

    def releases(self, name: str = NAME) -> list[tuple[str, bool, str | None]]:
        state = self.client()
        assert state.index is not None
        gp, bp = state.index.group_prefix(name), state.index.bin_prefix(name)
        group = state.verify_group(gp, (self.dir / state.index.groups[gp].path).read_bytes())
        node = state.verify_bin(group, bp, (self.dir / group.bins[bp].path).read_bytes())
        out = []
        for entry in node.packages[name]:
            release = state.verify_bin_release(name, entry)
            assert (self.dir / release.file).read_bytes()
            out.append((entry.version, entry.yanked, entry.yanked_reason))
        return out


def stage_root(
    root_keys: Sequence[SigningKey],
    index_key: SigningKey,
    timestamp_key: SigningKey,
    *,
    threshold: int = 2,
    publishers: Sequence[PublisherSpec] = (),
) -> Envelope:
    return repository.root_init(
        root_keys=[k.public for k in root_keys],
        root_threshold=threshold,
        index_keys=[index_key.public],
        index_threshold=1,
        timestamp_keys=[timestamp_key.public],
        timestamp_threshold=1,
        expires=NOW + 365 * DAY,
        publishers=publishers,
    )


def make_repo(tmp_path: Path, publishers: Sequence[PublisherSpec] = ()) -> Repo:
    root_keys = make_keys(3)
    index_key, ts_key = make_keys(2)
    env = stage_root(root_keys, index_key, ts_key, publishers=publishers)
    for k in root_keys[:2]:
        env = env.with_signature(k)
    root_bytes = env.to_bytes()
    repository.init_repository(tmp_path / "index", root_bytes, index_key, ts_key, now=NOW)
    return Repo(tmp_path / "index", root_keys, index_key, ts_key, root_bytes, tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path)


# -- init ----------------------------------------------------------------------------


def test_init_layout_and_client_accepts(repo: Repo) -> None:
    files = repo.files()
    assert files["root/1.json"] == repo.root_bytes
    assert "timestamp.json" in files
    metas = [p for p in files if p.startswith("meta/")]
    assert len(metas) == 1
    assert metas[0] == f"meta/{hashlib.sha256(files[metas[0]]).hexdigest()}.json"
    state = repo.client()
    assert state.index is not None
    assert state.index.version == 1
    assert dict(state.index.groups) == {}
    assert state.index.level == (0, 0)


def test_init_refuses_existing_index(repo: Repo) -> None:
    with pytest.raises(PublishError, match="refusing to initialise"):
        repository.init_repository(
            repo.dir, repo.root_bytes, repo.index_key, repo.timestamp_key, now=NOW
        )


def test_init_refuses_unsigned_root(tmp_path: Path) -> None:
    root_keys = make_keys(3)
    index_key, ts_key = make_keys(2)
    env = stage_root(root_keys, index_key, ts_key).with_signature(root_keys[0])
    with pytest.raises(SignatureError, match="got 1 valid"):
        repository.init_repository(tmp_path / "i", env.to_bytes(), index_key, ts_key, now=NOW)
    assert not (tmp_path / "i").exists()


def test_init_refuses_keys_outside_roles(tmp_path: Path) -> None:
    root_keys = make_keys(3)
    index_key, ts_key, stranger = make_keys(3)
    env = stage_root(root_keys, index_key, ts_key)
    for k in root_keys[:2]:
        env = env.with_signature(k)
    with pytest.raises(SignatureError, match="index top"):
        repository.init_repository(tmp_path / "i", env.to_bytes(), stranger, ts_key, now=NOW)
    assert not (tmp_path / "i").exists()


def test_init_refuses_expired_root(tmp_path: Path) -> None:
    root_keys = make_keys(1)
    index_key, ts_key = make_keys(2)
    env = repository.root_init(
        root_keys=[root_keys[0].public],
        root_threshold=1,
        index_keys=[index_key.public],
        index_threshold=1,
        timestamp_keys=[ts_key.public],
        timestamp_threshold=1,
        expires=NOW - DAY,
    ).with_signature(root_keys[0])
    with pytest.raises(ExpiredError):
        repository.init_repository(tmp_path / "i", env.to_bytes(), index_key, ts_key, now=NOW)


# -- publish -------------------------------------------------------------------------


def test_publish_writes_archive_sig_nodes_and_timestamp(repo: Repo) -> None:
    release = repo.publish("1.0.0", b"the archive")
    files = repo.files()
    assert release.file == archive_path(NAME, "1.0.0")
    assert files[release.file] == b"the archive"
    assert release.sha256 == hashlib.sha256(b"the archive").hexdigest()
    assert release.length == len(b"the archive")
    assert [c.id for c in release.connectors] == ["acme.audit-log.v1"]
    assert [c.type for c in release.connectors] == ["observability"]
    # The .sig is byte-identical to the release embedded in the bin.
    state = repo.client()
    assert state.timestamp is not None
    assert state.timestamp.version == 2
    assert state.index is not None
    assert state.index.version == 2
    assert state.index.level == (0, 0)
    group_ref = state.index.groups[state.index.group_prefix(NAME)]
    group = parse_group(files[group_ref.path])
    node = parse_bin(files[group.bins[state.index.bin_prefix(NAME)].path])
    assert files[release.file + ".sig"] == node.packages[NAME][0].release.to_bytes()
    # Every meta file is content-addressed.
    for path, data in files.items():
        if path.startswith("meta/"):
            assert path == MetaRef.of(data).path
    assert not [p for p in files if ".incoming-" in p or ".tmp-" in p]
    assert repo.releases() == [("1.0.0", False, None)]


def test_publish_several_versions_and_packages(repo: Repo) -> None:
    repo.publish("1.0.0")
    repo.publish("1.1.0")
    repository.publish(
        repo.dir,
        repo.archive(b"other"),
        index_keys=repo.index_key,
        timestamp_keys=repo.timestamp_key,
        now=NOW,
        inspect=inspector("other-pkg", "0.1", ["acme.other.v1"]),
    )
    assert repo.releases() == [("1.0.0", False, None), ("1.1.0", False, None)]
    assert repo.releases("other-pkg") == [("0.1", False, None)]
    assert repo.client().index.version == 4  # type: ignore[union-attr]


def test_publish_never_overwrites_meta_files(repo: Repo) -> None:
    before = repo.files()
    repo.publish("1.0.0")
    after = repo.files()
    for path, data in before.items():
        if path != "timestamp.json":
            assert after[path] == data


@pytest.mark.parametrize("again", ["1.0.0", "1.0"])
def test_publish_refuses_existing_version(repo: Repo, again: str) -> None:
    repo.publish("1.0.0")
    before = repo.files()
    with pytest.raises(PublishError, match="already published") as info:
        repo.publish(again, b"different bytes")
    assert info.value.hint is not None
    assert repo.files() == before


def test_publish_refuses_orphan_archive_with_other_bytes(repo: Repo) -> None:
    target = repo.dir / archive_path(NAME, "1.0.0")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"left behind")
    before = (repo.dir / "timestamp.json").read_bytes()
    with pytest.raises(PublishError, match="exists with other bytes"):
        repo.publish("1.0.0", b"new bytes")
    assert (repo.dir / "timestamp.json").read_bytes() == before


def test_publish_reuses_identical_orphan_archive(repo: Repo) -> None:
    target = repo.dir / archive_path(NAME, "1.0.0")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"same")
    repo.publish("1.0.0", b"same")
    assert repo.releases() == [("1.0.0", False, None)]


def test_publish_with_wrong_index_key_writes_nothing(repo: Repo) -> None:
    before = repo.files()
    with pytest.raises(SignatureError, match=r"release acme-audit-log 1\.0\.0 \(index role\)"):
        repository.publish(
            repo.dir,
            repo.archive(),
            index_keys=SigningKey.generate(),
            timestamp_keys=repo.timestamp_key,
            now=NOW,
            inspect=inspector(),
        )
    assert repo.files() == before


def test_publish_inspector_hash_mismatch(repo: Repo) -> None:
    def lying(path: Path) -> FakeInfo:
        info = inspector()(path)
        return FakeInfo(info.manifest, "00" * 32, info.length)

    with pytest.raises(PublishError, match="is not the copied sha256"):
        repo.publish("1.0.0", inspect=lying)


def test_publish_refuses_release_the_client_would_reject(repo: Repo) -> None:
    with pytest.raises(PublishError, match="connector ID"):
        repo.publish("1.0.0", inspect=inspector(connectors=["Bad ID"]))


def test_publish_timestamp_is_written_last(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real_create, real_replace = LocalStorage.create, LocalStorage.replace

    def record_create(self: LocalStorage, rel: str, data: bytes) -> bool:
        if self.directory == repo.dir:  # not the conditional-write probe
            order.append(f"create {rel}")
        return real_create(self, rel, data)

    def record_replace(self: LocalStorage, rel: str, data: bytes, tag: str | None) -> str | None:
        if self.directory == repo.dir:
            order.append(f"replace {rel}")
        return real_replace(self, rel, data, tag)

    monkeypatch.setattr(LocalStorage, "create", record_create)
    monkeypatch.setattr(LocalStorage, "replace", record_replace)
    repo.publish("1.0.0")
    assert order[-1] == "replace timestamp.json"
    assert [o for o in order if o.startswith("replace")] == ["replace timestamp.json"]  # the rest is create-only
    assert sum(1 for p in order if p.startswith("create meta/")) == 3  # bin, group, top
    assert order[-2].startswith("create history/")  # the new timestamp's history copy, before it


def test_publish_with_real_inspector(repo: Repo, tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "pkg", NAME, "1.2.0")
    release = repository.publish(
        repo.dir, archive, index_keys=repo.index_key, timestamp_keys=repo.timestamp_key, now=NOW
    )
    assert (release.name, release.version) == (NAME, "1.2.0")
    assert release.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert repo.releases() == [("1.2.0", False, None)]


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_publish_unreadable_archive_is_named_as_such(repo: Repo, tmp_path: Path, kind: str) -> None:
    archive = tmp_path / "archive.zip"
    if kind == "directory":
        archive.mkdir()
    before = repo.files()
    with pytest.raises(PublishError, match=r"archive\.zip: cannot read the archive: ") as e:
        repository.publish(
            repo.dir,
            archive,
            index_keys=repo.index_key,
            timestamp_keys=repo.timestamp_key,
            now=NOW,
            inspect=inspector(),
        )
    assert "into the index" not in str(e.value)
    assert repo.files() == before


def test_publish_reports_an_index_it_cannot_copy_into(repo: Repo) -> None:
    (repo.dir / "archives").write_bytes(b"")  # a file where the archives directory goes
    with pytest.raises(PublishError, match="cannot create archives/"):
        repo.publish("1.0.0")


def test_publish_into_missing_index(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="not a directory"):
        repository.publish(
            tmp_path / "nope",
            tmp_path / "a.zip",
            index_keys=SigningKey.generate(),
            timestamp_keys=SigningKey.generate(),
        )


# -- publisher scope -----------------------------------------------------------------


def test_publisher_in_scope(tmp_path: Path) -> None:
    pub = SigningKey.generate()
    repo = make_repo(tmp_path, [PublisherSpec("acme", (pub.public,), 1, ("acme",))])
    release = repo.publish("1.0.0", release_keys=[pub])
    sig = parse_envelope((repo.dir / (release.file + ".sig")).read_bytes())
    assert [s.keyid for s in sig.signatures] == [pub.keyid]
    assert repo.releases() == [("1.0.0", False, None)]


def test_publisher_signed_release_with_wrong_index_key(tmp_path: Path) -> None:
    pub = SigningKey.generate()
    repo = make_repo(tmp_path, [PublisherSpec("acme", (pub.public,), 1, ("acme",))])
    before = repo.files()
    with pytest.raises(SignatureError, match="index top"):
        repository.publish(
            repo.dir,
            repo.archive(),
            index_keys=pub,
            timestamp_keys=repo.timestamp_key,
            release_keys=pub,
            now=NOW,
            inspect=inspector(),
        )
    assert repo.files() == before


def test_publisher_out_of_scope_refused_before_writing(tmp_path: Path) -> None:
    pub = SigningKey.generate()
    repo = make_repo(tmp_path, [PublisherSpec("acme", (pub.public,), 1, ("acme",))])
    before = repo.files()
    with pytest.raises(PolicyError, match=r"modelmesh\.env\.v1"):
        repo.publish(
            "1.0.0",
            release_keys=[pub],
            inspect=inspector(connectors=["acme.a.v1", "modelmesh.env.v1"]),
        )
    assert repo.files() == before


# -- yank and refresh ------------------------------------------------------------------


def test_yank(repo: Repo) -> None:
    repo.publish("1.0.0")
    repo.publish("1.1.0")
    sig_before = (repo.dir / (archive_path(NAME, "1.0.0") + ".sig")).read_bytes()
    repository.yank(
        repo.dir,
        NAME,
        "1.0.0",
        "CVE-2026-0001",
        index_keys=repo.index_key,
        timestamp_keys=repo.timestamp_key,
        now=NOW,
    )
    assert repo.releases() == [("1.0.0", True, "CVE-2026-0001"), ("1.1.0", False, None)]
    assert (repo.dir / (archive_path(NAME, "1.0.0") + ".sig")).read_bytes() == sig_before


def test_yank_errors(repo: Repo) -> None:
    repo.publish("1.0.0")
    kw = {"index_keys": repo.index_key, "timestamp_keys": repo.timestamp_key, "now": NOW}
    with pytest.raises(PublishError, match=r"2\.0 is not published \(versions: 1\.0\.0\)"):
        repository.yank(repo.dir, NAME, "2.0", "x", **kw)  # type: ignore[arg-type]
    with pytest.raises(PublishError, match="versions: none"):
        repository.yank(repo.dir, "other-pkg", "1.0", "x", **kw)  # type: ignore[arg-type]
    with pytest.raises(PublishError, match="printable"):
        repository.yank(repo.dir, NAME, "1.0.0", "", **kw)  # type: ignore[arg-type]
    repository.yank(repo.dir, NAME, "1.0.0", "bad", **kw)  # type: ignore[arg-type]
    with pytest.raises(PublishError, match="already yanked"):
        repository.yank(repo.dir, NAME, "1.0.0", "bad", **kw)  # type: ignore[arg-type]


def test_refresh_timestamp(repo: Repo) -> None:
    before = repo.client().timestamp
    later = NOW + 6 * DAY
    new = repository.refresh_timestamp(repo.dir, repo.timestamp_key, now=later)
    assert before is not None
    assert new.version == before.version + 1
    assert new.index == before.index
    assert new.expires == later + repository.DEFAULT_TIMESTAMP_EXPIRY
    # A client 8 days later accepts only the refreshed timestamp.
    assert repo.client(NOW + 8 * DAY).timestamp == new


def test_refresh_timestamp_wrong_key(repo: Repo) -> None:
    with pytest.raises(SignatureError):
        repository.refresh_timestamp(repo.dir, repo.index_key, now=NOW)


def test_refresh_index(repo: Repo) -> None:
    repo.publish("1.0.0")
    top = repository.refresh_index(
        repo.dir,
        index_keys=repo.index_key,
        timestamp_keys=repo.timestamp_key,
        now=NOW,
        index_expiry=timedelta(days=30),
    )
    assert top.version == 3
    assert top.expires == NOW + timedelta(days=30)
    assert repo.releases() == [("1.0.0", False, None)]


# -- sharding level ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packages", "level"),
    [(0, (0, 0)), (256, (0, 0)), (257, (0, 2)), (16384, (0, 2)), (16385, (2, 4)), (10**6, (2, 4))],
)
def test_sharding_level_thresholds(packages: int, level: tuple[int, int]) -> None:
    assert repository.sharding_level(packages) == level


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Levels change at 2 and 4 packages instead of 256 and 16384 (tests stay fast)."""
    monkeypatch.setattr(publish_state, "SMALL_INDEX_MAX_PACKAGES", 2)
    monkeypatch.setattr(publish_state, "MEDIUM_INDEX_MAX_PACKAGES", 4)


def publish_package(repo: Repo, i: int, version: str = "1.0.0") -> None:
    name = f"pkg-{i}"
    repo.publish(
        version,
        f"{name} {version}".encode(),
        inspect=inspector(name=name, version=version, connectors=(f"acme.{name}.v1",)),
    )


def resolve_all(state: TrustedState, repo: Repo, count: int) -> list[str]:
    """Every package pkg-0 … pkg-<count-1> through ``state``'s verified top; their versions."""
    assert state.index is not None
    top = state.index
    groups = {}
    versions = []
    for i in range(count):
        name = f"pkg-{i}"
        gp, bp = top.group_prefix(name), top.bin_prefix(name)
        if gp not in groups:
            groups[gp] = state.verify_group(gp, (repo.dir / top.groups[gp].path).read_bytes())
        group = groups[gp]
        assert all(len(p) == top.bin_chars for p in group.bins)
        node = state.verify_bin(group, bp, (repo.dir / group.bins[bp].path).read_bytes())
        versions += [state.verify_bin_release(name, e).version for e in node.packages[name]]
    return versions


@pytest.mark.usefixtures("small_thresholds")
def test_publish_rebuilds_the_tree_when_the_package_count_crosses_a_threshold(
    repo: Repo,
) -> None:
    expected = {1: (0, 0), 2: (0, 0), 3: (0, 2), 4: (0, 2), 5: (2, 4), 6: (2, 4)}
    for count, level in expected.items():
        before_files = repo.files()
        before = repo.client()  # a client that loaded the previous state
        before_ts = (repo.dir / "timestamp.json").read_bytes()
        assert before.timestamp is not None
        before_top = (repo.dir / before.timestamp.index.path).read_bytes()
        publish_package(repo, count - 1)
        state = repo.client()
        assert state.index is not None
        assert state.index.level == level, count
        if level[0] == 0:
            assert list(state.index.groups) == [""]
        assert resolve_all(state, repo, count) == ["1.0.0"] * count
        # The client that had the old state (as its rollback reference) accepts the new one.
        again = TrustedState(repo.root_bytes, NOW)
        again.load_trusted_timestamp(before_ts)
        again.load_trusted_index(before_top)
        again.update_timestamp((repo.dir / "timestamp.json").read_bytes())
        assert again.timestamp is not None
        again.update_index((repo.dir / again.timestamp.index.path).read_bytes())
        assert resolve_all(again, repo, count) == ["1.0.0"] * count
        # Published files never change: a reader mid-update still finds the old tree.
        after_files = repo.files()
        changed = [p for p, d in before_files.items() if after_files.get(p) != d]
        assert changed == ["timestamp.json"]
        report = audit_directory(repo.dir, now=NOW, trusted_root=repo.root_bytes)
        assert report.ok, [(f.path, f.message) for f in report.errors]
    # A new version of a known package does not change the count or the level.
    publish_package(repo, 0, "1.1.0")
    state = repo.client()
    assert state.index is not None and state.index.level == (2, 4)
    assert resolve_all(state, repo, 1) == ["1.0.0", "1.1.0"]


@pytest.mark.usefixtures("small_thresholds")
def test_only_a_level_change_rewrites_other_bins(repo: Repo) -> None:
    for i in range(3):
        publish_package(repo, i)
    state = repo.client()
    assert state.index is not None and state.index.level == (0, 2)
    before = {p for p in repo.files() if p.startswith("meta/")}
    publish_package(repo, 0, "2.0.0")  # same level: one bin, the group, the top
    new = {p for p in repo.files() if p.startswith("meta/")} - before
    assert len(new) == 3


@pytest.mark.parametrize("operation", ["refresh", "yank", "resign"])
def test_refresh_yank_and_resign_move_to_the_level_of_the_current_size(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    for i in range(3):
        publish_package(repo, i)
    state = repo.client()
    assert state.index is not None and state.index.level == (0, 0)
    # The thresholds change (a new release of the tooling): the next write re-levels.
    monkeypatch.setattr(publish_state, "SMALL_INDEX_MAX_PACKAGES", 1)
    monkeypatch.setattr(publish_state, "MEDIUM_INDEX_MAX_PACKAGES", 2)
    keys = {"index_keys": repo.index_key, "timestamp_keys": repo.timestamp_key, "now": NOW}
    if operation == "refresh":
        repository.refresh_index(repo.dir, **keys)  # type: ignore[arg-type]
    elif operation == "yank":
        repository.yank(repo.dir, "pkg-1", "1.0.0", "bad", **keys)  # type: ignore[arg-type]
    else:
        # Nothing needs re-signing, so nothing is written and the level stays.
        assert repository.resign_releases(repo.dir, release_keys=repo.index_key, **keys) == ()  # type: ignore[arg-type]
        state = repo.client()
        assert state.index is not None and state.index.level == (0, 0)
        return
    state = repo.client()
    assert state.index is not None and state.index.level == (2, 4)
    assert resolve_all(state, repo, 3) == ["1.0.0"] * 3
    report = audit_directory(repo.dir, now=NOW, trusted_root=repo.root_bytes)
    assert report.ok, [(f.path, f.message) for f in report.errors]


# -- root management ---------------------------------------------------------------------


def test_root_init_validates() -> None:
    (k,) = make_keys(1)
    with pytest.raises(PublishError, match="between 1 and 1"):
        repository.root_init(
            root_keys=[k.public],
            root_threshold=2,
            index_keys=[k.public],
            index_threshold=1,
            timestamp_keys=[k.public],
            timestamp_threshold=1,
            expires=NOW + DAY,
        )
    with pytest.raises(PublishError, match="listed twice"):
        repository.root_init(
            root_keys=[k.public, k.public],
            root_threshold=1,
            index_keys=[k.public],
            index_threshold=1,
            timestamp_keys=[k.public],
            timestamp_threshold=1,
            expires=NOW + DAY,
        )


def test_root_sign_multi_party(tmp_path: Path) -> None:
    root_keys = make_keys(3)
    index_key, ts_key = make_keys(2)
    staged = tmp_path / "root.staged.json"
    staged.write_bytes(stage_root(root_keys, index_key, ts_key).to_bytes())
    repository.root_sign(staged, root_keys[0])
    repository.root_sign(staged, root_keys[0])  # signing twice replaces
    env = repository.root_sign(staged, root_keys[2])
    assert parse_envelope(staged.read_bytes()) == env
    assert sorted(s.keyid for s in env.signatures) == sorted(
        [root_keys[0].keyid, root_keys[2].keyid]
    )
    repository.init_repository(tmp_path / "i", staged.read_bytes(), index_key, ts_key, now=NOW)


def test_root_sign_refuses_non_root(tmp_path: Path, repo: Repo) -> None:
    with pytest.raises(SignatureError, match="expected payload type"):
        repository.root_sign(repo.dir / "timestamp.json", repo.root_keys[0])


def rotate_keys(
    repo: Repo, tmp_path: Path, signers: Sequence[SigningKey], **changes: object
) -> Path:
    staged = tmp_path / "next.json"
    staged.write_bytes(
        repository.root_rotate(repo.dir, expires=NOW + 400 * DAY, **changes).to_bytes()  # type: ignore[arg-type]
    )
    for key in signers:
        # index: root 1's root keys may sign root 2 even when root 2 drops them.
        repository.root_sign(staged, key, index=repo.dir)
    return staged


def test_root_rotation_replacing_all_keys(repo: Repo, tmp_path: Path) -> None:
    repo.publish("1.0.0")
    new_root = make_keys(2)
    new_ts = SigningKey.generate()
    staged = rotate_keys(
        repo,
        tmp_path,
        [*repo.root_keys[:2], *new_root],
        root_keys=[k.public for k in new_root],
        root_threshold=2,
        timestamp_keys=[new_ts.public],
    )
    root = repository.root_publish(repo.dir, staged, now=NOW)
    assert root.version == 2
    assert set(root.keys) == {k.keyid for k in [*new_root, repo.index_key, new_ts]}
    assert (repo.dir / "root/2.json").read_bytes() == staged.read_bytes()
    # The old timestamp is signed by a revoked key: flagged, clients reject it.
    assert repository.load_state(repo.dir).stale_signatures
    with pytest.raises(SignatureError):
        repo.client()
    repository.refresh_timestamp(repo.dir, new_ts, now=NOW)
    assert not repository.load_state(repo.dir).stale_signatures
    assert repo.client().root.version == 2
    assert repo.releases() == [("1.0.0", False, None)]


def test_root_publish_needs_old_threshold(repo: Repo, tmp_path: Path) -> None:
    new_root = make_keys(1)
    staged = rotate_keys(
        repo,
        tmp_path,
        [repo.root_keys[0], *new_root],
        root_keys=[k.public for k in new_root],
        root_threshold=1,
    )
    with pytest.raises(SignatureError, match="root role of trusted root version 1"):
        repository.root_publish(repo.dir, staged, now=NOW)
    assert not (repo.dir / "root/2.json").exists()


def test_root_publish_needs_new_threshold(repo: Repo, tmp_path: Path) -> None:
    new_root = make_keys(2)
    staged = rotate_keys(
        repo,
        tmp_path,
        [*repo.root_keys[:2], new_root[0]],
        root_keys=[k.public for k in new_root],
        root_threshold=2,
    )
    with pytest.raises(SignatureError, match="its own root role"):
        repository.root_publish(repo.dir, staged, now=NOW)


def test_root_publish_refuses_wrong_version_and_expired(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(RootRotationError, match="expected root version 2, got 1"):
        repository.root_publish(repo.dir, repo.root_bytes, now=NOW)
    staged = rotate_keys(repo, tmp_path, repo.root_keys[:2])
    with pytest.raises(ExpiredError):
        repository.root_publish(repo.dir, staged, now=NOW + 500 * DAY)
    repository.root_publish(repo.dir, staged.read_bytes(), now=NOW)
    with pytest.raises(RootRotationError, match="expected root version 3, got 2"):
        repository.root_publish(repo.dir, staged, now=NOW)


def test_root_rotate_keeps_unchanged_roles(repo: Repo, tmp_path: Path) -> None:
    pub = SigningKey.generate()
    staged = rotate_keys(
        repo,
        tmp_path,
        repo.root_keys[:2],
        publishers=[PublisherSpec("acme", (pub.public,), 1, ("acme",))],
    )
    root = repository.root_publish(repo.dir, staged, now=NOW)
    assert root.index.keyids == (repo.index_key.keyid,)
    assert root.root.threshold == 2
    assert [p.name for p in root.publishers] == ["acme"]
    # Next rotation keeps the publisher unless told otherwise.
    staged2 = rotate_keys(repo, tmp_path, repo.root_keys[:2])
    assert [p.name for p in repository.root_publish(repo.dir, staged2, now=NOW).publishers] == [
        "acme"
    ]
    assert repo.client().root.version == 3


def test_load_state(repo: Repo) -> None:
    repo.publish("1.0.0")
    state = repository.load_state(repo.dir)
    assert state.root.version == 1
    assert len(state.roots) == 1
    assert state.timestamp.version == 2
    assert state.top.version == 2
    assert state.timestamp_bytes == (repo.dir / "timestamp.json").read_bytes()
    assert json.loads(state.top_bytes)["payloadType"].endswith("index+json")


def test_load_state_missing_files(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match=r"root/1\.json is missing"):
        repository.load_state(tmp_path)


# -- re-signing releases after a key rotation ----------------------------------------------


def sig(repo: Repo, version: str, name: str = NAME) -> bytes:
    return (repo.dir / (archive_path(name, version) + ".sig")).read_bytes()


def bin_envelopes(repo: Repo, name: str = NAME) -> dict[str, bytes]:
    """Version -> the release envelope bytes the bin holds, through a client."""
    state = repo.client()
    assert state.index is not None
    gp, bp = state.index.group_prefix(name), state.index.bin_prefix(name)
    group = state.verify_group(gp, (repo.dir / state.index.groups[gp].path).read_bytes())
    node = state.verify_bin(group, bp, (repo.dir / group.bins[bp].path).read_bytes())
    return {e.version: e.release.to_bytes() for e in node.packages[name]}


def signers(data: bytes) -> list[str]:
    return [s.keyid for s in parse_envelope(data).signatures]


def publish_root(repo: Repo, tmp_path: Path, **changes: object) -> None:
    """Rotate root N -> N+1 with ``changes`` (root keys unchanged)."""
    repository.root_publish(
        repo.dir, rotate_keys(repo, tmp_path, repo.root_keys[:2], **changes), now=NOW
    )


def rotate_index_key(repo: Repo, tmp_path: Path) -> SigningKey:
    new = SigningKey.generate()
    publish_root(repo, tmp_path, index_keys=[new.public])
    return new


def refresh(repo: Repo, index_key: SigningKey) -> None:
    repository.refresh_index(
        repo.dir, index_keys=index_key, timestamp_keys=repo.timestamp_key, now=NOW
    )


def audit_ok(repo: Repo) -> None:
    report = audit_directory(repo.dir, now=NOW, trusted_root=repo.root_bytes)
    assert report.ok, [(f.path, f.message) for f in report.errors]


def test_refresh_re_signs_index_releases_after_an_index_key_rotation(
    repo: Repo, tmp_path: Path
) -> None:
    repo.publish("1.0.0")
    repo.publish("1.1.0")
    repository.yank(
        repo.dir,
        NAME,
        "1.0.0",
        "CVE-1",
        index_keys=repo.index_key,
        timestamp_keys=repo.timestamp_key,
        now=NOW,
    )
    repo.publish("0.1", inspect=inspector("other-pkg", "0.1", ["acme.other.v1"]))
    new = rotate_index_key(repo, tmp_path)
    before = repo.files()
    with pytest.raises(SignatureError):
        repo.client()  # the top is signed by the revoked index key
    # The old index key can neither sign the top nor re-sign the releases: nothing written.
    with pytest.raises(SignatureError):
        refresh(repo, repo.index_key)
    assert repo.files() == before

    refresh(repo, new)
    after = repo.files()
    assert repo.releases() == [("1.0.0", True, "CVE-1"), ("1.1.0", False, None)]
    assert repo.releases("other-pkg") == [("0.1", False, None)]
    root_2 = repo.client().root
    for name, version in [(NAME, "1.0.0"), (NAME, "1.1.0"), ("other-pkg", "0.1")]:
        data = sig(repo, version, name)
        assert data != before[archive_path(name, version) + ".sig"]  # replaced ...
        assert signers(data) == [new.keyid]  # ... by the new index key's signature ...
        assert data == bin_envelopes(repo, name)[version]  # ... identical to the bin's copy
        assert verify_release(root_2, data).version == version
        assert after[archive_path(name, version)] == before[archive_path(name, version)]
    # Published meta files never change: the re-signed bins are new files.
    assert all(after[p] == d for p, d in before.items() if p.startswith("meta/"))
    assert not [p for p in after if ".tmp-" in p]
    audit_ok(repo)

    # Nothing left to re-sign: a second refresh writes only a new top and timestamp.
    refresh(repo, new)
    again = repo.files()
    assert {p for p in again if again[p] != after.get(p)} == {
        "timestamp.json",
        *(set(again) - set(after)),
    }
    assert sorted(p.split("/")[0] for p in set(again) - set(after)) == ["history", "meta"]  # the top, the timestamp's history copy
    audit_ok(repo)


@pytest.mark.parametrize("change", ["publish", "yank"])
def test_first_publish_or_yank_after_an_index_key_rotation_re_signs(
    repo: Repo, tmp_path: Path, change: str
) -> None:
    repo.publish("1.0.0")
    repo.publish("0.1", inspect=inspector("other-pkg", "0.1", ["acme.other.v1"]))  # another bin
    new = rotate_index_key(repo, tmp_path)
    old_sig = sig(repo, "0.1", "other-pkg")
    if change == "publish":
        repository.publish(
            repo.dir,
            repo.archive(b"1.1.0"),
            index_keys=new,
            timestamp_keys=repo.timestamp_key,
            now=NOW,
            inspect=inspector(version="1.1.0"),
        )
        assert repo.releases() == [("1.0.0", False, None), ("1.1.0", False, None)]
    else:
        repository.yank(
            repo.dir,
            NAME,
            "1.0.0",
            "CVE-1",
            index_keys=new,
            timestamp_keys=repo.timestamp_key,
            now=NOW,
        )
        assert repo.releases() == [("1.0.0", True, "CVE-1")]
    assert signers(sig(repo, "1.0.0")) == [new.keyid]
    assert signers(sig(repo, "0.1", "other-pkg")) == [new.keyid] != signers(old_sig)
    assert repo.releases("other-pkg") == [("0.1", False, None)]
    audit_ok(repo)


def test_refresh_never_writes_an_index_whose_releases_fail(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.publish("1.0.0")
    new = rotate_index_key(repo, tmp_path)
    before = repo.files()
    # Without the re-signing, the check of every release reachable from the new top refuses.
    monkeypatch.setattr(resign, "_resign", lambda state, **kw: resign.Resigned({}, (), ()))
    with pytest.raises(SignatureError, match=r"release"):
        refresh(repo, new)
    assert repo.files() == before


def test_an_interrupted_re_signing_is_finished_by_the_next_refresh(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.publish("1.0.0")
    new = rotate_index_key(repo, tmp_path)
    old_timestamp = (repo.dir / "timestamp.json").read_bytes()
    replace = LocalStorage.replace

    def crash_before_timestamp(self: LocalStorage, rel: str, data: bytes, tag: str | None) -> str | None:
        if rel == "timestamp.json":
            raise PublishError("crash")
        return replace(self, rel, data, tag)

    monkeypatch.setattr(LocalStorage, "replace", crash_before_timestamp)
    with pytest.raises(PublishError, match="crash"):
        refresh(repo, new)
    assert (repo.dir / "timestamp.json").read_bytes() == old_timestamp  # old state visible
    half = sig(repo, "1.0.0")
    assert signers(half) == [new.keyid]
    monkeypatch.undo()
    refresh(repo, new)
    assert sig(repo, "1.0.0") == half  # Ed25519 is deterministic: the same envelope
    assert repo.releases() == [("1.0.0", False, None)]
    audit_ok(repo)


def acme(key: SigningKey, name: str = "acme", namespace: str = "acme") -> PublisherSpec:
    return PublisherSpec(name, (key.public,), 1, (namespace,))


def test_a_rotated_publishers_releases_are_refused_until_re_signed(tmp_path: Path) -> None:
    old_pub, new_pub = SigningKey.generate(), SigningKey.generate()
    repo = make_repo(tmp_path, [acme(old_pub)])
    repo.publish("1.0.0", release_keys=[old_pub])
    repo.publish("1.1.0")  # by the index role
    publish_root(repo, tmp_path, publishers=[acme(new_pub)])
    before = repo.files()
    # The index key may not re-sign a publisher's release: every index write is refused.
    with pytest.raises(
        PublishError, match=r"acme-audit-log 1\.0\.0 \(publisher 'acme' of root 1\)"
    ) as e:
        refresh(repo, repo.index_key)
    assert "1.1.0" not in str(e.value)
    assert e.value.hint is not None and "resign" in e.value.hint
    with pytest.raises(PublishError, match="publisher 'acme'"):
        repo.publish("1.2.0")  # the same bin
    with pytest.raises(PublishError, match="publisher 'acme'"):
        repository.yank(
            repo.dir,
            NAME,
            "1.1.0",
            "x",
            index_keys=repo.index_key,
            timestamp_keys=repo.timestamp_key,
            now=NOW,
        )
    assert repo.files() == before

    kw = {"index_keys": repo.index_key, "timestamp_keys": repo.timestamp_key, "now": NOW}
    # The revoked key (or any key but the publisher's new one) cannot re-sign it.
    for wrong in (old_pub, SigningKey.generate()):
        with pytest.raises(SignatureError, match=r"acme-audit-log 1\.0\.0"):
            repository.resign_releases(repo.dir, name=NAME, release_keys=wrong, **kw)  # type: ignore[arg-type]
    with pytest.raises(PublishError, match="other-pkg is not published"):
        repository.resign_releases(repo.dir, name="other-pkg", release_keys=new_pub, **kw)  # type: ignore[arg-type]
    assert repo.files() == before

    resigned = repository.resign_releases(repo.dir, name=NAME, release_keys=new_pub, **kw)  # type: ignore[arg-type]
    assert [(r.name, r.version) for r in resigned] == [(NAME, "1.0.0")]
    assert signers(sig(repo, "1.0.0")) == [new_pub.keyid]
    # 1.1.0 (index role, key unchanged) still verifies: untouched.
    assert sig(repo, "1.1.0") == before[archive_path(NAME, "1.1.0") + ".sig"]
    assert sig(repo, "1.0.0") == bin_envelopes(repo)["1.0.0"]
    assert repo.releases() == [("1.0.0", False, None), ("1.1.0", False, None)]
    audit_ok(repo)
    # Now nothing is left to re-sign, and refresh works again.
    files = repo.files()
    assert repository.resign_releases(repo.dir, release_keys=new_pub, **kw) == ()  # type: ignore[arg-type]
    assert repo.files() == files
    refresh(repo, repo.index_key)
    audit_ok(repo)


def test_one_resign_call_re_signs_several_publishers_each_with_its_own_key(tmp_path: Path) -> None:
    a1, a2, b1, b2 = make_keys(4)
    repo = make_repo(tmp_path, [acme(a1), acme(b1, "beta", "beta")])
    repo.publish("1.0.0", release_keys=[a1])
    repo.publish("2.0", release_keys=[b1], inspect=inspector("beta-sink", "2.0", ["beta.sink.v1"]))
    new_index = rotate_index_key(repo, tmp_path)  # and, in a second root, both publishers
    publish_root(repo, tmp_path, publishers=[acme(a2), acme(b2, "beta", "beta")])
    kw = {"index_keys": new_index, "timestamp_keys": repo.timestamp_key, "now": NOW}
    # Only acme's new key: beta's release is named, nothing is written.
    with pytest.raises(PublishError, match=r"beta-sink 2\.0 \(publisher 'beta' of root 2\)"):
        repository.resign_releases(repo.dir, release_keys=[a2], **kw)  # type: ignore[arg-type]
    resigned = repository.resign_releases(repo.dir, release_keys=[a2, b2], **kw)  # type: ignore[arg-type]
    assert sorted(r.name for r in resigned) == [NAME, "beta-sink"]
    assert signers(sig(repo, "1.0.0")) == [a2.keyid]
    assert signers(sig(repo, "2.0", "beta-sink")) == [b2.keyid]
    assert repo.releases("beta-sink") == [("2.0", False, None)]
    audit_ok(repo)
