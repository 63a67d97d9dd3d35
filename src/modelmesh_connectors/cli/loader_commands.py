"""CLI: ``install``, ``load``, ``cache``, ``lock`` and ``mirror`` — the loader's shell.

Commands import what only they need inside their function: ``--help`` and the other
commands stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from modelmesh_connectors.cli.package_commands import print_table
from modelmesh_connectors.client.config import (
    LoaderConfig,
    load_config,
    parse_config,
    parse_index_urls,
)
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.errors import ConfigError
from modelmesh_connectors.package.requirements import LocalSpec, parse_package_spec
from modelmesh_connectors.registry import build_registry

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add this module's subcommands to the parser."""
    p = sub.add_parser("install", help="download and verify packages into the cache")
    p.add_argument("requirements", nargs="+", help="requirement, https URL or local path")
    _config_args(p, required=False)
    p.set_defaults(handler=_install)

    p = sub.add_parser("load", help="load a config's packages and show the registry")
    _config_args(p, required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_load)

    p = sub.add_parser(
        "cache",
        help="inspect or clean the archive cache (list also shows one metadata record per "
        "trust root; prune never removes a record: it holds the rollback reference)",
    )
    p.add_argument("action", choices=["list", "verify", "prune"])
    _config_args(p, required=False)
    p.set_defaults(handler=_cache)

    p = sub.add_parser("lock", help="resolve every package and write connectors.lock")
    _config_args(p, required=True)
    p.add_argument("-o", "--output", type=Path, help="lock file (default: next to the config)")
    p.add_argument(
        "--upgrade",
        nargs="?",
        const="*",
        metavar="NAME",
        help="move pins (all, or only NAME) instead of keeping existing ones",
    )
    p.set_defaults(handler=_lock)

    p = sub.add_parser("mirror", help="copy trust root, signed metadata and archives for air gaps")
    _config_args(p, required=True)
    p.add_argument("--to", type=Path, required=True, help="target directory")
    p.add_argument("--bundle", type=Path, help="also write a single-file .tar bundle")
    p.set_defaults(handler=_mirror)


def _config_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--config", type=Path, required=required, help="ModelMesh YAML with connectors:")
    p.add_argument("--index", action="append", help="index URL (repeat for mirrors)")
    p.add_argument("--trust-root", type=Path, help="trust root file (keys/root.json)")
    p.add_argument("--cache-dir", type=Path, help="cache directory")
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument("--locked", action="store_true", help="install exactly what the lock pins")


def _config(args: argparse.Namespace) -> LoaderConfig:
    base = load_config(args.config) if args.config else parse_config({})
    overrides: dict[str, Any] = {}
    if args.index:
        overrides["index"] = parse_index_urls(list(args.index))
    if args.trust_root:
        overrides["trust_root"] = args.trust_root.resolve()
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir.resolve()
    if args.offline:
        overrides["offline"] = True
    if args.locked:
        overrides["locked"] = True
        if base.lock_file is None:
            overrides["lock_file"] = base.base_dir / "connectors.lock"
    return LoaderConfig(**{**base.__dict__, **overrides}) if overrides else base


def _install(args: argparse.Namespace) -> int:
    cfg = _config(args)
    specs = [parse_package_spec(r, base_dir=Path.cwd()) for r in args.requirements]
    bar = _ProgressBar() if sys.stderr.isatty() else None  # quiet when not on a terminal
    with Loader(cfg, progress=bar) as loader:
        installed = loader.install(specs)
    if bar is not None:
        bar.finish()
    for resolved, _path in installed:
        size = f"{resolved.length} bytes" if resolved.length is not None else "size unsigned"
        print(f"{resolved.name} {resolved.version} ({size}) sha256={resolved.sha256}")
    return 0


