#!/usr/bin/env python3
"""Benchmark: our signed connector index vs python-tuf 7.0.1 ngclient, side by side, one run.

Usage::

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python scripts/bench.py                      # full run (several minutes)
    .venv/bin/python scripts/bench.py --quick              # smoke run, smaller sizes
    .venv/bin/python scripts/bench.py --only cold-1m,rtt --json out.json --markdown out.md

Every scenario has its own archives, published into a standalone index of ours (publisher API)
and a standalone TUF repository (tuf's Metadata API), so no scenario's index is shaped by
another's packages. One HTTP server process on 127.0.0.1 serves them all; a second one, which
delays every response by 20 ms, serves the round-trip scenario to both clients. In-process
scenarios alternate the sides ABBA (forward order in even rounds, reversed in odd ones), one
warm-up round then the measured rounds; every cold round starts from fresh empty cache
directories made outside the timed region; every floor's HTTP client is built outside the
timed region too. Ratios are computed round by round; the reported ratio is the median of
those per-round ratios. New-process scenarios run their children alternately (ABAB …) many
times and compare medians of per-round differences. Each target prints PASS or FAIL, and the
exit status is 0 only if every selected target passes. See docs/BENCHMARKS.md.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench_ours import (
    PUBLISH_METHOD,
    OursIndex,
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
from modelmesh_connectors.builtins import BUILTINS

KIB = 1024
MIB = 1024 * 1024
SCENARIOS = (
    "cold-10k",
    "cold-100k",
    "cold-1m",
    "warm-10k",
    "warm-100k",
    "warm-1m",
    "rtt",
    "offline-start",
    "builtins",
    "big",
    "memory",
    "index-scale",
)
_SUBPROCESS_TIMEOUT = 300.0  # seconds one child process may take before the run fails
_FLOOR_CHUNK = 1 * MIB  # bytes per read for the plain httpx floor (as large as is useful)
_SCRIPTS = Path(__file__).resolve().parent

# The targets of issue 14, in one place.
WARM_MAX_RATIO = 0.5  # warm online: ours/tuf
COLD_MAX_RATIO = 0.9  # cold on loopback: ours/tuf
COLD_MAX_FLOOR = 1.3  # cold 50 × 1 MiB: ours/floor
RTT_MAX_RATIO = 0.5  # cold at 20 ms per request: ours/tuf
RTT_DELAY = 0.020  # seconds the round-trip server waits before every response
OFFLINE_MAX_OVER = 0.040  # seconds over `python -c "import modelmesh"`
BUILTINS_MAX_OVER = 0.030  # seconds over a bare `python -c pass`
BIG_MIN_THROUGHPUT = 0.85  # 200 MiB: ours/floor throughput
RSS_MAX_GROWTH = 16 * MIB  # bytes of whole-process peak RSS over a 10 KiB install


# -- sizes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Workload sizes for one run (full or --quick)."""

    reps: int  # measured rounds per in-process scenario (after one warm-up round)
    n_10k: int  # packages in the 10 KiB scenarios
    n_100k: int  # packages in the 100 KiB scenarios
    n_1m: int  # packages in the 1 MiB scenarios
    n_rtt: int  # 100 KiB packages in the 20 ms round-trip scenario
    big: int  # bytes of the one big archive
    offline_packages: int  # cached packages loaded in the new-process offline start
    index_small: int  # packages in the small index of the index-scale row
    index_large: int  # packages in the large index of the index-scale row
    process_reps: int  # runs of each child in the new-process scenarios
    memory_reps: int  # child processes per side and size in the memory row


FULL = Sizes(
    reps=6,
    n_10k=50,
    n_100k=200,
    n_1m=50,
    n_rtt=10,
    big=200 * MIB,
    offline_packages=10,
    # One bulk publish each: (0, 2) and (2, 4), the two larger sharding levels.
    index_small=1_000,
    index_large=20_000,
    process_reps=20,
    memory_reps=3,
)
QUICK = Sizes(
    reps=2,
    n_10k=10,
    n_100k=20,
    n_1m=10,
    n_rtt=5,
    big=20 * MIB,
    offline_packages=5,
    index_small=16,
    index_large=64,
    process_reps=4,
    memory_reps=1,
)


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Summary of samples (seconds, or bytes where the row says so)."""

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
class Check:
    """One target of one scenario.

    Attributes:
        target: The target, as text (``≤ 0.5 × tuf``).
        measured: The figure compared with the target, as text.
        value: That figure as a number (ratio, seconds or bytes).
        passed: Whether it was met; ``None`` for a row that is information only.
    """

    target: str
    measured: str
    value: float
    passed: bool | None


@dataclass(frozen=True)
class Result:
    """One scenario's lines in the report.

    Attributes:
        key: Scenario key (``--only`` name).
        title: What was measured.
        checks: Its targets.
        sides: Label → timings (or sizes) of every side.
        unit: ``"s"`` or ``"bytes"``: what ``sides`` hold.
        notes: Extra facts printed under the table.
        extra: Extra data for the JSON output.
    """

    key: str
    title: str
    checks: tuple[Check, ...]
    sides: Mapping[str, Stats]
    unit: str = "s"
    notes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No target of the row was missed (information-only checks do not count)."""
        return all(c.passed is not False for c in self.checks)


