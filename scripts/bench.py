#!/usr/bin/env python3
"""Benchmark: our signed connector index vs python-tuf 7.0.1 ngclient, side by side, one run.

Usage::

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python scripts/bench.py                      # full run (several minutes)
    .venv/bin/python scripts/bench.py --quick              # smoke run, smaller sizes (< 1 min)
    .venv/bin/python scripts/bench.py --only cold-1m --json out.json --markdown out.md

The same synthetic archives are published into an index of ours (publisher API) and into a
TUF repository (tuf's Metadata API); one HTTP server on 127.0.0.1 serves both. The clients run
alternately in the same process (ours, tuf, ours, tuf …), one warm-up round and then the
measured rounds; every cold round starts from fresh empty cache directories (made outside the
timed region). Ratios are ours/other computed round by round; the reported ratio is the median
of those per-round ratios. See docs/BENCHMARKS.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench_ours import (
    OursIndex,
    build_metadata_index,
    build_ours_index,
    index_bytes,
    offline_start_code,
    ours_cold,
    ours_install_one_big,
    ours_resolve_only,
    ours_warm_online,
)
from bench_packages import BenchArchive, build_archives
from bench_server import ServedBytes, ServerProcess
from bench_tuf import TufRepo, build_tuf_repository, tuf_cold, tuf_install_one, tuf_warm_online
from modelmesh_connectors import ConnectorRegistry
from modelmesh_connectors.builtins import BUILTINS
from modelmesh_connectors.client.fetch import DownloadConfig

KIB = 1024
MIB = 1024 * 1024
SCENARIOS = (
    "cold-10k",
    "cold-100k",
    "cold-1m",
    "warm-online",
    "offline-start",
    "big",
    "index-scale",
    "builtins",
    "memory",
)
_SUBPROCESS_TIMEOUT = 120.0  # seconds one timed `python -c` may take before the run fails
_FLOOR_CHUNK = 1 * MIB  # bytes per read for the plain httpx floor (as large as is useful)


# -- sizes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Workload sizes for one run (full or --quick)."""

    reps: int  # measured rounds per scenario (after one warm-up round)
    n_10k: int  # packages in the 10 KiB cold scenario
    n_100k: int  # packages in the 100 KiB cold scenario
    n_1m: int  # packages in the 1 MiB cold and warm scenarios
    big: int  # bytes of the one big archive
    offline_packages: int  # cached packages loaded in the new-process offline start
    index_small: int  # packages in the small metadata-only index
    index_large: int  # packages in the large metadata-only index
    process_reps: int  # new-process runs per process scenario
    constructions: int  # in-process ConnectorRegistry() constructions


