#!/usr/bin/env python3
"""Profile the benchmark's scenarios: where each client's time goes, and what it counts.

Usage::

    .venv/bin/python scripts/bench_profile.py --out /tmp/profile        # all scenarios
    .venv/bin/python scripts/bench_profile.py --quick --out /tmp/profile

It builds the same standalone indexes as ``bench.py`` (its :func:`bench.environment`) and,
for every in-process scenario and both clients, runs one warm-up and then one profiled run:

- **cProfile in every thread** (the loader downloads on a thread pool; a profiler that only
  watches the main thread would miss the work). The merged stats are saved as
  ``<scenario>-<side>.pstats`` with a ``.txt`` summary (top functions by own time).
- **Counts per run**, from the profile: HTTP requests (from the server), Ed25519
  verifications, ``fsync``, ``os.replace``/``rename``, ``unlink``, file-lock acquisitions,
  threads started and thread pools created; the time spent in each client's fetcher per
  request.
- **System calls per run** with ``strace -f`` (when installed): a child process runs the warm-up,
  then marks the start and end of the measured run with a ``stat`` of a marker path, and only
  the calls between the marks are counted.

For start-up it runs the two new-process scenarios under ``python -X importtime`` and reports
the slowest imports on each path, and under cProfile for the rest. Everything is written to
``--out``, and a summary is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import inspect
import io
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import bench
from bench_ours import OursIndex, offline_start_code, ours_cold, ours_warm_online
from bench_packages import BenchArchive
from bench_tuf import TufRepo, tuf_cold, tuf_warm_online

_MARK_BEGIN = "/__bench_profile_begin__"
_MARK_END = "/__bench_profile_end__"
_TRACED = "fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,openat,mkdir,mkdirat,clone,clone3,flock,connect,newfstatat,stat"
_SCENARIOS = {  # profile scenario → (archive set, kind)
    "cold-10k": ("s10k", "cold"),
    "cold-1m": ("m1", "cold"),
    "warm-10k": ("s10k", "warm"),
    "warm-100k": ("s100k", "warm"),
    "warm-1m": ("m1", "warm"),
    "rtt": ("rtt", "cold"),
    "big": ("big", "cold"),
}


# -- cProfile in every thread ---------------------------------------------------------------------


class AllThreads:
    """cProfile the calling thread and every thread started while it is active."""

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_in_thread(self, *_: Any) -> None:
        # Runs as the new thread's first profile event: swap in a real profiler for it.
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()

    def __enter__(self) -> AllThreads:
        threading.setprofile(self._start_in_thread)
        self._start_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self._profiles[0].disable()
        threading.setprofile(None)

    def stats(self) -> pstats.Stats:
        """The merged statistics of every thread."""
        merged = pstats.Stats(self._profiles[0])
        for profile in self._profiles[1:]:
            merged.add(profile)
        return merged


def _calls(stats: pstats.Stats, match: Callable[[str, str], bool]) -> int:
    """Primitive calls of every function whose (file, name) ``match``es."""
    total = 0
    for (filename, _line, name), (cc, _nc, _tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if match(filename, name):
            total += cc
    return total


def _cumtime(stats: pstats.Stats, match: Callable[[str, str], bool]) -> tuple[int, float]:
    """Calls and cumulative time of the matching functions (summed over threads)."""
    calls, seconds = 0, 0.0
    for (filename, _line, name), (cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if match(filename, name):
            calls += cc
            seconds += ct
    return calls, seconds


def counts(stats: pstats.Stats) -> dict[str, Any]:
    """What one profiled run did, counted from its profile."""
    pool_line = inspect.getsourcelines(ThreadPoolExecutor.__init__)[1]

    def builtin(name: str) -> Callable[[str, str], bool]:
        return lambda f, n: f == "~" and n == f"<built-in method posix.{name}>"

    ours_fetch = _cumtime(stats, lambda f, n: f.endswith("client/fetch.py") and n in ("_attempt",))
    tuf_fetch = _cumtime(
        stats, lambda f, n: f.endswith("ngclient/urllib3_fetcher.py") and n == "_fetch"
    )
    return {
        "ed25519_verify": _calls(
            stats, lambda f, n: f == "~" and "verify" in n and "ed25519" in n.lower()
        ),
        "fsync": _calls(stats, builtin("fsync")),
        "replace_or_rename": _calls(stats, builtin("replace")) + _calls(stats, builtin("rename")),
        "unlink": _calls(stats, builtin("unlink")),
        "mkstemp": _calls(stats, lambda f, n: f.endswith("tempfile.py") and n == "mkstemp"),
        "filelock_acquire": _calls(stats, lambda f, n: "/filelock/" in f and n == "acquire"),
        "filelock_seconds": _cumtime(
            stats, lambda f, n: "/filelock/" in f and n in ("acquire", "release")
        )[1],
        "threads_started": _calls(stats, lambda f, n: f.endswith("threading.py") and n == "start"),
        "thread_pools": sum(
            cc
            for (f, line, n), (cc, *_rest) in stats.stats.items()  # type: ignore[attr-defined]
            if f.endswith("concurrent/futures/thread.py") and n == "__init__" and line == pool_line
        ),
        "json_loads": _calls(stats, lambda f, n: f.endswith("json/__init__.py") and n == "loads"),
        "ours_fetch_attempts": ours_fetch[0],
        "ours_fetch_seconds": ours_fetch[1],
        "tuf_fetch_calls": tuf_fetch[0],
        "tuf_fetch_seconds": tuf_fetch[1],
    }


_CATEGORIES: list[tuple[str, Callable[[str, str], bool]]] = [
    (
        "waiting on locks/threads",
        lambda f, n: f == "~" and ("acquire' of '_thread" in n or "_queue.SimpleQueue" in n),
    ),
    ("ed25519 verify", lambda f, n: f == "~" and "verify" in n and "ed25519" in n.lower()),
    ("fsync", lambda f, n: f == "~" and n == "<built-in method posix.fsync>"),
    ("sha256", lambda f, n: f == "~" and "_hashlib" in n),
    (
        "socket I/O",
        lambda f, n: (f == "~" and "_socket.socket" in n) or (f == "~" and "sendfile" in n),
    ),
    ("httpx/httpcore/h11", lambda f, n: any(p in f for p in ("/httpx/", "/httpcore/", "/h11/"))),
    ("urllib3", lambda f, n: "/urllib3/" in f),
    ("filelock", lambda f, n: "/filelock/" in f),
    (
        "file system calls",
        lambda f, n: f == "~" and ("posix." in n or "io.open" in n or "_io." in n),
    ),
    ("json", lambda f, n: "/json/" in f or (f == "~" and "_json" in n)),
    ("yaml", lambda f, n: "/yaml/" in f),
    ("zipfile/zlib", lambda f, n: "zipfile" in f or (f == "~" and "zlib" in n)),
    ("threading/futures", lambda f, n: f.endswith("threading.py") or "concurrent/futures" in f),
    ("tuf/securesystemslib", lambda f, n: "/tuf/" in f or "/securesystemslib/" in f),
    ("cryptography (other)", lambda f, n: "cryptography" in f or "cryptography" in n),
    ("ours (modelmesh_connectors)", lambda f, n: "modelmesh_connectors" in f),
    ("pathlib/os/tempfile", lambda f, n: any(p in f for p in ("pathlib", "/os.py", "tempfile"))),
]


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Own time (summed over threads) by category, in ms, largest first; the total last."""
    totals: Counter[str] = Counter()  # ms by category
    for (f, _line, n), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for category, match in _CATEGORIES:
            if match(f, n):
                totals[category] += tt * 1000
                break
        else:
            totals["other"] += tt * 1000
    result: dict[str, float] = {k: round(v, 1) for k, v in totals.most_common()}
    result["total"] = round(sum(totals.values()), 1)
    return result


