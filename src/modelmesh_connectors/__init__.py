"""ModelMesh connector registry with a signed, verified package distribution system.

Public API::

    from modelmesh_connectors import ConnectorRegistry, ConnectorType, ConnectorInfo

    registry = ConnectorRegistry()                  # ModelMesh's built-ins, imported lazily
    registry.load_package("./acme-audit-log-1.2.0.zip")
    registry = ConnectorRegistry.from_config("modelmesh.yaml")   # verified remote packages
"""

from __future__ import annotations

from modelmesh_connectors.errors import (
    ArchiveError,
    CacheError,
    ConfigError,
    ConnectorError,
    ConnectorTypeError,
    DownloadError,
    DuplicateConnectorError,
    LibraryTamperedError,
    ManifestError,
    PackageError,
    PackageImportError,
    PolicyError,
    RegistryError,
    RegistryFrozenError,
    ResolutionError,
    TrustError,
    UnknownConnectorError,
)
from modelmesh_connectors.package.connector_types import ConnectorInfo, ConnectorType
from modelmesh_connectors.package.origin import Origin
from modelmesh_connectors.registry import ConnectorRegistry

__all__ = [
    "ArchiveError",
    "CacheError",
    "ConfigError",
    "ConnectorError",
    "ConnectorInfo",
    "ConnectorRegistry",
    "ConnectorType",
    "ConnectorTypeError",
    "DownloadError",
    "DuplicateConnectorError",
    "LibraryTamperedError",
    "ManifestError",
    "Origin",
    "PackageError",
    "PackageImportError",
    "PolicyError",
    "RegistryError",
    "RegistryFrozenError",
    "ResolutionError",
    "TrustError",
    "UnknownConnectorError",
]

__version__ = "0.1.0"