def pair_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of the per-round ratios ``numerators[i] / denominators[i]``."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("ratio needs two equally long, non-empty sample lists")
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def pair_difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> float:
    """Median of the per-round differences ``minuends[i] - subtrahends[i]``."""
    if len(minuends) != len(subtrahends) or not minuends:
        raise ValueError("difference needs two equally long, non-empty sample lists")
    return statistics.median(a - b for a, b in zip(minuends, subtrahends, strict=True))


def ratio_check(limit: float, ratio: float, what: str, *, at_least: bool = False) -> Check:
    """A ratio target: ``ratio ≤ limit`` (or ``≥`` with ``at_least``)."""
    sign = "≥" if at_least else "≤"
    passed = ratio >= limit if at_least else ratio <= limit
    return Check(f"{sign} {limit:g} × {what}", f"{ratio:.2f} × {what}", ratio, passed)


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

    def stats(self, label: str) -> Stats:
        """The summary of one side."""
        return Stats.of(self.seconds[label])

    def ratio(self, a: str, b: str) -> float:
        """Median of the per-round ratios a/b."""
        return pair_ratio(self.seconds[a], self.seconds[b])

    def note(self) -> str:
        """One line: requests and bytes per run for every side."""
        parts = [
            f"{label} {t.requests} requests / {t.body_bytes:,} bytes"
            for label, t in self.traffic.items()
        ]
        return "served per run: " + "; ".join(parts)


def abba(sides: Sequence[Any], round_no: int) -> list[Any]:
    """The order of ``sides`` in round ``round_no``: forward in even rounds, reversed in odd.

    Over two rounds every side runs once before and once after every other (ABBA), so a
    slow drift of the machine, or one side's after-effects (deferred writeback, a warm page
    cache, a collected heap), falls on both sides alike.
    """
    return list(sides) if round_no % 2 == 0 else list(reversed(sides))


def alternate(sides: Sequence[tuple[str, Prepare]], *, reps: int, server: ServerProcess) -> Timed:
    """Time every side once per round, ABBA, for one warm-up round plus ``reps`` rounds.

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
        for label, prepare in abba(sides, round_no):
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


def plain_download(client: httpx.Client, urls: Sequence[str]) -> int:
    """The machine floor: stream every URL with one reused plain httpx client and sha256 it.

    Nothing is written to disk and nothing is verified against metadata: this is the cost of
    moving the bytes over loopback and hashing them, which any verifying client must pay.

    Returns:
        Bytes received.
    """
    received = 0
    for url in urls:
        digest = hashlib.sha256()
        with client.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(_FLOOR_CHUNK):
                digest.update(chunk)
                received += len(chunk)
    return received


class Floor:
    """The plain-httpx floor, with its client built outside the timed region.

    Each round gets a new client (so the floor, like the clients it is compared with, opens
    its connection inside the timed region), made in :meth:`prepare` and reused for every
    URL of the round; the previous round's client is closed there too, untimed.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        self._urls = list(urls)
        self._client: httpx.Client | None = None

    def prepare(self, _round_no: int) -> Action:
        """Close the last client, build the next one; return the timed download."""
        self.close()
        self._client = httpx.Client(trust_env=False)
        return partial(plain_download, self._client, self._urls)

    def close(self) -> None:
        """Close the current client, if any."""
        if self._client is not None:
            self._client.close()
            self._client = None


def warm_floor(client: httpx.Client, urls: Sequence[str], paths: Sequence[Path]) -> int:
    """The warm floor: what any verifying client must do on a warm online run, and no more.

    The two requests of the protocol (the next root, answered 404, then the freshness file;
    with a client built outside the timed region) and a sha256 of every cached archive, in this thread, into one reused buffer. No signature, no
    parse, no metadata: it is information (how much of a warm run is the mandatory re-hash),
    not a client.

    Returns:
        Bytes hashed.
    """
    for url in urls:
        client.get(url)  # the status is the server's business: a 404 is the expected answer
    buffer = bytearray(_FLOOR_CHUNK)
    view = memoryview(buffer)
    hashed = 0
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as file:
            while n := file.readinto(buffer):
                digest.update(view[:n])
                hashed += n
    return hashed


