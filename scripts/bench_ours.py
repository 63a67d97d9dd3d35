"""Our side of the benchmark: an index built with our publisher API, and our loader's calls.

Everything here goes through the library's public entry points: ``repository`` (root_init,
init_repository, publish) to build the index, ``loader.Loader.install`` (resolve → download →
verify → cache, no import) for the timed client runs, and ``ConnectorRegistry.from_config`` in
the new-process offline start. Every index, including the large one of the index-scale row,
is built by the publisher (:func:`publish_all`), never written at the file-format level.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_packages import BIG_LIMITS, BenchArchive
from modelmesh_connectors.client.config import LoaderConfig, parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.package.package import Package, package_from_bytes
from modelmesh_connectors.publish.repository import (
    init_repository,
    publish_many,
    root_init,
)

__all__ = [
    "PUBLISH_METHOD",
    "OursIndex",
    "build_ours_index",
    "index_bytes",
    "offline_start_code",
    "ours_cold",
    "ours_install_one_big",
    "ours_resolve_only",
    "ours_warm_online",
    "publish_all",
]

_ROOT_EXPIRY = timedelta(days=365)  # lifetime of the benchmark root
# How the benchmark indexes are built, for the report. The publisher has no bulk publish yet
# (issue 15): when it lands, publish_all() becomes that one call and this line says so.
_HEX64 = re.compile(rb"[0-9a-f]{64}")  # a sha256 in hex, as index files name their nodes
PUBLISH_METHOD = "one repository.publish_many() of every archive (bulk publish)"


@dataclass(frozen=True)
class OursIndex:
    """An index directory of ours and how a client reaches it.

    Attributes:
        directory: The index directory.
        trust_root: The shipped root file (a copy of ``root/1.json``), the client's anchor.
        url: Base URL the index is served at (ends in ``/``; empty until served).
    """

    directory: Path
    trust_root: Path
    url: str = ""

    def with_base(self, base_url: str, prefix: str) -> OursIndex:
        """The same index served at ``base_url + prefix``."""
        return OursIndex(self.directory, self.trust_root, f"{base_url}{prefix}")


@dataclass(frozen=True)
class _Keys:
    root: SigningKey
    index: SigningKey
    timestamp: SigningKey


def _new_root(directory: Path, keys: _Keys) -> bytes:
    staged = root_init(
        root_keys=[keys.root.public],
        root_threshold=1,
        index_keys=[keys.index.public],
        index_threshold=1,
        timestamp_keys=[keys.timestamp.public],
        timestamp_threshold=1,
        expires=datetime.now(UTC).replace(microsecond=0) + _ROOT_EXPIRY,
    )
    root_bytes = staged.with_signature(keys.root).to_bytes()
    (directory.parent / f"{directory.name}-root.json").write_bytes(root_bytes)
    return root_bytes


def _inspect_big(path: Path) -> Package:
    # The default inspector caps a package at 64 MiB unpacked; the 200 MiB archive is over it.
    return package_from_bytes(path.read_bytes(), source=str(path), limits=BIG_LIMITS)


def build_ours_index(directory: Path, archives: Sequence[BenchArchive]) -> OursIndex:
    """Create an index and publish every archive into it with the publisher API.

    Args:
        directory: Missing or empty directory for the index.
        archives: The archives, published in order.

    Returns:
        The index (URL filled in by :meth:`OursIndex.with_base`).

    Raises:
        PublishError, TrustError: publishing failed (a bug in the benchmark or the library).
    """
    keys = _Keys(SigningKey.generate(), SigningKey.generate(), SigningKey.generate())
    directory.parent.mkdir(parents=True, exist_ok=True)
    root_bytes = _new_root(directory, keys)
    init_repository(directory, root_bytes, keys.index, keys.timestamp)
    publish_all(directory, [a.path for a in archives], keys.index, keys.timestamp)
    return OursIndex(directory, directory.parent / f"{directory.name}-root.json")


def publish_all(
    directory: Path, paths: Sequence[Path], index_key: SigningKey, timestamp_key: SigningKey
) -> None:
    """Publish ``paths`` into the index at ``directory`` with the publisher API.

    The one place the benchmark publishes: one bulk ``publish_many()`` (see
    :data:`PUBLISH_METHOD`), which also makes the publisher pick the sharding level for the
    final package count, exactly as a publisher building such an index would.
    """
    publish_many(
        directory,
        list(paths),
        index_keys=index_key,
        timestamp_keys=timestamp_key,
        inspect=_inspect_big,
    )


def index_bytes(directory: Path) -> int:
    """Bytes of the live metadata of an index: root files, timestamp, reachable meta nodes.

    Superseded ``meta/`` files that one-by-one publishing leaves behind (nothing removes them
    yet) are not counted: a node is live when its hash appears in ``timestamp.json`` or in
    a live node (found by its ``meta/<sha256>.json`` name; a hex string that names no file is
    ignored).
    """
    total = (directory / "timestamp.json").stat().st_size
    with os.scandir(directory / "root") as entries:
        total += sum(e.stat().st_size for e in entries if e.is_file())
    seen: set[str] = set()
    pending = [(directory / "timestamp.json").read_bytes()]
    while pending:
        for digest in _HEX64.findall(_with_payloads(pending.pop())):
            name = digest.decode()
            node = directory / "meta" / f"{name}.json"
            if name in seen or not node.is_file():
                continue
            seen.add(name)
            data = node.read_bytes()
            total += len(data)
            pending.append(data)
    return total


def _with_payloads(data: bytes) -> bytes:
    """``data`` followed by the decoded ``payload`` of every envelope in it (hashes hide there)."""
    parts = [data]
    stack: list[Any] = [json.loads(data)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            payload = item.get("payload")
            if isinstance(payload, str):
                with contextlib.suppress(ValueError):
                    decoded = base64.b64decode(payload, validate=True)
                    parts.append(decoded)
                    with contextlib.suppress(ValueError):
                        stack.append(json.loads(decoded))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return b"\n".join(parts)


# -- the client ------------------------------------------------------------------------------------


def _config(
    index: OursIndex,
    cache: Path,
    names: Sequence[str],
    *,
    metadata_max_age: float | None = None,
) -> LoaderConfig:
    mapping: dict[str, Any] = {
        "packages": list(names),
        "index": index.url,
        "trust_root": str(index.trust_root),
        "cache_dir": str(cache),
    }
    if metadata_max_age is not None:
        mapping["metadata_max_age"] = metadata_max_age
    return parse_config(mapping)


def _install(config: LoaderConfig, expected: int) -> None:
    with Loader(config) as loader:
        installed = loader.install(config.packages)
    if len(installed) != expected:
        raise RuntimeError(f"ours: installed {len(installed)} archives, expected {expected}")


def ours_cold(index: OursIndex, cache: Path, archives: Sequence[BenchArchive]) -> None:
    """A first run: refresh, resolve, download and verify every archive into an empty cache.

    Args:
        index: The served index.
        cache: An empty cache directory.
        archives: What to install (by name, any version: the index has one).
    """
    _install(_config(index, cache, [a.name for a in archives]), len(archives))


def ours_warm_online(index: OursIndex, cache: Path, archives: Sequence[BenchArchive]) -> None:
    """A later run with everything cached, checking freshness online.

    ``metadata_max_age: 0`` makes the loader ask the server for ``timestamp.json`` (as
    tuf's ``refresh()`` always does) instead of reusing the cached state for 5 minutes.
    """
    config = _config(index, cache, [a.name for a in archives], metadata_max_age=0)
    _install(config, len(archives))


def ours_install_one_big(index: OursIndex, cache: Path, archive: BenchArchive) -> None:
    """Cold install of one archive (the 200 MiB throughput scenario)."""
    ours_cold(index, cache, [archive])


def ours_resolve_only(index: OursIndex, cache: Path, name: str) -> None:
    """Resolve one package against the index and verify its release; download nothing."""
    config = _config(index, cache, [name])
    with Loader(config) as loader:
        resolved = loader.resolve_all(config.packages)
    if len(resolved) != 1:
        raise RuntimeError(f"ours: resolved {len(resolved)} entries, expected 1")


def offline_start_code(index: OursIndex, cache: Path, names: Sequence[str]) -> str:
    """Python source for ``python -c``: an offline registry with ``names`` loaded from cache.

    It prints one JSON line: whether httpx got imported, and how many connectors registered.
    """
    mapping = {
        "packages": list(names),
        "index": index.url,
        "trust_root": str(index.trust_root),
        "cache_dir": str(cache),
        "offline": True,
    }
    return (
        "import json, sys\n"
        "from modelmesh_connectors import ConnectorRegistry\n"
        f"registry = ConnectorRegistry.from_config({mapping!r})\n"
        "print(json.dumps({'httpx': 'httpx' in sys.modules, "
        "'connectors': len(registry.list_connectors())}))\n"
    )
