"""Child process of the benchmark's memory row: one cold install, then the peak memory.

``ru_maxrss`` and ``VmHWM`` are high-water marks for the whole life of a process: they
cannot be reset between two installs in one process. So every measurement is a new process
that imports everything, installs one archive into an empty cache, and prints one JSON line::

    python scripts/bench_memory.py '<spec as JSON>'
    {"hwm_before": ..., "hwm_after": ..., "traced_peak": ...}

``hwm_*`` are the whole process's peak resident set in bytes (``/proc/self/status`` VmHWM,
or ``ru_maxrss`` where there is no ``/proc``): Python heap, C allocations (OpenSSL, zlib),
thread stacks and mapped file pages alike. ``traced_peak`` is the ``tracemalloc`` peak of the
Python heap during the install, measured in a separate child (``"mode": "tracemalloc"``)
because tracing itself costs memory; it is ``null`` in ``"rss"`` mode.
"""

from __future__ import annotations

import json
import resource
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from bench_ours import OursIndex, ours_cold
from bench_packages import BenchArchive
from bench_tuf import TufRepo, tuf_cold

__all__ = ["peak_rss"]


def peak_rss() -> int:
    """The whole process's peak resident set size so far, in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _archive(data: dict[str, object]) -> BenchArchive:
    return BenchArchive(
        str(data["name"]),
        str(data["version"]),
        Path(str(data["path"])),
        str(data["sha256"]),
        int(str(data["length"])),
    )


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    archive = _archive(spec["archive"])
    cache = Path(spec["cache"])
    if spec["side"] == "ours":
        index = OursIndex(Path(spec["directory"]), Path(spec["trust_root"]), spec["url"])
        install: Callable[[], None] = lambda: ours_cold(index, cache, [archive])  # noqa: E731
    else:
        repo = TufRepo(
            Path(spec["directory"]),
            Path(spec["root_file"]).read_bytes(),
            spec["metadata_url"],
            spec["targets_url"],
        )
        install = lambda: tuf_cold(repo, cache, [archive])  # noqa: E731
    before = peak_rss()
    traced: int | None = None
    if spec["mode"] == "tracemalloc":
        tracemalloc.start()
        install()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        install()
    print(json.dumps({"hwm_before": before, "hwm_after": peak_rss(), "traced_peak": traced}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