class WarmFloor:
    """:func:`warm_floor` with a new client per round, built and closed untimed."""

    def __init__(self, urls: Sequence[str], paths: Sequence[Path]) -> None:
        self._urls = list(urls)
        self._paths = list(paths)
        self._client: httpx.Client | None = None

    def prepare(self, _round_no: int) -> Action:
        """Close the last client, build the next one; return the timed run."""
        self.close()
        self._client = httpx.Client(trust_env=False)
        return partial(warm_floor, self._client, self._urls, self._paths)

    def close(self) -> None:
        """Close the current client, if any."""
        if self._client is not None:
            self._client.close()
            self._client = None


# -- new processes ---------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class ProcessTimes:
    """What :func:`time_processes` measured: per label, wall times and stdouts in round order."""

    seconds: Mapping[str, list[float]]
    stdouts: Mapping[str, list[str]]

    def stats(self, label: str) -> Stats:
        """The summary of one child."""
        return Stats.of(self.seconds[label])

    def over(self, a: str, b: str) -> float:
        """Median of the per-round differences a − b, in seconds."""
        return pair_difference(self.seconds[a], self.seconds[b])


def time_processes(codes: Mapping[str, str], *, reps: int) -> ProcessTimes:
    """Time ``python -c code`` for every code, spawn to exit, alternating ABAB ….

    One warm-up round (it fills the OS file cache and the ``.pyc`` files), then ``reps``
    measured rounds, each running every child once in the same order.

    Returns:
        The times and stdouts of the measured rounds.
    """
    seconds: dict[str, list[float]] = {label: [] for label in codes}
    stdouts: dict[str, list[str]] = {label: [] for label in codes}
    for round_no in range(1 + reps):
        for label, code in codes.items():
            elapsed, out = run_process([sys.executable, "-c", code])
            if round_no > 0:
                seconds[label].append(elapsed)
                stdouts[label].append(out)
    return ProcessTimes(seconds, stdouts)


# -- the environment: archives, one index pair per scenario, the servers ----------------------------


@dataclass(frozen=True)
class Published:
    """One scenario's archives, published into a standalone index of ours and a TUF repository.

    Attributes:
        archives: The archives, in name order.
        nominal: Target archive size in bytes (for titles).
        ours: Our index (served).
        tuf: The TUF repository (served), if the scenario compares with tuf.
    """

    archives: list[BenchArchive]
    nominal: int
    ours: OursIndex
    tuf: TufRepo | None

    def archive_urls(self, archives: Sequence[BenchArchive]) -> list[str]:
        """URLs of ``archives`` in our index (for the plain-httpx floor)."""
        return [f"{self.ours.url}archives/{a.name}/{a.path.name}" for a in archives]


@dataclass(frozen=True)
class _SetSpec:
    count: int
    size: int
    tuf: bool  # also build a TUF repository
    delayed: bool = False  # served by the round-trip server
    extra_small: bool = False  # add one 10 KiB archive (the memory row's baseline install)


@dataclass(frozen=True)
class Env:
    """Everything the scenarios share: what was published and where it is served."""

    workdir: Path
    sizes: Sizes
    server: ServerProcess
    rtt_server: ServerProcess | None
    pubs: Mapping[str, Published]


def _sets_needed(selected: Sequence[str], sizes: Sizes) -> dict[str, _SetSpec]:
    """Archive sets (label → spec) the selected scenarios need: one per scenario family."""
    wanted: dict[str, _SetSpec] = {}
    if {"cold-10k", "warm-10k"} & set(selected):
        wanted["s10k"] = _SetSpec(sizes.n_10k, 10 * KIB, tuf=True)
    if {"cold-100k", "warm-100k"} & set(selected):
        wanted["s100k"] = _SetSpec(sizes.n_100k, 100 * KIB, tuf=True)
    if {"cold-1m", "warm-1m"} & set(selected):
        wanted["m1"] = _SetSpec(sizes.n_1m, 1 * MIB, tuf=True)
    if "rtt" in selected:
        wanted["rtt"] = _SetSpec(sizes.n_rtt, 100 * KIB, tuf=True, delayed=True)
    if "offline-start" in selected:
        wanted["offline"] = _SetSpec(sizes.offline_packages, 10 * KIB, tuf=False)
    if {"big", "memory"} & set(selected):
        wanted["big"] = _SetSpec(1, sizes.big, tuf=True, extra_small=True)
    if "index-scale" in selected:
        wanted["idxsmall"] = _SetSpec(sizes.index_small, 0, tuf=False)
        wanted["idxlarge"] = _SetSpec(sizes.index_large, 0, tuf=False)
    return wanted


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _publish_set(workdir: Path, seed: int, label: str, spec: _SetSpec) -> tuple[Any, ...]:
    start = time.perf_counter()
    out = workdir / "archives" / label
    archives = build_archives(out, label=label, count=spec.count, size=spec.size, seed=seed)
    if spec.extra_small:
        archives += build_archives(out, label=f"{label}small", count=1, size=10 * KIB, seed=seed)
    built = time.perf_counter() - start
    start = time.perf_counter()
    ours = build_ours_index(workdir / "ours" / label, archives)
    published = time.perf_counter() - start
    tuf = build_tuf_repository(workdir / "tuf" / label, archives) if spec.tuf else None
    _log(
        f"{label}: {len(archives)} archive(s) of {_size(spec.size)} built in {built:.1f} s, "
        f"published into our index in {published:.1f} s"
        + ("" if tuf is None else ", TUF repository written")
    )
    return archives, ours, tuf


