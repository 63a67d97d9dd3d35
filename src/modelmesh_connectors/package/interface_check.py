"""Check a package's declared connectors against their ModelMesh interfaces, in a child process.

A connector class that implements nothing (no ModelMesh interface, or abstract methods left
unimplemented) passes every check that only reads the package, and would then be published
forever. Only importing the package's code shows it. That code is the publisher's *input*, so
it never runs in the caller's process — the one that holds signing keys: a fresh interpreter
imports the package from its bytes (the same in-memory importer the loader uses) and reports
one result per declared connector as JSON.

This catches mistakes, not malice: the package's own code runs in the child and could lie
about itself. The child holds nothing worth stealing (no keys; it reads one package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelmesh_connectors.errors import ConnectorError, PackageError

__all__ = ["CHECK_TIMEOUT", "ConnectorCheck", "InterfaceReport", "check_interfaces"]

CHECK_TIMEOUT = 120.0  # seconds the child may take to import and check the package


@dataclass(frozen=True)
class ConnectorCheck:
    """The result for one declared connector.

    Attributes:
        id: The connector ID.
        type: The declared connector type.
        ok: Whether its entry imported and implements the type's interface.
        message: ``ok``, or what is wrong.
    """

    id: str
    type: str
    ok: bool
    message: str


@dataclass(frozen=True)
class InterfaceReport:
    """The child's report on one package.

    Attributes:
        package: ``name version``.
        connectors: One result per declared connector, in manifest order.
    """

    package: str
    connectors: tuple[ConnectorCheck, ...]

    @property
    def ok(self) -> bool:
        """True when every declared connector passed."""
        return all(c.ok for c in self.connectors)

    @property
    def failures(self) -> list[ConnectorCheck]:
        """The connectors that failed."""
        return [c for c in self.connectors if not c.ok]

    def to_json_obj(self) -> dict[str, Any]:
        """JSON form: ``{"package", "ok", "connectors": [{"id", "type", "ok", "message"}]}``."""
        return {
            "package": self.package,
            "ok": self.ok,
            "connectors": [c.__dict__ for c in self.connectors],
        }


def check_interfaces(path: str | Path, *, timeout: float = CHECK_TIMEOUT) -> InterfaceReport:
    """Import the package at ``path`` in a separate interpreter and check every connector.

    Args:
        path: A package directory or ``.zip``; a zip's bytes are read here and handed to the
            child on stdin (it checks exactly these bytes).
        timeout: Seconds the child may take.

    Returns:
        One result per declared connector (a failed import fails every connector).

    Raises:
        PackageError: the package cannot be read, or the child could not report (crashed,
            timed out, printed no report).
    """
    p = Path(path)
    if p.is_dir():
        argv, data = [str(p.resolve())], b""
    else:
        from modelmesh_connectors.package.package import read_local_zip

        argv, data = ["-"], read_local_zip(p)
    # -P: the child's working directory (a fresh temporary one) is not on sys.path either.
    cmd = [sys.executable, "-P", "-m", __name__, *argv]
    with tempfile.TemporaryDirectory(prefix="modelmesh-check-") as cwd:
        try:
            done = subprocess.run(
                cmd, input=data, capture_output=True, cwd=cwd, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PackageError(
                f"{p}: the connector interface check did not finish within {timeout:.0f}s "
                "(importing the package's code hangs?)"
            ) from exc
        except OSError as exc:
            raise PackageError(f"{p}: cannot start the connector interface check: {exc}") from exc
    try:
        report = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
        if "error" in report:
            raise PackageError(str(report["error"]), hint=report.get("hint"))
        return InterfaceReport(
            str(report["package"]),
            tuple(
                ConnectorCheck(str(c["id"]), str(c["type"]), bool(c["ok"]), str(c["message"]))
                for c in report["connectors"]
            ),
        )
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise PackageError(
            f"{p}: the connector interface check exited {done.returncode} without a report"
            + (f": {' / '.join(tail)}" if tail else "")
        ) from exc


def _check(source: str) -> dict[str, Any]:
    """In the child: read the package, import it from memory, check each connector."""
    from modelmesh_connectors.package.connector_types import check_implements
    from modelmesh_connectors.package.importer import import_package
    from modelmesh_connectors.package.package import open_local_package, package_from_bytes

    try:
        if source == "-":
            package = package_from_bytes(sys.stdin.buffer.read(), source="<stdin>")
        else:
            package = open_local_package(source)
    except ConnectorError as exc:
        return {"error": exc.message, "hint": exc.hint}
    manifest = package.manifest
    label = f"{manifest.name} {manifest.version}"
    results: list[dict[str, Any]] = []
    try:
        imported = import_package(manifest, package.files, package.sha256)
    except ConnectorError as exc:
        for conn in manifest.connectors:
            results.append(
                {"id": conn.id, "type": conn.type.value, "ok": False, "message": exc.message}
            )
        return {"package": label, "connectors": results}
    for conn in manifest.connectors:
        try:
            check_implements(
                imported.classes[conn.id], conn.type, what=f"{label}: connector {conn.id}"
            )
        except ConnectorError as exc:
            results.append(
                {"id": conn.id, "type": conn.type.value, "ok": False, "message": exc.message}
            )
        else:
            results.append({"id": conn.id, "type": conn.type.value, "ok": True, "message": "ok"})
    return {"package": label, "connectors": results}


def _child_main(argv: list[str]) -> int:
    # Whatever the package prints (to sys.stdout or straight to fd 1) lands on stderr;
    # the report alone goes to the real stdout.
    report_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        result = _check(argv[0]) if len(argv) == 1 else {"error": "usage: PATH or -"}
    except Exception as exc:  # the package's code raised something unexpected
        result = {"error": f"the check failed: {type(exc).__name__}: {exc}"}
    with os.fdopen(report_fd, "w", encoding="utf-8") as out:
        out.write("\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
