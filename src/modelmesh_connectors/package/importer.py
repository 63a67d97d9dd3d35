"""Import a package's code from its verified in-memory files, under a private namespace.

Each package version gets its own top-level module name (``_mmpkg_<name>_<version>_<hash>``),
so two packages that both have ``sink.py``, or two versions of one package, never collide.
Code is compiled from the exact bytes that were verified (no window in which a file on disk
could be swapped between the check and the import) and no ``.pyc`` is ever written.
Inside a package, modules import each other with relative imports.

A namespace name is predictable (it is derived from the public name, version and hash), so
code that already runs in the process could plant modules under it before the package is
imported. The importer therefore purges the namespace first and, after the import, accepts
only modules that its own finder executed from the package's verified files. It also
remembers every module dictionary it executed package code in, so the registry can tell which
package a class, a function or a running frame belongs to (:func:`owner_of`,
:func:`calling_package`), whatever thread asks and however late.
"""

from __future__ import annotations

# Kept light on purpose: the registry asks this module who is calling (``calling_package``,
# ``owner_of``) on every ``register``, also in a process that never loads a package. So no
# ``importlib.abc`` (the finder below implements the loader protocol itself), no ``re``, no
# ``dataclasses``, and the archive and manifest modules (and with them yaml) only for types.
import _thread
import functools
import importlib
import importlib.machinery
import sys
from operator import methodcaller
from types import FrameType, FunctionType, MethodType, ModuleType

from modelmesh_connectors.errors import MissingEntryPointError, PackageImportError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up cost)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import InspectLoader as _LoaderBase
    from typing import Any

    from modelmesh_connectors.package.archive import PackageFiles
    from modelmesh_connectors.package.manifest import Manifest
else:
    _LoaderBase = object  # the loader protocol is checked by mypy, not inherited at runtime

__all__ = [
    "NAMESPACE_PREFIX",
    "ImportedPackage",
    "calling_package",
    "import_package",
    "namespace_for",
    "owner_of",
    "unload",
]

NAMESPACE_PREFIX = "_mmpkg_"
_NAMESPACE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

_LOCK = _thread.RLock()

# id(module.__dict__) -> (namespace, the dict): every module namespace package code was
# executed in. The dicts are kept alive so that an id is never reused by another object;
# entries outlive an unload, so code of an unloaded package is still recognised as such.
_EXECUTED: dict[int, tuple[str, dict[str, Any]]] = {}


def namespace_for(manifest: Manifest, digest: str) -> str:
    """The private top-level module name for one package version and content."""
    text = f"{manifest.name}_{manifest.version}".lower()
    safe = "".join(c if c in _NAMESPACE_CHARS else "_" for c in text)  # [^a-z0-9] -> _
    return f"{NAMESPACE_PREFIX}{safe}_{digest[:12]}"


def _names_in(namespace: str) -> list[str]:
    """Every ``sys.modules`` key that is ``namespace`` or under it.

    The scan of every key runs in C (``filter`` with ``str.startswith``); only the few keys
    that start with the namespace text are looked at again in Python.
    """
    prefix = namespace + "."
    starts = methodcaller("startswith", namespace)
    return [n for n in filter(starts, list(sys.modules)) if n == namespace or n.startswith(prefix)]


class _MemoryFinder(_LoaderBase):
    """Finds and loads ``<namespace>.…`` modules from one package's files.

    A meta path finder and an inspect loader by protocol (``find_spec``; ``create_module``,
    ``exec_module``, ``get_code``, ``get_source``, ``is_package``), not by subclassing
    ``importlib.abc``: that module costs a registry that never loads a package ~5 ms.
    """

    def __init__(self, namespace: str, files: PackageFiles) -> None:
        self.namespace = namespace
        self.files = files
        self.directories = files.directories()
        # name -> module object this finder executed the package's code in.
        self.executed: dict[str, ModuleType] = {}

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

    def expected_origin(self, fullname: str) -> str | None:
        """The ``__spec__.origin`` (and ``__file__``) this finder gives ``fullname``."""
        rel = self._relpath(fullname)
        return None if rel is None else self._origin(rel)

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

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        code = self.get_code(module.__name__)
        # Recorded before the code runs, so even its import-time frames are attributable.
        self.executed[module.__name__] = module
        _EXECUTED[id(module.__dict__)] = (self.namespace, module.__dict__)
        exec(code, module.__dict__)  # noqa: S102 - verified package code


