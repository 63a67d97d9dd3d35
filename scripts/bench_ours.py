"""Our side of the benchmark: an index built with our publisher API, and our loader's calls.

Everything here goes through the library's public entry points: ``repository`` (root_init,
init_repository, publish) to build the index, ``loader.Loader.install`` (resolve → download →
verify → cache, no import) for the timed client runs, and ``ConnectorRegistry.from_config`` in
the new-process offline start. Only :func:`build_metadata_index` writes index files itself
(from the ``metadata`` and ``envelope`` types, FORMAT.md §3), because publishing 100,000 real
archives one by one would take far too long; its nodes are signed for real.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_packages import BIG_LIMITS, BenchArchive
from modelmesh_connectors.client.config import LoaderConfig, parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    TIMESTAMP_TYPE,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    MetaRef,
    Release,
    ReleaseConnector,
    Timestamp,
    archive_path,
    bin_prefix,
)
from modelmesh_connectors.package.package import Package, package_from_bytes
from modelmesh_connectors.publish.repository import (
    init_repository,
    publish,
    root_init,
    sharding_level,
)

__all__ = [
    "OursIndex",
    "build_metadata_index",
    "build_ours_index",
    "index_bytes",
    "offline_start_code",
    "ours_cold",
    "ours_install_one_big",
    "ours_resolve_only",
    "ours_warm_online",
]

_ROOT_EXPIRY = timedelta(days=365)  # lifetime of the benchmark root
_INDEX_EXPIRY = timedelta(days=30)  # lifetime of the bulk-built index top
_TIMESTAMP_EXPIRY = timedelta(days=7)  # lifetime of the bulk-built timestamp


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
    for archive in archives:
        publish(
            directory,
            archive.path,
            index_keys=keys.index,
            timestamp_keys=keys.timestamp,
            inspect=_inspect_big,
        )
    return OursIndex(directory, directory.parent / f"{directory.name}-root.json")


def build_metadata_index(directory: Path, names: Sequence[str]) -> OursIndex:
    """Write an index listing ``names`` (one release each) without archives.

    Every release envelope, the index top and the timestamp carry real Ed25519 signatures;
    the archive hashes are fake (nothing is downloaded in the scenario that uses it).

    Args:
        directory: Missing or empty directory for the index.
        names: Normalized package names.

    Returns:
        The index.
    """
    keys = _Keys(SigningKey.generate(), SigningKey.generate(), SigningKey.generate())
    directory.parent.mkdir(parents=True, exist_ok=True)
    root_bytes = _new_root(directory, keys)
    now = datetime.now(UTC).replace(microsecond=0)
    # The fan-out the publisher would choose for this many packages.
    group_chars, bin_chars = sharding_level(len(set(names)))
    bins: dict[str, dict[str, tuple[BinRelease, ...]]] = defaultdict(dict)
    for name in names:
        release = Release(
            name=name,
            version="1.0.0",
            file=archive_path(name, "1.0.0"),
            sha256=MetaRef.of(name.encode()).sha256,  # fake: no archive exists
            length=10240,
            requires_modelmesh=None,
            connectors=(
                ReleaseConnector("bench." + name.removeprefix("bench-") + ".v1", "observability"),
            ),
        )
        envelope = sign(RELEASE_TYPE, release.to_payload(), [keys.index])
        bins[bin_prefix(name, bin_chars)][name] = (BinRelease("1.0.0", envelope),)
    meta = directory / "meta"
    meta.mkdir(parents=True)
    groups: dict[str, dict[str, MetaRef]] = defaultdict(dict)
    for prefix, packages in sorted(bins.items()):
        data = BinNode(prefix, packages).to_payload()
        ref = MetaRef.of(data)
        (directory / ref.path).write_bytes(data)
        groups[prefix[:group_chars]][prefix] = ref
    group_refs: dict[str, MetaRef] = {}
    for prefix, bin_refs in sorted(groups.items()):
        data = GroupNode(prefix, bin_refs).to_payload()
        ref = MetaRef.of(data)
        (directory / ref.path).write_bytes(data)
        group_refs[prefix] = ref
    top_payload = IndexTop(1, now + _INDEX_EXPIRY, group_refs, group_chars, bin_chars).to_payload()
    top = sign(INDEX_TYPE, top_payload, [keys.index])
    top_bytes = top.to_bytes()
    top_ref = MetaRef.of(top_bytes)
    (directory / top_ref.path).write_bytes(top_bytes)
    timestamp = Timestamp(1, now + _TIMESTAMP_EXPIRY, 1, top_ref)
    ts_bytes = sign(TIMESTAMP_TYPE, timestamp.to_payload(), [keys.timestamp]).to_bytes()
    (directory / "root").mkdir()
    (directory / "root" / "1.json").write_bytes(root_bytes)
    # Last, as the publisher does: the index exists for clients once timestamp.json does.
    (directory / "timestamp.json").write_bytes(ts_bytes)
    return OursIndex(directory, directory.parent / f"{directory.name}-root.json")


def index_bytes(directory: Path) -> int:
    """Bytes of every metadata file of an index (root, timestamp, meta nodes; no archives)."""
    total = (directory / "timestamp.json").stat().st_size
    for sub in ("root", "meta"):
        with os.scandir(directory / sub) as entries:
            total += sum(e.stat().st_size for e in entries if e.is_file())
    return total


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
