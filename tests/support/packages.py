"""Builders for connector package directories and zips used across the test suite."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path

from modelmesh_connectors.package.pack import pack_to_bytes

__all__ = [
    "OBSERVABILITY_SOURCE",
    "PROVIDER_SOURCE",
    "make_package",
    "make_zip",
    "raw_zip",
    "zip_directory",
]

OBSERVABILITY_SOURCE = '''\
"""Test observability sink."""
from modelmesh.interfaces.observability import ObservabilityConnector


class Sink(ObservabilityConnector):
    """Collects events in memory."""

    def __init__(self, config=None):
        self.events = []

    def emit(self, event):
        self.events.append(event)

    def log(self, entry):
        self.events.append(entry)

    def flush(self, stats):
        self.events.append(stats)

    def trace(self, entry):
        self.events.append(entry)
'''

PROVIDER_SOURCE = '''\
"""A provider that subclasses the wrong interface."""


class NotAProvider:
    """Plain class."""
'''


def make_package(
    root: Path,
    name: str = "acme-audit-log",
    version: str = "1.2.0",
    *,
    connectors: list[tuple[str, str, str]] | None = None,
    modules: dict[str, str] | None = None,
    extra_manifest: str = "",
) -> Path:
    """Write a package directory and return it.

    Args:
        root: Parent directory.
        name: Package name.
        version: Package version.
        connectors: ``(id, type, entry)`` triples; default one observability sink.
        modules: Relative path → source; default ``<pkg>/__init__.py`` + ``<pkg>/sink.py``.
        extra_manifest: YAML appended to the manifest.
    """
    pkg = name.replace("-", "_")
    connectors = connectors or [("acme.audit-log.v1", "observability", f"{pkg}.sink:Sink")]
    modules = modules if modules is not None else {
        f"{pkg}/__init__.py": '"""Package."""\n',
        f"{pkg}/sink.py": OBSERVABILITY_SOURCE,
    }
    directory = root / f"{name}-{version}"
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"name: {name}",
        f'version: "{version}"',
        "description: Test package",
        "connectors:",
    ]
    for cid, kind, entry in connectors:
        lines += [f"  - id: {cid}", f"    type: {kind}", f"    entry: {entry}",
                  f"    description: {cid} connector"]
    (directory / "modelmesh-package.yaml").write_text(
        "\n".join(lines) + "\n" + textwrap.dedent(extra_manifest)
    )
    for rel, source in modules.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    return directory


def make_zip(root: Path, name: str = "acme-audit-log", version: str = "1.2.0", **kwargs: object) -> Path:
    """Build a package directory and pack it into ``root/<name>-<version>.zip``."""
    directory = make_package(root / "src", name, version, **kwargs)  # type: ignore[arg-type]
    data, filename = pack_to_bytes(directory)
    out = root / filename
    out.write_bytes(data)
    return out


def zip_directory(directory: Path, out: Path) -> Path:
    """Zip a directory as-is, without the packer's validation (for hostile packages)."""
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        entries.append((path.relative_to(directory).as_posix(), path.read_bytes()))
    out.write_bytes(raw_zip(entries))
    return out


def raw_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    """Build a zip from raw entries, for crafting hostile archives."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()