def top_text(stats: pstats.Stats, limit: int = 30) -> str:
    """The top functions by own time and by cumulative time, as pstats prints them."""
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


# -- strace of one run in a child -------------------------------------------------------------------


def _archive(data: dict[str, Any]) -> BenchArchive:
    return BenchArchive(
        data["name"], data["version"], Path(data["path"]), data["sha256"], int(data["length"])
    )


def child(spec: dict[str, Any]) -> None:
    """Run one scenario's warm-up, then the measured run between two marker ``stat`` calls."""
    archives = [_archive(a) for a in spec["archives"]]
    cache = Path(spec["cache"])
    if spec["side"] == "ours":
        index = OursIndex(Path(spec["directory"]), Path(spec["trust_root"]), spec["url"])
        cold: Callable[[Path], None] = lambda c: ours_cold(index, c, archives)  # noqa: E731
        warm: Callable[[Path], None] = lambda c: ours_warm_online(index, c, archives)  # noqa: E731
    else:
        repo = TufRepo(
            Path(spec["directory"]),
            Path(spec["root_file"]).read_bytes(),
            spec["metadata_url"],
            spec["targets_url"],
        )
        cold = lambda c: tuf_cold(repo, c, archives)  # noqa: E731
        warm = lambda c: tuf_warm_online(repo, c, archives)  # noqa: E731
    warmup = cache.with_name(cache.name + "-warmup")
    cold(warmup)  # imports, first connections, page cache
    if spec["kind"] == "warm":
        cold(cache)
        run = partial_run(warm, cache)
    else:
        run = partial_run(cold, cache)
    os.sync()
    _mark(_MARK_BEGIN)
    run()
    _mark(_MARK_END)


