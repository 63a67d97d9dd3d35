"""CLI: ``install``, ``load``, ``cache``, ``lock`` and ``mirror`` — the loader's shell.

Commands import what only they need inside their function: ``--help`` and the other
commands stay fast. The configuration file is ``--config``, else ``$MODELMESH_CONFIG``, else
``./modelmesh.yaml`` when it exists; ``-v`` names the one chosen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelmesh_connectors.cli.output import emit, info, note, progress_for
from modelmesh_connectors.cli.package_commands import print_table
from modelmesh_connectors.errors import ConfigError

if TYPE_CHECKING:
    from modelmesh_connectors.client.config import LoaderConfig
    from modelmesh_connectors.client.loader import Loader


__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "register"]

CONFIG_ENV = "MODELMESH_CONFIG"
DEFAULT_CONFIG = "modelmesh.yaml"


def register(sub: Any) -> None:
    """Add this module's subcommands to the parser."""
    p = sub.add_parser("install", help="download and verify packages into the cache")
    p.add_argument(
        "requirements",
        nargs="+",
        help="requirement (quote it: 'name>=1.1'), https URL or local path",
    )
    _config_args(p)
    p.set_defaults(handler=_install)

    p = sub.add_parser("load", help="load a config's packages and show the registry")
    _config_args(p)
    p.set_defaults(handler=_load)

    p = sub.add_parser(
        "cache",
        help="inspect or clean the archive cache (list also shows one metadata record per "
        "trust root; prune never removes a record: it holds the rollback reference)",
    )
    actions = p.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    a = actions.add_parser(
        "list", help="list cached archives and the metadata record of each trust root"
    )
    _config_args(a, network=False)
    a.set_defaults(handler=_cache_list)
    a = actions.add_parser(
        "verify", help="re-hash every cached archive and remove corrupt ones (exit 8 if any)"
    )
    _config_args(a, network=False)
    a.set_defaults(handler=_cache_verify)
    a = actions.add_parser(
        "prune",
        help="remove cached archives no given configuration uses (--all: every archive)",
        description="Remove cached archives that none of the given configurations resolves\n"
        "to. Without a configuration (--config, $MODELMESH_CONFIG or ./modelmesh.yaml) it\n"
        "refuses unless --all says to remove every archive. Metadata records are never\n"
        "removed: they hold the rollback reference.",
    )
    _config_args(a, several=True)
    a.add_argument(
        "--all",
        action="store_true",
        dest="prune_all",
        help="remove every cached archive (required when no configuration is given)",
    )
    a.add_argument(
        "--dry-run", action="store_true", help="only show what would be removed and kept"
    )
    a.set_defaults(handler=_cache_prune)

    p = sub.add_parser("lock", help="resolve every package and write connectors.lock")
    _config_args(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="lock file (default: the config's lock_file, else connectors.lock next to it)",
    )
    p.add_argument(
        "--upgrade",
        nargs="?",
        const="*",
        metavar="NAME",
        help="move pins (all, or only NAME) instead of keeping existing ones (default: keep)",
    )
    p.set_defaults(handler=_lock)

    p = sub.add_parser("mirror", help="copy trust root, signed metadata and archives for air gaps")
    _config_args(p)
    p.add_argument("--to", type=Path, required=True, help="target directory (created)")
    p.add_argument("--bundle", type=Path, help="also write a single-file .tar bundle (default: no)")
    p.set_defaults(handler=_mirror)


def _config_args(
    p: argparse.ArgumentParser, *, several: bool = False, network: bool = True
) -> None:
    p.add_argument(
        "--config",
        type=Path,
        action="append" if several else "store",
        help="ModelMesh YAML with a connectors: section"
        + (" (repeat: keep what any of them uses)" if several else "")
        + f" (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG} if it exists)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default: the config's cache_dir, else "
        "$MODELMESH_CONNECTORS_CACHE, else the platform cache directory)",
    )
    if not network:
        return
    p.add_argument(
        "--index", action="append", help="index URL, repeat for mirrors (default: the config's)"
    )
    p.add_argument(
        "--trust-root", type=Path, help="trust root file, keys/root.json (default: the config's)"
    )
    p.add_argument("--offline", action="store_true", help="never use the network")
    p.add_argument("--locked", action="store_true", help="install exactly what the lock pins")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="check the index for new metadata now, even if the cached state is younger "
        "than metadata_max_age (default: reuse it for 5m)",
    )


def _discover(explicit: Path | None) -> tuple[Path | None, str]:
    """The configuration file to use and why: --config, $MODELMESH_CONFIG, ./modelmesh.yaml."""
    if explicit is not None:
        return explicit, "--config"
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env), f"${CONFIG_ENV}"
    local = Path(DEFAULT_CONFIG)
    if local.is_file():
        return local, f"./{DEFAULT_CONFIG} in the current directory"
    return None, ""


