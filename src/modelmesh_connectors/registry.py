"""``ConnectorRegistry``: ModelMesh's built-ins (imported lazily) plus loaded packages.

One package cannot act for another: a package's code may only ever be registered under the
IDs its verified manifest declares, and only by the registry itself when it loads the
package. Every ``register``/``load_package`` call is attributed to a package when the object
passed in, or any frame on the calling stack, is that package's code
(:func:`importer.owner_of`, :func:`importer.calling_package`) — from any thread, at any time
— and such calls are refused. A batch of packages is checked whole (IDs, environment) before
the first of them is imported, and registered whole or not at all. :meth:`freeze` ends all
registration once start-up is done.

One module, over 600 lines, on purpose: the attribution guard (who may register what),
the whole-batch checks and the all-or-nothing registration share one lock and one set of
invariants; split, each part would have to re-establish the guard the others rely on.
"""

from __future__ import annotations

# Start-up cost: ``ConnectorRegistry()`` is on the path of every ModelMesh process, most of
# which never load a package. So this module imports only what a bare registry needs; what
# loading a package needs (the package reader with packaging and yaml, the tamper
# fingerprint, pathlib, logging, difflib) is imported in the method that needs it. No
# dataclasses either (it imports ``inspect``): the small records below are plain classes.
# A test (test_registry_startup) fails if a bare registry imports yaml, packaging,
# cryptography, httpx or dataclasses.
import _thread
import contextvars
import sys
from contextlib import contextmanager

from modelmesh_connectors.builtins import BUILTINS, Builtin
from modelmesh_connectors.errors import (
    DuplicateConnectorError,
    LibraryTamperedError,
    PackageError,
    PackageImportError,
    PolicyError,
    RegistryFrozenError,
    UnknownConnectorError,
)
from modelmesh_connectors.package.connector_types import (
    ConnectorInfo,
    ConnectorType,
    check_implements,
    classify,
    parse_connector_type,
)
from modelmesh_connectors.package.importer import (
    calling_package,
    owner_of,
)
from modelmesh_connectors.package.origin import Origin

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (and re) at start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path
    from typing import Any, Protocol

    from modelmesh_connectors._internal.integrity import Fingerprint
    from modelmesh_connectors.client.config import LoaderConfig
    from modelmesh_connectors.client.fetcher import Fetcher
    from modelmesh_connectors.package.importer import ImportedPackage
    from modelmesh_connectors.package.package import Package

else:
    Protocol = object  # PackageSource is a structural type for mypy, a plain class at runtime

__all__ = ["ConnectorRegistry", "Origin", "PackageSource", "build_registry"]


def _warn(message: str, *args: object) -> None:
    import logging  # lazily: only a refused registration logs (see the top of the module)

    logging.getLogger("modelmesh_connectors.registry").warning(message, *args)


_BUILTIN_IDS = frozenset(b.id for b in BUILTINS)


class PackageSource(Protocol):
    """Turns a ``load_package`` argument that is not a local path into a verified package."""

    def fetch_package(self, spec: str) -> tuple[Package, Origin]:
        """Resolve, download and verify ``spec``; return the package and its origin."""
        ...


class _Entry:
    __slots__ = ("builtin", "implementation", "info", "loaded", "origin")

    def __init__(
        self,
        info: ConnectorInfo,
        origin: Origin,
        builtin: Builtin | None = None,
        implementation: Any = None,
        loaded: bool = False,
    ) -> None:
        self.info = info
        self.origin = origin
        self.builtin = builtin
        self.implementation = implementation
        self.loaded = loaded


class _Loading:
    __slots__ = ("declared", "namespace", "package", "violations")

    def __init__(
        self, package: str, namespace: str, declared: frozenset[str], violations: list[str]
    ) -> None:
        self.package = package
        self.namespace = namespace
        self.declared = declared
        self.violations = violations


class _Owner:
    """A package namespace this registry imported: its label and its declared IDs."""

    __slots__ = ("declared", "package")

    def __init__(self, package: str, declared: frozenset[str]) -> None:
        self.package = package
        self.declared = declared


_LOADING: contextvars.ContextVar[_Loading | None] = contextvars.ContextVar(
    "modelmesh_connectors_loading", default=None
)