_FINDERS: dict[str, _MemoryFinder] = {}


class ImportedPackage:
    """The result of importing a package.

    Attributes:
        namespace: Private top-level module name.
        classes: Connector ID → implementation object named by its manifest entry.
    """

    __slots__ = ("classes", "namespace")  # a plain class: no dataclasses import (see top)

    def __init__(self, namespace: str, classes: dict[str, Any]) -> None:
        self.namespace = namespace
        self.classes = classes

    def __repr__(self) -> str:
        return f"ImportedPackage(namespace={self.namespace!r}, classes={self.classes!r})"


def _purge(namespace: str) -> None:
    """Remove the namespace's finder and every module under it (caller holds ``_LOCK``)."""
    finder = _FINDERS.pop(namespace, None)
    if finder is not None and finder in sys.meta_path:
        sys.meta_path.remove(finder)
    for name in _names_in(namespace):
        sys.modules.pop(name, None)
    # No importlib.invalidate_caches(): nothing was written to disk, and the finder is this
    # module's own (invalidating made the next import re-list every sys.path directory).


def unload(namespace: str) -> None:
    """Remove a package's finder and every module under its namespace from ``sys.modules``."""
    with _LOCK:
        _purge(namespace)


def _check_modules(finder: _MemoryFinder, where: str) -> None:
    """Every module under the namespace must be one the finder executed from verified bytes.

    Stops code already running in the process (another package) from planting a module under
    this package's predictable namespace, so that this package's connector would be the
    planter's class while the registry credits this package's signer.
    """
    for name in sorted(_names_in(finder.namespace)):
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        expected = finder.expected_origin(name)
        problem = None
        if module is None or finder.executed.get(name) is not module:
            problem = "was not executed by this package's importer"
        elif (
            spec is None
            or spec.loader is not finder
            or getattr(module, "__loader__", None) is not finder
        ):
            problem = "has a foreign loader"
        elif spec.origin != expected or (
            expected is not None and getattr(module, "__file__", None) != expected
        ):
            problem = f"claims origin {spec.origin!r}, expected {expected!r}"
        if problem is not None:
            raise PackageImportError(
                f"{where}: module {name} {problem}; it is not this package's verified code "
                "(planted in sys.modules by code already running in the process?)"
            )


def _check_entry(finder: _MemoryFinder, obj: Any, where: str) -> None:
    """A connector entry must be defined by the package's own code, not borrowed or planted."""
    target = obj if isinstance(obj, type | FunctionType) else type(obj)
    defined_in = getattr(target, "__module__", None)
    if not isinstance(defined_in, str) or finder.executed.get(defined_in) is None:
        raise PackageImportError(
            f"{where}: the entry is defined in module {defined_in!r}, not by this package's "
            f"verified code (expected a module under {finder.namespace})"
        )
    owner = owner_of(obj)
    if owner != finder.namespace:
        raise PackageImportError(
            f"{where}: the entry is code of {owner or 'no package'}, not of {finder.namespace}"
        )


