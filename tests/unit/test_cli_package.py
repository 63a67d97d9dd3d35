"""CLI: list, inspect, pack — through main() and through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelmesh_connectors.cli import main
from tests.support.packages import make_package, make_zip, zip_directory


def test_list_json_and_type_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--type", "storage", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["modelmesh.local-file.v1", "modelmesh.memory.v1", "modelmesh.sqlite.v1"]
    assert all(r["type"] == "storage" for r in rows)


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "TYPE", "VERSION", "DESCRIPTION"]
    assert len(out) == 39


def test_inspect_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    path = make_zip(tmp_path)
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["connectors"][0]["id"] == "acme.audit-log.v1"
    assert data["checks"] == {"archive": "ok", "manifest": "ok", "environment": "ok", "interface acme.audit-log.v1": "ok"}


def test_pack_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_package(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["pack", str(src), "-o", str(out)]) == 0
    assert (out / "acme-audit-log-1.2.0.zip").exists()
    assert "sha256=" in capsys.readouterr().out


def test_errors_print_one_line_and_hint_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_package(tmp_path)
    (src / "inner").mkdir()
    (src / "modelmesh-package.yaml").rename(src / "inner" / "modelmesh-package.yaml")
    bad = zip_directory(src, tmp_path / "bad.zip")
    assert main(["inspect", str(bad)]) == 7  # ExitCode.PACKAGE
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ")
    assert "must be at the root" in err[0]
    assert err[1].startswith("hint: ")


def test_verbose_shows_traceback_via_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("modelmesh-connectors")
    quiet = subprocess.run([str(exe), "inspect", str(tmp_path / "missing.zip")], capture_output=True, text=True)
    assert quiet.returncode == 7
    assert "Traceback" not in quiet.stderr
    loud = subprocess.run([str(exe), "-v", "inspect", str(tmp_path / "missing.zip")], capture_output=True, text=True)
    assert loud.returncode == 7
    assert "Traceback" in loud.stderr
    assert "PackageError" in loud.stderr
    module = subprocess.run([sys.executable, "-m", "modelmesh_connectors", "list", "--type", "rotation"],
                            capture_output=True, text=True, check=True)
    assert "modelmesh.stick-until-failure.v1" in module.stdout
