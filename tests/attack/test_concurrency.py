"""Many processes start cold on one cache directory against one server.

Each process runs ``tests/attack/child.py``: it imports everything, says it is ready, and
all start loading at the same instant. Every archive must be downloaded exactly once (the
sidecar lock plus the re-check under it), no process may fail, every process must register
the same verified connectors, and the cache must hold only verified files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.attack.hostile import (
    CANARY_ENV,
    CANARY_ID,
    CANARY_NAME,
    REPO,
    Arena,
    cache_problems,
    snapshot_files,
)
from tests.support.http_server import RecordedRequest, Reply

pytestmark = pytest.mark.slow  # many cold processes racing; scripts/test.sh runs them

PACKAGES = [CANARY_NAME, "acme-audit-log", "other-sink"]
EXPECTED_IDS = {CANARY_ID, "acme.audit-log.v1", "other.sink.v1"}


def _publish(arena: Arena) -> list[str]:
    arena.publish_canary()
    arena.sim.publish("acme-audit-log", "1.1.0")
    arena.sim.publish(
        "other-sink",
        "2.0.0",
        connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")],
    )
    return [str(p.relative_to(arena.sim.dir)) for p in arena.sim.archives.values()]


def _slow_archives(arena: Arena, archives: list[str]) -> None:
    """Serve each archive after a pause, so that every process reaches it while the first
    download is still running: only the lock (and the re-check under it) prevents more."""
    for rel in archives:
        body = arena.sim.read(rel)

        def late(request: RecordedRequest, body: bytes = body) -> Reply:
            return Reply.ok(body, delay=0.5)

        arena.sim.server.respond_with("/" + rel, late)


def _cold_start(arena: Arena, processes: int, canary: Path) -> list[dict[str, object]]:
    config = arena.sim.config(
        PACKAGES, timeouts={"connect": 20, "read": 30}, retries=0, concurrency=3
    )
    gate = arena.tmp / "gate"
    gate.mkdir()
    env = {**os.environ, CANARY_ENV: str(canary)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.attack.child",
                json.dumps(config),
                str(gate / f"ready-{n}"),
                str(gate / "go"),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(gate.glob("ready-*"))) < processes:
            assert time.monotonic() < deadline, "children did not get ready"
            assert all(c.poll() is None for c in children), "a child died before the start"
            time.sleep(0.02)
        (gate / "go").touch()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, f"child failed ({child.returncode}): {out} {err}"
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()


@pytest.mark.parametrize("processes", [2, 16])
def test_cold_start_on_one_cache(processes: int, tmp_path: Path, canary: Path) -> None:
    with Arena(tmp_path) as arena:
        archives = _publish(arena)
        trusted = arena.index_files()
        _slow_archives(arena, archives)
        results = _cold_start(arena, processes, canary)

        assert all("error" not in r for r in results), results
        first = results[0]["connectors"]
        assert isinstance(first, list)
        assert {row[0] for row in first} == EXPECTED_IDS
        assert all(row[3] == [arena.sim.index_key.keyid] for row in first)  # signed, verified
        assert all(r["connectors"] == first for r in results)

        for rel in archives:
            assert arena.sim.server.request_count("/" + rel) == 1, rel
        # The index state is refreshed under the metadata lock and re-checked there, but a
        # process whose reference time was read just before the winner recorded its refresh
        # sees that record "in the future" and refreshes once more (same bytes: harmless).
        # Group and bin nodes are content-addressed and fetched without a lock.
        assert 1 <= arena.sim.server.request_count("/timestamp.json") <= processes
        # Each process imported the verified canary exactly once.
        assert len(canary.read_text().splitlines()) == processes

        files = snapshot_files(arena.sim.cache)
        assert [p for p in files if p.endswith(".tmp")] == []
        assert cache_problems({}, files, trusted, archives_allowed=True) == []