class _ProgressBar:
    """One status line on stderr: the download in progress and its share done."""

    def __init__(self, width: int = 30) -> None:
        self._width = width
        self._lock = threading.Lock()  # downloads run in several threads

    def __call__(self, label: str, done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = int(share * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        with self._lock:
            sys.stderr.write(f"\r{label[:40]:<40} [{bar}] {share:4.0%}")
            sys.stderr.flush()

    def finish(self) -> None:
        sys.stderr.write("\n")


def _load(args: argparse.Namespace) -> int:
    registry = build_registry(_config(args), freeze=True)
    rows: list[dict[str, Any]] = []
    for info in registry.list_connectors():
        origin = registry.origin(info.id)
        rows.append(
            {
                "id": info.id,
                "type": info.connector_type.value,
                "version": info.version,
                "origin": str(origin),
                "signed_by": list(origin.signed_by),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(
            [[str(r["id"]), str(r["type"]), str(r["version"]), str(r["origin"])] for r in rows],
            ["ID", "TYPE", "VERSION", "ORIGIN"],
        )
    return 0


def _cache(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.cache import ArchiveCache

    cfg = _config(args)
    cache = ArchiveCache(cfg.resolved_cache_dir())
    if args.action == "list":
        from modelmesh_connectors.client.state import MetadataStore

        for entry in cache.entries():
            print(f"{entry.sha256}  {entry.size}")
        # State is keyed by trust root, never by URL: one record per root, whatever the mirrors.
        store = MetadataStore(cfg.resolved_cache_dir())
        for record in store.trust_roots():
            print(f"metadata {record.directory.name}  {record.identity}")
        for legacy in store.origins():
            print(
                f"metadata {legacy.directory.name}  legacy record of {legacy.url} (read only, "
                "to migrate its rollback reference once it verifies from the trust root)"
            )
        return 0
    if args.action == "verify":
        bad = cache.verify_all()
        for digest in bad:
            print(f"corrupt (removed): {digest}")
        print(f"{len(cache.entries())} entries ok, {len(bad)} corrupt")
        return 1 if bad else 0
    keep: set[str] = set()
    if args.config:
        with Loader(cfg) as loader:
            keep = {r.sha256 for r, _ in loader.install(list(cfg.packages))}
    removed = cache.prune(keep)
    print(f"pruned {len(removed)} entries, kept {len(keep)}")
    return 0


def _lock(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.lockfile import LockFile
    from modelmesh_connectors.client.resolve import ResolvedArchive

    cfg = _config(args)
    out = args.output or (cfg.lock_file or cfg.base_dir / "connectors.lock")
    existing = LockFile.read(out) if out.exists() and args.upgrade != "*" else None
    partial: _PartialLock | None = None
    with Loader(LoaderConfig(**{**cfg.__dict__, "locked": False})) as loader:
        if existing is not None:
            keep = LockFile(tuple(e for e in existing.entries if e.name != args.upgrade), out)
            partial = _PartialLock(keep)
            loader.use_lock(partial)
        everything = loader.resolve_all(cfg.packages)
        resolved = [r for r in everything if isinstance(r, ResolvedArchive)]
        for r in resolved:
            loader.fetch_archive(r)  # a lock only pins what verified end to end
        # Local entries are pinned too (zips by hash): locked mode refuses what is not here.
        local = [loader.pin_local(s) for s in everything if isinstance(s, LocalSpec)]
        for pin in local:
            if partial is not None:
                partial.check_local(pin)  # a changed local zip moves only with --upgrade
    lock = LockFile.from_resolved(resolved, local, base=out.parent)
    lock.write(out)
    for e in lock.entries:
        if e.kind == "directory":
            print(
                f"{e.name}=={e.version} directory {e.path} (named, not pinned: locked mode loads "
                "it only with allow_unpinned_directories: true)"
            )
        elif e.kind == "local-zip":
            print(f"{e.name}=={e.version} {e.path} sha256={e.sha256}")
        else:
            print(f"{e.name}=={e.version} sha256={e.sha256}")
    print(f"wrote {out}")
    return 0


class _PartialLock:
    """Keep existing pins when locking without --upgrade; new packages resolve freely."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def pinned_version(self, name: str) -> str | None:
        for e in self._lock.entries:
            if e.kind == "archive" and e.name == name:
                return str(e.version)
        return None

    def check_local(self, pin: Any) -> None:
        if self._lock.local_entry(pin) is not None:
            self._lock.check_local(pin)

    def check(self, resolved: Any) -> None:
        if self.pinned_version(resolved.name) is not None:
            self._lock.check(resolved)

    def check_complete(self, resolved: Any) -> None:
        return None


def _mirror(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.mirror import make_mirror

    cfg = _config(args)
    if not cfg.packages:
        raise ConfigError("connectors.packages: nothing to mirror")
    report = make_mirror(cfg, args.to, bundle=args.bundle)
    for line in report:
        print(line)
    return 0