FULL = Sizes(
    reps=5,
    n_10k=50,
    n_100k=200,
    n_1m=50,
    big=200 * MIB,
    offline_packages=10,
    index_small=1_000,
    index_large=100_000,
    process_reps=15,
    constructions=300,
)
QUICK = Sizes(
    reps=2,
    n_10k=10,
    n_100k=20,
    n_1m=10,
    big=20 * MIB,
    offline_packages=5,
    index_small=1_000,
    index_large=10_000,
    process_reps=3,
    constructions=50,
)


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Summary of timed samples, in seconds."""

    median: float
    min: float
    max: float
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        """Summarise ``samples`` (at least one)."""
        if not samples:
            raise ValueError("no samples")
        return cls(statistics.median(samples), min(samples), max(samples), tuple(samples))


@dataclass(frozen=True)
class Result:
    """One scenario's line in the report.

    Attributes:
        key: Scenario key (``--only`` name).
        title: What was measured.
        target: The target, as text.
        passed: Whether the target was met.
        ours: Our timings.
        other: The comparison's timings (tuf, or the plain-httpx floor), if any.
        other_label: What ``other`` is.
        ratio: The compared quantity (median of per-round ratios, or as described in ``notes``).
        ratio_label: What ``ratio`` is.
        notes: Extra facts printed under the table.
        extra: Extra data for the JSON output.
    """

    key: str
    title: str
    target: str
    passed: bool
    ours: Stats
    other: Stats | None
    other_label: str
    ratio: float | None
    ratio_label: str
    notes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def pair_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of the per-round ratios ``numerators[i] / denominators[i]``."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("ratio needs two equally long, non-empty sample lists")
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


# -- the alternating timer -------------------------------------------------------------------------

Action = Callable[[], object]
Prepare = Callable[[int], Action]  # untimed set-up for a round; returns the timed action


@dataclass(frozen=True)
class Timed:
    """What :func:`alternate` measured.

    Attributes:
        seconds: Label → wall-clock seconds of the measured rounds, in round order.
        traffic: Label → requests and body bytes the server sent during that side's last
            round (read outside the timed region).
    """

    seconds: Mapping[str, list[float]]
    traffic: Mapping[str, ServedBytes]

    def note(self) -> str:
        """One line: requests and bytes per run for every side."""
        parts = [
            f"{label} {t.requests} requests / {t.body_bytes:,} bytes"
            for label, t in self.traffic.items()
        ]
        return "served per run: " + "; ".join(parts)


def alternate(sides: Sequence[tuple[str, Prepare]], *, reps: int, server: ServerProcess) -> Timed:
    """Time every side once per round, in order, for one warm-up round plus ``reps`` rounds.

    Args:
        sides: ``(label, prepare)``; ``prepare(round_no)`` runs untimed (round 0 is the
            warm-up) and returns what to time.
        reps: Measured rounds.
        server: The server whose counter shows each side's traffic.

    Returns:
        The timings and each side's traffic.
    """
    seconds: dict[str, list[float]] = {label: [] for label, _ in sides}
    traffic: dict[str, ServedBytes] = {}
    for round_no in range(1 + reps):
        for label, prepare in sides:
            action = prepare(round_no)
            # Untimed: flush dirty pages so one side's deferred writeback (tuf does not fsync)
            # never lands in the next side's timed region.
            os.sync()
            gc.collect()
            before = server.counter()
            start = time.perf_counter()
            action()
            elapsed = time.perf_counter() - start
            traffic[label] = server.counter() - before
            if round_no > 0:  # round 0 is the warm-up
                seconds[label].append(elapsed)
    return Timed(seconds, traffic)


class FreshDirs:
    """Fresh, empty directories per side; the previous one of a side is deleted first."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._current: dict[str, Path] = {}
        self._made = 0

    def fresh(self, label: str) -> Path:
        """A new empty directory for ``label``."""
        old = self._current.pop(label, None)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._made += 1
        path = self._root / f"{label}-{self._made}"
        path.mkdir(parents=True)
        self._current[label] = path
        return path


def plain_download(urls: Sequence[str]) -> int:
    """The machine floor: stream every URL with one plain httpx client and sha256 it.

    Nothing is written to disk and nothing is verified against metadata: this is the cost of
    moving the bytes over loopback and hashing them, which any verifying client must pay.

    Returns:
        Bytes received.
    """
    received = 0
    with httpx.Client(trust_env=False) as client:
        for url in urls:
            digest = hashlib.sha256()
            with client.stream("GET", url) as response:
                response.raise_for_status()
                for chunk in response.iter_raw(_FLOOR_CHUNK):
                    digest.update(chunk)
                    received += len(chunk)
    return received


def run_process(argv: Sequence[str]) -> tuple[float, str]:
    """Run a process to completion; return its wall time (spawn to exit) and stdout.

    Raises:
        RuntimeError: it failed (its stderr is included).
    """
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:2]} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return elapsed, done.stdout


