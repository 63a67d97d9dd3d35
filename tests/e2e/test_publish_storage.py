"""The storage seam and the publish protocol on both backends: a directory, and a real
S3-compatible server (moto, a subprocess on 127.0.0.1; no in-process mocking of boto3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.errors import PublishError, StorageError
from modelmesh_connectors.index.envelope import parse_envelope
from modelmesh_connectors.index.metadata import parse_timestamp
from modelmesh_connectors.package.requirements import parse_package_spec
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.audit import audit_storage
from modelmesh_connectors.publish.gc import collect_garbage
from modelmesh_connectors.publish.local_storage import LocalStorage, default_work_dir
from modelmesh_connectors.publish.s3_storage import S3Storage
from modelmesh_connectors.publish.state import load_state
from modelmesh_connectors.publish.storage import Storage
from tests.support.publishing import (
    Backend,
    Keys,
    backends,
    build_archives,
    index_files_only,
    make_keys,
)
from tests.support.s3 import MotoServer, moto_server


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


# The S3 rows start a moto server (a real S3-compatible process): they are in the slow set,
# which scripts/test.sh runs; the local rows run in the quick default set.
@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    moto = request.getfixturevalue("moto") if request.param == "s3" else None
    found = {b.kind: b for b in backends(tmp_path, moto)}
    return found[request.param]


def init(backend: Backend, keys: Keys) -> Storage:
    storage = backend.storage()
    repository.init_repository(storage, keys.root_bytes, keys.index, keys.timestamp, now=keys.now)
    return storage


# -- the primitives --------------------------------------------------------------------


def test_primitives(backend: Backend) -> None:
    storage = backend.storage()
    assert storage.read("meta/x.json") is None
    assert storage.create("meta/x.json", b"one") is True
    assert storage.create("meta/x.json", b"two") is False  # create-if-absent
    first = storage.read("meta/x.json")
    assert first is not None and first.data == b"one"
    assert storage.replace("meta/x.json", b"new", None) is None  # must be absent: it is not
    tag = storage.replace("meta/x.json", b"three", first.tag)
    assert tag is not None
    assert storage.replace("meta/x.json", b"four", first.tag) is None  # stale tag
    assert storage.read("meta/x.json").data == b"three"  # type: ignore[union-attr]
    assert storage.replace("timestamp.json", b"t", None) is not None  # absent: created
    assert sorted(e.key for e in storage.list("meta/")) == ["meta/x.json"]
    assert sorted(e.key for e in storage.list()) == ["meta/x.json", "timestamp.json"]
    assert storage.delete("meta/x.json", first.tag) is False  # changed since
    assert storage.delete("meta/x.json", tag) is True
    assert storage.read("meta/x.json") is None
    assert storage.delete("meta/x.json", tag) is False  # gone


def test_the_condition_probe_leaves_nothing_in_the_served_tree(backend: Backend) -> None:
    storage = backend.storage()
    storage.ensure_conditions()
    assert backend.files() == []
    if backend.kind == "s3":
        # The probe ran beside the prefix, and was removed.
        assert backend.all_bucket_keys() == []


class _IgnoresConditions(LocalStorage):
    """A store that accepts every write, as some S3-compatible servers do."""

    def create(self, key: str, data: bytes) -> bool:
        self._path(key).parent.mkdir(parents=True, exist_ok=True)
        self._path(key).write_bytes(data)
        return True

    def replace(self, key: str, data: bytes, tag: str | None) -> str | None:
        self._path(key).write_bytes(data)
        return "tag"


class _StripConditions:
    """A boto3 client whose writes lose their If-None-Match / If-Match headers."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def put_object(self, **kwargs: Any) -> Any:
        kwargs.pop("IfNoneMatch", None)
        kwargs.pop("IfMatch", None)
        return self._client.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_store_that_ignores_conditions_is_refused(backend: Backend) -> None:
    keys = make_keys()
    if backend.kind == "local":
        assert backend.directory is not None
        storage: Storage = _IgnoresConditions(backend.directory)
    else:
        assert backend.server is not None
        storage = S3Storage(backend.bucket, backend.prefix, client=_StripConditions(backend.server.client()))
    with pytest.raises(StorageError, match="does not enforce conditional writes") as e:
        repository.init_repository(storage, keys.root_bytes, keys.index, keys.timestamp, now=keys.now)
    assert "If-None-Match ignored" in e.value.message and "If-Match ignored" in e.value.message
    assert backend.files() == []  # refused before the first index write


# -- the protocol on both backends -----------------------------------------------------


