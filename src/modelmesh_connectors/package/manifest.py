"""``modelmesh-package.yaml``: the package's contract, parsed strictly.

Every problem names the file, the field and what was wrong. Only ``yaml.safe_load`` is used
(stops arbitrary object construction from a hostile manifest).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from packaging.version import InvalidVersion, Version

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors._internal.strict_yaml import (
    DuplicateKeyError,
    YamlInputError,
    load_yaml,
    short_repr,
)
from modelmesh_connectors.errors import ManifestError
from modelmesh_connectors.package.connector_types import (
    ConnectorType,
    InvalidConnectorType,
    parse_connector_type,
)
from modelmesh_connectors.package.ids import InvalidConnectorId, parse_connector_id

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestConnector",
    "NodeEntry",
    "is_normalized_name",
    "parse_manifest",
]

MANIFEST_NAME = "modelmesh-package.yaml"
MAX_MANIFEST_BYTES = 64 * 1024  # bytes; a manifest is a few hundred bytes

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_TOP_KEYS = {"name", "version", "description", "requires-modelmesh", "dependencies", "connectors"}
_REQUIRED_TOP = {"name", "version", "description", "connectors"}
_CONNECTOR_KEYS = {"id", "type", "entry", "node", "description"}
_NODE_KEYS = {"module", "export"}
_MAX_CONNECTORS = 256


@functools.cache
def _node_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The Node entry's module path and export name patterns, compiled on first use.

    Only a manifest with a Node entry needs them; compiling them cost every start ~0.1 ms.
    """
    return (
        # A package-relative POSIX path of an ES module: no './', '..', absolute paths or URLs.
        re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.m?js"),
        re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*"),
    )


def is_normalized_name(name: str) -> bool:
    """True if ``name`` is a normalized distribution-style package name."""
    return _NAME.fullmatch(name) is not None


class NodeEntry(Frozen):
    """A connector's Node entry point (FORMAT.md §7): an ES module and its export.

    Attributes:
        module: Package-relative POSIX path of the module (``node/audit-log.mjs``).
        export: The export holding the connector class (``default`` for the default one).
    """

    __slots__ = ("export", "module")

    module: str
    export: str

    def __init__(self, module: str, export: str) -> None:
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "export", export)


class ManifestConnector(Frozen):
    """One connector a package declares.

    Attributes:
        id: Connector ID.
        type: Declared connector type.
        module: Python module path inside the package (``acme_audit_log.sink``); empty
            when the connector has no Python entry point (a Node-only package).
        attribute: Class name in that module (``AuditLog``); empty likewise.
        description: Human description.
        node: The Node entry point, if any.
    """

    __slots__ = ("attribute", "description", "id", "module", "node", "type")

    id: str
    type: ConnectorType
    module: str
    attribute: str
    description: str
    node: NodeEntry | None

    def __init__(
        self,
        id: str,
        type: ConnectorType,
        module: str,
        attribute: str,
        description: str,
        node: NodeEntry | None = None,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "attribute", attribute)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "node", node)

    @property
    def has_python_entry(self) -> bool:
        """Whether the connector can be imported by the Python client."""
        return bool(self.module)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes this connector has an entry point for, sorted."""
        return tuple(
            r
            for r, ok in (("node", self.node is not None), ("python", self.has_python_entry))
            if ok
        )

    @property
    def entry(self) -> str:
        """The Python entry point as written (``module:attribute``), or ``""`` if none."""
        return f"{self.module}:{self.attribute}" if self.module else ""


class Manifest(Frozen):
    """A validated package manifest."""

    __slots__ = (
        "connectors",
        "dependencies",
        "description",
        "name",
        "requires_modelmesh",
        "version",
    )

    name: str
    version: str
    description: str
    requires_modelmesh: str | None
    dependencies: tuple[str, ...]
    connectors: tuple[ManifestConnector, ...]

    def __init__(
        self,
        name: str,
        version: str,
        description: str,
        requires_modelmesh: str | None,
        dependencies: tuple[str, ...],
        connectors: tuple[ManifestConnector, ...],
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "requires_modelmesh", requires_modelmesh)
        object.__setattr__(self, "dependencies", dependencies)
        object.__setattr__(self, "connectors", connectors)

    @property
    def parsed_version(self) -> Version:
        """The PEP 440 version."""
        return Version(self.version)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes that can load the package (every connector agrees), sorted."""
        return self.connectors[0].runtimes