@contextlib.contextmanager
def environment(workdir: Path, sizes: Sizes, selected: Sequence[str]) -> Iterator[Env]:
    """Build archives and one index pair per scenario, start the servers, stop them after."""
    wanted = _sets_needed(selected, sizes)
    built = {
        label: _publish_set(workdir, seed, label, spec)
        for seed, (label, spec) in enumerate(wanted.items(), 1)
    }
    mounts: dict[bool, dict[str, Path]] = {False: {}, True: {}}
    for label, (_, ours, tuf) in built.items():
        target = mounts[wanted[label].delayed]
        target[f"/{label}/ours/"] = ours.directory
        if tuf is not None:
            target[f"/{label}/tuf/"] = tuf.directory
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(ServerProcess(mounts[False]))
        rtt_server = (
            stack.enter_context(ServerProcess(mounts[True], delay=RTT_DELAY))
            if mounts[True]
            else None
        )
        pubs: dict[str, Published] = {}
        for label, (archives, ours, tuf) in built.items():
            base = rtt_server if wanted[label].delayed else server
            assert base is not None
            pubs[label] = Published(
                archives=archives,
                nominal=wanted[label].size,
                ours=ours.with_base(base.base_url, f"/{label}/ours/"),
                tuf=None if tuf is None else tuf.with_base(base.base_url, f"/{label}/tuf/"),
            )
        yield Env(workdir, sizes, server, rtt_server, pubs)


# -- scenarios -------------------------------------------------------------------------------------


def _tuf(pub: Published) -> TufRepo:
    if pub.tuf is None:
        raise RuntimeError("this scenario needs a TUF repository")
    return pub.tuf


def scenario_cold(env: Env, key: str, label: str) -> Result:
    """Cold resolve + download + verify of every archive of set ``label``, ours vs tuf."""
    pub = env.pubs[label]
    archives, tuf_repo = pub.archives, _tuf(pub)
    dirs = FreshDirs(env.workdir / "caches" / key)
    sides: list[tuple[str, Prepare]] = [
        ("ours", lambda _: partial(ours_cold, pub.ours, dirs.fresh("ours"), archives)),
        ("tuf", lambda _: partial(tuf_cold, tuf_repo, dirs.fresh("tuf"), archives)),
    ]
    floor = Floor(pub.archive_urls(archives)) if label == "m1" else None
    if floor is not None:
        sides.append(("floor", floor.prepare))
    try:
        timed = alternate(sides, reps=env.sizes.reps, server=env.server)
    finally:
        if floor is not None:
            floor.close()
    checks = [ratio_check(COLD_MAX_RATIO, timed.ratio("ours", "tuf"), "tuf")]
    notes = [timed.note()]
    if floor is not None:
        checks.append(ratio_check(COLD_MAX_FLOOR, timed.ratio("ours", "floor"), "floor"))
        notes.insert(
            0,
            "floor = one plain httpx.Client (built outside the timed region, reused for every "
            f"archive) streaming the same {len(archives)} archives + sha256, nothing written",
        )
    return Result(
        key=key,
        title=f"cold on loopback: resolve + download + verify {len(archives)} × "
        f"{_size(pub.nominal)}",
        checks=tuple(checks),
        sides={label: timed.stats(label) for label in timed.seconds},
        notes=tuple(notes),
    )


