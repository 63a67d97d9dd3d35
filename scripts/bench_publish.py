#!/usr/bin/env python3
"""Benchmark the publisher: bulk publish, one publish into a big index, a 100k index.

Usage::

    .venv/bin/python scripts/bench_publish.py                 # full run (a few minutes)
    .venv/bin/python scripts/bench_publish.py --quick         # smaller sizes, < 1 minute
    .venv/bin/python scripts/bench_publish.py --json out.json

Scenarios and targets (issue 15, docs/BENCHMARKS.md "Publishing"):

* ``bulk-1000``: ``publish_many`` of 1,000 real package zips (inspected, signed, verified,
  written durably) into an empty directory index — target ≤ 10 s.
* ``one-into-10k``: one ``publish`` of a real zip into an index of 10,000 packages — target
  ≤ 50 ms (median of 10) and ≤ 10 storage reads (read and list calls on the storage seam).
* ``index-100k``: an index of 100,000 packages built by the publisher (10 bulk publishes of
  10,000), then the bytes a client fetches to resolve one package (timestamp, top, group, bin)
  against the whole metadata tree — target ≤ 1 %.

The 10k and 100k indexes are filled with synthetic archives through the publisher's
``inspect`` seam (no zip is parsed; everything else — signing, the checks through the client's
trust core, the create-only uploads, the compare-and-swap — runs as in production), and with
``durable=False`` (no fsync) for the bulk fill only; the measured single publishes are durable.
Everything runs on the local file system; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelmesh_connectors.index.envelope import parse_envelope  # noqa: E402
from modelmesh_connectors.index.keys import SigningKey  # noqa: E402
from modelmesh_connectors.index.metadata import (  # noqa: E402
    bin_prefix,
    group_prefix,
    parse_group,
    parse_index_top,
    parse_timestamp,
)
from modelmesh_connectors.package.pack import pack_to_bytes  # noqa: E402
from modelmesh_connectors.publish import repository  # noqa: E402
from modelmesh_connectors.publish.local_storage import LocalStorage  # noqa: E402
from tests.support.packages import make_package  # noqa: E402

DAY = timedelta(days=1)


@dataclass(frozen=True)
class _Manifest:
    name: str
    version: str
    requires_modelmesh: str | None
    connectors: tuple[Any, ...]


@dataclass(frozen=True)
class _Connector:
    id: str
    type: str


@dataclass(frozen=True)
class _Info:
    manifest: _Manifest
    sha256: str
    length: int


def _synthetic_inspector(path: Path) -> _Info:
    """The archive's name says what it is: ``<name>.zip`` holding a few random bytes."""
    data = path.read_bytes()
    name = data.split(b"\n", 1)[0].decode()
    connector = _Connector(f"{name.replace('-', '')}.sink.v1", "observability")
    return _Info(_Manifest(name, "1.0.0", None, (connector,)), hashlib.sha256(data).hexdigest(), len(data))


class _Keys:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        root, self.index, self.timestamp = (SigningKey.generate() for _ in range(3))
        staged = repository.root_init(
            root_keys=[root.public], root_threshold=1, index_keys=[self.index.public], index_threshold=1,
            timestamp_keys=[self.timestamp.public], timestamp_threshold=1, expires=self.now + 365 * DAY,
        )
        self.root_bytes = staged.with_signature(root).to_bytes()


def _init(directory: Path, keys: _Keys, *, durable: bool = True) -> LocalStorage:
    directory.mkdir(parents=True)
    storage = LocalStorage(directory, durable=durable)
    repository.init_repository(storage, keys.root_bytes, keys.index, keys.timestamp)
    return storage