def _fail(source: str, field: str, problem: str) -> ManifestError:
    return ManifestError(f"{source}: field {field!r}: {problem}")


def _string(source: str, field: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(
            source, field, f"expected a string, got {type(value).__name__} {short_repr(value)}"
        )
    if not allow_empty and not value.strip():
        raise _fail(source, field, "must not be empty")
    return value


def _connector(source: str, index: int, raw: object) -> ManifestConnector:
    where = f"connectors[{index}]"
    if not isinstance(raw, Mapping):
        raise _fail(source, where, f"expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _CONNECTOR_KEYS
    if unknown:
        raise _fail(source, where, f"unknown key(s) {sorted(map(str, unknown))}")
    missing = {"id", "type"} - set(raw)
    if missing:
        raise _fail(source, where, f"missing key(s) {sorted(missing)}")
    if "entry" not in raw and "node" not in raw:
        raise _fail(
            source, where, "missing key 'entry' (Python entry point), 'node' (Node), or both"
        )
    try:
        cid = str(parse_connector_id(raw["id"]))
    except InvalidConnectorId as exc:
        raise _fail(source, f"{where}.id", str(exc)) from exc
    try:
        kind = parse_connector_type(raw["type"])
    except InvalidConnectorType as exc:
        raise _fail(source, f"{where}.type", str(exc)) from exc
    module = attribute = ""
    if "entry" in raw:
        entry = _string(source, f"{where}.entry", raw["entry"])
        module, sep, attribute = entry.partition(":")
        if not sep or not _MODULE.fullmatch(module) or not attribute.isidentifier():
            raise _fail(
                source,
                f"{where}.entry",
                f"expected 'package.module:ClassName', got {short_repr(entry)}",
            )
    node = _node_entry(source, f"{where}.node", raw["node"]) if "node" in raw else None
    description = _string(
        source, f"{where}.description", raw.get("description", ""), allow_empty=True
    )
    return ManifestConnector(cid, kind, module, attribute, description.strip(), node)


def _node_entry(source: str, where: str, raw: object) -> NodeEntry:
    if not isinstance(raw, Mapping):
        raise _fail(
            source,
            where,
            f"expected a mapping with 'module' and 'export', got {type(raw).__name__}",
        )
    unknown = set(raw) - _NODE_KEYS
    if unknown:
        raise _fail(source, where, f"unknown key(s) {sorted(map(str, unknown))}")
    missing = _NODE_KEYS - set(raw)
    if missing:
        raise _fail(source, where, f"missing key(s) {sorted(missing)}")
    js_module, js_export = _node_patterns()
    module = _string(source, f"{where}.module", raw["module"])
    if not js_module.fullmatch(module):
        raise _fail(
            source,
            f"{where}.module",
            "expected a package-relative path of an ES module like 'node/sink.mjs', "
            f"got {short_repr(module)}",
        )
    export = _string(source, f"{where}.export", raw["export"])
    if not js_export.fullmatch(export):
        raise _fail(source, f"{where}.export", f"expected an export name, got {short_repr(export)}")
    return NodeEntry(module, export)


def parse_manifest(data: bytes, *, source: str) -> Manifest:
    """Parse and validate manifest bytes.

    Args:
        data: The raw bytes of ``modelmesh-package.yaml``.
        source: Where they came from, for error messages (``pkg.zip!modelmesh-package.yaml``).

    Returns:
        The validated manifest.

    Raises:
        ManifestError: naming the file, the field and the problem.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{source}: manifest is {len(data)} bytes, over the 64 KiB cap")
    try:
        raw = load_yaml(data.decode("utf-8"), source=source)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source}: manifest is not UTF-8: {exc}") from exc
    except DuplicateKeyError as exc:
        # Two 'connectors:' (or 'requires-modelmesh:') keys: a reviewer may read the first.
        raise ManifestError(f"{source}: {exc}") from exc
    except YamlInputError as exc:
        raise ManifestError(f"{source}: manifest is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{source}: manifest must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ManifestError(
            f"{source}: unknown key(s) {sorted(map(str, unknown))}; allowed: {sorted(_TOP_KEYS)}"
        )
    missing = _REQUIRED_TOP - set(raw)
    if missing:
        raise ManifestError(f"{source}: missing required key(s) {sorted(missing)}")

    name = _string(source, "name", raw["name"])
    if not is_normalized_name(name):
        raise _fail(
            source, "name", f"{name!r} is not normalized (lowercase [a-z0-9] runs joined by '-')"
        )
    version_raw = raw["version"]
    if isinstance(version_raw, bool) or not isinstance(version_raw, str | int | float):
        raise _fail(source, "version", f"expected a PEP 440 string, got {short_repr(version_raw)}")
    if not isinstance(version_raw, str):
        raise _fail(
            source,
            "version",
            f"write the version as a quoted string, got {short_repr(version_raw)}",
        )
    try:
        version = str(Version(version_raw))
    except InvalidVersion as exc:
        raise _fail(
            source, "version", f"{short_repr(version_raw)} is not a PEP 440 version"
        ) from exc
    if version != version_raw:
        raise _fail(
            source, "version", f"{short_repr(version_raw)} is not normalized; write {version!r}"
        )
    description = _string(source, "description", raw["description"]).strip()

    requires: str | None = None
    if raw.get("requires-modelmesh") is not None:
        requires = _string(source, "requires-modelmesh", raw["requires-modelmesh"])
        # Here, not at the top: packaging.specifiers costs a start-up ~2 ms and most
        # manifests declare no range.
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(requires)
        except InvalidSpecifier as exc:
            raise _fail(
                source, "requires-modelmesh", f"{requires!r} is not a PEP 440 specifier"
            ) from exc

    deps_raw = raw.get("dependencies") or []
    if not isinstance(deps_raw, list):
        raise _fail(source, "dependencies", f"expected a list, got {type(deps_raw).__name__}")
    dependencies: list[str] = []
    for i, dep in enumerate(deps_raw):
        # Here, not at the top: the PEP 508 parser (markers, tags, platform, subprocess) costs
        # a start-up ~14 ms, and most manifests list no dependency.
        from packaging.requirements import InvalidRequirement, Requirement

        text = _string(source, f"dependencies[{i}]", dep)
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise _fail(
                source, f"dependencies[{i}]", f"{short_repr(text)} is not PEP 508: {exc}"
            ) from exc
        dependencies.append(text)

    connectors_raw: Any = raw["connectors"]
    if not isinstance(connectors_raw, list) or not connectors_raw:
        raise _fail(source, "connectors", "expected a non-empty list")
    if len(connectors_raw) > _MAX_CONNECTORS:
        raise _fail(source, "connectors", f"{len(connectors_raw)} entries, cap {_MAX_CONNECTORS}")
    connectors = tuple(_connector(source, i, c) for i, c in enumerate(connectors_raw))
    seen: set[str] = set()
    for i, conn in enumerate(connectors):
        if conn.id in seen:
            raise _fail(source, f"connectors[{i}].id", f"duplicate connector ID {conn.id!r}")
        seen.add(conn.id)
    # Loading is all or nothing: a runtime that cannot load every connector loads none.
    for i, conn in enumerate(connectors):
        if conn.runtimes != connectors[0].runtimes:
            raise _fail(
                source,
                f"connectors[{i}]",
                f"has entry points for {list(conn.runtimes)} but connectors[0] for "
                f"{list(connectors[0].runtimes)}; every connector of a package needs the same",
            )
    return Manifest(name, version, description, requires, tuple(dependencies), connectors)