class ConnectorRegistry:
    """Connectors by ID: ModelMesh's built-ins plus those of loaded packages.

    Creating a registry imports no connector module; a built-in is imported the first time
    :meth:`get_connector` asks for it.

    Args:
        include_builtins: Start with ModelMesh's built-in connectors (default True).
        source: Resolves URLs and index requirements in :meth:`load_package` (set by
            :meth:`from_config`); without one only local paths load.
        require_signatures: Refuse unsigned local packages (set by configuration).
    """

    def __init__(
        self,
        *,
        include_builtins: bool = True,
        source: PackageSource | None = None,
        require_signatures: bool = False,
    ) -> None:
        self._lock = _thread.RLock()
        self._entries: dict[str, _Entry] = {}
        self._packages: dict[tuple[str, str], tuple[str, list[str], str]] = {}
        self._source = source
        self._require_signatures = require_signatures
        self._frozen = False
        self._owners: dict[str, _Owner] = {}  # namespaces registered here
        self._pending: dict[str, _Owner] = {}  # namespaces of the batch being imported
        self._violations: list[tuple[str, str]] = []
        # What the verifying code was bound to before this registry first ran package code.
        self._baseline: Fingerprint | None = None
        if include_builtins:
            for builtin in BUILTINS:
                info = ConnectorInfo(builtin.id, builtin.connector_type, "", builtin.description)
                self._entries[builtin.id] = _Entry(
                    info, Origin("builtin", "modelmesh-lite"), builtin=builtin
                )

    # -- construction from configuration ---------------------------------------------------

    @classmethod
    def from_config(
        cls, config: str | Path | Mapping[str, Any] | LoaderConfig, *, freeze: bool = False
    ) -> ConnectorRegistry:
        """Build a registry with the built-ins and every package a configuration lists.

        Every package is downloaded and verified (hash, signature, manifest) before the
        first one is imported.

        Args:
            config: A YAML file path, a mapping (a whole ModelMesh config or just its
                ``connectors:`` section), or a parsed ``LoaderConfig``.
            freeze: Freeze the registry once the packages are registered (see
                :meth:`freeze`); the safe pattern for a long-running process.

        Returns:
            The registry, with every package loaded (all packages or none).

        Raises:
            ConfigError: invalid configuration.
            ConnectorError: any package fails to resolve, verify or load.
        """
        return build_registry(config, freeze=freeze)

    # -- the seed's API --------------------------------------------------------------------

    def register(
        self,
        connector_id: str,
        implementation: Any,
        *,
        connector_type: ConnectorType | str | None = None,
        version: str | None = None,
        description: str | None = None,
    ) -> None:
        """Register one connector implementation.

        Args:
            connector_id: ``<namespace>.<name>.v<N>``.
            implementation: The connector class (or an instance).
            connector_type: Explicit type; otherwise worked out from the ModelMesh interface
                the implementation subclasses.
            version: Version string for :class:`ConnectorInfo` (default ``"0"``).
            description: Description (default: first line of the docstring).

        Raises:
            RegistryFrozenError: the registry was frozen.
            InvalidConnectorId: malformed ID.
            DuplicateConnectorError: the ID is taken (names both origins).
            ConnectorTypeError: the type cannot be worked out or does not fit.
            PackageImportError: the implementation or the caller is a package's code: a
                package's connectors are registered by the registry alone, under the IDs
                its manifest declares.
        """
        from modelmesh_connectors.package.ids import parse_connector_id

        self._check_open(f"register {connector_id!r}")
        actor = self._actor(implementation)
        if actor is not None:
            self._refuse(actor, str(connector_id))
        cid = str(parse_connector_id(connector_id))
        if connector_type is None:
            kind = classify(implementation)
        else:
            kind = parse_connector_type(connector_type)
            check_implements(implementation, kind, what=f"connector {cid}")
        doc = (getattr(implementation, "__doc__", None) or "").strip().splitlines()
        info = ConnectorInfo(
            cid, kind, version or "0", description or (doc[0].strip() if doc else "")
        )
        module = getattr(implementation, "__module__", "?")
        origin = Origin("runtime", f"{module}.{getattr(implementation, '__qualname__', '')}")
        with self._lock:
            self._check_open(f"register {cid!r}")  # frozen while we waited for the lock
            self._check_free(cid, origin)
            self._entries[cid] = _Entry(info, origin, implementation=implementation, loaded=True)

    def get_connector(self, connector_id: str) -> Any:
        """Return the implementation registered under ``connector_id``.

        Built-ins are imported on first use.

        Raises:
            UnknownConnectorError: (a ``KeyError``) with close matches suggested.
            LibraryTamperedError: a built-in ID resolves to a package's code (ModelMesh's
                module was rebound by code running in the process).
        """
        with self._lock:
            entry = self._entries.get(connector_id)
            if entry is None:
                import difflib

                close = difflib.get_close_matches(str(connector_id), self._entries, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UnknownConnectorError(f"no connector registered as {connector_id!r}{hint}")
            if not entry.loaded:
                assert entry.builtin is not None
                implementation = entry.builtin.load()
                owner = owner_of(implementation)
                if owner is not None:
                    # Stops a package replacing a built-in by rebinding ModelMesh's module.
                    raise LibraryTamperedError(
                        f"built-in connector {connector_id!r} resolves to code of package "
                        f"namespace {owner}, expected ModelMesh's own class"
                    )
                entry.implementation = implementation
                entry.loaded = True
            return entry.implementation

    def list_connectors(
        self, connector_type: str | ConnectorType | None = None
    ) -> list[ConnectorInfo]:
        """List connectors sorted by ID, optionally of one type.

        Args:
            connector_type: A :class:`ConnectorType` or its string value.

        Raises:
            InvalidConnectorType: (a ``ValueError``) unknown type string; lists valid ones.
        """
        from modelmesh_connectors.package.host import modelmesh_version

        kind = None if connector_type is None else parse_connector_type(connector_type)
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda e: e.info.id)
        out: list[ConnectorInfo] = []
        for entry in entries:
            if kind is not None and entry.info.connector_type is not kind:
                continue
            info = entry.info
            version = modelmesh_version() if entry.builtin is not None else info.version
            out.append(ConnectorInfo(info.id, info.connector_type, version, info.description))
        return out

    def load_package(self, path: str) -> list[str]:
        """Load a connector package and register everything its manifest declares.

        Args:
            path: A package directory, a ``.zip`` file, an ``https://`` archive URL
                (optionally ``#sha256=<hex>``), or a requirement resolved against the
                configured index (``acme-audit-log>=1.1,<2``).

        Returns:
            The registered connector IDs, in manifest order. Loading the identical package
            again is a no-op that returns the same IDs.

        Raises:
            RegistryFrozenError: the registry was frozen.
            LibraryTamperedError: this library's verifying code was rebound since this
                registry first imported package code (checked before anything is fetched).
            PackageError, TrustError, DownloadError, ResolutionError, RegistryError: all or
                nothing — on any error no connector of the package is registered and none
                of its modules stays imported.
        """
        from pathlib import Path

        from modelmesh_connectors.package.package import open_local_package

        self._check_open(f"load {path!r}")
        actor = calling_package(sys._getframe(1))
        if actor is not None:
            self._refuse(actor, f"package {path!r}", loads=True)
        self._check_untampered()
        if self._is_local(path) and self._source is not None:
            # Through the loader like a configured entry: it verifies a signed zip under
            # require_signatures and refuses what a lock (locked: true) does not pin.
            text = str(path)
            here = text if text.startswith("~") or Path(text).is_absolute() else Path.cwd() / text
            package, origin = self._source.fetch_package(str(here))
        elif self._is_local(path):
            if self._require_signatures:
                raise PolicyError(
                    f"{path}: require_signatures is on, so an unsigned local package is refused",
                    hint="load it through the signed index or a signed archive URL",
                )
            package = open_local_package(path)
            origin = Origin("local", str(Path(path).resolve()))
        else:
            if self._source is None:
                raise PackageError(
                    f"{path!r} is not a local directory or .zip, and no index is configured",
                    hint="use ConnectorRegistry.from_config with an 'index:' to load remote "
                    "packages",
                )
            package, origin = self._source.fetch_package(path)
        return self.add_package(package, origin)

    # -- extensions ------------------------------------------------------------------------

    @property
    def frozen(self) -> bool:
        """Whether :meth:`freeze` was called."""
        return self._frozen

    def freeze(self) -> None:
        """Refuse every later ``register``, ``load_package`` and ``add_package(s)``.

        Call it once start-up has loaded everything the configuration lists: from then on
        no code — a package's background thread included — can add or replace a connector
        through the registry's API, and no late load can run verification code that a
        loaded package may have rebound. Freezing is permanent.
        """
        with self._lock:
            self._frozen = True

    def origin(self, connector_id: str) -> Origin:
        """Where a connector came from (for ``load`` tables and audits)."""
        with self._lock:
            if connector_id not in self._entries:
                self.get_connector(connector_id)  # raises the helpful KeyError
            return self._entries[connector_id].origin

    def add_package(self, package: Package, origin: Origin) -> list[str]:
        """Import a checked package and register all its connectors, or none.

        Args:
            package: A package whose bytes were read (and, for remote ones, verified).
            origin: Where it came from.

        Returns:
            The registered IDs.

        Raises:
            See :meth:`add_packages`.
        """
        [ids] = self.add_packages([(package, origin)])
        return ids

    def add_packages(
        self, packages: Sequence[tuple[Package, Origin]], *, freeze: bool = False
    ) -> list[list[str]]:
        """Import checked packages and register all their connectors, or none at all.

        Every package is checked (ID clashes with the registry and with each other,
        ``requires-modelmesh`` and dependencies) before the first one is imported, so a
        package that cannot be registered never lets an earlier one's code run. If any
        import or post-import check fails, every package of the batch is unloaded.

        Args:
            packages: ``(package, origin)`` pairs whose bytes were read and verified.
            freeze: Freeze the registry in the same step (no window in which code started
                by the packages could register anything).

        Returns:
            The registered IDs of each package, in order.

        Raises:
            RegistryFrozenError: the registry was frozen.
            LibraryTamperedError: this library's verifying code was rebound since this
                registry first imported package code.
            PackageError, RegistryError: see :meth:`load_package`; nothing is registered.
        """
        actor = calling_package(sys._getframe(1))
        if actor is not None:
            self._refuse(actor, "packages", loads=True)
        with self._lock:
            self._check_open("add packages")
            self._check_untampered()
            plan = self._plan(packages)
            if plan and self._baseline is None:
                from modelmesh_connectors._internal.integrity import fingerprint

                self._baseline = fingerprint()  # before the first byte of package code runs
            done: list[tuple[Package, Origin, ImportedPackage]] = []
            try:
                for package, origin in plan:
                    done.append((package, origin, self._import(package, origin)))
                namespaces = {imported.namespace for _, _, imported in done}
                late = [v for v in self._violations if v[0] in namespaces]
                if late:  # e.g. a thread started by one package, during a later import
                    raise PackageImportError(
                        "package code tried to register "
                        + ", ".join(f"{what} (from {ns})" for ns, what in late)
                        + " while the packages were loading"
                    )
            except BaseException:
                from modelmesh_connectors.package.importer import unload

                for _, _, imported in done:
                    unload(imported.namespace)
                raise
            finally:
                self._pending.clear()
            for package, origin, imported in done:
                self._commit(package, origin, imported)
            if freeze:
                self._frozen = True
            return [
                list(self._packages[(p.manifest.name, p.manifest.version)][1]) for p, _ in packages
            ]

    # -- internals -------------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._frozen:
            raise RegistryFrozenError(
                f"cannot {what}: the registry is frozen",
                hint="load every package at start-up (connectors.packages), before freeze()",
            )

    def _check_untampered(self) -> None:
        """Refuse to verify anything with code rebound since package code first ran here."""
        if self._baseline is None:
            return
        from modelmesh_connectors._internal.integrity import changes

        changed = changes(self._baseline)
        if changed:
            raise LibraryTamperedError(
                "modelmesh-connectors' verifying code was rebound after package code ran in "
                f"this process: {', '.join(changed[:5])}"
                + (f" and {len(changed) - 5} more" if len(changed) > 5 else ""),
                hint="load every package at start-up from the configuration, then freeze()",
            )

    def _actor(self, implementation: Any) -> str | None:
        """The package namespace behind a ``register`` call, if package code is involved."""
        loading = _LOADING.get()
        return (
            owner_of(implementation)
            or calling_package(sys._getframe(2))
            or (loading.namespace if loading is not None else None)
        )

    def _refuse(self, namespace: str, what: str, *, loads: bool = False) -> None:
        """Record and refuse an attempt by package code to register or load something."""
        record = f"a load of {what}" if loads else what
        self._violations.append((namespace, record))
        loading = _LOADING.get()
        if loading is not None and loading.namespace == namespace:
            loading.violations.append(record)
        owner = self._owners.get(namespace) or self._pending.get(namespace)
        if loading is not None and loading.namespace == namespace:
            label, declared = loading.package, loading.declared
        elif owner is not None:
            label, declared = owner.package, owner.declared
        else:
            label, declared = namespace, frozenset()
        _warn("refused: package %s tried to register or load %s", label, what)
        if loads:
            raise PackageImportError(
                f"package {label} tried to load {what}; only the application loads packages"
            )
        if what in declared:
            raise PackageImportError(
                f"package {label} tried to register its own connector {what!r} itself; the "
                "registry registers the connectors a manifest declares",
                hint="remove the register() call from the package",
            )
        if owner is None and (loading is None or loading.namespace != namespace):
            raise PackageImportError(
                f"code of package namespace {namespace} tried to register {what!r}; that "
                "package is not loaded in this registry (stale or unloaded package code)"
            )
        raise PackageImportError(
            f"package {label} tried to register {what!r}, which its manifest does not declare"
        )

    def _plan(self, packages: Sequence[tuple[Package, Origin]]) -> list[tuple[Package, Origin]]:
        """Check a whole batch before any import; return the packages still to import."""
        from modelmesh_connectors.package.package import check_environment

        todo: list[tuple[Package, Origin]] = []
        claimed: dict[str, Origin] = {}
        seen: dict[tuple[str, str], str] = {}
        for package, origin in packages:
            manifest = package.manifest
            key = (manifest.name, manifest.version)
            known = self._packages.get(key)
            where = known[2] if known is not None else None
            digest = known[0] if known is not None else seen.get(key)
            if digest is not None:
                if digest == package.sha256:
                    continue  # the identical package again: a no-op
                raise PackageError(
                    f"{manifest.name} {manifest.version} is already loaded from "
                    f"{where or 'this batch'} with different content (sha256 {digest[:12]}…, "
                    f"now {package.sha256[:12]}…)"
                )
            for conn in manifest.connectors:
                self._check_free(conn.id, origin)
                if conn.id in _BUILTIN_IDS:
                    # Reserved even in a registry without built-ins: a package must never be
                    # able to stand in for ModelMesh's own connector under its ID.
                    raise DuplicateConnectorError(
                        f"connector ID {conn.id!r} is a ModelMesh built-in; {origin} cannot "
                        "declare it (built-in IDs are reserved in every registry)"
                    )
                if conn.id in claimed:
                    raise DuplicateConnectorError(
                        f"connector ID {conn.id!r} is declared by {claimed[conn.id]} and by "
                        f"{origin}; an ID can be registered once"
                    )
                claimed[conn.id] = origin
            check_environment(manifest)
            seen[key] = package.sha256
            todo.append((package, origin))
        return todo

    def _import(self, package: Package, origin: Origin) -> ImportedPackage:
        """Import one planned package and check what its code did (caller holds the lock)."""
        from modelmesh_connectors.package.importer import import_package, namespace_for, unload

        manifest = package.manifest
        ids = [c.id for c in manifest.connectors]
        loading = _Loading(
            f"{manifest.name} {manifest.version}",
            namespace_for(manifest, package.sha256),
            frozenset(ids),
            [],
        )
        self._pending[loading.namespace] = _Owner(loading.package, loading.declared)
        with self._watch(loading):
            imported = import_package(manifest, package.files, package.sha256)
        try:
            if loading.violations:
                loads = [v for v in loading.violations if v.startswith("a load of ")]
                own = [v for v in loading.violations if v in loading.declared]
                undeclared = [v for v in loading.violations if v not in [*loads, *own]]
                parts = []
                if undeclared:
                    parts.append("register undeclared connector(s) " + ", ".join(undeclared))
                if own:
                    parts.append(
                        "register its own declared connector(s) " + ", ".join(own) + " itself"
                    )
                if loads:
                    parts.append("make " + ", ".join(loads))
                raise PackageImportError(
                    f"package {loading.package} tried to {' and '.join(parts)} "
                    "during its import; only the registry registers a package's connectors, "
                    "exactly those its manifest declares",
                    hint="remove the register() call (or the upstream table change) from the "
                    "package",
                )
            for conn in manifest.connectors:
                check_implements(
                    imported.classes[conn.id],
                    conn.type,
                    what=f"{manifest.name} {manifest.version}: connector {conn.id}",
                )
            for cid in ids:  # re-check: the package's import ran arbitrary code
                self._check_free(cid, origin)
        except BaseException:
            unload(imported.namespace)
            raise
        return imported

    def _commit(self, package: Package, origin: Origin, imported: ImportedPackage) -> None:
        manifest = package.manifest
        ids = [c.id for c in manifest.connectors]
        for conn in manifest.connectors:
            info = ConnectorInfo(
                conn.id, conn.type, manifest.version, conn.description or manifest.description
            )
            self._entries[conn.id] = _Entry(
                info, origin, implementation=imported.classes[conn.id], loaded=True
            )
        self._owners[imported.namespace] = _Owner(
            f"{manifest.name} {manifest.version}", frozenset(ids)
        )
        self._packages[(manifest.name, manifest.version)] = (package.sha256, ids, str(origin))

    def _is_local(self, path: str) -> bool:
        """A local path per the config grammar; a bare existing name is local only without
        an index (with one, ``acme-audit-log`` is a requirement even if such a folder exists)."""
        from pathlib import Path

        from modelmesh_connectors.package.requirements import (
            InvalidPackageSpec,
            LocalSpec,
            RequirementSpec,
            parse_package_spec,
        )

        text = str(path)
        try:
            spec = parse_package_spec(text)
        except InvalidPackageSpec:
            return True  # let the local reader report what is wrong with the path
        if isinstance(spec, LocalSpec):
            return True
        return isinstance(spec, RequirementSpec) and self._source is None and Path(text).exists()

    def _check_free(self, cid: str, origin: Origin) -> None:
        existing = self._entries.get(cid)
        if existing is not None:
            raise DuplicateConnectorError(
                f"connector ID {cid!r} is already registered by {existing.origin}; "
                f"cannot register it again from {origin}"
            )

    @contextmanager
    def _watch(self, loading: _Loading) -> Iterator[None]:
        """Run a package's import with undeclared-registration and upstream-tamper guards."""
        upstream = sys.modules.get("modelmesh.connectors")
        table = getattr(upstream, "CONNECTOR_REGISTRY", None)
        before = dict(table) if isinstance(table, dict) else None
        token = _LOADING.set(loading)
        try:
            yield
        finally:
            _LOADING.reset(token)
            if isinstance(table, dict) and before is not None and table != before:
                # Stops a package hijacking an upstream connector ID behind the registry's back.
                added = sorted(set(table) - set(before)) or sorted(
                    k for k in before if table.get(k) is not before[k]
                )
                table.clear()
                table.update(before)
                loading.violations.extend(added)