def time_processes(code: str, *, reps: int) -> tuple[Stats, Stats, list[str]]:
    """Time ``python -c code`` end to end, alternating with a bare ``python -c pass``.

    One warm-up round (it fills the OS file cache), then ``reps`` measured rounds.

    Returns:
        The code's times, the bare interpreter's times, and the code's stdout per round.
    """
    times: list[float] = []
    bare: list[float] = []
    stdouts: list[str] = []
    for round_no in range(1 + reps):
        elapsed, out = run_process([sys.executable, "-c", code])
        bare_elapsed, _ = run_process([sys.executable, "-c", "pass"])
        if round_no > 0:
            times.append(elapsed)
            bare.append(bare_elapsed)
            stdouts.append(out)
    return Stats.of(times), Stats.of(bare), stdouts


# -- the environment: archives, both indexes, the server --------------------------------------------


@dataclass(frozen=True)
class Env:
    """Everything the scenarios share: what was published and where it is served."""

    workdir: Path
    sizes: Sizes
    server: ServerProcess
    sets: Mapping[str, list[BenchArchive]]
    nominal: Mapping[str, int]  # set label → target archive size in bytes
    ours: OursIndex
    tuf: TufRepo
    index_small: OursIndex | None
    index_large: OursIndex | None

    def archive_urls(self, archives: Sequence[BenchArchive]) -> list[str]:
        """URLs of ``archives`` in our index (for the plain-httpx floor)."""
        return [f"{self.ours.url}archives/{a.name}/{a.path.name}" for a in archives]


