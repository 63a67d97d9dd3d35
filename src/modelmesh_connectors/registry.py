"""``ConnectorRegistry``: ModelMesh's built-ins (imported lazily) plus loaded packages."""

from __future__ import annotations

import contextvars
import difflib
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .builtins import BUILTINS, Builtin, modelmesh_version
from .connector_types import (
    ConnectorInfo,
    ConnectorType,
    check_implements,
    classify,
    parse_connector_type,
)
from .errors import (
    DuplicateConnectorError,
    PackageError,
    PackageImportError,
    UnknownConnectorError,
)
from .ids import parse_connector_id
from .importer import import_package, unload
from .package import Package, check_environment, open_local_package

if TYPE_CHECKING:
    from .config import LoaderConfig

__all__ = ["ConnectorRegistry", "Origin", "PackageSource"]


@dataclass(frozen=True)
class Origin:
    """Where a registered connector came from.

    Attributes:
        kind: ``builtin``, ``local`` (a directory or zip on disk), ``package`` (verified
            from an index or signed URL) or ``runtime`` (``register`` called by code).
        detail: Human description (path, ``name@version``, URL).
        signed_by: Key IDs that signed the package's release, when verified.
    """

    kind: str
    detail: str
    signed_by: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.kind} {self.detail}".strip()
        if self.signed_by:
            text += " signed by " + ", ".join(k[:16] for k in self.signed_by)
        return text


class PackageSource(Protocol):
    """Turns a ``load_package`` argument that is not a local path into a verified package."""

    def fetch_package(self, spec: str) -> tuple[Package, Origin]:
        """Resolve, download and verify ``spec``; return the package and its origin."""
        ...


@dataclass
class _Entry:
    info: ConnectorInfo
    origin: Origin
    builtin: Builtin | None = None
    implementation: Any = None
    loaded: bool = False


@dataclass(frozen=True)
class _Loading:
    package: str
    declared: frozenset[str]
    violations: list[str]


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
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._packages: dict[tuple[str, str], tuple[str, list[str], str]] = {}
        self._source = source
        self._require_signatures = require_signatures
        if include_builtins:
            for builtin in BUILTINS:
                info = ConnectorInfo(builtin.id, builtin.connector_type, "", builtin.description)
                self._entries[builtin.id] = _Entry(
                    info, Origin("builtin", "modelmesh-lite"), builtin=builtin
                )

    # -- construction from configuration ---------------------------------------------------

    @classmethod
    def from_config(
        cls, config: str | Path | Mapping[str, Any] | LoaderConfig
    ) -> ConnectorRegistry:
        """Build a registry with the built-ins and every package a configuration lists.

        Args:
            config: A YAML file path, a mapping (a whole ModelMesh config or just its
                ``connectors:`` section), or a parsed ``LoaderConfig``.

        Returns:
            The registry, with every package loaded (all packages or none).

        Raises:
            ConfigError: invalid configuration.
            ConnectorError: any package fails to resolve, verify or load.
        """
        from .loader import build_registry

        return build_registry(config)

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
            InvalidConnectorId: malformed ID.
            DuplicateConnectorError: the ID is taken (names both origins).
            ConnectorTypeError: the type cannot be worked out or does not fit.
            PackageImportError: called by a loading package for an ID it did not declare.
        """
        loading = _LOADING.get()
        if loading is not None and str(connector_id) not in loading.declared:
            # Stops a package smuggling in connectors its signed manifest does not declare.
            loading.violations.append(str(connector_id))
            raise PackageImportError(
                f"package {loading.package} tried to register {connector_id!r}, which its "
                "manifest does not declare"
            )
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
            self._check_free(cid, origin)
            self._entries[cid] = _Entry(info, origin, implementation=implementation, loaded=True)

    def get_connector(self, connector_id: str) -> Any:
        """Return the implementation registered under ``connector_id``.

        Built-ins are imported on first use.

        Raises:
            UnknownConnectorError: (a ``KeyError``) with close matches suggested.
        """
        with self._lock:
            entry = self._entries.get(connector_id)
            if entry is None:
                close = difflib.get_close_matches(str(connector_id), self._entries, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UnknownConnectorError(f"no connector registered as {connector_id!r}{hint}")
            if not entry.loaded:
                assert entry.builtin is not None
                entry.implementation = entry.builtin.load()
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
            PackageError, TrustError, DownloadError, ResolutionError, RegistryError: all or
                nothing — on any error no connector of the package is registered and none
                of its modules stays imported.
        """
        if self._is_local(path) and self._source is not None:
            # Through the loader like a configured entry: it verifies a signed zip under
            # require_signatures and refuses what a lock (locked: true) does not pin.
            text = str(path)
            here = text if text.startswith("~") or Path(text).is_absolute() else Path.cwd() / text
            package, origin = self._source.fetch_package(str(here))
        elif self._is_local(path):
            if self._require_signatures:
                from .errors import PolicyError

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
            See :meth:`load_package`.
        """
        manifest = package.manifest
        ids = [c.id for c in manifest.connectors]
        key = (manifest.name, manifest.version)
        with self._lock:
            known = self._packages.get(key)
            if known is not None:
                if known[0] == package.sha256:
                    return list(known[1])
                raise PackageError(
                    f"{manifest.name} {manifest.version} is already loaded from {known[2]} with "
                    f"different content (sha256 {known[0][:12]}…, now {package.sha256[:12]}…)"
                )
            for cid in ids:
                self._check_free(cid, origin)
            check_environment(manifest)
            loading = _Loading(f"{manifest.name} {manifest.version}", frozenset(ids), [])
            with self._watch(loading):
                imported = import_package(manifest, package.files, package.sha256)
            try:
                if loading.violations:
                    raise PackageImportError(
                        f"package {loading.package} tried to register undeclared connector(s) "
                        + ", ".join(loading.violations)
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
            for conn in manifest.connectors:
                info = ConnectorInfo(
                    conn.id, conn.type, manifest.version, conn.description or manifest.description
                )
                self._entries[conn.id] = _Entry(
                    info, origin, implementation=imported.classes[conn.id], loaded=True
                )
            self._packages[key] = (package.sha256, ids, str(origin))
        return list(ids)

    # -- internals -------------------------------------------------------------------------

    def _is_local(self, path: str) -> bool:
        """A local path per the config grammar; a bare existing name is local only without
        an index (with one, ``acme-audit-log`` is a requirement even if such a folder exists)."""
        from .requirements import InvalidPackageSpec, LocalSpec, RequirementSpec, parse_package_spec

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