def test_lifecycle_and_no_stray_file_after_any_operation(backend: Backend, tmp_path: Path) -> None:
    keys = make_keys()
    archives = build_archives(tmp_path / "dist", [("alpha", "1.0.0"), ("beta", "1.0.0"), ("gamma", "2.0.0"), ("alpha", "1.1.0")])
    storage = init(backend, keys)

    def clean() -> None:
        assert index_files_only(backend.files()) == []
        if backend.kind == "local":
            assert backend.directory is not None
            work = default_work_dir(backend.directory)
            assert not work.is_relative_to(backend.directory)

    clean()
    repository.publish(storage, archives[0], **keys.signers())  # type: ignore[arg-type]
    clean()
    repository.publish_many(storage, archives[1:3], **keys.signers())  # type: ignore[arg-type]
    clean()
    with pytest.raises(PublishError, match="already published"):
        repository.publish(storage, archives[0], **keys.signers())  # type: ignore[arg-type]
    clean()
    repository.yank(storage, "beta", "1.0.0", "broken", **keys.signers())  # type: ignore[arg-type]
    clean()
    repository.refresh_timestamp(storage, keys.timestamp)
    clean()
    repository.refresh_index(storage, **keys.signers())  # type: ignore[arg-type]
    clean()
    repository.publish(storage, archives[3], **keys.signers())  # type: ignore[arg-type]
    clean()
    collect_garbage(storage)
    clean()
    report = audit_storage(storage, trusted_root=keys.root_bytes)
    assert report.ok, [(f.path, f.message) for f in report.errors]
    assert report.missing == () and report.orphans == ()
    state = load_state(storage)
    assert state.top.packages == 3
    assert state.timestamp.version == 7  # init, 2 publishes, bulk, yank, timestamp, refresh
    # Every timestamp is in the history, each naming the one before.
    history = sorted((k for k in backend.files() if k.startswith("history/")), key=lambda k: int(k[8:].split("-")[0]))
    assert [int(k[8:].split("-")[0]) for k in history] == list(range(1, 8))
    versions = [parse_timestamp(parse_envelope(storage.read(k).data).payload) for k in history]  # type: ignore[union-attr]
    assert [t.previous.version if t.previous else None for t in versions] == [None, *range(1, 7)]


def test_bulk_publish_is_one_change(backend: Backend, tmp_path: Path) -> None:
    keys = make_keys()
    storage = init(backend, keys)
    names = [(f"pkg-{i}", "1.0.0") for i in range(40)]
    archives = build_archives(tmp_path / "dist", names)
    before = set(backend.files())
    releases = repository.publish_many(storage, archives, **keys.signers())  # type: ignore[arg-type]
    assert [(r.name, r.version) for r in releases] == names
    new = set(backend.files()) - before
    assert len([k for k in new if k.startswith("archives/")]) == 80  # archive + .sig each
    assert len([k for k in new if k.startswith("meta/")]) == 3  # one bin, its group, the top
    assert len([k for k in new if k.startswith("history/")]) == 1  # one timestamp
    assert load_state(storage).timestamp.version == 2


def test_bulk_publish_is_all_or_nothing(backend: Backend, tmp_path: Path) -> None:
    keys = make_keys()
    storage = init(backend, keys)
    archives = build_archives(tmp_path / "dist", [("one", "1.0.0"), ("two", "1.0.0")])
    repository.publish(storage, archives[1], **keys.signers())  # type: ignore[arg-type]
    before = backend.files()
    with pytest.raises(PublishError, match="two 1.0.0 is already published"):
        repository.publish_many(storage, archives, **keys.signers())  # type: ignore[arg-type]
    assert load_state(storage).timestamp.version == 2
    assert [k for k in backend.files() if k not in before and not k.startswith("archives/one/")] == []
    with pytest.raises(PublishError, match="publish each version once"):
        repository.publish_many(storage, [archives[0], archives[0]], **keys.signers())  # type: ignore[arg-type]


@pytest.mark.slow  # a moto server: real S3-compatible process
def test_a_client_installs_from_an_index_published_into_s3(moto: MotoServer, tmp_path: Path) -> None:
    keys = make_keys()
    bucket = moto.new_bucket()
    storage = S3Storage(bucket, "idx/", client=moto.client())
    repository.init_repository(storage, keys.root_bytes, keys.index, keys.timestamp, now=keys.now)
    [archive] = build_archives(tmp_path / "dist", [("acme-audit-log", "1.0.0")])
    repository.publish(storage, archive, **keys.signers())  # type: ignore[arg-type]
    (tmp_path / "root.json").write_bytes(keys.root_bytes)
    # Readers are anonymous: the bucket policy of docs/HOSTING.md lets anyone GET the index.
    moto.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/idx/*"}],
    }))
    # moto serves the bucket over plain HTTP at <endpoint>/<bucket>/<key>, as a CDN would.
    cfg = parse_config(
        {
            "packages": ["acme-audit-log"],
            "index": f"{moto.endpoint}/{bucket}/idx/",
            "trust_root": str(tmp_path / "root.json"),
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    with Loader(cfg) as loader:
        [(resolved, path)] = loader.install([parse_package_spec("acme-audit-log")])
    assert path.read_bytes() == archive.read_bytes()
    assert resolved.release is not None
    assert (resolved.release.name, resolved.release.version) == ("acme-audit-log", "1.0.0")
