"""Tamper evidence for the verifying code itself: a fingerprint of what it is bound to.

Package code runs inside the process, so it can rebind this library's functions — say
``TrustedState.verify_release_signed = lambda self, data: ...`` — and a later
``load_package`` would then accept a badly signed release. That cannot be *prevented* in
process (closure cells, ``__defaults__`` and ``__code__`` are all writable). It can be
*noticed*: :func:`fingerprint` records, for every module on the verify → import path, the
identity of each module global, of each class attribute, and of each function's code,
defaults and closure contents, plus the few standard-library functions the check relies on
(hashing, constant-time compare, ``compile``/``exec``, ``import_module``). The registry takes
one before the first package's code runs and compares before every later load
(:func:`changes`); any difference refuses the load.

Limits (see docs/SECURITY.md): code that mutates objects in ways this does not look at
(C-level memory, the cryptography backend, the fingerprint kept by the registry itself) is
not detected. Code already running in the process is inside the trust boundary.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import importlib
import sys
from types import FunctionType, ModuleType
from typing import Any

__all__ = ["Fingerprint", "changes", "fingerprint"]

# Every module that decides whether bytes are trusted, or that imports and registers them.
_ROOT = "modelmesh_connectors"
_MODULES = (
    "client.binding",
    "client.cache",
    "client.loader",
    "client.resolve",
    "client.settings",
    "client.state",
    "client.updater",
    "_internal.digest",
    "_internal.integrity",
    "_internal.record",
    "index.envelope",
    "index.fields",
    "index.keys",
    "index.layout",
    "index.metadata",
    "index.trust",
    "index.verify",
    "package.archive",
    "package.connector_types",
    "package.ids",
    "package.importer",
    "package.manifest",
    "package.package",
    "package.requirements",
    "registry",
)

# Foreign functions the checks call through a module attribute.
_FOREIGN: tuple[tuple[ModuleType, tuple[str, ...]], ...] = (
    (hashlib, ("sha256", "new", "file_digest")),
    (hmac, ("compare_digest",)),
    (builtins, ("compile", "exec", "getattr", "isinstance", "__import__")),
    (importlib, ("import_module",)),
)

Fingerprint = dict[str, tuple[int, ...]]


_NO_KWDEFAULTS = hash(())


def _function(func: FunctionType) -> tuple[int, ...]:
    closure = func.__closure__
    cells: list[int] = []
    if closure:
        for cell in closure:
            try:
                cells.append(id(cell.cell_contents))
            except ValueError:  # an empty cell
                cells.append(0)
    defaults = func.__defaults__
    kwdefaults = func.__kwdefaults__
    return (
        id(func),
        id(func.__code__),
        id(defaults),
        *(map(id, defaults) if defaults else ()),
        hash(tuple(sorted((k, id(v)) for k, v in kwdefaults.items())))
        if kwdefaults
        else _NO_KWDEFAULTS,
        *cells,
        id(func.__globals__),
    )


# Members that can hold no function: only their identity is recorded. Exact types (a
# subclass could define ``__func__``), so anything else takes the general path below.
_PLAIN = frozenset({str, int, bool, float, bytes, tuple, frozenset, dict, list, type(None)})


def _member(value: Any) -> tuple[int, ...]:
    kind = type(value)
    if kind is FunctionType:  # the common case, as the general path below would do
        return (id(value), *_function(value))
    if kind in _PLAIN:
        return (id(value),)
    target = value.fget if isinstance(value, property) else value
    target = getattr(target, "__func__", target)  # staticmethod, classmethod
    if isinstance(target, FunctionType):
        return (id(value), *_function(target))
    return (id(value),)


def fingerprint() -> Fingerprint:
    """Record what the verifying code is bound to right now.

    Imports the modules of the verify → import path that are not imported yet, so a package
    cannot patch one before it is first recorded.

    Returns:
        An opaque mapping to compare with :func:`changes`.
    """
    out: Fingerprint = {}
    for short in _MODULES:
        module = importlib.import_module(f"{_ROOT}.{short}")
        for name, value in list(vars(module).items()):
            key = f"{module.__name__}.{name}"
            out[key] = _member(value)
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    out[f"{key}.{attr}"] = _member(member)
    for module, names in _FOREIGN:
        for name in names:
            if hasattr(module, name):
                out[f"{module.__name__}.{name}"] = (id(getattr(module, name)),)
    out["sys.modules"] = tuple(id(sys.modules.get(f"{_ROOT}.{short}")) for short in _MODULES)
    return out


def changes(baseline: Fingerprint) -> list[str]:
    """Names whose binding differs from ``baseline`` (empty when nothing was rebound).

    Args:
        baseline: An earlier :func:`fingerprint`.

    Returns:
        Sorted dotted names that were added, removed or rebound.
    """
    now = fingerprint()
    return sorted(k for k in baseline.keys() | now.keys() if baseline.get(k) != now.get(k))
