"""The README's publishing walkthrough runs exactly as written, end to end, in subprocesses.

The fenced blocks between ``<!-- walkthrough: NAME -->`` and ``<!-- /walkthrough -->`` are
extracted from README.md and run in an empty directory: ``bash`` blocks with
``modelmesh-connectors`` on ``PATH``, the Python block with this interpreter. If the README
drifts from what the tools do, this test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent


def walkthrough(name: str, language: str) -> str:
    """The concatenated ``language`` blocks of the README's walkthrough ``name``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- walkthrough: {name} -->\n(.*?)<!-- /walkthrough -->", text, re.S)
    assert match is not None, f"README.md has no walkthrough {name!r}"
    blocks = re.findall(rf"```{language}\n(.*?)```", match.group(1), re.S)
    assert blocks, f"walkthrough {name!r} has no {language} block"
    return "\n".join(blocks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"MODELMESH_CONFIG", "MODELMESH_KEY_PASSPHRASE", "MODELMESH_CONNECTORS_CACHE"}
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_group(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run in a new process group and kill what is left of it (the background server)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, stdin=subprocess.DEVNULL,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


@pytest.mark.slow  # the whole README walkthrough in real processes; scripts/test.sh runs it
def test_publishing_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = walkthrough("publish", "bash")
    # The requirement is quoted where a shell would otherwise redirect.
    assert "install 'acme-audit-log>=1.1'" in script
    assert "root publish" in script and "--release-key" in script
    env = clean_env(PORT=str(free_port()))
    done = run_group(["bash", "-euo", "pipefail", "-c", script], tmp_path, env)
    assert done.returncode == 0, done.stdout[-6000:]
    out = done.stdout
    # Each step did what the README says.
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "index.pem").stat().st_mode) == 0o600
    assert "check interface acme.audit-log.v1: ok" in out
    assert "published acme-audit-log 1.1.0" in out
    assert "published root version 2" in out
    assert out.count("verified: ") == 2
    assert not (tmp_path / "=1.1").exists()  # the quoted requirement created no file
    lock = json.loads((tmp_path / "connectors.lock").read_text())
    assert [(e["name"], e["version"]) for e in lock["packages"]] == [("acme-audit-log", "1.1.0")]
    assert re.search(r"acme\.audit-log\.v1\s+observability\s+1\.1\.0\s+package acme-audit-log@1\.1\.0", out)
    assert (tmp_path / "site" / "index.html").is_file()
    assert "acme.audit-log.v1" in (tmp_path / "site" / "index.html").read_text()

    # The "publishing from Python" block continues it with version 1.2.0.
    manifest = tmp_path / "acme-audit-log" / "modelmesh-package.yaml"
    manifest.write_text(manifest.read_text().replace('"1.1.0"', '"1.2.0"'))
    packed = subprocess.run(
        [str(BIN / "modelmesh-connectors"), "pack", "acme-audit-log", "-o", "dist/"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert packed.returncode == 0, packed.stderr
    python = subprocess.run(
        [sys.executable, "-c", walkthrough("python", "python")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == "published acme-audit-log 1.2.0"
    audit = subprocess.run(
        [str(BIN / "modelmesh-connectors"), "verify", "site/", "--root", "trust/root.json", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    report = json.loads(audit.stdout)
    assert audit.returncode == 0 and report["ok"], audit.stdout
    assert "1.2.0" in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.parametrize("name", ["publish", "python"])
def test_walkthrough_markers_are_closed(name: str) -> None:
    assert walkthrough(name, "bash" if name == "publish" else "python")
