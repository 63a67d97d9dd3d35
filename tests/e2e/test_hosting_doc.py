"""docs/HOSTING.md is run, command by command: against a directory and against a real
S3-compatible server (moto on 127.0.0.1), through the console script in subprocesses.

The bucket name, paths and key files of the guide are replaced by the test's own; nothing else
is changed, so a command that stops working fails here. (Its nginx block is run by
tests/e2e/test_nginx_e2e.py.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.packages import make_package
from tests.support.publishing import build_archives, make_keys
from tests.support.s3 import MotoServer, moto_server

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "HOSTING.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.slow


def blocks(language: str) -> list[str]:
    """The fenced blocks of the guide in ``language`` ("" for a block without one)."""
    found: list[str] = []
    current: list[str] | None = None
    kind = ""
    for line in GUIDE.splitlines():
        if line.startswith("```"):
            if current is None:
                current, kind = [], line[3:].strip()
            else:
                if kind == language:
                    found.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return found


def shell_commands() -> list[str]:
    return [line for block in blocks("sh") for line in block.splitlines() if line.startswith("modelmesh-connectors ")]


def cron_commands() -> list[str]:
    [cron] = [b for b in blocks("") if re.match(r"\d+ \d+ \* \* ", b)]
    return [line.split(None, 5)[5] for line in cron.splitlines() if line.strip()]


def ci_commands() -> list[str]:
    [workflow] = blocks("yaml")
    return [m.strip() for m in re.findall(r"- run: (modelmesh-connectors .*)", workflow)]


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def run(command: str, cwd: Path, env: dict[str, str], substitutions: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for old, new in substitutions.items():
        command = command.replace(old, new)
    argv = command.split()
    assert argv[0] == "modelmesh-connectors"
    result = subprocess.run([sys.executable, "-m", "modelmesh_connectors", *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def workspace(base: Path) -> Path:
    keys = make_keys()
    base.mkdir(parents=True)
    written = keys.write(base / "secrets")
    (base / "keys").mkdir()
    (base / "keys" / "root.json").write_bytes(keys.root_bytes)
    for role in ("index", "timestamp"):
        (base / f"{role}.pem").write_bytes(written[role].read_bytes())
        (base / f"{role}.pem").chmod(0o600)
    return base


def test_every_command_of_the_guide(moto: MotoServer, tmp_path: Path) -> None:
    commands = shell_commands()
    assert len(commands) == 8, commands  # a new command in the guide: run it here too
    work = workspace(tmp_path / "work")
    build_archives(work / "dist", [("acme-audit-log", "1.2.0"), ("acme-metrics", "0.3.0")])
    bucket = moto.new_bucket()
    subs = {"my-index-bucket": bucket, "/srv/modelmesh-index": str(tmp_path / "srv" / "index"), "/etc/modelmesh/timestamp.pem": str(work / "timestamp.pem")}
    env = moto.env()
    (tmp_path / "srv").mkdir()
    outputs = [run(c, work, env, subs).stdout for c in commands]
    assert "verified:" in outputs[2] and "verified:" in outputs[5]
    # The bucket policy of the guide lets anonymous readers GET the index; the headers of
    # the Cache-Control table travel with every object.
    [policy] = blocks("json")
    moto.client().put_bucket_policy(Bucket=bucket, Policy=policy.replace("my-index-bucket", bucket))
    timestamp = httpx.get(f"{moto.endpoint}/{bucket}/connectors/timestamp.json")
    assert timestamp.status_code == 200 and timestamp.headers["cache-control"] == "no-cache"
    archive = httpx.get(f"{moto.endpoint}/{bucket}/connectors/archives/acme-metrics/acme-metrics-0.3.0.zip")
    assert archive.status_code == 200
    assert archive.headers["cache-control"] == "public, max-age=31536000, immutable"
    for command in cron_commands():
        run(command, work, env, subs)
    report = run(f"modelmesh-connectors verify s3://{bucket}/connectors/ --root keys/root.json --json", work, env, {})
    assert json.loads(report.stdout)["ok"] is True


def test_the_ci_workflow_publishes_from_a_runner(moto: MotoServer, tmp_path: Path) -> None:
    commands = ci_commands()
    assert [c.split()[1] for c in commands] == ["pack", "publish", "verify"]
    runner = workspace(tmp_path / "runner")
    make_package(runner / "packages", "acme-audit-log", "1.2.0")
    (runner / "packages" / "acme-audit-log-1.2.0").rename(runner / "packages" / "acme-audit-log")
    bucket = moto.new_bucket()
    env = moto.env()
    run(f"modelmesh-connectors init --index s3://{bucket}/connectors/ --root keys/root.json --index-key index.pem --timestamp-key timestamp.pem", runner, env, {})
    for command in commands:
        run(command, runner, env, {"my-index-bucket": bucket})