def scenario_warm(env: Env, key: str, label: str) -> Result:
    """Warm online freshness check with every archive of set ``label`` already cached."""
    pub = env.pubs[label]
    archives, tuf_repo = pub.archives, _tuf(pub)
    ours_cache = env.workdir / "caches" / key / "ours"
    tuf_cache = env.workdir / "caches" / key / "tuf"
    ours_cold(pub.ours, ours_cache, archives)  # untimed: fill both caches once
    tuf_cold(tuf_repo, tuf_cache, archives)
    # Information beside the target: the mandatory part of any warm run (the root probe and
    # the freshness request, one sha256 over every cached archive on one core), to show how
    # much of the budget is left for everything else.
    newest_root = max(int(p.stem) for p in (pub.ours.directory / "root").glob("*.json"))
    probe = [f"{pub.ours.url}root/{newest_root + 1}.json", f"{pub.ours.url}timestamp.json"]
    floor = WarmFloor(probe, [a.path for a in archives])
    try:
        timed = alternate(
            [
                ("ours", lambda _: partial(ours_warm_online, pub.ours, ours_cache, archives)),
                ("tuf", lambda _: partial(tuf_warm_online, tuf_repo, tuf_cache, archives)),
                ("floor", floor.prepare),
            ],
            reps=env.sizes.reps,
            server=env.server,
        )
    finally:
        floor.close()
    budget = WARM_MAX_RATIO * timed.stats("tuf").median
    return Result(
        key=key,
        title=f"warm online (all cached, freshness checked): {len(archives)} × "
        f"{_size(pub.nominal)}",
        checks=(ratio_check(WARM_MAX_RATIO, timed.ratio("ours", "tuf"), "tuf"),),
        sides={label: timed.stats(label) for label in timed.seconds},
        notes=(
            "ours: new Loader, install() with metadata_max_age 0 (asks for timestamp.json every "
            "run, re-hashes every cached archive); tuf: new Updater (cached root), refresh(), "
            "get_targetinfo + find_cached_target each (re-hashes every cached target)",
            f"floor = the root probe and timestamp.json (httpx.Client built outside the timed "
            f"region) + sha256 of every archive on one core, nothing else: "
            f"{_ms(timed.stats('floor').median)} against a budget of {_ms(budget)} "
            f"({WARM_MAX_RATIO} × tuf); floor / tuf {timed.ratio('floor', 'tuf'):.2f}",
            timed.note(),
        ),
    )


def scenario_rtt(env: Env) -> Result:
    """Cold install over a server that answers every request after 20 ms, ours vs tuf."""
    pub = env.pubs["rtt"]
    archives, tuf_repo = pub.archives, _tuf(pub)
    server = env.rtt_server
    if server is None:
        raise RuntimeError("the round-trip scenario needs the delayed server")
    dirs = FreshDirs(env.workdir / "caches" / "rtt")
    timed = alternate(
        [
            ("ours", lambda _: partial(ours_cold, pub.ours, dirs.fresh("ours"), archives)),
            ("tuf", lambda _: partial(tuf_cold, tuf_repo, dirs.fresh("tuf"), archives)),
        ],
        reps=env.sizes.reps,
        server=server,
    )
    return Result(
        key="rtt",
        title=f"cold at {RTT_DELAY * 1000:.0f} ms per request: {len(archives)} × "
        f"{_size(pub.nominal)}",
        checks=(ratio_check(RTT_MAX_RATIO, timed.ratio("ours", "tuf"), "tuf"),),
        sides={label: timed.stats(label) for label in timed.seconds},
        notes=(
            f"one server process for both clients; it waits {RTT_DELAY * 1000:.0f} ms before "
            "every response (in the request's thread, so concurrent requests wait "
            "concurrently); connection set-up is not delayed",
            timed.note(),
        ),
    )


def scenario_offline_start(env: Env) -> Result:
    """New process: offline registry with cached packages, imported; vs `import modelmesh`."""
    pub = env.pubs["offline"]
    archives = pub.archives
    cache = env.workdir / "caches" / "offline"
    ours_cold(pub.ours, cache, archives)  # untimed: fill the cache online once
    code = offline_start_code(pub.ours, cache, [a.name for a in archives])
    times = time_processes(
        {"ours": code, "import modelmesh": "import modelmesh", "bare": "pass"},
        reps=env.sizes.process_reps,
    )
    outputs = [json.loads(out) for out in times.stdouts["ours"]]
    httpx_imported = any(o["httpx"] for o in outputs)
    connectors = {o["connectors"] for o in outputs}
    expected = len(BUILTINS) + len(archives)
    over = times.over("ours", "import modelmesh")
    ours, ref = times.stats("ours"), times.stats("import modelmesh")
    return Result(
        key="offline-start",
        title=f"new process: ConnectorRegistry.from_config offline, {len(archives)} cached "
        "packages imported",
        checks=(
            Check(
                f"≤ `import modelmesh` + {OFFLINE_MAX_OVER * 1000:.0f} ms",
                f"+{over * 1000:.0f} ms",
                over,
                over <= OFFLINE_MAX_OVER,
            ),
            Check(
                "httpx not imported; every connector registered",
                f"httpx imported: {httpx_imported}; connectors {sorted(connectors)} "
                f"(expected {expected})",
                float(httpx_imported),
                not httpx_imported and connectors == {expected},
            ),
        ),
        sides={label: times.stats(label) for label in times.seconds},
        notes=(
            f'children alternate ours, `python -c "import modelmesh"`, `python -c pass`, '
            f"{env.sizes.process_reps} rounds after one warm-up; figure = median of per-round "
            f"differences (difference of medians: {(ours.median - ref.median) * 1000:+.0f} ms)",
        ),
        extra={"httpx_imported": httpx_imported, "connectors": sorted(connectors)},
    )


