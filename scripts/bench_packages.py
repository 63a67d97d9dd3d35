"""Synthetic connector packages for the benchmark: valid packages of a chosen archive size.

Each package is what a real connector looks like (a ``modelmesh-package.yaml`` declaring one
observability connector, an ``__init__.py``, a sink module) plus incompressible payload files
that bring the archive to the target size. Archives are packed with the project's own
:func:`modelmesh_connectors.package.pack.pack_to_bytes`, so every one of them passes the loader's checks;
the same files are then published into both indexes.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from modelmesh_connectors.package.archive import ArchiveLimits
from modelmesh_connectors.package.pack import pack_to_bytes

__all__ = ["BIG_LIMITS", "BenchArchive", "build_archives"]

_PAYLOAD_FILE_MAX = 16 * 1024 * 1024  # bytes; ArchiveLimits.max_file_size default
_ARCHIVE_OVERHEAD = 920  # bytes; manifest + modules + zip headers, measured
_DEFLATE_GROWTH = 3277  # random data grows by 1/3277 under deflate (5 bytes per 16 KiB block)
# Caps for packing and publishing archives above the default 64 MiB total (the 200 MiB one).
BIG_LIMITS = ArchiveLimits(max_total_size=512 * 1024 * 1024)

_SINK_SOURCE = '''\
"""Benchmark observability sink."""
from modelmesh.interfaces.observability import ObservabilityConnector


class Sink(ObservabilityConnector):
    """Collects events in memory."""

    def __init__(self, config=None):
        self.events = []

    def emit(self, event):
        self.events.append(event)

    def log(self, entry):
        self.events.append(entry)

    def flush(self, stats):
        self.events.append(stats)

    def trace(self, entry):
        self.events.append(entry)
'''


@dataclass(frozen=True)
class BenchArchive:
    """One packed archive on disk.

    Attributes:
        name: Package name (``bench-<label>-0001``).
        version: Package version.
        path: The ``.zip`` file.
        sha256: Hex SHA-256 of its bytes.
        length: Its size in bytes.
    """

    name: str
    version: str
    path: Path
    sha256: str
    length: int


def _write_package(root: Path, name: str, version: str, payload: int, rng: random.Random) -> Path:
    module = name.replace("-", "_")
    directory = root / f"{name}-{version}"
    (directory / module / "data").mkdir(parents=True)
    connector_id = "bench." + name.removeprefix("bench-") + ".v1"
    manifest = textwrap.dedent(
        f"""\
        name: {name}
        version: "{version}"
        description: Benchmark package
        connectors:
          - id: {connector_id}
            type: observability
            entry: {module}.sink:Sink
            description: Benchmark sink
        """
    )
    (directory / "modelmesh-package.yaml").write_text(manifest)
    (directory / module / "__init__.py").write_text('"""Benchmark package."""\n')
    (directory / module / "sink.py").write_text(_SINK_SOURCE)
    written = 0
    for part in range(-(-payload // _PAYLOAD_FILE_MAX)):  # ceil: bounded by the payload size
        size = min(_PAYLOAD_FILE_MAX, payload - written)
        (directory / module / "data" / f"payload-{part:03d}.bin").write_bytes(rng.randbytes(size))
        written += size
    return directory


def build_archives(
    out_dir: Path, *, label: str, count: int, size: int, seed: int
) -> list[BenchArchive]:
    """Pack ``count`` packages of about ``size`` bytes each into ``out_dir``.

    Args:
        out_dir: Directory for the sources (``src/``) and the archives.
        label: Short name part that keeps sets apart (``s10k``); lowercase letters and digits.
        count: How many packages.
        size: Target archive size in bytes (the payload is random, so it does not compress).
        seed: Seed for the payload bytes (reproducible archives).

    Returns:
        The archives, in name order.

    Raises:
        ArchiveError, ManifestError: a generated package is invalid (a bug here).
    """
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    archives: list[BenchArchive] = []
    for i in range(1, count + 1):
        name = f"bench-{label}-{i:04d}"
        payload = max(0, size - _ARCHIVE_OVERHEAD)
        payload -= payload // _DEFLATE_GROWTH
        source = _write_package(out_dir / "src", name, "1.0.0", payload, rng)
        data, filename = pack_to_bytes(source, limits=BIG_LIMITS)
        shutil.rmtree(source)  # the payload exists twice otherwise
        path = out_dir / filename
        path.write_bytes(data)
        archives.append(
            BenchArchive(name, "1.0.0", path, hashlib.sha256(data).hexdigest(), len(data))
        )
    return archives