def _config(
    args: argparse.Namespace, *, required: bool = True, path: Path | None = None
) -> LoaderConfig:
    from modelmesh_connectors.client.config import (
        LoaderConfig,
        load_config,
        parse_config,
        parse_index_urls,
    )

    chosen, why = _discover(path if path is not None else args.config)
    if chosen is None:
        if required:
            raise ConfigError(
                "no configuration: nothing given with --config, "
                f"${CONFIG_ENV} is not set and ./{DEFAULT_CONFIG} does not exist",
                hint=f"pass --config FILE, set ${CONFIG_ENV}, or run where {DEFAULT_CONFIG} is",
            )
        info(args, "configuration: none (no --config, $MODELMESH_CONFIG or ./modelmesh.yaml)")
        base = parse_config({})
    else:
        info(args, f"configuration: {chosen} (from {why})")
        base = load_config(chosen)
    overrides: dict[str, Any] = {}
    if getattr(args, "index", None):
        overrides["index"] = parse_index_urls(list(args.index))
    if getattr(args, "trust_root", None):
        overrides["trust_root"] = args.trust_root.resolve()
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir.resolve()
    if getattr(args, "offline", False):
        overrides["offline"] = True
    if getattr(args, "locked", False):
        overrides["locked"] = True
        if base.lock_file is None:
            overrides["lock_file"] = base.base_dir / "connectors.lock"
    if getattr(args, "refresh", False):
        if getattr(args, "offline", False) or base.offline:
            raise ConfigError(
                "--refresh checks the index over the network, but offline mode forbids it",
                hint="drop --refresh, or --offline / 'offline: true'",
            )
        overrides["metadata_max_age"] = 0.0  # a cached state is never fresh enough
    return LoaderConfig(**{**base.__dict__, **overrides}) if overrides else base


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _install(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.loader import Loader
    from modelmesh_connectors.package.requirements import RequirementSpec, parse_package_spec

    cfg = _config(args, required=False)
    specs = [parse_package_spec(r, base_dir=Path.cwd()) for r in args.requirements]
    notes: list[str] = []
    progress = progress_for(args)
    with progress or contextlib.nullcontext(), Loader(cfg, progress=progress) as loader:
        installed = loader.install(specs)
        reused = _reused_age(loader)
    max_age = _age(timedelta(seconds=cfg.metadata_max_age))
    for resolved, _path in installed:
        spec = resolved.spec
        if reused is not None and isinstance(spec, RequirementSpec) and not spec.exact_version:
            # An unpinned choice made from cached metadata may miss a release published since.
            notes.append(
                f"{spec.text!r} resolved to {resolved.version} from index metadata checked "
                f"{_age(reused)} ago (metadata_max_age {max_age}); "
                "a newer release published since is not seen: pass --refresh to check now"
            )
    rows = [
        {
            "name": r.name,
            "version": r.version,
            "sha256": r.sha256,
            "length": r.length,
            "path": str(path),
            "source": r.source,
        }
        for r, path in installed
    ]
    lines = []
    for r, _path in installed:
        size = f"{r.length} bytes" if r.length is not None else "size unsigned"
        lines.append(f"{r.name} {r.version} ({size}) sha256={r.sha256}")
    emit(args, {"installed": rows, "notes": notes}, lines)
    for text in notes:
        note(args, text)
    return 0


def _reused_age(loader: Loader) -> timedelta | None:
    """How old the reused cached index state was (None: refreshed, or no index used)."""
    if not (loader.config.index or loader.config.bundle):
        return None
    try:
        return loader.view().reused_age
    except ConfigError:
        return None


def _load(args: argparse.Namespace) -> int:
    from modelmesh_connectors.registry import build_registry

    progress = progress_for(args)
    with progress or contextlib.nullcontext():
        registry = build_registry(_config(args), freeze=True, progress=progress)
    rows: list[dict[str, Any]] = []
    for item in registry.list_connectors():
        origin = registry.origin(item.id)
        rows.append(
            {
                "id": item.id,
                "type": item.connector_type.value,
                "version": item.version,
                "origin": str(origin),
                "signed_by": list(origin.signed_by),
            }
        )
    if args.json:
        emit(args, rows, [])
    elif args.verbosity > -2:
        print_table(
            [[str(r["id"]), str(r["type"]), str(r["version"]), str(r["origin"])] for r in rows],
            ["ID", "TYPE", "VERSION", "ORIGIN"],
        )
    return 0


def _cache_list(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.cache import ArchiveCache
    from modelmesh_connectors.client.state import MetadataStore

    cfg = _config(args, required=False)
    cache = ArchiveCache(cfg.resolved_cache_dir())
    entries = cache.entries()
    # State is keyed by trust root, never by URL: one record per root, whatever the mirrors.
    store = MetadataStore(cfg.resolved_cache_dir())
    records = store.trust_roots()
    legacy = store.origins()
    data = {
        "cache_dir": str(cfg.resolved_cache_dir()),
        "archives": [{"sha256": e.sha256, "size": e.size} for e in entries],
        "metadata": [{"record": r.directory.name, "trust_root": r.identity} for r in records],
        "legacy_metadata": [{"record": r.directory.name, "url": r.url} for r in legacy],
    }
    lines = [f"{e.sha256}  {e.size}" for e in entries]
    lines += [f"metadata {r.directory.name}  {r.identity}" for r in records]
    lines += [
        f"metadata {r.directory.name}  legacy record of {r.url} (read only, to migrate its "
        "rollback reference once it verifies from the trust root)"
        for r in legacy
    ]
    emit(args, data, lines)
    return 0


def _cache_verify(args: argparse.Namespace) -> int:
    from modelmesh_connectors.cli.exit_codes import ExitCode
    from modelmesh_connectors.client.cache import ArchiveCache

    cfg = _config(args, required=False)
    cache = ArchiveCache(cfg.resolved_cache_dir())
    bad = cache.verify_all()
    left = len(cache.entries())
    lines = [f"corrupt (removed): {digest}" for digest in bad]
    lines.append(f"{left} entries ok, {len(bad)} corrupt")
    emit(args, {"ok": left, "corrupt_removed": bad}, lines)
    return int(ExitCode.CACHE) if bad else 0


def _cache_prune(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.cache import ArchiveCache
    from modelmesh_connectors.client.loader import Loader
    from modelmesh_connectors.client.resolve import ResolvedArchive

    paths: list[Path] = list(args.config or [])
    if not paths:
        chosen, _why = _discover(None)
        if chosen is not None:
            paths = [chosen]
    if args.prune_all and paths and args.config:
        raise ConfigError(
            "--all removes every cached archive; it cannot be combined with --config",
            hint="drop --all to keep what the configurations use",
        )
    if not paths and not args.prune_all:
        raise ConfigError(
            "cache prune: no configuration given, so every cached archive would be removed",
            hint="pass --config FILE (repeat for several: what any of them uses is kept), "
            "or --all to remove everything; --dry-run shows what would go",
        )
    # Each cache directory keeps the union of what every configuration using it resolves to.
    keep: dict[Path, set[str]] = {}
    users: dict[Path, list[str]] = {}
    if args.prune_all and not args.config:
        paths = []
    if not paths:
        cfg = _config(args, required=False)
        keep[cfg.resolved_cache_dir()] = set()
    for path in paths:
        cfg = _config(args, path=path)
        directory = cfg.resolved_cache_dir()
        keep.setdefault(directory, set())
        users.setdefault(directory, []).append(str(path))
        with Loader(cfg) as loader:
            for resolved in loader.resolve_all(list(cfg.packages)):
                if isinstance(resolved, ResolvedArchive):
                    keep[directory].add(resolved.sha256)
    report: list[dict[str, Any]] = []
    lines: list[str] = []
    for directory, digests in keep.items():
        cache = ArchiveCache(directory)
        entries = cache.entries()
        doomed = sorted(e.sha256 for e in entries if e.sha256 not in digests)
        kept = sorted(e.sha256 for e in entries if e.sha256 in digests)
        removed = doomed if args.dry_run else cache.prune(digests)
        verb = "would remove" if args.dry_run else "removed"
        lines += [f"{verb}: {d}" for d in removed]
        lines += [f"kept: {d}" for d in kept]
        lines.append(
            f"{directory}: {'would prune' if args.dry_run else 'pruned'} {len(removed)} "
            f"entries, kept {len(kept)}"
            + (f" (used by {', '.join(users[directory])})" if directory in users else "")
        )
        report.append(
            {
                "cache_dir": str(directory),
                "dry_run": bool(args.dry_run),
                "removed": removed,
                "kept": kept,
                "configs": users.get(directory, []),
            }
        )
    emit(args, report, lines)
    return 0


def _lock(args: argparse.Namespace) -> int:
    from modelmesh_connectors.client.config import LoaderConfig
    from modelmesh_connectors.client.loader import Loader
    from modelmesh_connectors.client.lockfile import LockFile
    from modelmesh_connectors.client.resolve import ResolvedArchive
    from modelmesh_connectors.package.requirements import LocalSpec

    cfg = _config(args)
    out = args.output or (cfg.lock_file or cfg.base_dir / "connectors.lock")
    existing = LockFile.read(out) if out.exists() and args.upgrade != "*" else None
    partial: _PartialLock | None = None
    progress = progress_for(args)
    with (
        progress or contextlib.nullcontext(),
        Loader(LoaderConfig(**{**cfg.__dict__, "locked": False}), progress=progress) as loader,
    ):
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
    lines: list[str] = []
    for e in lock.entries:
        if e.kind == "directory":
            lines.append(
                f"{e.name}=={e.version} directory {e.path} (named, not pinned: locked mode loads "
                "it only with allow_unpinned_directories: true)"
            )
        elif e.kind == "local-zip":
            lines.append(f"{e.name}=={e.version} {e.path} sha256={e.sha256}")
        else:
            lines.append(f"{e.name}=={e.version} sha256={e.sha256}")
    lines.append(f"wrote {out}")
    emit(args, {"lock_file": str(out), "entries": [e.to_json_obj() for e in lock.entries]}, lines)
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
    emit(
        args,
        {"to": str(args.to), "bundle": str(args.bundle) if args.bundle else None, "report": report},
        report,
    )
    return 0