def scenario_builtins(env: Env) -> Result:
    """New process: import + ``ConnectorRegistry()`` with the built-ins, vs a bare interpreter."""
    code = "from modelmesh_connectors import ConnectorRegistry; ConnectorRegistry()"
    times = time_processes({"ours": code, "bare": "pass"}, reps=env.sizes.process_reps)
    over = times.over("ours", "bare")
    ours, bare = times.stats("ours"), times.stats("bare")
    return Result(
        key="builtins",
        title=f"new process: import + ConnectorRegistry() with the {len(BUILTINS)} built-ins",
        checks=(
            Check(
                f"≤ bare interpreter + {BUILTINS_MAX_OVER * 1000:.0f} ms",
                f"+{over * 1000:.0f} ms",
                over,
                over <= BUILTINS_MAX_OVER,
            ),
        ),
        sides={label: times.stats(label) for label in times.seconds},
        notes=(
            f'children alternate `python -c "{code}"` and `python -c pass`, '
            f"{env.sizes.process_reps} rounds after one warm-up; figure = median of per-round "
            f"differences (difference of medians: {(ours.median - bare.median) * 1000:+.0f} ms)",
        ),
    )


def scenario_big(env: Env) -> Result:
    """One big archive: download + verify throughput, ours vs the plain-httpx floor."""
    pub = env.pubs["big"]
    archive, tuf_repo = pub.archives[0], _tuf(pub)
    floor = Floor(pub.archive_urls([archive]))
    dirs = FreshDirs(env.workdir / "caches" / "big")
    try:
        timed = alternate(
            [
                (
                    "ours",
                    lambda _: partial(ours_install_one_big, pub.ours, dirs.fresh("ours"), archive),
                ),
                ("floor", floor.prepare),
                ("tuf", lambda _: partial(tuf_install_one, tuf_repo, dirs.fresh("tuf"), archive)),
            ],
            reps=env.sizes.reps,
            server=env.server,
        )
    finally:
        floor.close()
    # Throughput ratio ours/floor per round = floor time / ours time.
    throughput = timed.ratio("floor", "ours")
    mib = archive.length / MIB
    ours, flo, tuf = (timed.stats(s) for s in ("ours", "floor", "tuf"))
    return Result(
        key="big",
        title=f"one {_size(pub.nominal)} archive: download + verify throughput",
        checks=(ratio_check(BIG_MIN_THROUGHPUT, throughput, "floor throughput", at_least=True),),
        sides={label: timed.stats(label) for label in timed.seconds},
        notes=(
            f"median throughput: ours {mib / ours.median:.0f} MiB/s, floor "
            f"{mib / flo.median:.0f} MiB/s, tuf {mib / tuf.median:.0f} MiB/s; tuf/floor "
            f"throughput {timed.ratio('floor', 'tuf'):.2f}",
            "ours includes the index refresh, the resolve and the cache write; the floor writes "
            "nothing",
            timed.note(),
        ),
        extra={"archive_bytes": archive.length},
    )


def _memory_child(env: Env, side: str, mode: str, archive: BenchArchive) -> dict[str, Any]:
    pub = env.pubs["big"]
    cache = env.workdir / "caches" / "memory" / f"{side}-{mode}-{archive.name}"
    shutil.rmtree(cache, ignore_errors=True)
    spec: dict[str, Any] = {
        "side": side,
        "mode": mode,
        "cache": str(cache),
        "archive": {**asdict(archive), "path": str(archive.path)},
    }
    if side == "ours":
        spec |= {
            "directory": str(pub.ours.directory),
            "trust_root": str(pub.ours.trust_root),
            "url": pub.ours.url,
        }
    else:
        tuf = _tuf(pub)
        spec |= {
            "directory": str(tuf.directory),
            "root_file": str(tuf.directory / "metadata" / "1.root.json"),
            "metadata_url": tuf.metadata_url,
            "targets_url": tuf.targets_url,
        }
    _, out = run_process([sys.executable, str(_SCRIPTS / "bench_memory.py"), json.dumps(spec)])
    shutil.rmtree(cache, ignore_errors=True)
    result: dict[str, Any] = json.loads(out)
    return result


