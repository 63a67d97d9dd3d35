"""Air-gapped mirrors: copy exactly the signed files a configuration needs, byte for byte.

The result is a valid index directory (root chain, timestamp, the index top, the group and bin
nodes on the paths to the configured packages, their archives and detached signatures) plus
a copy of the trust root under ``keys/root.json``. Any static server can serve it, or the
loader can use it directly with ``bundle:`` — either way the same verification runs as online.
A bin copied here may list releases whose archives were not copied; the loader then reports
them missing.

The carried ``keys/root.json`` is for reference only and is **not** a trust anchor: whoever
can swap the bundle can swap that file with it, so the loader refuses a ``trust_root`` inside
the bundle. The isolated machine must get its trust root out of band; the report prints the
copy's sha256 so an operator can compare it with the root provisioned there.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from modelmesh_connectors._internal.digest import sha256_hex
from modelmesh_connectors._internal.files import write_atomic
from modelmesh_connectors.client.config import LoaderConfig
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.client.resolve import ResolvedArchive
from modelmesh_connectors.errors import CacheError

__all__ = ["make_mirror"]


def _write(target: Path, rel: str, data: bytes) -> None:
    try:
        write_atomic(target / rel, data)
    except OSError as exc:
        raise CacheError(f"cannot write {target / rel}: {exc}") from exc


def make_mirror(config: LoaderConfig, target: Path, *, bundle: Path | None = None) -> list[str]:
    """Resolve the configuration's packages and copy what they need into ``target``.

    Args:
        config: The connected machine's configuration (an index must be reachable).
        target: Directory to write (created; existing files are replaced atomically).
        bundle: Also write the directory as one uncompressed, deterministic ``.tar`` file.

    Returns:
        One human-readable line per copied package, plus a summary.

    Raises:
        ConnectorError: resolution, download or verification fails (nothing is copied
            from an unverified byte: everything goes through the loader first).
    """
    lines: list[str] = []
    with Loader(config) as loader:
        installed = loader.install(list(config.packages))
        view = loader.view()
        state = view.state()
        store = view.store
        mirror = view.mirrors[0]
        fetcher = mirror.fetcher()
        limits = config.limits
        for version in range(1, state.root.version + 1):
            rel = f"root/{version}.json"
            _write(
                target, rel, fetcher.fetch_bytes(mirror.url + rel, max_length=limits.max_root_bytes)
            )
        ts, top = store.load_timestamp(), store.load_index()
        if ts is None or top is None or state.index is None or state.timestamp is None:
            raise CacheError("the trusted index state was not stored; cannot mirror it")
        _write(target, state.timestamp.index.path, top)
        for resolved, _path in installed:
            if not isinstance(resolved, ResolvedArchive) or resolved.release is None:
                continue
            assert resolved.length is not None  # signed releases always have one
            data = loader.cache.read_verified(resolved.sha256, resolved.length)
            gp = state.index.group_prefix(resolved.name)
            gref = state.index.groups[gp]
            group_bytes = view.node_bytes(gref)
            group = state.verify_group(gp, group_bytes)
            bref = group.bins[state.index.bin_prefix(resolved.name)]
            _write(target, gref.path, group_bytes)
            _write(target, bref.path, view.node_bytes(bref))
            file = resolved.release.file
            _write(target, file, data)
            sig = fetcher.fetch_bytes(
                mirror.url + file + ".sig", max_length=limits.max_signature_bytes
            )
            _write(target, file + ".sig", sig)
            lines.append(f"{resolved.name} {resolved.version} ({len(data)} bytes)")
        if config.trust_root is not None:
            anchor = loader.anchor()
            _write(target, "keys/root.json", anchor)
            lines.append(
                f"keys/root.json is a copy for reference, NOT a trust anchor: provision the "
                f"trust root on the isolated machine out of band (outside the bundle) and "
                f"check its sha256 is {sha256_hex(anchor)}"
            )
        _write(target, "timestamp.json", ts)  # last, like a publish
    if bundle is not None:
        _tar(target, bundle)
        lines.append(f"bundle {bundle}")
    lines.append(f"mirrored {len(installed)} package(s) to {target}")
    return lines


def _tar(source: Path, out: Path) -> None:
    """A deterministic tar (sorted, fixed mtimes and owners) of ``source``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out.write_bytes(buffer.getvalue())
