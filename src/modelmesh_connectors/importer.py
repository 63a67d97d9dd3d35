"""Import a package's code from its verified in-memory files, under a private namespace.

Each package version gets its own top-level module name (``_mmpkg_<name>_<version>_<hash>``),
so two packages that both have ``sink.py``, or two versions of one package, never collide.
Code is compiled from the exact bytes that were verified (no window in which a file on disk
could be swapped between the check and the import) and no ``.pyc`` is ever written.
Inside a package, modules import each other with relative imports.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .archive import PackageFiles
from .errors import PackageImportError
from .manifest import Manifest

__all__ = ["ImportedPackage", "import_package", "namespace_for", "unload"]

_LOCK = threading.RLock()


def namespace_for(manifest: Manifest, digest: str) -> str:
    """The private top-level module name for one package version and content."""
    safe = re.sub(r"[^a-z0-9]", "_", f"{manifest.name}_{manifest.version}".lower())
    return f"_mmpkg_{safe}_{digest[:12]}"


class _MemoryFinder(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finds and loads ``<namespace>.…`` modules from one package's files."""

    def __init__(self, namespace: str, files: PackageFiles) -> None:
        self.namespace = namespace
        self.files = files
        self.directories = files.directories()

    # -- finder ----------------------------------------------------------------------------
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.namespace:
            spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            spec.submodule_search_locations = []
            return spec
        if not fullname.startswith(self.namespace + "."):
            return None
        rel = fullname[len(self.namespace) + 1 :].replace(".", "/")
        if f"{rel}/__init__.py" in self.files:
            spec = importlib.machinery.ModuleSpec(
                fullname, self, origin=self._origin(f"{rel}/__init__.py"), is_package=True
            )
            spec.submodule_search_locations = []
            spec.has_location = True
            return spec
        if f"{rel}.py" in self.files:
            spec = importlib.machinery.ModuleSpec(fullname, self, origin=self._origin(f"{rel}.py"))
            spec.has_location = True
            return spec
        if rel in self.directories:  # namespace-style directory without __init__.py
            spec = importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None

    def _origin(self, rel: str) -> str:
        return f"{self.files.source}!/{rel}"

    def _relpath(self, fullname: str) -> str | None:
        if fullname == self.namespace:
            return None
        rel = fullname[len(self.namespace) + 1 :].replace(".", "/")
        if f"{rel}/__init__.py" in self.files:
            return f"{rel}/__init__.py"
        if f"{rel}.py" in self.files:
            return f"{rel}.py"
        return None

    # -- loader ----------------------------------------------------------------------------
    def get_source(self, fullname: str) -> str | None:
        rel = self._relpath(fullname)
        if rel is None:
            return ""
        return self.files[rel].decode("utf-8")

    def is_package(self, fullname: str) -> bool:
        rel = self._relpath(fullname)
        return rel is None or rel.endswith("/__init__.py")

    def get_code(self, fullname: str) -> Any:
        rel = self._relpath(fullname)
        source = b"" if rel is None else self.files[rel]
        origin = self._origin(rel) if rel else f"<{fullname}>"
        # dont_inherit: the package is compiled with its own future flags, not ours.
        return compile(source, origin, "exec", dont_inherit=True)

    def exec_module(self, module: ModuleType) -> None:
        exec(self.get_code(module.__name__), module.__dict__)  # noqa: S102 - verified package code


_FINDERS: dict[str, _MemoryFinder] = {}


@dataclass(frozen=True)
class ImportedPackage:
    """The result of importing a package.

    Attributes:
        namespace: Private top-level module name.
        classes: Connector ID → implementation object named by its manifest entry.
    """

    namespace: str
    classes: dict[str, Any]


def unload(namespace: str) -> None:
    """Remove a package's finder and every module under its namespace from ``sys.modules``."""
    with _LOCK:
        finder = _FINDERS.pop(namespace, None)
        if finder is not None and finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n == namespace or n.startswith(namespace + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def import_package(manifest: Manifest, files: PackageFiles, digest: str) -> ImportedPackage:
    """Import every entry the manifest declares; all or nothing.

    Args:
        manifest: The validated manifest.
        files: The verified package files.
        digest: Hex content digest (archive sha256 or tree hash) for the namespace.

    Returns:
        The namespace and the entry objects.

    Raises:
        PackageImportError: if a module fails to import or an entry is missing; nothing of
            the package then remains in ``sys.modules``.
    """
    namespace = namespace_for(manifest, digest)
    with _LOCK:
        if namespace in _FINDERS:
            unload(namespace)
        finder = _MemoryFinder(namespace, files)
        _FINDERS[namespace] = finder
        sys.meta_path.insert(0, finder)
        classes: dict[str, Any] = {}
        try:
            for conn in manifest.connectors:
                where = f"{manifest.name} {manifest.version}: connector {conn.id} ({conn.entry})"
                try:
                    module = importlib.import_module(f"{namespace}.{conn.module}")
                except ModuleNotFoundError as exc:
                    raise PackageImportError(
                        f"{where}: cannot import module {conn.module!r}: {exc}",
                        hint="inside a package, import its own modules relatively "
                        "(from .sink import X)",
                    ) from exc
                except Exception as exc:  # any error raised by the package's own code
                    raise PackageImportError(
                        f"{where}: importing {conn.module!r} raised {type(exc).__name__}: {exc}"
                    ) from exc
                try:
                    classes[conn.id] = getattr(module, conn.attribute)
                except AttributeError as exc:
                    raise PackageImportError(
                        f"{where}: module {conn.module!r} has no attribute {conn.attribute!r}"
                    ) from exc
        except BaseException:
            unload(namespace)
            raise
    return ImportedPackage(namespace, classes)
