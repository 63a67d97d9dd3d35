"""ModelMesh on top of verified packages: a thin translation of ModelMesh's YAML.

ModelMesh looks connectors up by ID in two places: ``providers.<name>.connector`` (it keeps a
pre-built ``instance`` when one is given) and ``observability.connector`` (resolved through its
own flat registry, instantiated without arguments; a pre-set instance wins). The bridge loads
``connectors.packages`` through the verified loader, instantiates package connectors named in
those places with their ``config:`` mapping, and hands ModelMesh ready instances. Built-in IDs
are left to ModelMesh exactly as before.

Start-up follows the safe pattern of docs/SECURITY.md: every package is verified before any
is imported, the registry is frozen once they are registered, and ModelMesh's own connector
table is checked against its built-in classes before ModelMesh resolves any ID from it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmesh_connectors.errors import (
    ConfigError,
    ConnectorTypeError,
    LibraryTamperedError,
)
from modelmesh_connectors.package.connector_types import ConnectorType
from modelmesh_connectors.registry import ConnectorRegistry, build_registry

__all__ = ["LoadedMesh", "load_mesh"]


@dataclass(frozen=True)
class LoadedMesh:
    """A ready ModelMesh built on verified connectors.

    Attributes:
        mesh: The initialized ``modelmesh.ModelMesh``.
        client: Its OpenAI-compatible ``MeshClient``.
        registry: The registry holding built-ins and every loaded package.
    """

    mesh: Any
    client: Any
    registry: ConnectorRegistry


def _read(config: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config)), None
    from modelmesh_connectors._internal.strict_yaml import (
        DuplicateKeyError,
        YamlInputError,
        load_yaml,
    )

    path = Path(config)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), source=str(path)) or {}
    except DuplicateKeyError as exc:
        # ModelMesh's own reader keeps the last value; a repeated key is refused here.
        raise ConfigError(f"{path}: {exc}", hint="keep one of the two lines") from exc
    except (OSError, UnicodeDecodeError, YamlInputError) as exc:
        raise ConfigError(f"{path}: cannot read ModelMesh configuration: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: configuration must be a mapping")
    return data, path.resolve().parent


def _instantiate(registry: ConnectorRegistry, cid: str, kind: ConnectorType, settings: Any) -> Any:
    info = {i.id: i for i in registry.list_connectors(kind)}.get(cid)
    if info is None:
        raise ConnectorTypeError(f"connector {cid!r} is not a {kind.value} connector")
    cls = registry.get_connector(cid)
    return cls(settings) if settings is not None else cls()


def _check_upstream(registry: ConnectorRegistry) -> None:
    """ModelMesh's flat table must hold exactly its built-in classes.

    Stops a loaded package (say, from a thread it started) rebinding a built-in ID in the
    table ModelMesh resolves ``connector:`` strings through, after the import-time guard.
    """
    from modelmesh.connectors import CONNECTOR_REGISTRY

    builtins = {i.id for i in registry.list_connectors() if registry.origin(i.id).kind == "builtin"}
    for cid, cls in list(CONNECTOR_REGISTRY.items()):
        if cid not in builtins:
            raise LibraryTamperedError(
                f"modelmesh.connectors.CONNECTOR_REGISTRY holds {cid!r}, which is not a "
                "ModelMesh built-in (added by code running in the process)"
            )
        expected = registry.get_connector(cid)
        if cls is not expected:
            raise LibraryTamperedError(
                f"modelmesh.connectors.CONNECTOR_REGISTRY[{cid!r}] is {cls!r}, expected "
                f"ModelMesh's built-in {expected!r} (rebound by code running in the process)"
            )


def load_mesh(config: str | Path | Mapping[str, Any]) -> LoadedMesh:
    """Load a ModelMesh YAML (or mapping), its verified packages, and return a ready mesh.

    Args:
        config: Path to the ModelMesh YAML file, or the parsed mapping.

    Returns:
        The mesh, its client and the registry (frozen: nothing more can be registered).

    Raises:
        ConfigError: invalid configuration.
        ConnectorError: a package fails to resolve, verify or load.
        LibraryTamperedError: ModelMesh's connector table no longer holds its built-ins.
    """
    from modelmesh import MeshConfig, ModelMesh

    # Lazy: the client (yaml, the trust core) is paid for only when a mesh is built.
    from modelmesh_connectors.client.config import parse_config

    raw, base = _read(config)
    source = None if isinstance(config, Mapping) else str(config)
    registry = build_registry(parse_config(raw, base_dir=base, source=source), freeze=True)
    packaged = {
        info.id
        for info in registry.list_connectors()
        if registry.origin(info.id).kind in ("package", "local")
    }
    providers = raw.get("providers") or {}
    if not isinstance(providers, dict):
        raise ConfigError("providers: expected a mapping")
    for name, definition in providers.items():
        if not isinstance(definition, dict):
            raise ConfigError(f"providers.{name}: expected a mapping")
        cid = definition.get("connector")
        if cid in packaged and "instance" not in definition:
            definition["instance"] = _instantiate(
                registry, cid, ConnectorType.PROVIDER, definition.get("config")
            )
    mesh = ModelMesh()
    observability = raw.get("observability") or {}
    if isinstance(observability, dict) and observability.get("connector") in packaged:
        mesh._observability = _instantiate(  # ModelMesh keeps a pre-set instance (mesh.py)
            registry,
            observability["connector"],
            ConnectorType.OBSERVABILITY,
            observability.get("config"),
        )
    _check_upstream(registry)
    mesh.initialize(MeshConfig.from_dict(raw))
    return LoadedMesh(mesh, mesh.get_client(), registry)
