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
from operator import attrgetter
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

# Scope ("pkg.module" or "pkg.module.Class") -> (member names, one signature per member).
# Per scope, not per member: one tuple comparison skips an unchanged scope in ``changes``,
# and no dotted key is built for the ~2,000 members that never change (issue 14: the
# fingerprint is taken on every start that loads a package).
Fingerprint = dict[str, tuple[tuple[str, ...], tuple[object, ...]]]


_NO_KWDEFAULTS = hash(())


def _function(func: FunctionType) -> tuple[int, ...]:
    code, defaults, kwdefaults, closure, globals_ = _FUNCTION_PARTS(func)
    if not (defaults or kwdefaults or closure):  # most functions: no per-part loops
        return (id(func), id(code), id(defaults), _NO_KWDEFAULTS, id(globals_))
    cells: list[int] = []
    if closure:
        for cell in closure:
            try:
                cells.append(id(cell.cell_contents))
            except ValueError:  # an empty cell
                cells.append(0)
    return (
        id(func),
        id(code),
        id(defaults),
        *(map(id, defaults) if defaults else ()),
        hash(tuple(sorted((k, id(v)) for k, v in kwdefaults.items())))
        if kwdefaults
        else _NO_KWDEFAULTS,
        *cells,
        id(globals_),
    )


_FUNCTION_PARTS = attrgetter(
    "__code__", "__defaults__", "__kwdefaults__", "__closure__", "__globals__"
)

# Members that can hold no function: only their identity is recorded. Exact types (a
# subclass could define ``__func__``), so anything else takes the general path below.
_PLAIN = frozenset({str, int, bool, float, bytes, tuple, frozenset, dict, list, type(None)})


def _general(value: Any) -> object:
    """A member that is neither a function nor a plain constant (properties, descriptors)."""
    target = value.fget if isinstance(value, property) else value
    target = getattr(target, "__func__", target)  # staticmethod, classmethod
    if isinstance(target, FunctionType):
        return (id(value), *_function(target))
    return id(value)


def _scope(
    namespace: Any, module: str | None = None, classes: list[tuple[str, type]] | None = None
) -> tuple[tuple[str, ...], tuple[object, ...]]:
    """One scope's names and member signatures; ``classes`` collects the module's own classes."""
    items = list(namespace.items())  # one snapshot: names and values stay paired
    signatures: list[object] = []
    add = signatures.append
    for attr, value in items:
        # The common cases inline: a call per member is most of the cost.
        kind = type(value)
        if kind in _PLAIN:
            add(id(value))
        elif kind is FunctionType:
            add(_function(value))
        elif isinstance(value, type):
            # A class is recorded by identity (a module's own classes get a scope of their
            # own below), without asking it for ``__func__``: a missing attribute on a class
            # or module raises and formats an AttributeError, most of this function's cost.
            add(id(value))
            if classes is not None and value.__module__ == module:
                classes.append((f"{module}.{attr}", value))
        elif kind is ModuleType:
            add(id(value))
        else:
            add(_general(value))
    return tuple(k for k, _ in items), tuple(signatures)


def fingerprint() -> Fingerprint:
    """Record what the verifying code is bound to right now.

    Imports the modules of the verify → import path that are not imported yet, so a package
    cannot patch one before it is first recorded.

    Returns:
        An opaque mapping to compare with :func:`changes`.
    """
    out: Fingerprint = {}
    classes: list[tuple[str, type]] = []
    for short in _MODULES:
        module = importlib.import_module(f"{_ROOT}.{short}")
        out[module.__name__] = _scope(vars(module), module.__name__, classes)
    for scope, cls in classes:
        out[scope] = _scope(vars(cls))
    for module, names in _FOREIGN:
        present = tuple(n for n in names if hasattr(module, n))
        out[module.__name__] = (present, tuple(id(getattr(module, n)) for n in present))
    out["sys"] = (
        ("modules",),
        (tuple(id(sys.modules.get(f"{_ROOT}.{short}")) for short in _MODULES),),
    )
    return out


def changes(baseline: Fingerprint) -> list[str]:
    """Names whose binding differs from ``baseline`` (empty when nothing was rebound).

    Args:
        baseline: An earlier :func:`fingerprint`.

    Returns:
        Sorted dotted names that were added, removed or rebound.
    """
    now = fingerprint()
    changed: list[str] = []
    for scope in baseline.keys() | now.keys():
        before, after = baseline.get(scope), now.get(scope)
        if before == after:
            continue
        old = dict(zip(*before, strict=True)) if before is not None else {}
        new = dict(zip(*after, strict=True)) if after is not None else {}
        changed.extend(f"{scope}.{k}" for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return sorted(changed)
