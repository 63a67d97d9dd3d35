"""Connector IDs: ``<namespace>.<name>.v<version>``, e.g. ``acme.audit-log.v1``."""

from __future__ import annotations

import re

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import InvalidInput

__all__ = ["ConnectorId", "InvalidConnectorId", "parse_connector_id"]

_SEGMENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_VERSION = re.compile(r"v([1-9][0-9]{0,8})")  # at most 9 digits: int() stays cheap


class InvalidConnectorId(InvalidInput):
    """A string is not a valid connector ID."""

    code = "input.connector-id"


class ConnectorId(Frozen):
    """A parsed connector ID.

    Attributes:
        namespace: Owner segment (``acme``); publisher keys can be scoped to it.
        name: Connector name segment (``audit-log``).
        version: Interface version number (the ``1`` of ``v1``).
    """

    __slots__ = ("name", "namespace", "version")

    namespace: str
    name: str
    version: int

    def __init__(self, namespace: str, name: str, version: int) -> None:
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)

    # Ordered by (namespace, name, version), only against another ConnectorId
    # (as @dataclass(order=True)).
    def __lt__(self, other: ConnectorId) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() < other._values()

    def __le__(self, other: ConnectorId) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() <= other._values()

    def __gt__(self, other: ConnectorId) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() > other._values()

    def __ge__(self, other: ConnectorId) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() >= other._values()

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}.v{self.version}"


def parse_connector_id(value: object) -> ConnectorId:
    """Parse and validate a connector ID.

    Args:
        value: The candidate ID.

    Returns:
        The parsed ID.

    Raises:
        InvalidConnectorId: saying which part is wrong and what was seen.
    """
    if not isinstance(value, str):
        raise InvalidConnectorId(
            f"connector ID must be a string, got {type(value).__name__}: {value!r}"
        )
    expected = "expected '<namespace>.<name>.v<N>' such as 'acme.audit-log.v1'"
    parts = value.split(".")
    if len(parts) != 3:
        raise InvalidConnectorId(
            f"invalid connector ID {value!r}: {expected}, got {len(parts)} dot-separated part(s)"
        )
    if value != value.lower():
        raise InvalidConnectorId(f"invalid connector ID {value!r}: must be lowercase")
    for label, segment in (("namespace", parts[0]), ("name", parts[1])):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidConnectorId(
                f"invalid connector ID {value!r}: {label} {segment!r} must be one or more "
                "[a-z0-9] runs joined by single '-'"
            )
    match = _VERSION.fullmatch(parts[2])
    if match is None:
        raise InvalidConnectorId(
            f"invalid connector ID {value[:80]!r}: version {parts[2][:20]!r} must be 'v' followed "
            "by a positive integer of at most 9 digits without leading zeros (v1, v2, ...)"
        )
    return ConnectorId(parts[0], parts[1], int(match.group(1)))
