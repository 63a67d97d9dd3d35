"""Racing publishers, a crash mid-publish, readers during publishes, a forked history.

Two publishers — threads, then separate processes — publish 50 distinct releases each into
one index, on a directory and on a real S3-compatible server (moto on 127.0.0.1): every
release must be there, the index must verify, and at least one compare-and-swap must have
been lost and retried (otherwise the race was not a race).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.errors import ForkError, LockTimeoutError
from modelmesh_connectors.publish import commit as commit_module
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.audit import audit_storage
from modelmesh_connectors.publish.gc import collect_garbage
from modelmesh_connectors.publish.state import current_bin, load_state
from modelmesh_connectors.publish.storage import Storage
from tests.support.publish_worker import CRASH_STATUS
from tests.support.publishing import (
    DAY,
    Backend,
    Keys,
    backends,
    build_archives,
    index_files_only,
    make_keys,
)
from tests.support.s3 import MotoServer, moto_server
from tests.support.simulator import RepositorySimulator

REPO = Path(__file__).resolve().parents[2]
PER_PUBLISHER = 50

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, moto: MotoServer) -> Backend:
    return {b.kind: b for b in backends(tmp_path, moto)}[request.param]


def _init(backend: Backend) -> Keys:
    keys = make_keys()
    repository.init_repository(backend.storage(), keys.root_bytes, keys.index, keys.timestamp, now=keys.now)
    return keys


def _names(prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}-pkg-{i}", "1.0.0") for i in range(PER_PUBLISHER)]


def _all_present(backend: Backend, keys: Keys, names: list[tuple[str, str]]) -> None:
    storage = backend.storage()
    state = load_state(storage)
    missing = [
        (name, version)
        for name, version in names
        if version not in [e.version for e in current_bin(state, state.top.bin_prefix(name)).packages.get(name, ())]
    ]
    assert missing == []
    assert state.top.packages == len(names)
    report = audit_storage(storage, trusted_root=keys.root_bytes)
    assert report.ok, [(f.path, f.message) for f in report.errors]
    assert report.missing == ()
    # What a lost race leaves is only ever an unreferenced history file (gc removes it).
    assert all(p.startswith("history/") for p in report.orphans), report.orphans
    assert index_files_only(backend.files()) == []


def _env(backend: Backend) -> dict[str, str]:
    env = backend.server.env() if backend.server is not None else dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _worker(backend: Backend, keydir: Path, archives: list[Path], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.publish_worker", backend.location, str(keydir), *map(str, archives), *extra],
        cwd=REPO,
        env=_env(backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_publisher_threads_lose_no_release(backend: Backend, tmp_path: Path) -> None:
    keys = _init(backend)
    a, b = _names("a"), _names("b")
    archives = {p: build_archives(tmp_path / p, names) for p, names in (("a", a), ("b", b))}
    before = commit_module.conflicts_seen()
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(archives: list[Path]) -> None:
        storage: Storage = backend.storage()  # one client per publisher, as on two runners
        start.wait()
        try:
            for archive in archives:
                repository.publish(storage, archive, **keys.signers())  # type: ignore[arg-type]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(archives[p],)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _all_present(backend, keys, a + b)
    assert commit_module.conflicts_seen() - before >= 1  # a real race: some swap was lost


def test_two_publisher_processes_lose_no_release(backend: Backend, tmp_path: Path) -> None:
    keys = _init(backend)
    keydir = tmp_path / "keys"
    keys.write(keydir)
    a, b = _names("a"), _names("b")
    workers = [_worker(backend, keydir, build_archives(tmp_path / p, names)) for p, names in (("a", a), ("b", b))]
    results = []
    for w in workers:
        out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["published"] for r in results] == [PER_PUBLISHER, PER_PUBLISHER]
    assert sum(r["conflicts"] for r in results) >= 1
    _all_present(backend, keys, a + b)


def test_a_crash_between_upload_and_timestamp(backend: Backend, tmp_path: Path) -> None:
    keys = _init(backend)
    keydir = tmp_path / "keys"
    keys.write(keydir)
    first, crashed = build_archives(tmp_path / "dist", [("first", "1.0.0"), ("crashed", "1.0.0")])
    repository.publish(backend.storage(), first, **keys.signers())  # type: ignore[arg-type]
    worker = _worker(backend, keydir, [crashed], "--crash-before-swap")
    _out, err = worker.communicate(timeout=120)
    assert worker.returncode == CRASH_STATUS, err
    # The old state is intact and verifies; the uploads of the dead publish are orphans.
    storage = backend.storage()
    assert load_state(storage).timestamp.version == 2
    report = audit_storage(storage, trusted_root=keys.root_bytes)
    assert report.ok and report.missing == ()
    assert {"archives/crashed/crashed-1.0.0.zip", "archives/crashed/crashed-1.0.0.zip.sig"} <= set(report.orphans)
    assert any(p.startswith("history/3-") for p in report.orphans)
    # Re-running the publish completes it (the same bytes already uploaded are fine).
    repository.publish(storage, crashed, **keys.signers())  # type: ignore[arg-type]
    report = audit_storage(storage, trusted_root=keys.root_bytes)
    assert report.ok
    assert not [p for p in report.orphans if p.startswith("archives/")]
    # gc, once the grace period has passed, removes what the crash left.
    later = keys.now + 9 * DAY
    collect_garbage(storage, now=later)
    assert audit_storage(storage, trusted_root=keys.root_bytes).orphans == ()


def test_a_reader_in_a_loop_during_concurrent_publishes(tmp_path: Path) -> None:
    sim = RepositorySimulator(tmp_path)
    try:
        sim.publish("acme-audit-log", "1.0.0")
        archives = {
            p: build_archives(tmp_path / p, [(f"{p}-pkg-{i}", "1.0.0") for i in range(15)])
            for p in ("a", "b")
        }
        done = threading.Event()
        failures: list[BaseException] = []
        reads = 0

        def publisher(paths: list[Path]) -> None:
            try:
                for path in paths:
                    repository.publish(sim.dir, path, index_keys=sim.index_key, timestamp_keys=sim.timestamp_key, now=sim.now)
            except BaseException as e:
                failures.append(e)

        def reader() -> None:
            nonlocal reads
            cfg = parse_config(sim.config(["acme-audit-log"], metadata_max_age=0))
            while not done.is_set():
                try:
                    with Loader(cfg) as loader:
                        [(resolved, _path)] = loader.install(cfg.packages)
                    assert resolved.release is not None and resolved.release.version == "1.0.0"
                    reads += 1
                except LockTimeoutError:
                    continue  # a freshness wait on the local state, not a failure
                except BaseException as e:
                    failures.append(e)
                    return

        readers = [threading.Thread(target=reader) for _ in range(2)]
        publishers = [threading.Thread(target=publisher, args=(archives[p],)) for p in ("a", "b")]
        for t in readers + publishers:
            t.start()
        for t in publishers:
            t.join()
        time.sleep(0.2)
        done.set()
        for t in readers:
            t.join()
        assert failures == []
        assert reads >= 5
        assert load_state(sim.dir).top.packages == 31
    finally:
        sim.close()


def test_a_client_shown_a_forked_history_refuses_it(tmp_path: Path) -> None:
    sim = RepositorySimulator(tmp_path)
    try:
        sim.publish("acme-audit-log", "1.0.0")  # timestamp 2
        fork = tmp_path / "fork"
        shutil.copytree(sim.dir, fork)  # a second publisher's copy of timestamp 2
        sim.publish("acme-audit-log", "1.1.0")  # timestamp 3a
        cfg = parse_config(sim.config(["acme-audit-log"], metadata_max_age=0))
        with Loader(cfg) as loader:
            [(resolved, _)] = loader.install(cfg.packages)
        assert resolved.release is not None and resolved.release.version == "1.1.0"  # trusts 3a
        # The copy moves on without a compare-and-swap against the real index: 3b, 4b.
        for name in ("other-a", "other-b"):
            archive = sim.build_archive(name, "1.0.0", connectors=[(f"{name.replace('-', '')}.sink.v1", "observability", f"{name.replace('-', '_')}.sink:Sink")])
            repository.publish(fork, archive, index_keys=sim.index_key, timestamp_keys=sim.timestamp_key, now=sim.now)
        # The server now shows the other history (split brain, or a compromised server).
        shutil.rmtree(sim.dir)
        shutil.copytree(fork, sim.dir)
        with pytest.raises(ForkError, match="two different histories"), Loader(cfg) as loader:
            loader.install(cfg.packages)
    finally:
        sim.close()
