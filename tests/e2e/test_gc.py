"""gc: what no timestamp of the grace period reaches goes, nothing a reader or publisher needs.

On a directory and on a real S3-compatible server (moto on 127.0.0.1). Time moves by passing
``now``: files keep their real modification times, the collector is told it is later.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from modelmesh_connectors.errors import PublishError
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.audit import audit_storage
from modelmesh_connectors.publish.gc import collect_garbage
from modelmesh_connectors.publish.state import load_state
from modelmesh_connectors.publish.storage import Listed, Storage
from tests.support.publishing import DAY, Backend, Keys, backends, build_archives, make_keys
from tests.support.s3 import MotoServer, moto_server

REPO = Path(__file__).resolve().parents[2]
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


# The S3 rows start a moto server (a real S3-compatible process): they are in the slow set,
# which scripts/test.sh runs; the local rows run in the quick default set.
@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    moto = request.getfixturevalue("moto") if request.param == "s3" else None
    return {b.kind: b for b in backends(tmp_path, moto)}[request.param]


def _published(backend: Backend, tmp_path: Path, count: int = 3) -> tuple[Storage, Keys]:
    keys = make_keys()
    storage = backend.storage()
    repository.init_repository(storage, keys.root_bytes, keys.index, keys.timestamp, now=keys.now)
    for archive in build_archives(tmp_path / "dist", [(f"pkg-{i}", "1.0.0") for i in range(count)]):
        repository.publish(storage, archive, **keys.signers())  # type: ignore[arg-type]
    return storage, keys


def _meta(backend: Backend) -> set[str]:
    return {k for k in backend.files() if k.startswith("meta/")}


def test_nothing_young_is_collected(backend: Backend, tmp_path: Path) -> None:
    storage, keys = _published(backend, tmp_path)
    before = backend.files()
    report = collect_garbage(storage, now=keys.now)
    assert report.removed == ()
    assert backend.files() == before
    assert report.timestamps == 4  # every timestamp is still valid: every tree is kept


def test_superseded_nodes_go_after_the_grace_period(backend: Backend, tmp_path: Path) -> None:
    storage, keys = _published(backend, tmp_path)
    state = load_state(storage)
    later = keys.now + 9 * DAY  # every old timestamp replaced and expired more than 8 days ago
    report = collect_garbage(storage, now=later)
    assert report.removed and all(p.startswith("meta/") for p in report.removed)
    # Left: the current tree (top, one group, one bin) and everything else of the index.
    assert _meta(backend) == {state.timestamp.index.path, *(p for p in _meta(backend) if p != state.timestamp.index.path)}
    assert len(_meta(backend)) == 3
    assert len([p for p in backend.files() if p.startswith("history/")]) == 4  # history is kept
    audit = audit_storage(storage, trusted_root=keys.root_bytes)
    assert audit.ok and audit.missing == () and audit.orphans == ()


def test_a_reader_holding_an_older_timestamp_keeps_its_tree(backend: Backend, tmp_path: Path) -> None:
    storage, keys = _published(backend, tmp_path)
    before = _meta(backend)
    # Two hours later, with a one-hour grace: the older timestamps were replaced more than an
    # hour ago, but they have not expired: a client may still hold one and read its tree.
    report = collect_garbage(storage, grace=HOUR, now=keys.now + 2 * HOUR)
    assert report.removed == ()
    assert _meta(backend) == before


def test_orphans_of_a_lost_or_crashed_publish_go_when_old(backend: Backend, tmp_path: Path) -> None:
    storage, keys = _published(backend, tmp_path, count=1)
    storage.create("archives/ghost/ghost-1.0.0.zip", b"left behind")
    storage.create("history/9-" + "ab" * 32 + ".json", b"a timestamp that lost its race")
    assert set(audit_storage(storage, trusted_root=keys.root_bytes).orphans) == {"archives/ghost/ghost-1.0.0.zip", "history/9-" + "ab" * 32 + ".json"}
    young = collect_garbage(storage, now=keys.now)
    assert "archives/ghost/ghost-1.0.0.zip" in young.young
    dry = collect_garbage(storage, now=keys.now + 9 * DAY, dry_run=True)
    assert "archives/ghost/ghost-1.0.0.zip" in dry.removed
    assert "archives/ghost/ghost-1.0.0.zip" in backend.files()  # a dry run removes nothing
    collect_garbage(storage, now=keys.now + 9 * DAY)
    assert audit_storage(storage, trusted_root=keys.root_bytes).orphans == ()


class _StaleListing(Storage):
    """A listing taken before the file changed: its tag no longer matches."""

    def __init__(self, inner: Storage) -> None:
        super().__init__()
        self.inner = inner

    @property
    def location(self) -> str:
        return self.inner.location

    def read(self, key: str):
        return self.inner.read(key)

    def create(self, key: str, data: bytes) -> bool:
        return self.inner.create(key, data)

    def replace(self, key: str, data: bytes, tag: str | None) -> str | None:
        return self.inner.replace(key, data, tag)

    def list(self, prefix: str = "") -> Iterator[Listed]:
        for entry in self.inner.list(prefix):
            yield Listed(entry.key, entry.modified, "0" * 32 if "ghost" in entry.key else entry.tag)

    def delete(self, key: str, tag: str) -> bool:
        return self.inner.delete(key, tag)


def test_a_file_changed_since_the_listing_is_left(backend: Backend, tmp_path: Path) -> None:
    storage, keys = _published(backend, tmp_path, count=1)
    storage.create("archives/ghost/ghost-1.0.0.zip", b"left behind")
    report = collect_garbage(_StaleListing(storage), now=keys.now + 9 * DAY)
    assert report.changed == ("archives/ghost/ghost-1.0.0.zip",)
    assert "archives/ghost/ghost-1.0.0.zip" in backend.files()


def test_a_grace_shorter_than_an_hour_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="at least 1:00:00"):
        collect_garbage(tmp_path, grace=timedelta(minutes=5))


def test_console_script_gc(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    directory.mkdir()
    _published(Backend("local", str(directory), directory=directory), tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "modelmesh_connectors", "gc", "--index", str(directory), "--grace", "1h", "--dry-run", "--json"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["timestamps"] == 4
    run = subprocess.run(
        [sys.executable, "-m", "modelmesh_connectors", "gc", "--index", str(directory), "--grace", "10m"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert run.returncode == 9 and "expected at least 1:00:00" in run.stderr  # publish failure
