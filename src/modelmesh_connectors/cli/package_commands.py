"""CLI: ``list``, ``inspect`` and ``pack`` — local registry and package commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modelmesh_connectors.cli.exit_codes import ExitCode
from modelmesh_connectors.cli.output import emit

__all__ = ["print_table", "register"]


def register(sub: Any) -> None:
    """Add this module's subcommands to the parser."""
    from modelmesh_connectors.package.connector_types import ConnectorType

    p = sub.add_parser("list", help="list registered connectors (built-ins)")
    p.add_argument(
        "--type", choices=[t.value for t in ConnectorType], help="only this type (default: all)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_list)

    p = sub.add_parser(
        "inspect",
        help="show a package's manifest, connectors, checks and sha256 (exit 7 if a check fails)",
    )
    p.add_argument("path", type=Path, help="package directory or .zip")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_inspect)

    p = sub.add_parser(
        "pack",
        help="build a reproducible .zip from a package directory and check its connectors",
    )
    p.add_argument("directory", type=Path, help="package directory (holds modelmesh-package.yaml)")
    # A str, not a Path: Path("dist/") drops the separator that marks a directory.
    p.add_argument(
        "-o",
        "--output",
        help="output file, or directory (existing, or ending in '/': created) "
        "(default: <name>-<version>.zip in the current directory)",
    )
    p.add_argument(
        "--allow-failing-checks",
        action="store_true",
        help="exit 0 even when a connector fails its interface check",
    )
    p.set_defaults(handler=_pack)


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    """Print a plain aligned table."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _list(args: argparse.Namespace) -> int:
    from modelmesh_connectors.registry import ConnectorRegistry

    registry = ConnectorRegistry()
    infos = registry.list_connectors(args.type)
    rows = [
        {
            "id": i.id,
            "type": i.connector_type.value,
            "version": i.version,
            "description": i.description,
        }
        for i in infos
    ]
    if args.json:
        emit(args, rows, [])
    elif args.verbosity > -2:
        print_table(
            [[i.id, i.connector_type.value, i.version, i.description] for i in infos],
            ["ID", "TYPE", "VERSION", "DESCRIPTION"],
        )
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from modelmesh_connectors.package.interface_check import check_interfaces
    from modelmesh_connectors.package.package import check_environment, inspect_archive

    package = inspect_archive(args.path)
    m = package.manifest
    checks: dict[str, str] = {"archive": "ok", "manifest": "ok"}
    try:
        check_environment(m)
        checks["environment"] = "ok"
    except Exception as exc:  # reported, not fatal: inspect is read-only
        checks["environment"] = f"FAILED: {exc}"
    # The package's code runs only in a child process (check_interfaces), never here.
    report = check_interfaces(args.path)
    for result in report.connectors:
        checks[f"interface {result.id}"] = "ok" if result.ok else f"FAILED: {result.message}"
    data = {
        "name": m.name,
        "version": m.version,
        "description": m.description,
        "requires-modelmesh": m.requires_modelmesh,
        "dependencies": list(m.dependencies),
        "connectors": [
            {"id": c.id, "type": c.type.value, "entry": c.entry, "description": c.description}
            for c in m.connectors
        ],
        "sha256": package.sha256,
        "sha256_kind": "archive" if package.is_archive else "tree",
        "length": package.length,
        "files": len(package.files),
        "checks": checks,
        "ok": all(v == "ok" for v in checks.values()),
    }
    lines = [
        f"{m.name} {m.version} — {m.description}",
        f"  {data['sha256_kind']} sha256: {package.sha256}  "
        f"({package.length} bytes, {len(package.files)} files)",
        f"  requires-modelmesh: {m.requires_modelmesh or '(any)'}",
    ]
    if m.dependencies:
        lines.append(f"  dependencies: {', '.join(m.dependencies)}")
    for c in m.connectors:
        lines.append(f"  connector {c.id} [{c.type.value}] {c.entry} — {c.description}")
    for name, outcome in checks.items():
        lines.append(f"  check {name}: {outcome}")
    emit(args, data, lines)
    if not data["ok"]:
        failed = sorted(k for k, v in checks.items() if v != "ok")
        if not args.json:
            print(f"error: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return int(ExitCode.PACKAGE)
    return 0


def _pack(args: argparse.Namespace) -> int:
    from modelmesh_connectors.package.interface_check import check_interfaces
    from modelmesh_connectors.package.pack import pack_directory
    from modelmesh_connectors.package.package import inspect_archive

    path = pack_directory(args.directory, args.output)
    package = inspect_archive(path)
    report = check_interfaces(path)
    data = {
        "path": str(path),
        "sha256": package.sha256,
        "length": package.length,
        "checks": report.to_json_obj(),
    }
    lines = [f"{path}  sha256={package.sha256}  length={package.length}"]
    lines += [
        f"  check interface {c.id}: {'ok' if c.ok else 'FAILED: ' + c.message}"
        for c in report.connectors
    ]
    emit(args, data, lines)
    if not report.ok and not args.allow_failing_checks:
        if not args.json:
            print(
                f"error: {path} was written, but {len(report.failures)} connector(s) fail their "
                "interface check; 'publish' refuses it",
                file=sys.stderr,
            )
        return int(ExitCode.PACKAGE)
    return 0