def partial_run(action: Callable[[Path], None], cache: Path) -> Callable[[], None]:
    """``action(cache)`` as a no-argument callable."""
    return lambda: action(cache)


def _mark(path: str) -> None:
    with contextlib.suppress(OSError):
        os.stat(path)


def spec_for(pub: bench.Published, side: str, kind: str, cache: Path) -> dict[str, Any]:
    """The JSON spec of a child run of ``side`` against ``pub``."""
    spec: dict[str, Any] = {
        "side": side,
        "kind": kind,
        "cache": str(cache),
        "archives": [{**asdict(a), "path": str(a.path)} for a in pub.archives],
    }
    if side == "ours":
        return spec | {
            "directory": str(pub.ours.directory),
            "trust_root": str(pub.ours.trust_root),
            "url": pub.ours.url,
        }
    assert pub.tuf is not None
    return spec | {
        "directory": str(pub.tuf.directory),
        "root_file": str(pub.tuf.directory / "metadata" / "1.root.json"),
        "metadata_url": pub.tuf.metadata_url,
        "targets_url": pub.tuf.targets_url,
    }


_SYSCALL = re.compile(r"^\d+\s+(\w+)\(")


def strace_counts(spec: dict[str, Any], out: Path) -> dict[str, int] | None:
    """System calls between the markers of one child run, by name (None without strace)."""
    if shutil.which("strace") is None:
        return None
    log = out.with_suffix(".strace")
    subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            f"trace={_TRACED}",
            "-o",
            str(log),
            sys.executable,
            __file__,
            "child",
            json.dumps(spec),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    counted: Counter[str] = Counter()
    inside = False
    for line in log.read_text().splitlines():
        if _MARK_BEGIN in line:
            inside = True
            continue
        if _MARK_END in line:
            break
        match = _SYSCALL.match(line)
        if inside and match:
            name = match.group(1)
            if name in ("newfstatat", "stat"):
                continue  # traced only to see the markers
            if name == "openat" and "O_CREAT" in line:
                name = "openat(O_CREAT)"
            counted[name] += 1
    log.unlink()
    return dict(sorted(counted.items()))


# -- scenarios ---------------------------------------------------------------------------------------


def _fresh(root: Path, name: str) -> Path:
    path = root / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def profile_scenario(env: bench.Env, key: str, out: Path) -> dict[str, Any]:
    """Profile both sides of one in-process scenario; return their counts."""
    label, kind = _SCENARIOS[key]
    pub = env.pubs[label]
    server = env.rtt_server if label == "rtt" else env.server
    assert server is not None
    assert pub.tuf is not None
    tuf_repo = pub.tuf
    caches = env.workdir / "profile-caches" / key
    report: dict[str, Any] = {}
    actions: dict[str, tuple[Callable[[Path], None], Callable[[Path], None]]] = {
        "ours": (
            lambda c: ours_cold(pub.ours, c, pub.archives),
            lambda c: ours_warm_online(pub.ours, c, pub.archives),
        ),
        "tuf": (
            lambda c: tuf_cold(tuf_repo, c, pub.archives),
            lambda c: tuf_warm_online(tuf_repo, c, pub.archives),
        ),
    }
    for side, (cold, warm) in actions.items():
        cold(_fresh(caches, f"{side}-warmup"))  # imports, first connections
        cache = _fresh(caches, side)
        if kind == "warm":
            cold(cache)  # untimed: fill the cache the warm run checks
            run = partial_run(warm, cache)
        else:
            run = partial_run(cold, cache)
        os.sync()
        before = server.counter()
        start = time.perf_counter()
        with AllThreads() as profiler:
            run()
        wall = time.perf_counter() - start
        served = server.counter() - before
        stats = profiler.stats()
        stats.dump_stats(str(out / f"{key}-{side}.pstats"))
        (out / f"{key}-{side}.txt").write_text(top_text(stats))
        counted = counts(stats) | {
            "requests": served.requests,
            "body_bytes": served.body_bytes,
            "wall_ms": round(wall * 1000, 1),
            "own_time_ms_by_category": breakdown(stats),
        }
        spec = spec_for(pub, side, kind, _fresh(caches, f"{side}-strace"))
        counted["syscalls"] = strace_counts(spec, out / f"{key}-{side}")
        report[side] = counted
        bench._log(f"profiled {key} {side}: {counted}")
    return report


