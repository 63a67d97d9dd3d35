"""The six connector types and how an implementation is matched to one.

ModelMesh's interfaces live in ``modelmesh.interfaces``; they are imported only when a
type check actually runs, so creating a registry imports none of them.
"""

from __future__ import annotations

import importlib
from enum import Enum

from modelmesh_connectors.errors import ConnectorTypeError, InvalidInput

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up cost)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ConnectorInfo",
    "ConnectorType",
    "InvalidConnectorType",
    "check_implements",
    "classify",
    "parse_connector_type",
]


class ConnectorType(Enum):
    """The six kinds of ModelMesh connector."""

    PROVIDER = "provider"
    ROTATION = "rotation"
    SECRET_STORE = "secret_store"  # noqa: S105 - an enum value, not a password
    STORAGE = "storage"
    OBSERVABILITY = "observability"
    DISCOVERY = "discovery"


class ConnectorInfo:
    """What the registry knows about one connector (the seed's API, exactly).

    Written out rather than a ``@dataclass`` (same constructor, fields, ``==`` and ``repr``;
    mutable, so unhashable like the dataclass): this module is imported by every
    ``ConnectorRegistry()``, and ``dataclasses`` pulls ``inspect`` in (~8 ms per start-up).
    """

    __slots__ = ("connector_type", "description", "id", "version")
    __hash__ = None  # type: ignore[assignment]  # mutable value, as an eq dataclass

    id: str
    connector_type: ConnectorType
    version: str
    description: str

    def __init__(
        self, id: str, connector_type: ConnectorType, version: str, description: str
    ) -> None:
        self.id = id
        self.connector_type = connector_type
        self.version = version
        self.description = description

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, ConnectorInfo)
        return (self.id, self.connector_type, self.version, self.description) == (
            other.id,
            other.connector_type,
            other.version,
            other.description,
        )

    def __repr__(self) -> str:
        return (
            f"ConnectorInfo(id={self.id!r}, connector_type={self.connector_type!r}, "
            f"version={self.version!r}, description={self.description!r})"
        )


class InvalidConnectorType(InvalidInput):
    """A string names no connector type."""

    code = "input.connector-type"


def parse_connector_type(value: object) -> ConnectorType:
    """Accept a :class:`ConnectorType` or its string value.

    Raises:
        InvalidConnectorType: listing the valid values.
    """
    if isinstance(value, ConnectorType):
        return value
    for member in ConnectorType:
        if value == member.value:
            return member
    valid = ", ".join(m.value for m in ConnectorType)
    raise InvalidConnectorType(f"unknown connector type {value!r}; valid types: {valid}")


# Interface class names per type, in ``modelmesh.interfaces``.
_INTERFACES: dict[ConnectorType, tuple[tuple[str, str], ...]] = {
    ConnectorType.PROVIDER: (("modelmesh.interfaces.provider", "ProviderConnector"),),
    ConnectorType.SECRET_STORE: (("modelmesh.interfaces.secret_store", "SecretStoreConnector"),),
    ConnectorType.STORAGE: (("modelmesh.interfaces.storage", "StorageConnector"),),
    ConnectorType.OBSERVABILITY: (
        ("modelmesh.interfaces.observability", "ObservabilityConnector"),
    ),
    ConnectorType.DISCOVERY: (("modelmesh.interfaces.discovery", "DiscoveryConnector"),),
    ConnectorType.ROTATION: (
        ("modelmesh.interfaces.rotation", "DeactivationPolicy"),
        ("modelmesh.interfaces.rotation", "RecoveryPolicy"),
        ("modelmesh.interfaces.rotation", "SelectionStrategy"),
    ),
}

# A rotation *bundle* (like upstream's StickUntilFailurePolicy) subclasses no interface but
# exposes the three rotation components as attributes.
_ROTATION_BUNDLE = ("deactivation", "recovery", "selection")


def _interfaces(kind: ConnectorType) -> tuple[type, ...]:
    found: list[type] = []
    for module_name, attr in _INTERFACES[kind]:
        found.append(getattr(importlib.import_module(module_name), attr))
    return tuple(found)


def _as_class(implementation: Any) -> type:
    return implementation if isinstance(implementation, type) else type(implementation)


def _matches(cls: type, kind: ConnectorType) -> bool:
    if issubclass(cls, _interfaces(kind)):
        return True
    return kind is ConnectorType.ROTATION and all(hasattr(cls, name) for name in _ROTATION_BUNDLE)


def classify(implementation: Any) -> ConnectorType:
    """Work out the connector type from the ModelMesh interface an implementation subclasses.

    Args:
        implementation: A connector class (or instance).

    Returns:
        The single matching type.

    Raises:
        ConnectorTypeError: when no type, or more than one, matches.
    """
    cls = _as_class(implementation)
    matches = [kind for kind in ConnectorType if _matches(cls, kind)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConnectorTypeError(
            f"cannot tell the connector type of {cls.__module__}.{cls.__qualname__}: it "
            "subclasses no ModelMesh connector interface",
            hint="subclass one of modelmesh.interfaces' connector classes, or pass "
            "connector_type= explicitly",
        )
    names = ", ".join(k.value for k in matches)
    raise ConnectorTypeError(
        f"{cls.__module__}.{cls.__qualname__} matches several connector types ({names}); "
        "pass connector_type= explicitly"
    )


def check_implements(implementation: Any, kind: ConnectorType, *, what: str) -> None:
    """Check that an implementation really implements ``kind``'s ModelMesh interface.

    Args:
        implementation: A connector class (or instance).
        kind: The declared type.
        what: Names the connector in the error (its ID and origin).

    Raises:
        ConnectorTypeError: if it does not subclass the interface, or (for classes)
            leaves abstract methods unimplemented.
    """
    cls = _as_class(implementation)
    if not _matches(cls, kind):
        expected = " or ".join(f"{m}.{a}" for m, a in _INTERFACES[kind])
        if kind is ConnectorType.ROTATION:
            expected += " (or a bundle with .deactivation/.recovery/.selection)"
        raise ConnectorTypeError(
            f"{what}: declared type {kind.value!r} but {cls.__module__}.{cls.__qualname__} "
            f"does not implement {expected}"
        )
    abstract = sorted(getattr(cls, "__abstractmethods__", ()) or ())
    if abstract:
        raise ConnectorTypeError(
            f"{what}: {cls.__qualname__} leaves abstract method(s) unimplemented: "
            + ", ".join(abstract)
        )