def _real_archives(directory: Path, count: int, prefix: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        name = f"{prefix}-{i}"
        src = make_package(directory / "src", name, "1.0.0", connectors=[(f"{prefix}{i}.sink.v1", "observability", f"{name.replace('-', '_')}.sink:Sink")])
        data, filename = pack_to_bytes(src)
        (directory / filename).write_bytes(data)
        out.append(directory / filename)
    return out


def _synthetic_archives(directory: Path, start: int, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + count):
        path = directory / f"syn-{i}.zip"
        path.write_bytes(f"syn-{i}\n".encode() + os.urandom(16))
        out.append(path)
    return out


def _fill(storage: LocalStorage, keys: _Keys, work: Path, total: int, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, total, batch):
        archives = _synthetic_archives(work / f"syn-{start}", start, min(batch, total - start))
        repository.publish_many(storage, archives, index_keys=keys.index, timestamp_keys=keys.timestamp, inspect=_synthetic_inspector)
        print(f"  filled {start + len(archives)} / {total}", file=sys.stderr)
    return time.perf_counter() - started


def bench_bulk(work: Path, count: int) -> dict[str, Any]:
    keys = _Keys()
    archives = _real_archives(work / "dist", count, "bulk")
    storage = _init(work / "bulk-index", keys)
    started = time.perf_counter()
    repository.publish_many(storage, archives, index_keys=keys.index, timestamp_keys=keys.timestamp)
    seconds = time.perf_counter() - started
    return {"scenario": f"bulk-{count}", "seconds": round(seconds, 3), "target": "<= 10 s", "ok": seconds <= 10.0}


def bench_one_into(work: Path, size: int, rounds: int) -> dict[str, Any]:
    keys = _Keys()
    fill = _init(work / f"index-{size}", keys, durable=False)
    fill_seconds = _fill(fill, keys, work / "syn", size, 10_000)
    archives = _real_archives(work / "one", rounds + 1, "one")
    times, reads = [], []
    for i, archive in enumerate(archives):
        storage = LocalStorage(work / f"index-{size}")  # durable, as in production
        storage.ensure_conditions()  # once per process: not part of a publish
        before = storage.reads
        started = time.perf_counter()
        repository.publish(storage, archive, index_keys=keys.index, timestamp_keys=keys.timestamp)
        elapsed = time.perf_counter() - started
        if i:  # the first one warms the imports and the OS cache
            times.append(elapsed * 1000)
            reads.append(storage.reads - before)
    median = statistics.median(times)
    return {
        "scenario": f"one-into-{size // 1000}k",
        "fill_seconds": round(fill_seconds, 1),
        "median_ms": round(median, 1),
        "max_ms": round(max(times), 1),
        "storage_reads": max(reads),
        "target": "<= 50 ms, <= 10 reads",
        "ok": median <= 50 and max(reads) <= 10,
    }


def bench_big_index(work: Path, size: int) -> dict[str, Any]:
    keys = _Keys()
    directory = work / f"index-big-{size}"
    storage = _init(directory, keys, durable=False)
    build_seconds = _fill(storage, keys, work / "syn-big", size, 10_000)
    ts_bytes = (directory / "timestamp.json").read_bytes()
    ts = parse_timestamp(parse_envelope(ts_bytes).payload)
    top_bytes = (directory / ts.index.path).read_bytes()
    top = parse_index_top(parse_envelope(top_bytes).payload)
    name = f"syn-{size // 2}"
    group_bytes = (directory / top.groups[group_prefix(name, top.group_chars)].path).read_bytes()
    group = parse_group(group_bytes)
    bin_bytes = (directory / group.bins[bin_prefix(name, top.bin_chars)].path).read_bytes()
    fetched = len(ts_bytes) + len(top_bytes) + len(group_bytes) + len(bin_bytes)
    tree = len(ts_bytes) + len(top_bytes)
    for ref in top.groups.values():
        data = (directory / ref.path).read_bytes()
        tree += len(data) + sum(r.length for r in parse_group(data).bins.values())
    ratio = fetched / tree
    return {
        "scenario": f"index-{size // 1000}k",
        "packages": top.packages,
        "fan_out": list(top.level),
        "build_seconds": round(build_seconds, 1),
        "resolve_bytes": fetched,
        "metadata_bytes": tree,
        "resolve_percent": round(100 * ratio, 4),
        "target": "<= 1 % of the metadata",
        "ok": ratio <= 0.01,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 / 2,000 / 20,000 instead of 1,000 / 10,000 / 100,000")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    sizes = (100, 2_000, 20_000) if args.quick else (1_000, 10_000, 100_000)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        work = Path(tmp)
        print("bulk publish …", file=sys.stderr)
        results.append(bench_bulk(work / "a", sizes[0]))
        print("one publish into a big index …", file=sys.stderr)
        results.append(bench_one_into(work / "b", sizes[1], 10))
        print("a 100k index …", file=sys.stderr)
        results.append(bench_big_index(work / "c", sizes[2]))
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg(), "platform": platform.platform()}
    for r in results:
        print(json.dumps(r))
    print(json.dumps({"machine": machine}))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "machine": machine}, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