def scenario_memory(env: Env) -> Result:
    """Whole-process peak RSS of a cold install of the big archive vs a 10 KiB one (children)."""
    pub = env.pubs["big"]
    big, small = pub.archives[0], pub.archives[1]
    reps = env.sizes.memory_reps
    rss: dict[str, list[float]] = {}
    traced: dict[str, list[float]] = {}
    for _ in range(reps):
        for side in ("ours", "tuf"):
            for size, archive in (("small", small), ("big", big)):
                key = f"{side} {size}"
                got = _memory_child(env, side, "rss", archive)
                rss.setdefault(key, []).append(got["hwm_after"])
                got = _memory_child(env, side, "tracemalloc", archive)
                traced.setdefault(key, []).append(got["traced_peak"])
    growth = [b - s for b, s in zip(rss["ours big"], rss["ours small"], strict=True)]
    tuf_growth = [b - s for b, s in zip(rss["tuf big"], rss["tuf small"], strict=True)]
    grown = statistics.median(growth)
    med = {k: statistics.median(v) for k, v in traced.items()}
    return Result(
        key="memory",
        title=f"peak RSS (whole process) of a cold install: {_size(pub.nominal)} vs 10 KiB",
        checks=(
            Check(
                f"growth ≤ {_size(RSS_MAX_GROWTH)}",
                _size(int(grown)),
                grown,
                grown <= RSS_MAX_GROWTH,
            ),
        ),
        sides={k: Stats.of(v) for k, v in rss.items()},
        unit="bytes",
        notes=(
            f"VmHWM of a new process per install ({reps} per side and size, median); growth "
            f"= big − 10 KiB: ours {_size(int(grown))}, tuf "
            f"{_size(int(statistics.median(tuf_growth)))}",
            f"tracemalloc peak (Python heap only, separate children): ours "
            f"{_size(int(med['ours big']))} (10 KiB: {_size(int(med['ours small']))}), tuf "
            f"{_size(int(med['tuf big']))} (10 KiB: {_size(int(med['tuf small']))})",
        ),
        extra={"rss": rss, "tracemalloc": traced},
    )


def scenario_index_scale(env: Env) -> Result:
    """Resolving one package in a small and a larger publisher-built index: bytes and time."""
    small, large = env.pubs["idxsmall"], env.pubs["idxlarge"]
    rounds = 1 + env.sizes.reps
    picks = {
        label: [pub.archives[(i * 7919) % len(pub.archives)].name for i in range(rounds)]
        for label, pub in (("small", small), ("large", large))
    }
    dirs = FreshDirs(env.workdir / "caches" / "index")

    def prepare(label: str, index: OursIndex, round_no: int) -> Action:
        return partial(ours_resolve_only, index, dirs.fresh(label), picks[label][round_no])

    timed = alternate(
        [
            ("small", partial(prepare, "small", small.ours)),
            ("large", partial(prepare, "large", large.ours)),
        ],
        reps=env.sizes.reps,
        server=env.server,
    )
    total = {"small": index_bytes(small.ours.directory), "large": index_bytes(large.ours.directory)}
    fetched = timed.traffic
    share = fetched["large"].body_bytes / total["large"]
    time_ratio = timed.ratio("large", "small")
    return Result(
        key="index-scale",
        title=f"resolve one package, cold: publisher-built index of {len(large.archives):,} vs "
        f"{len(small.archives):,} packages (information)",
        checks=(
            Check("bytes fetched / index (information)", f"{share:.2%}", share, None),
            Check("time large / small (information)", f"{time_ratio:.2f}", time_ratio, None),
        ),
        sides={label: timed.stats(label) for label in timed.seconds},
        notes=(
            f"both indexes built with {PUBLISH_METHOD}",
            f"fetched for one resolve: large {fetched['large'].body_bytes:,} bytes in "
            f"{fetched['large'].requests} requests of a {total['large']:,}-byte index; small "
            f"{fetched['small'].body_bytes:,} bytes in {fetched['small'].requests} requests of "
            f"{total['small']:,}",
        ),
    )


def run_scenarios(env: Env, selected: Sequence[str]) -> list[Result]:
    """Run the selected scenarios in the fixed order of :data:`SCENARIOS`."""
    table: dict[str, Callable[[], Result]] = {
        "cold-10k": partial(scenario_cold, env, "cold-10k", "s10k"),
        "cold-100k": partial(scenario_cold, env, "cold-100k", "s100k"),
        "cold-1m": partial(scenario_cold, env, "cold-1m", "m1"),
        "warm-10k": partial(scenario_warm, env, "warm-10k", "s10k"),
        "warm-100k": partial(scenario_warm, env, "warm-100k", "s100k"),
        "warm-1m": partial(scenario_warm, env, "warm-1m", "m1"),
        "rtt": partial(scenario_rtt, env),
        "offline-start": partial(scenario_offline_start, env),
        "builtins": partial(scenario_builtins, env),
        "big": partial(scenario_big, env),
        "memory": partial(scenario_memory, env),
        "index-scale": partial(scenario_index_scale, env),
    }
    results: list[Result] = []
    for key in SCENARIOS:
        if key not in selected:
            continue
        _log(f"running {key}")
        start = time.perf_counter()
        result = table[key]()
        _log(f"{key}: {_verdict(result)} ({time.perf_counter() - start:.1f} s)")
        results.append(result)
    return results


