"""Realistic mistakes get a good answer: each through the command line's ``main``.

Most rows call ``main`` in this process as a subprocess would run it (tests/support/cli.py);
the rows about the separate check process run the CLI as a real subprocess.

``cache prune`` with no configuration; ``keygen`` into a missing directory; a connector class
that implements nothing (``inspect``, ``pack``, ``publish``, checked in a separate process);
a file signed with the wrong role's key; YAML errors that must name their file.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelmesh_connectors.cli.exit_codes import ExitCode
from modelmesh_connectors.index.envelope import TIMESTAMP_TYPE, Envelope
from modelmesh_connectors.publish.keyfiles import write_signing_key
from tests.support.cli import cli_env as env
from tests.support.cli import run_cli as run
from tests.support.packages import make_package, zip_directory
from tests.support.simulator import RepositorySimulator

CLI = [sys.executable, "-m", "modelmesh_connectors"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as s:
        s.publish("acme-audit-log", "1.0.0")
        s.publish("other-sink", "1.0.0", connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")])
        s.publish("third-sink", "1.0.0", connectors=[("third.sink.v1", "observability", "third_sink.sink:Sink")])
        yield s


# -- cache prune -----------------------------------------------------------------------------------


def _configs(sim: RepositorySimulator, tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump({"connectors": sim.config(["acme-audit-log"])}))
    b.write_text(yaml.safe_dump({"connectors": sim.config(["other-sink"])}))
    both = run("install", "acme-audit-log", "other-sink", "third-sink", "--config", a)
    assert both.returncode == 0, both.stderr
    return a, b


def _cached(sim: RepositorySimulator) -> int:
    return len([p for p in (sim.cache / "archives").rglob("*") if p.is_file() and not p.name.endswith(".lock")])


def test_cache_prune_without_a_configuration_needs_all(sim: RepositorySimulator, tmp_path: Path) -> None:
    _configs(sim, tmp_path)
    assert _cached(sim) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run("cache", "prune", "--cache-dir", sim.cache, cwd=empty)
    assert refused.returncode == ExitCode.CONFIG
    assert "every cached archive would be removed" in refused.stderr and "--all" in refused.stderr
    assert _cached(sim) == 3  # nothing removed
    dry = run("cache", "prune", "--all", "--dry-run", "--cache-dir", sim.cache, "--json", cwd=empty)
    assert dry.returncode == 0, dry.stderr
    [report] = json.loads(dry.stdout)
    assert report["dry_run"] and len(report["removed"]) == 3
    assert _cached(sim) == 3  # a dry run removes nothing
    gone = run("cache", "prune", "--all", "--cache-dir", sim.cache, cwd=empty)
    assert gone.returncode == 0 and "pruned 3 entries, kept 0" in gone.stdout
    assert _cached(sim) == 0


def test_cache_prune_keeps_what_any_given_configuration_uses(sim: RepositorySimulator, tmp_path: Path) -> None:
    a, b = _configs(sim, tmp_path)
    dry = run("cache", "prune", "--config", a, "--config", b, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would remove: ") == 1 and dry.stdout.count("kept: ") == 2
    assert _cached(sim) == 3
    done = run("cache", "prune", "--config", a, "--config", b, "--json")
    [report] = json.loads(done.stdout)
    assert len(report["removed"]) == 1 and len(report["kept"]) == 2
    assert report["configs"] == [str(a), str(b)]
    assert _cached(sim) == 2
    # With only one of them, the other's entry goes.
    assert run("cache", "prune", "--config", a).returncode == 0
    assert _cached(sim) == 1
    # --all and --config contradict each other.
    assert run("cache", "prune", "--all", "--config", a).returncode == ExitCode.CONFIG


def test_cache_prune_finds_the_configuration_like_every_command(sim: RepositorySimulator, tmp_path: Path) -> None:
    a, _b = _configs(sim, tmp_path)
    done = run("cache", "prune", environ=env(MODELMESH_CONFIG=str(a)))
    assert done.returncode == 0, done.stderr
    assert _cached(sim) == 1


# -- keygen ----------------------------------------------------------------------------------------


def test_keygen_creates_missing_key_directories_owner_only(tmp_path: Path) -> None:
    done = run("keygen", "keys/root-1.pem", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "root-1.pem").stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "root-1.pub.pem").is_file()
    assert "created keys (0700)" in done.stdout
    nested = run("keygen", tmp_path / "deep" / "er" / "k.pem", "--json")
    assert json.loads(nested.stdout)["created_directory"] == str(tmp_path / "deep" / "er")
    for d in (tmp_path / "deep", tmp_path / "deep" / "er"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    # An existing directory is used as it is (its mode is the owner's business).
    (tmp_path / "shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)  # noqa: S103 - a shared directory is the point here
    assert run("keygen", tmp_path / "shared" / "k.pem").returncode == 0
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755


# -- connector interface checks ------------------------------------------------------------------------


HOLLOW = '''\
"""Implements nothing: subclasses the interface but leaves every method abstract."""
import os

from modelmesh.interfaces.observability import ObservabilityConnector

marker = os.environ.get("MM_TEST_PID_FILE")
if marker:
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\\n")


class Sink(ObservabilityConnector):
    pass
'''


def _hollow_package(tmp_path: Path) -> Path:
    return make_package(tmp_path / "src", "acme-audit-log", "2.0.0", modules={
        "acme_audit_log/__init__.py": '"""Package."""\n',
        "acme_audit_log/sink.py": HOLLOW,
    })


def test_inspect_and_pack_fail_a_connector_that_implements_nothing(tmp_path: Path) -> None:
    source = _hollow_package(tmp_path)
    marker = tmp_path / "pids"
    inspected = subprocess.Popen([*CLI, "inspect", str(source)], env=env(MM_TEST_PID_FILE=str(marker)),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = inspected.communicate(timeout=120)
    assert inspected.returncode == ExitCode.PACKAGE, err
    assert "check interface acme.audit-log.v1: FAILED" in out
    assert "leaves abstract method(s) unimplemented" in out
    assert err.startswith("error: 1 check(s) failed: interface acme.audit-log.v1")
    # The package's code ran, but in another process than the CLI's.
    pids = [int(p) for p in marker.read_text().split()]
    assert pids and inspected.pid not in pids
    packed = run("pack", source, "-o", f"{tmp_path / 'dist'}{os.sep}", "--json")
    assert packed.returncode == ExitCode.PACKAGE
    report = json.loads(packed.stdout)
    assert report["checks"]["ok"] is False and Path(report["path"]).is_file()
    assert run("pack", source, "-o", f"{tmp_path / 'dist2'}{os.sep}", "--allow-failing-checks").returncode == 0


def test_the_check_never_imports_package_code_in_the_callers_process(tmp_path: Path) -> None:
    from modelmesh_connectors.package.interface_check import check_interfaces

    marker = tmp_path / "pids"
    before = set(sys.modules)
    os.environ["MM_TEST_PID_FILE"] = str(marker)
    try:
        report = check_interfaces(_hollow_package(tmp_path))
    finally:
        del os.environ["MM_TEST_PID_FILE"]
    assert not report.ok and report.failures[0].id == "acme.audit-log.v1"
    pids = [int(p) for p in marker.read_text().split()]
    assert pids and os.getpid() not in pids
    # Nothing of the package appeared here (other tests in this worker may hold loaded
    # packages of their own: compare with what was there before).
    assert not [m for m in set(sys.modules) - before if m.startswith("_mmpkg_")]


def test_publish_refuses_a_failing_package_unless_told(sim: RepositorySimulator, tmp_path: Path) -> None:
    write_signing_key(tmp_path / "index.pem", sim.index_key, None)
    write_signing_key(tmp_path / "ts.pem", sim.timestamp_key, None)
    signers = ["--index-key", tmp_path / "index.pem", "--timestamp-key", tmp_path / "ts.pem"]
    archive = zip_directory(_hollow_package(tmp_path), tmp_path / "acme-audit-log-2.0.0.zip")
    before = sim.read("timestamp.json")
    marker = tmp_path / "pids"
    proc = subprocess.Popen([*CLI, "publish", str(archive), "--index", str(sim.dir), *map(str, signers)],
                            env=env(MM_TEST_PID_FILE=str(marker)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.PACKAGE, err
    assert "fail their interface check, refusing to publish" in err and "--allow-failing-checks" in err
    assert sim.read("timestamp.json") == before  # the index did not change
    assert proc.pid not in [int(p) for p in marker.read_text().split()]  # not in the publisher's process
    forced = run("publish", archive, "--index", sim.dir, *signers, "--allow-failing-checks")
    assert forced.returncode == 0, forced.stderr
    assert "publishing despite failing connector checks" in forced.stderr
    assert sim.read("timestamp.json") != before


# -- key and threshold errors name keys and roles ---------------------------------------------------


def test_a_file_signed_with_another_roles_key_says_which(sim: RepositorySimulator, tmp_path: Path) -> None:
    # timestamp.json re-signed with the index key instead of the timestamp key
    envelope = Envelope(TIMESTAMP_TYPE, _payload(sim.read("timestamp.json")), ())
    sim.write("timestamp.json", envelope.with_signature(sim.index_key).to_bytes())
    done = run("verify", sim.dir, "--root", sim.trust_root)
    assert done.returncode == ExitCode.TRUST
    line = next(x for x in done.stdout.splitlines() if x.startswith("ERROR timestamp.json"))
    assert f"signed by {sim.index_key.keyid[:8]}…, which root v1 lists for the index role" in line
    assert f"the timestamp role's keys are {sim.timestamp_key.keyid[:8]}…" in line
    # the loader says the same
    config = tmp_path / "m.yaml"
    config.write_text(yaml.safe_dump({"connectors": sim.config(["acme-audit-log"])}))
    load = run("load", "--config", config)
    assert load.returncode == ExitCode.TRUST
    assert "which root v1 lists for the index role" in load.stderr


def _payload(envelope_bytes: bytes) -> bytes:
    from modelmesh_connectors.index.envelope import parse_envelope

    return parse_envelope(envelope_bytes).payload


# -- YAML errors name the file ------------------------------------------------------------------------


BAD_YAML = {
    "tab": "connectors:\n\tpackages: []\n",
    "alias": "connectors: &a\n  x: *a\n",
    "unclosed": "connectors:\n  packages: [\n",
    "bad date": "a: !!timestamp 2020-99-99\n",
    "bad int": "a: !!int 'x'\n",
    "control char": "\x01bad\n",
    "merge key": "a: 1\n<<: {b: 2}\n",
    "duplicate": "connectors: {offline: yes, offline: true}\n",
    "not utf-8": b"connectors: \xff\n",
}


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_every_yaml_error_names_the_file(tmp_path: Path, case: str) -> None:
    content = BAD_YAML[case]
    data = content if isinstance(content, bytes) else str(content).encode()
    config = tmp_path / "mesh-config.yaml"
    config.write_bytes(data)
    done = run("load", "--config", config)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert "mesh-config.yaml" in done.stderr.splitlines()[0] and "<unicode string>" not in done.stderr
    # The same text as a package manifest, in a directory and in a zip.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "modelmesh-package.yaml").write_bytes(data)
    for target in (package, zip_directory(package, tmp_path / "pkg.zip")):
        inspected = run("inspect", target)
        assert inspected.returncode == ExitCode.PACKAGE, inspected.stderr
        first = inspected.stderr.splitlines()[0]
        assert "modelmesh-package.yaml" in first and target.name in first, first
        assert "<unicode string>" not in inspected.stderr
    shutil.rmtree(package)