def import_package(manifest: Manifest, files: PackageFiles, digest: str) -> ImportedPackage:
    """Import every entry the manifest declares; all or nothing.

    Args:
        manifest: The validated manifest.
        files: The verified package files.
        digest: Hex content digest (archive sha256 or tree hash) for the namespace.

    Returns:
        The namespace and the entry objects.

    Raises:
        MissingEntryPointError: a connector has no Python entry point (a Node-only package).
        PackageImportError: if a module fails to import, an entry is missing or is not the
            package's own code, or a module under the namespace did not come from the
            package's files; nothing of the package then remains in ``sys.modules``.
    """
    for conn in manifest.connectors:
        if not conn.has_python_entry:
            raise MissingEntryPointError(
                f"{manifest.name} {manifest.version}: connector {conn.id} has no Python entry "
                f"point (the package is for {', '.join(conn.runtimes)} only)",
                hint="load it with the Node client, or ask its publisher for a Python entry",
            )
    namespace = namespace_for(manifest, digest)
    with _LOCK:
        # Whatever sits under the namespace now was not imported by us from these bytes.
        _purge(namespace)
        finder = _MemoryFinder(namespace, files)
        _FINDERS[namespace] = finder
        sys.meta_path.insert(0, finder)
        classes: dict[str, Any] = {}
        label = f"{manifest.name} {manifest.version}"
        try:
            for conn in manifest.connectors:
                where = f"{label}: connector {conn.id} ({conn.entry})"
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
            _check_modules(finder, label)
            for conn in manifest.connectors:
                where = f"{label}: connector {conn.id} ({conn.entry})"
                _check_entry(finder, classes[conn.id], where)
        except BaseException:
            _purge(namespace)
            raise
    return ImportedPackage(namespace, classes)


# -- attribution: which package does this object or this call come from? ---------------------


def _namespace_of_name(name: object) -> str | None:
    if isinstance(name, str) and name.startswith(NAMESPACE_PREFIX):
        return name.split(".", 1)[0]
    return None


def _namespace_of_globals(namespace: object) -> str | None:
    found = _EXECUTED.get(id(namespace))
    if found is not None and found[1] is namespace:
        return found[0]
    return None


def _function_owner(func: Any) -> str | None:
    while isinstance(func, functools.partial):
        func = func.func
    func = getattr(func, "__func__", func)  # bound methods, classmethod, staticmethod
    owner = _namespace_of_globals(getattr(func, "__globals__", None))
    return owner or _namespace_of_name(getattr(func, "__module__", None))


def owner_of(obj: Any) -> str | None:
    """The private namespace of the package whose code defined ``obj``, if any.

    A class belongs to a package if it or any class in its MRO has its ``__module__``
    under a private namespace, or if a function in its body was compiled in a package
    module (which a forged ``__module__`` does not change). An instance belongs to the
    package of its class; a function (or ``functools.partial``, bound method) to the
    package whose module it was defined in.

    Args:
        obj: A class, instance, function or other object.

    Returns:
        The namespace (``_mmpkg_…``), or ``None`` when no package code is recognised.
    """
    if isinstance(obj, FunctionType | MethodType | functools.partial):
        return _function_owner(obj)
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        owner = _namespace_of_name(getattr(klass, "__module__", None))
        if owner is not None:
            return owner
        for member in vars(klass).values():
            target = member.fget if isinstance(member, property) else member
            if isinstance(target, FunctionType | staticmethod | classmethod):
                owner = _function_owner(target)
                if owner is not None:
                    return owner
    return None


def calling_package(frame: FrameType | None = None) -> str | None:
    """The private namespace of the innermost package frame on the calling stack, if any.

    A thread a package started runs the package's function at the bottom of its stack, so a
    call into the registry from it is attributed to the package even when the object it
    passes is not the package's own.

    Args:
        frame: Where to start walking outwards (default: the caller's frame).

    Returns:
        The namespace (``_mmpkg_…``), or ``None`` when no package frame is on the stack.
    """
    frame = frame if frame is not None else sys._getframe(1)
    while frame is not None:
        owner = _namespace_of_globals(frame.f_globals)
        if owner is None:
            owner = _namespace_of_name(frame.f_globals.get("__name__"))
        if owner is not None:
            return owner
        frame = frame.f_back
    return None
