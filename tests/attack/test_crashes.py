"""A loader killed with SIGKILL at the worst moments; the next run must just work.

The loader runs in a subprocess (``tests/attack/child.py``) and is killed

* in the middle of downloading the archive (the server stalls halfway through the body),
  while it holds the archive's lock and its temp file is open;
* in the middle of writing the cache: the archive is complete in its temp file, just
  before the rename that would make it visible;
* in the middle of writing the stored index state (just before ``timestamp.json`` is
  replaced), while it holds the metadata lock.

Afterwards the kernel has released the locks, the leftovers are only temp files under
names no reader uses, and the next run succeeds, removes them, and leaves only verified
files behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ENV,
    CANARY_ID,
    CANARY_NAME,
    REPO,
    Arena,
    cache_problems,
    snapshot_files,
)
from tests.support.http_server import Reply

pytestmark = [
    pytest.mark.slow,  # child processes killed mid-write; scripts/test.sh runs them
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]


def _wait_for(condition: Callable[[], bool], child: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if child.poll() is not None:
            out, err = child.communicate()
            pytest.fail(f"the loader exited ({child.returncode}) before {what}: {out} {err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@contextmanager
def _loader(arena: Arena, canary: Path, **env: str) -> Iterator[subprocess.Popen[str]]:
    config = arena.sim.config([CANARY_NAME], timeouts={"connect": 10, "read": 60})
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.attack.child", json.dumps(config)],
        cwd=REPO,
        env={**os.environ, CANARY_ENV: str(canary), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def _kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def _held(path: Path) -> bool:
    """Whether some process holds the lock file (fcntl locks die with their process)."""
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def _temp_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.tmp"))


def _next_run_is_clean(arena: Arena, canary: Path, trusted: dict[str, bytes]) -> None:
    arena.sim.server.clear_content()
    registry = build_registry(arena.sim.config([CANARY_NAME]))
    assert registry.origin(CANARY_ID).kind == "package"
    assert canary.exists()  # the verified canary ran (only now)
    cache = arena.sim.cache
    assert _temp_files(cache) == []
    for lock in cache.rglob("*.lock"):
        assert not _held(lock), f"{lock} is still held"
    assert cache_problems({}, snapshot_files(cache), trusted, archives_allowed=True) == []
    assert arena.archive_entry().is_file()


def test_killed_mid_download(tmp_path: Path, canary: Path) -> None:
    with Arena(tmp_path) as arena:
        release = arena.publish_canary()
        trusted = arena.index_files()
        body = arena.sim.read(release.file)
        arena.sim.server.respond_with(
            "/" + release.file, lambda r: Reply.ok(body, stall_at=len(body) // 2, stall=60)
        )
        entry = arena.archive_entry()
        lock = entry.with_name(entry.name + ".lock")
        with _loader(arena, canary) as child:
            _wait_for(
                lambda: (
                    arena.sim.server.request_count("/" + release.file) == 1
                    and any(entry.parent.glob("*.tmp"))
                ),
                child,
                "the download started",
            )
            time.sleep(0.2)  # let the first half of the body arrive
            assert _held(lock)  # the dying process holds the archive's lock
            _kill(child)
        assert not _held(lock)
        assert [p.name.endswith(".tmp") for p in entry.parent.iterdir() if p != lock] == [True]
        assert not entry.exists()
        assert not canary.exists()
        _next_run_is_clean(arena, canary, trusted)
        assert arena.sim.server.request_count("/" + release.file) == 2


@pytest.mark.parametrize("where", ["archive-rename", "metadata-rename"])
def test_killed_while_writing_the_cache(where: str, tmp_path: Path, canary: Path) -> None:
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        trusted = arena.index_files()
        sentinel = tmp_path / "stopped-before-rename"
        env = {"MMC_CRASH_AT": where, "MMC_CRASH_SIGNAL": str(sentinel)}
        with _loader(arena, canary, **env) as child:
            _wait_for(sentinel.exists, child, f"the loader reached {where}")
            pending = Path(sentinel.read_text())
            assert pending.name.endswith(".tmp")
            assert pending.is_file()
            locks = list(arena.sim.cache.rglob("*.lock"))
            assert any(_held(lock) for lock in locks)
            _kill(child)
        cache = arena.sim.cache
        assert pending in _temp_files(cache)  # the crash left its temp file behind
        assert not any(_held(lock) for lock in cache.rglob("*.lock"))
        assert not canary.exists()
        if where == "archive-rename":
            assert not arena.archive_entry().exists()
        else:
            assert not list(cache.glob("metadata/*/timestamp.json"))
        _next_run_is_clean(arena, canary, trusted)
