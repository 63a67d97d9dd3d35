"""Lock files, air-gapped mirrors, offline mode and mirror failover over real servers."""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from modelmesh_connectors import (
    ConnectorRegistry,
    DownloadError,
    ResolutionError,
)
from modelmesh_connectors.cli import main
from modelmesh_connectors.errors import (
    ConfigError,
    ExpiredError,
    HashMismatchError,
)
from modelmesh_connectors.registry import build_registry
from tests.support.http_server import LoopbackServer, Reply
from tests.support.simulator import RepositorySimulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        simulator.publish("acme-audit-log", "1.0.0")
        simulator.publish("acme-audit-log", "1.1.0")
        yield simulator


def _write_config(path: Path, connectors: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({"connectors": connectors}))
    return path


def _version(registry: ConnectorRegistry) -> str:
    return {i.id: i.version for i in registry.list_connectors()}["acme.audit-log.v1"]


def test_lock_then_locked_install_refuses_drift(sim: RepositorySimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write_config(tmp_path / "mesh.yaml", sim.config(["acme-audit-log"], metadata_max_age=0))
    assert main(["lock", "--config", str(config)]) == 0
    lock = json.loads((tmp_path / "connectors.lock").read_text())
    [entry] = lock["packages"]
    assert (entry["name"], entry["version"]) == ("acme-audit-log", "1.1.0")
    assert entry["signed_by"] == [sim.index_key.keyid]
    sim.publish("acme-audit-log", "1.2.0")
    locked = sim.config(["acme-audit-log"], locked=True, lock_file=str(tmp_path / "connectors.lock"), metadata_max_age=0)
    assert _version(build_registry(locked)) == "1.1.0"  # the newer release is ignored
    # a package missing from the lock fails: pinning is all-or-nothing
    sim.publish("other-sink", "1.0.0", connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")])
    with pytest.raises(ResolutionError, match="not pinned"):
        build_registry({**locked, "packages": ["acme-audit-log", "other-sink"]})
    # a different hash for the pinned version, from any source, is an error
    lock["packages"][0]["sha256"] = "0" * 64
    (tmp_path / "connectors.lock").write_text(json.dumps(lock))
    with pytest.raises(HashMismatchError, match="lock pins sha256 0000"):
        build_registry(locked)
    assert main(["lock", "--config", str(config), "--upgrade"]) == 0
    assert json.loads((tmp_path / "connectors.lock").read_text())["packages"][0]["version"] == "1.2.0"


def test_air_gap_walkthrough(sim: RepositorySimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    connected = _write_config(tmp_path / "connected.yaml", sim.config(["acme-audit-log==1.0.0"]))
    carry = tmp_path / "carry"
    assert main(["mirror", "--config", str(connected), "--to", str(carry), "--bundle", str(tmp_path / "bundle.tar")]) == 0
    printed = capsys.readouterr().out
    assert "NOT a trust anchor" in printed and "out of band" in printed
    assert hashlib.sha256(sim.root_bytes).hexdigest() in printed  # the fingerprint to compare
    assert (carry / "keys" / "root.json").read_bytes() == sim.trust_root.read_bytes()
    assert (carry / "timestamp.json").read_bytes() == sim.read("timestamp.json")
    with tarfile.open(tmp_path / "bundle.tar") as tar:
        assert "timestamp.json" in tar.getnames()
    sim.server.stop()  # the isolated machine has no network at all
    # The trust root was provisioned out of band (installed with the deployment), never
    # taken from the bundle it is meant to check.
    provisioned = tmp_path / "etc" / "modelmesh" / "root.json"
    provisioned.parent.mkdir(parents=True)
    provisioned.write_bytes(sim.root_bytes)
    isolated = {
        "packages": ["acme-audit-log==1.0.0"],
        "bundle": str(carry),
        "trust_root": str(provisioned),
        "cache_dir": str(tmp_path / "isolated-cache"),
        "offline": True,
    }
    # The README's old advice, trust_root: carry/keys/root.json, is refused before any read.
    with pytest.raises(ConfigError, match="lies inside the bundle directory"):
        build_registry({**isolated, "trust_root": str(carry / "keys" / "root.json")})
    assert not (tmp_path / "isolated-cache").exists()
    registry = build_registry(isolated)
    assert _version(registry) == "1.0.0"
    # tampering with the carried archive is caught exactly as online
    archive = next((carry / "archives").rglob("*.zip"))
    archive.write_bytes(archive.read_bytes()[:-1] + b"\1")
    with pytest.raises(HashMismatchError):
        build_registry({**isolated, "cache_dir": str(tmp_path / "isolated-cache-2")})


def test_mirrored_directory_served_by_static_server(sim: RepositorySimulator, tmp_path: Path) -> None:
    carry = tmp_path / "carry"
    main(["mirror", "--config", str(_write_config(tmp_path / "c.yaml", sim.config(["acme-audit-log"]))), "--to", str(carry)])
    with LoopbackServer(carry) as other:
        cfg = {"packages": ["acme-audit-log"], "index": other.base_url + "/", "trust_root": str(sim.trust_root),
               "cache_dir": str(tmp_path / "c3")}
        assert _version(build_registry(cfg)) == "1.1.0"


def test_offline_expired_needs_grace_and_warns(sim: RepositorySimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build_registry(sim.config(["acme-audit-log"]))
    sim.server.stop()
    later = sim.now + timedelta(days=30)  # timestamp (7 days) has expired
    with pytest.raises(ExpiredError, match="timestamp"):
        build_registry(sim.config(["acme-audit-log"], offline=True), now=later)
    with caplog.at_level(logging.WARNING):
        registry = build_registry(sim.config(["acme-audit-log"], offline=True, max_expired_age="30d"), now=later)
    assert _version(registry) == "1.1.0"
    assert "expired" in caplog.text
    assert "ago" in caplog.text


def test_offline_with_nothing_cached_is_clear(sim: RepositorySimulator) -> None:
    with pytest.raises(DownloadError, match="offline"):
        build_registry(sim.config(["acme-audit-log"], offline=True))


def test_mirror_failover_dead_broken_and_poisoned(sim: RepositorySimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with LoopbackServer() as broken, LoopbackServer() as poisoned:
        broken.script("/timestamp.json", Reply.error(503))
        # a mirror serving a tampered archive (valid metadata) must not poison the load
        for path in sim.dir.rglob("*"):
            if path.is_file():
                rel = "/" + path.relative_to(sim.dir).as_posix()
                data = path.read_bytes()
                if rel.endswith("1.1.0.zip"):
                    data = data[:-1] + bytes([data[-1] ^ 1])
                poisoned.add_file(rel, data)
        dead = "http://127.0.0.1:9/"  # discard port: connection refused
        cfg = sim.config(["acme-audit-log"])
        cfg["index"] = [dead, broken.base_url + "/", poisoned.base_url + "/", sim.url]
        with caplog.at_level(logging.WARNING):
            registry = build_registry(cfg)
        assert _version(registry) == "1.1.0"
        assert poisoned.request_count("/archives/acme-audit-log/acme-audit-log-1.1.0.zip") == 1
        assert sim.server.request_count("/archives/acme-audit-log/acme-audit-log-1.1.0.zip") == 1
        assert "127.0.0.1:9" in caplog.text