def _sets_needed(selected: Sequence[str], sizes: Sizes) -> dict[str, tuple[int, int]]:
    """Archive sets (label → (count, size)) the selected scenarios need."""
    wanted: dict[str, tuple[int, int]] = {}
    if "cold-10k" in selected or "offline-start" in selected or "memory" in selected:
        wanted["s10k"] = (max(sizes.n_10k, sizes.offline_packages), 10 * KIB)
    if "cold-100k" in selected:
        wanted["s100k"] = (sizes.n_100k, 100 * KIB)
    if "cold-1m" in selected or "warm-online" in selected:
        wanted["m1"] = (sizes.n_1m, 1 * MIB)
    if "big" in selected or "memory" in selected:
        wanted["big"] = (1, sizes.big)
    return wanted


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def environment(workdir: Path, sizes: Sizes, selected: Sequence[str]) -> Iterator[Env]:
    """Build archives and indexes, start the server, and stop it on the way out."""
    sets: dict[str, list[BenchArchive]] = {}
    wanted = _sets_needed(selected, sizes)
    for seed, (label, (count, size)) in enumerate(wanted.items(), 1):
        start = time.perf_counter()
        sets[label] = build_archives(
            workdir / "archives" / label, label=label, count=count, size=size, seed=seed
        )
        _log(
            f"built {count} archive(s) of {size} bytes ({label}) in "
            f"{time.perf_counter() - start:.1f} s"
        )
    every = [a for archives in sets.values() for a in archives]
    start = time.perf_counter()
    ours = build_ours_index(workdir / "ours", every)
    _log(f"published {len(every)} archive(s) into our index in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    tuf = build_tuf_repository(workdir / "tuf", every)
    _log(f"built the TUF repository in {time.perf_counter() - start:.1f} s")
    mounts = {"/ours/": ours.directory, "/tuf/": tuf.directory}
    index_small = index_large = None
    if "index-scale" in selected:
        start = time.perf_counter()
        index_small = build_metadata_index(workdir / "idx-small", _index_names(sizes.index_small))
        index_large = build_metadata_index(workdir / "idx-large", _index_names(sizes.index_large))
        mounts |= {"/idx-small/": index_small.directory, "/idx-large/": index_large.directory}
        _log(
            f"wrote metadata-only indexes of {sizes.index_small} and {sizes.index_large} "
            f"packages in {time.perf_counter() - start:.1f} s"
        )
    server = ServerProcess(mounts).start()
    try:
        base = server.base_url
        yield Env(
            workdir=workdir,
            sizes=sizes,
            server=server,
            sets=sets,
            nominal={label: size for label, (_, size) in wanted.items()},
            ours=ours.with_base(base, "/ours/"),
            tuf=tuf.with_base(base, "/tuf/"),
            index_small=None if index_small is None else index_small.with_base(base, "/idx-small/"),
            index_large=None if index_large is None else index_large.with_base(base, "/idx-large/"),
        )
    finally:
        server.stop()


def _index_names(count: int) -> list[str]:
    return [f"bench-idx-{i:06d}" for i in range(count)]


# -- scenarios -------------------------------------------------------------------------------------


def scenario_cold(env: Env, key: str, label: str, count: int, fraction: float) -> Result:
    """Cold resolve + download + verify of ``count`` archives of set ``label``, ours vs tuf."""
    archives = env.sets[label][:count]
    dirs = FreshDirs(env.workdir / "caches" / key)
    timed = alternate(
        [
            ("ours", lambda _: partial(ours_cold, env.ours, dirs.fresh("ours"), archives)),
            ("tuf", lambda _: partial(tuf_cold, env.tuf, dirs.fresh("tuf"), archives)),
        ],
        reps=env.sizes.reps,
        server=env.server,
    )
    ratio = pair_ratio(timed.seconds["ours"], timed.seconds["tuf"])
    return Result(
        key=key,
        title=f"cold: resolve + download + verify {count} × {_size(env.nominal[label])}",
        target=f"≤ {_fraction(fraction)} of tuf",
        passed=ratio <= fraction,
        ours=Stats.of(timed.seconds["ours"]),
        other=Stats.of(timed.seconds["tuf"]),
        other_label="tuf",
        ratio=ratio,
        ratio_label="ours/tuf",
        notes=(timed.note(),),
    )


def scenario_cold_floor(env: Env, count: int, limit: float) -> Result:
    """Cold 1 MiB archives: ours vs the plain-httpx floor (tuf timed too, for reference)."""
    archives = env.sets["m1"][:count]
    urls = env.archive_urls(archives)
    dirs = FreshDirs(env.workdir / "caches" / "cold-1m")
    timed = alternate(
        [
            ("ours", lambda _: partial(ours_cold, env.ours, dirs.fresh("ours"), archives)),
            ("tuf", lambda _: partial(tuf_cold, env.tuf, dirs.fresh("tuf"), archives)),
            ("floor", lambda _: partial(plain_download, urls)),
        ],
        reps=env.sizes.reps,
        server=env.server,
    )
    ratio = pair_ratio(timed.seconds["ours"], timed.seconds["floor"])
    tuf = Stats.of(timed.seconds["tuf"])
    return Result(
        key="cold-1m",
        title=f"cold: resolve + download + verify {count} × {_size(env.nominal['m1'])}",
        target=f"≤ {limit} × floor",
        passed=ratio <= limit,
        ours=Stats.of(timed.seconds["ours"]),
        other=Stats.of(timed.seconds["floor"]),
        other_label="floor",
        ratio=ratio,
        ratio_label="ours/floor",
        notes=(
            f"floor = one plain httpx client streaming the same {count} archives from the same "
            "server + sha256, no disk",
            f"tuf: {_stats_text(tuf)}; ours/tuf = "
            f"{pair_ratio(timed.seconds['ours'], timed.seconds['tuf']):.2f}",
            timed.note(),
        ),
        extra={"tuf": asdict(tuf)},
    )


def scenario_warm(env: Env, count: int, fraction: float) -> Result:
    """Warm online freshness check with ``count`` 1 MiB archives already cached."""
    archives = env.sets["m1"][:count]
    ours_cache = env.workdir / "caches" / "warm" / "ours"
    tuf_cache = env.workdir / "caches" / "warm" / "tuf"
    ours_cold(env.ours, ours_cache, archives)  # untimed: fill both caches once
    tuf_cold(env.tuf, tuf_cache, archives)
    timed = alternate(
        [
            ("ours", lambda _: partial(ours_warm_online, env.ours, ours_cache, archives)),
            ("tuf", lambda _: partial(tuf_warm_online, env.tuf, tuf_cache, archives)),
        ],
        reps=env.sizes.reps,
        server=env.server,
    )
    ratio = pair_ratio(timed.seconds["ours"], timed.seconds["tuf"])
    return Result(
        key="warm-online",
        title=f"warm, online freshness check, {count} × {_size(env.nominal['m1'])} cached",
        target=f"≤ {_fraction(fraction)} of tuf",
        passed=ratio <= fraction,
        ours=Stats.of(timed.seconds["ours"]),
        other=Stats.of(timed.seconds["tuf"]),
        other_label="tuf",
        ratio=ratio,
        ratio_label="ours/tuf",
        notes=(
            "ours: Loader.install with metadata_max_age 0 (asks for timestamp.json every run); "
            "tuf: new Updater, refresh(), get_targetinfo + find_cached_target each",
            timed.note(),
        ),
    )


def scenario_offline_start(env: Env, count: int, limit: float) -> Result:
    """New process: offline registry with ``count`` cached packages; whole-process wall time."""
    archives = env.sets["s10k"][:count]
    cache = env.workdir / "caches" / "offline"
    ours_cold(env.ours, cache, archives)  # untimed: fill the cache online once
    code = offline_start_code(env.ours, cache, [a.name for a in archives])
    ours, bare, stdouts = time_processes(code, reps=env.sizes.process_reps)
    outputs = [json.loads(out) for out in stdouts]
    httpx_imported = any(o["httpx"] for o in outputs)
    connectors = {o["connectors"] for o in outputs}
    expected = len(BUILTINS) + count
    return Result(
        key="offline-start",
        title=f"warm, offline start: new process, registry + {count} cached packages loaded",
        target=f"≤ {limit * 1000:.0f} ms, httpx not imported",
        passed=ours.median <= limit and not httpx_imported and connectors == {expected},
        ours=ours,
        other=bare,
        other_label="python -c pass",
        ratio=None,
        ratio_label="",
        notes=(
            f"'httpx' in sys.modules: {httpx_imported}; connectors registered: "
            f"{sorted(connectors)} (expected {expected})",
            "other column: a bare `python -c pass` with the same interpreter, for scale",
        ),
        extra={"httpx_imported": httpx_imported, "connectors": sorted(connectors)},
    )


def scenario_big(env: Env, limit: float) -> Result:
    """One big archive: download + verify throughput, ours vs the plain-httpx floor."""
    archive = env.sets["big"][0]
    urls = env.archive_urls([archive])
    dirs = FreshDirs(env.workdir / "caches" / "big")
    timed = alternate(
        [
            (
                "ours",
                lambda _: partial(ours_install_one_big, env.ours, dirs.fresh("ours"), archive),
            ),
            ("floor", lambda _: partial(plain_download, urls)),
            ("tuf", lambda _: partial(tuf_install_one, env.tuf, dirs.fresh("tuf"), archive)),
        ],
        reps=env.sizes.reps,
        server=env.server,
    )
    # Throughput ratio ours/floor per round = floor time / ours time.
    ratio = pair_ratio(timed.seconds["floor"], timed.seconds["ours"])
    mib = archive.length / MIB
    ours, floor, tuf = (Stats.of(timed.seconds[s]) for s in ("ours", "floor", "tuf"))
    return Result(
        key="big",
        title=f"one {_size(env.nominal['big'])} archive: download + verify throughput",
        target=f"≥ {limit} × floor throughput",
        passed=ratio >= limit,
        ours=ours,
        other=floor,
        other_label="floor",
        ratio=ratio,
        ratio_label="throughput ours/floor",
        notes=(
            f"median throughput: ours {mib / ours.median:.0f} MiB/s, floor "
            f"{mib / floor.median:.0f} MiB/s, tuf {mib / tuf.median:.0f} MiB/s "
            f"(tuf time {_stats_text(tuf)})",
            "ours includes the index refresh and the resolve (4 small files) and the cache write",
            timed.note(),
        ),
        extra={"tuf": asdict(tuf), "archive_bytes": archive.length},
    )


def scenario_index_scale(env: Env, limit_bytes: float, limit_time: float) -> Result:
    """Resolving one package in a small and a large metadata-only index: bytes and time."""
    small, large = env.index_small, env.index_large
    if small is None or large is None:
        raise RuntimeError("index-scale needs the metadata-only indexes")
    names = _index_names(env.sizes.index_small)
    picks = [names[(i * 7919) % len(names)] for i in range(1 + env.sizes.reps)]  # in both
    dirs = FreshDirs(env.workdir / "caches" / "index")

    def prepare(label: str, index: OursIndex, round_no: int) -> Action:
        return partial(ours_resolve_only, index, dirs.fresh(label), picks[round_no])

    timed = alternate(
        [("small", partial(prepare, "small", small)), ("large", partial(prepare, "large", large))],
        reps=env.sizes.reps,
        server=env.server,
    )
    fetched: dict[str, ServedBytes] = {}
    for label, index in (("small", small), ("large", large)):
        before = env.server.counter()
        ours_resolve_only(index, dirs.fresh(label), picks[0])
        fetched[label] = env.server.counter() - before
    total_large = index_bytes(large.directory)
    total_small = index_bytes(small.directory)
    share = fetched["large"].body_bytes / total_large
    time_ratio = pair_ratio(timed.seconds["large"], timed.seconds["small"])
    return Result(
        key="index-scale",
        title=f"resolve one package: index of {env.sizes.index_large:,} vs "
        f"{env.sizes.index_small:,} packages",
        target=f"bytes ≤ {limit_bytes:.0%} of index; time({env.sizes.index_large // 1000}k) "
        f"≤ {limit_time} × time({env.sizes.index_small // 1000}k)",
        passed=share <= limit_bytes and time_ratio <= limit_time,
        ours=Stats.of(timed.seconds["large"]),
        other=Stats.of(timed.seconds["small"]),
        other_label=f"{env.sizes.index_small // 1000}k index",
        ratio=time_ratio,
        ratio_label="time large/small",
        notes=(
            f"fetched for one resolve: {fetched['large'].body_bytes:,} bytes in "
            f"{fetched['large'].requests} requests of a {total_large:,}-byte index "
            f"({share:.3%}); small index: {fetched['small'].body_bytes:,} bytes in "
            f"{fetched['small'].requests} requests of {total_small:,}",
            "cold resolve (fresh cache): root walk + timestamp + top + group + bin, release "
            "verified, no archive",
        ),
        extra={
            "bytes_fetched_large": fetched["large"].body_bytes,
            "bytes_fetched_small": fetched["small"].body_bytes,
            "index_bytes_large": total_large,
            "index_bytes_small": total_small,
        },
    )


def scenario_builtins(env: Env, limit: float) -> Result:
    """``ConnectorRegistry()`` with the built-ins: in-process median, and a new process."""
    in_process: list[float] = []
    for _ in range(env.sizes.constructions):
        start = time.perf_counter()
        ConnectorRegistry()
        in_process.append(time.perf_counter() - start)
    code = "from modelmesh_connectors import ConnectorRegistry; ConnectorRegistry()"
    process, bare, _ = time_processes(code, reps=env.sizes.process_reps)
    ours = Stats.of(in_process)
    return Result(
        key="builtins",
        title=f"ConnectorRegistry() with the {len(BUILTINS)} built-ins (in-process, after import)",
        target=f"≤ {limit * 1000:.0f} ms",
        passed=ours.median <= limit,
        ours=ours,
        other=process,
        other_label="new process",
        ratio=None,
        ratio_label="",
        notes=(
            f"new process (import + construct, whole process): {_stats_text(process)}; "
            f"bare `python -c pass`: {_stats_text(bare)}; difference of medians "
            f"{(process.median - bare.median) * 1000:.1f} ms",
        ),
        extra={"new_process": asdict(process), "bare_python": asdict(bare)},
    )


def _traced_peak(action: Action) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def scenario_memory(env: Env, chunks: int) -> Result:
    """Peak Python heap while installing the big archive, against a 10 KiB one."""
    big = env.sets["big"][0]
    small = env.sets["s10k"][0]
    chunk = DownloadConfig().chunk_size
    dirs = FreshDirs(env.workdir / "caches" / "memory")
    # Warm-up (imports, first client) outside the traced runs.
    ours_cold(env.ours, dirs.fresh("warmup"), [small])
    ours_small = _traced_peak(partial(ours_cold, env.ours, dirs.fresh("ours"), [small]))
    ours_big = _traced_peak(partial(ours_install_one_big, env.ours, dirs.fresh("ours"), big))
    tuf_small = _traced_peak(partial(tuf_cold, env.tuf, dirs.fresh("tuf"), [small]))
    tuf_big = _traced_peak(partial(tuf_install_one, env.tuf, dirs.fresh("tuf"), big))
    growth = ours_big - ours_small
    return Result(
        key="memory",
        title=f"peak memory, one {_size(env.nominal['big'])} archive (tracemalloc)",
        target=f"growth over a 10 KiB install ≤ {chunks} × chunk ({_size(chunks * chunk)})",
        passed=growth <= chunks * chunk,
        ours=Stats.of([float(ours_big)]),
        other=Stats.of([float(tuf_big)]),
        other_label="tuf",
        ratio=None,
        ratio_label="",
        notes=(
            f"peak Python heap: ours {_size(ours_big)} (10 KiB archive: {_size(ours_small)}; "
            f"growth {_size(growth)}); tuf {_size(tuf_big)} (10 KiB: {_size(tuf_small)}); "
            f"download chunk {_size(chunk)}",
        ),
        extra={
            "ours_peak_big": ours_big,
            "ours_peak_small": ours_small,
            "tuf_peak_big": tuf_big,
            "tuf_peak_small": tuf_small,
            "chunk": chunk,
        },
    )


def run_scenarios(env: Env, selected: Sequence[str]) -> list[Result]:
    """Run the selected scenarios in the fixed order of :data:`SCENARIOS`."""
    sizes = env.sizes
    table: dict[str, Callable[[], Result]] = {
        "cold-10k": partial(scenario_cold, env, "cold-10k", "s10k", sizes.n_10k, 1 / 4),
        "cold-100k": partial(scenario_cold, env, "cold-100k", "s100k", sizes.n_100k, 1 / 4),
        "cold-1m": partial(scenario_cold_floor, env, sizes.n_1m, 1.5),
        "warm-online": partial(scenario_warm, env, sizes.n_1m, 1 / 3),
        "offline-start": partial(scenario_offline_start, env, sizes.offline_packages, 0.080),
        "big": partial(scenario_big, env, 0.8),
        "index-scale": partial(scenario_index_scale, env, 0.01, 1.5),
        "builtins": partial(scenario_builtins, env, 0.020),
        "memory": partial(scenario_memory, env, 8),
    }
    results: list[Result] = []
    for key in SCENARIOS:
        if key not in selected:
            continue
        _log(f"running {key}")
        start = time.perf_counter()
        result = table[key]()
        _log(f"{key}: {'PASS' if result.passed else 'FAIL'} ({time.perf_counter() - start:.1f} s)")
        results.append(result)
    return results


# -- reporting -------------------------------------------------------------------------------------


def _size(n: int) -> str:
    for unit, factor in (("MiB", MIB), ("KiB", KIB)):
        if n >= factor:
            value = n / factor
            return (
                f"{value:.0f} {unit}" if abs(value - round(value)) < 0.05 else f"{value:.1f} {unit}"
            )
    return f"{n} B"


def _fraction(value: float) -> str:
    inverse = 1 / value
    return f"1/{inverse:.0f}" if abs(inverse - round(inverse)) < 1e-9 else f"{value:g}"


def _ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _stats_text(stats: Stats) -> str:
    return f"{_ms(stats.median)} [{_ms(stats.min)} – {_ms(stats.max)}]"


def _cell(result: Result, stats: Stats | None) -> str:
    if stats is None:
        return "—"
    if result.key == "memory":
        return _size(int(stats.median))
    return _stats_text(stats)


def machine() -> dict[str, str]:
    """The machine and the versions that matter for the numbers."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    for dist in (
        "modelmesh-connectors",
        "tuf",
        "securesystemslib",
        "urllib3",
        "httpx",
        "cryptography",
    ):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = "not installed"
    return info


def render_markdown(results: Sequence[Result], info: Mapping[str, str], mode: str) -> str:
    """The results table as Markdown (for docs/BENCHMARKS.md)."""
    lines = [
        f"Mode: {mode}. Machine: {info['cpu']}, {info['cores']} cores, {info['os']}, "
        f"{info['python']}; tuf {info['tuf']}, securesystemslib {info['securesystemslib']}, "
        f"urllib3 {info['urllib3']}, httpx {info['httpx']}, cryptography {info['cryptography']}.",
        "",
        "Times: median [min – max] over the measured rounds.",
        "",
        "| scenario | target | ours | compared with | ratio | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.ratio:.2f} ({r.ratio_label})" if r.ratio is not None else "—"
        other = f"{r.other_label}: {_cell(r, r.other)}" if r.other is not None else "—"
        lines.append(
            f"| {r.title} | {r.target} | {_cell(r, r.ours)} | {other} | {ratio} | "
            f"{'PASS' if r.passed else 'FAIL'} |"
        )
    lines.append("")
    for r in results:
        lines.extend(f"- {r.key}: {note}" for note in r.notes)
    return "\n".join(lines) + "\n"


def render_text(results: Sequence[Result], info: Mapping[str, str], mode: str) -> str:
    """The results for the terminal."""
    lines = [f"mode: {mode}"]
    lines += [f"{k:>20}: {v}" for k, v in info.items()]
    lines.append("")
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(f"[{verdict}] {r.key}: {r.title}")
        lines.append(f"       target: {r.target}")
        lines.append(f"       ours:   {_cell(r, r.ours)}")
        if r.other is not None:
            lines.append(f"       {r.other_label + ':':<7} {_cell(r, r.other)}")
        if r.ratio is not None:
            lines.append(f"       ratio:  {r.ratio:.3f} ({r.ratio_label})")
        lines.extend(f"       note:   {note}" for note in r.notes)
        lines.append("")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} targets met")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and rounds (< 1 min)")
    parser.add_argument(
        "--only",
        metavar="SCENARIO",
        help=f"comma-separated scenarios to run; one or more of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--reps", type=int, help="measured rounds per scenario (default 5; 2 quick)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results as JSON")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write the results table")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    selected = SCENARIOS if args.only is None else tuple(s.strip() for s in args.only.split(","))
    unknown = sorted(set(selected) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.reps is not None and not 1 <= args.reps <= 100:
        parser.error("--reps must be between 1 and 100")
    args.selected = selected
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.reps is not None:
        sizes = Sizes(**{**asdict(sizes), "reps": args.reps})
    mode = ("quick" if args.quick else "full") + f", {sizes.reps} measured rounds + 1 warm-up"
    info = machine()
    for key, value in info.items():
        _log(f"{key}: {value}")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="mmc-bench-"))
    try:
        with environment(workdir, sizes, args.selected) as env:
            results = run_scenarios(env, args.selected)
    finally:
        if args.keep:
            _log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render_text(results, info, mode))
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(results, info, mode))
    if args.json is not None:
        payload = {"mode": mode, "machine": info, "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