def build_registry(
    config: str | Path | Mapping[str, Any] | LoaderConfig,
    *,
    now: datetime | None = None,
    fetcher: Fetcher | None = None,
    freeze: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> ConnectorRegistry:
    """A registry with the built-ins and every configured package, all or nothing.

    Every archive is resolved, downloaded and verified — and every manifest checked against
    the registry — before the first import; a failure anywhere leaves no registry (and so
    nothing registered) behind, and no package's code has run unless all were verified.

    Args:
        config: A YAML path, a mapping or a parsed configuration.
        now: Reference time (default: the current clock).
        fetcher: Replace the network seam (unit tests).
        freeze: Freeze the registry once everything is registered.
        progress: Called as ``progress(name, bytes_so_far, total)`` while archives download.

    Raises:
        ConfigError: invalid configuration.
        ConnectorError: any package fails to resolve, verify or load.
    """
    # The client is imported here, not at module top: a registry that never loads a package
    # (the common start-up path) must not pay for httpx, yaml and the trust core.
    from collections.abc import Mapping

    from modelmesh_connectors.client.config import LoaderConfig, load_config, parse_config
    from modelmesh_connectors.client.loader import Loader

    if isinstance(config, LoaderConfig):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = parse_config(config)
    else:
        cfg = load_config(config)
    loader = Loader(cfg, now=now, fetcher=fetcher, progress=progress)
    registry = ConnectorRegistry(source=loader, require_signatures=cfg.require_signatures)
    with loader:
        loaded = loader.load(cfg.packages)  # reads the lock first when locked: true
        # One batch: no package is imported until every package passed every check.
        registry.add_packages(loaded, freeze=freeze)
    return registry