def per_request(env: bench.Env, reps: int) -> dict[str, Any]:
    """Sequential GETs of one small file: our fetcher vs tuf's vs a bare httpx client, µs each.

    Every client is built and warmed (one request) outside the timed loop; the three take
    turns in blocks of ``reps`` requests, three times (ABCCBA…), and the median block counts.
    """
    import httpx
    from tuf.ngclient import Urllib3Fetcher  # type: ignore[attr-defined]

    from modelmesh_connectors.client.fetch import DownloadConfig, HttpFetcher

    pub = next(iter(env.pubs.values()))
    url = pub.ours.url + "timestamp.json"
    ours = HttpFetcher(DownloadConfig(allow_http=True))
    tuf = Urllib3Fetcher()
    plain = httpx.Client(trust_env=False)
    sides: dict[str, Callable[[], object]] = {
        "ours HttpFetcher.fetch_bytes": lambda: ours.fetch_bytes(url, max_length=1 << 20),
        "tuf Urllib3Fetcher.download_bytes": lambda: tuf.download_bytes(url, 1 << 20),
        "bare httpx.Client.get": lambda: plain.get(url).content,
    }
    samples: dict[str, list[float]] = {label: [] for label in sides}
    for fn in sides.values():
        fn()
    for round_no in range(4):
        for label, fn in bench.abba(list(sides.items()), round_no):
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            samples[label].append((time.perf_counter() - start) / reps * 1e6)
    plain.close()
    result = {label: round(sorted(v)[len(v) // 2], 1) for label, v in samples.items()}
    # One profiled block of our fetcher: where its per-request time goes.
    with AllThreads() as profiler:
        for _ in range(reps):
            sides["ours HttpFetcher.fetch_bytes"]()
    ours.close()
    stats = profiler.stats()
    result["ours_breakdown_ms_per_request"] = {  # type: ignore[assignment]
        k: round(v / reps, 3) for k, v in breakdown(stats).items()
    }
    return result


def _install_with(index: OursIndex, cache: Path, names: list[str], **extra: Any) -> None:
    from modelmesh_connectors.client.config import parse_config
    from modelmesh_connectors.client.loader import Loader

    mapping: dict[str, Any] = {
        "packages": names,
        "index": index.url,
        "trust_root": str(index.trust_root),
        "cache_dir": str(cache),
        "metadata_max_age": 0,
        **extra,
    }
    config = parse_config(mapping)
    with Loader(config) as loader:
        loader.install(config.packages)


def concurrency_experiment(env: bench.Env, reps: int) -> dict[str, Any]:
    """What the thread pools cost: ours with ``concurrency: 1`` (no pool) vs the default, vs tuf.

    Warm runs reuse one filled cache per side; cold runs get a fresh cache each round. Sides
    alternate ABBA; the figures are medians in ms.
    """
    report: dict[str, Any] = {}
    for label, kind in (("s10k", "warm"), ("s100k", "warm"), ("m1", "warm"), ("s10k", "cold")):
        if label in env.pubs:
            key, figures = _concurrency_case(env, label, kind, reps)
            report[key] = figures
            bench._log(f"concurrency {key}: {figures}")
    return report


def _concurrency_case(
    env: bench.Env, label: str, kind: str, reps: int
) -> tuple[str, dict[str, float]]:
    pub = env.pubs[label]
    tuf_repo = pub.tuf
    assert tuf_repo is not None
    names = [a.name for a in pub.archives]
    root = env.workdir / "concurrency" / f"{kind}-{label}"
    dirs = bench.FreshDirs(root / "fresh")
    filled: dict[str, Path] = {}
    if kind == "warm":
        for side in ("pool", "serial", "tuf"):
            filled[side] = root / side
            if side == "tuf":
                tuf_cold(tuf_repo, filled[side], pub.archives)
            else:
                _install_with(pub.ours, filled[side], names)

    def cache_for(side: str) -> Path:
        return filled[side] if kind == "warm" else dirs.fresh(side)

    def tuf_run(cache: Path) -> None:
        (tuf_warm_online if kind == "warm" else tuf_cold)(tuf_repo, cache, pub.archives)

    timed = bench.alternate(
        [
            ("pool", lambda _: partial(_install_with, pub.ours, cache_for("pool"), names)),
            (
                "serial",
                lambda _: partial(
                    _install_with, pub.ours, cache_for("serial"), names, concurrency=1
                ),
            ),
            ("tuf", lambda _: partial(tuf_run, cache_for("tuf"))),
        ],
        reps=reps,
        server=env.server,
    )
    key = f"{kind} {len(names)} x {bench._size(pub.nominal)}"
    figures = {
        side: round(timed.stats(side).median * 1000, 1) for side in ("pool", "serial", "tuf")
    }
    figures |= {
        "serial/pool": round(timed.ratio("serial", "pool"), 2),
        "serial/tuf": round(timed.ratio("serial", "tuf"), 2),
        "pool/tuf": round(timed.ratio("pool", "tuf"), 2),
    }
    return key, figures


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def importtime(code: str) -> dict[str, Any]:
    """Run ``python -X importtime -c code``; the slowest top-level and first-party imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows: list[tuple[str, int, int, int]] = []
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            own, cumulative, indent, name = match.groups()
            rows.append((name, int(own), int(cumulative), (len(indent) - 1) // 2))
    total_us = sum(own for _, own, _, _ in rows)
    top_level = sorted(
        ((name, cum) for name, _, cum, depth in rows if depth == 0), key=lambda r: -r[1]
    )
    first_party = [
        (name, cum) for name, _, cum, _ in rows if name.startswith("modelmesh_connectors")
    ]
    third = Counter[str]()
    for name, own, _, _ in rows:
        third[name.split(".")[0]] += own
    return {
        "modules": len(rows),
        "total_ms": total_us / 1000,
        "top_level_ms": [(n, c / 1000) for n, c in top_level[:15]],
        "by_package_own_ms": [(n, c / 1000) for n, c in third.most_common(20)],
        "first_party": [n for n, _ in first_party],
    }


def profile_startup(env: bench.Env, out: Path) -> dict[str, Any]:
    """``-X importtime`` and cProfile of the two new-process scenarios."""
    report: dict[str, Any] = {}
    codes = {"builtins": "from modelmesh_connectors import ConnectorRegistry; ConnectorRegistry()"}
    if "offline" in env.pubs:
        pub = env.pubs["offline"]
        cache = env.workdir / "profile-caches" / "offline"
        ours_cold(pub.ours, cache, pub.archives)
        codes["offline-start"] = offline_start_code(pub.ours, cache, [a.name for a in pub.archives])
    codes["import modelmesh"] = "import modelmesh"
    for key, code in codes.items():
        importtime(code)  # warm the .pyc files
        report[key] = importtime(code)
        script = out / f"startup-{key.replace(' ', '-')}.py"
        script.write_text(code + "\n")
        pstats_path = out / f"startup-{key.replace(' ', '-')}.pstats"
        subprocess.run(
            [sys.executable, "-m", "cProfile", "-o", str(pstats_path), str(script)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        stats = pstats.Stats(str(pstats_path))
        (out / f"startup-{key.replace(' ', '-')}.txt").write_text(top_text(stats))
        report[key]["ed25519_verify"] = _calls(
            stats, lambda f, n: f == "~" and "verify" in n and "ed25519" in n.lower()
        )
        report[key]["compile_calls"] = _calls(
            stats, lambda f, n: f == "~" and n == "<built-in method builtins.compile>"
        )
        bench._log(f"profiled start-up {key}: {report[key]['total_ms']:.0f} ms of imports")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["child"]:
        child(json.loads(args_list[1]))
        return 0
    parser = argparse.ArgumentParser(description="profile the benchmark scenarios")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--only",
        help=f"comma-separated: {', '.join(_SCENARIOS)}, concurrency, per-request, startup",
    )
    args = parser.parse_args(args_list)
    selected = (
        [*_SCENARIOS, "concurrency", "per-request", "startup"]
        if args.only is None
        else args.only.split(",")
    )
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = bench.QUICK if args.quick else bench.FULL
    needed = [s for s in selected if s in _SCENARIOS]
    bench_keys = set(needed) or {"warm-10k"}
    if "concurrency" in selected:
        bench_keys |= {"warm-10k", "warm-100k", "warm-1m"}
    if "startup" in selected:
        bench_keys |= {"offline-start"}
    workdir = Path(tempfile.mkdtemp(prefix="mmc-profile-"))
    report: dict[str, Any] = {}
    try:
        with bench.environment(workdir, sizes, sorted(bench_keys)) as env:
            for key in needed:
                report[key] = profile_scenario(env, key, args.out)
            if "concurrency" in selected:
                report["concurrency"] = concurrency_experiment(env, sizes.reps)
            if "per-request" in selected:
                report["per-request"] = per_request(env, 200)
                bench._log(f"per request: {report['per-request']}")
            if "startup" in selected:
                report["startup"] = profile_startup(env, args.out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    (args.out / "profile.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