# -- reporting -------------------------------------------------------------------------------------


def _size(n: float) -> str:
    n = int(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, factor in (("MiB", MIB), ("KiB", KIB)):
        if n >= factor:
            value = n / factor
            text = f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
            return f"{sign}{text} {unit}"
    return f"{sign}{n} B"


def _ms(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _stats_text(stats: Stats, unit: str = "s") -> str:
    if unit == "bytes":
        return f"{_size(stats.median)} [{_size(stats.min)} – {_size(stats.max)}]"
    return f"{_ms(stats.median)} [{_ms(stats.min)} – {_ms(stats.max)}]"


def _verdict(result: Result | Check) -> str:
    passed = result.passed
    return "INFO" if passed is None else ("PASS" if passed else "FAIL")


def machine() -> dict[str, str]:
    """The machine, the load, the commit and the versions that matter for the numbers."""
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
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = subprocess.run(
            ["git", "-C", str(_SCRIPTS), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    for dist in (
        "modelmesh-connectors",
        "modelmesh-lite",
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


def _sides_text(result: Result) -> str:
    return "; ".join(
        f"{label}: {_stats_text(stats, result.unit)}" for label, stats in result.sides.items()
    )


def render_markdown(results: Sequence[Result], info: Mapping[str, str], mode: str) -> str:
    """The results table as Markdown (for docs/BENCHMARKS.md)."""
    lines = [
        f"Mode: {mode}. Commit {info.get('commit', '?')}. Machine: {info['cpu']}, "
        f"{info['cores']} cores, {info['os']}, {info['python']}; load average at start "
        f"{info['load average at start']}; tuf {info['tuf']}, securesystemslib "
        f"{info['securesystemslib']}, urllib3 {info['urllib3']}, httpx {info['httpx']}, "
        f"cryptography {info['cryptography']}, modelmesh-lite {info['modelmesh-lite']}.",
        "",
        "Times: median [min – max] over the measured rounds.",
        "",
        "| scenario | target | measured | result | sides |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for i, c in enumerate(r.checks):
            sides = _sides_text(r) if i == 0 else "″"
            title = r.title if i == 0 else "″"
            lines.append(f"| {title} | {c.target} | {c.measured} | {_verdict(c)} | {sides} |")
    lines.append("")
    for r in results:
        lines.extend(f"- {r.key}: {note}" for note in r.notes)
    met = sum(1 for r in results for c in r.checks if c.passed)
    total = sum(1 for r in results for c in r.checks if c.passed is not None)
    lines += ["", f"**{met} of {total} targets met.**"]
    return "\n".join(lines) + "\n"


def render_text(results: Sequence[Result], info: Mapping[str, str], mode: str) -> str:
    """The results for the terminal."""
    lines = [f"mode: {mode}"]
    lines += [f"{k:>22}: {v}" for k, v in info.items()]
    lines.append("")
    for r in results:
        lines.append(f"{r.key}: {r.title}")
        for c in r.checks:
            lines.append(f"  [{_verdict(c)}] target {c.target}: measured {c.measured}")
        for label, stats in r.sides.items():
            lines.append(f"         {label + ':':<18} {_stats_text(stats, r.unit)}")
        lines.extend(f"         note: {note}" for note in r.notes)
        lines.append("")
    met = sum(1 for r in results for c in r.checks if c.passed)
    total = sum(1 for r in results for c in r.checks if c.passed is not None)
    lines.append(f"{met}/{total} targets met")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and rounds")
    parser.add_argument(
        "--only",
        metavar="SCENARIO",
        help=f"comma-separated scenarios to run; one or more of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--reps", type=int, help="measured rounds per in-process scenario (default 6; 2 quick)"
    )
    parser.add_argument(
        "--process-reps", type=int, help="runs of each child in new-process scenarios"
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
    for name in ("reps", "process_reps"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= 200:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 200")
    args.selected = selected
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    overrides = {"reps": args.reps, "process_reps": args.process_reps}
    sizes = Sizes(**{**asdict(sizes), **{k: v for k, v in overrides.items() if v is not None}})
    mode = (
        ("quick" if args.quick else "full")
        + f", {sizes.reps} measured rounds + 1 warm-up (ABBA), {sizes.process_reps} rounds per"
        " new-process scenario"
    )
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
    info = {**info, "load average at end": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    print(render_text(results, info, mode))
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(results, info, mode))
    if args.json is not None:
        payload = {
            "mode": mode,
            "machine": info,
            "results": [asdict(r) | {"passed": r.passed} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
