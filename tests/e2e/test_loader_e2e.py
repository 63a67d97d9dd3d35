"""End to end over a real HTTP server on 127.0.0.1: every packages form, cold and warm."""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmesh_connectors import (
    ConnectorRegistry,
    ConnectorType,
    ResolutionError,
    TrustError,
)
from modelmesh_connectors.errors import HashMismatchError, PolicyError
from tests.support.simulator import RepositorySimulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        simulator.publish("acme-audit-log", "1.0.0")
        simulator.publish("acme-audit-log", "1.1.0")
        simulator.publish("acme-audit-log", "2.0.0rc1")
        yield simulator


def _versions(registry: ConnectorRegistry) -> dict[str, str]:
    return {i.id: i.version for i in registry.list_connectors(ConnectorType.OBSERVABILITY)}


@pytest.mark.parametrize(
    ("requirement", "version"),
    [
        ("acme-audit-log", "1.1.0"),
        ("acme-audit-log==1.0.0", "1.0.0"),
        ("acme-audit-log>=1.0,<1.1", "1.0.0"),
        ("acme-audit-log>=2.0.0rc1", "2.0.0rc1"),
        ("Acme_Audit.Log", "1.1.0"),
    ],
)
def test_requirement_forms(sim: RepositorySimulator, requirement: str, version: str) -> None:
    registry = ConnectorRegistry.from_config(sim.config([requirement]))
    assert _versions(registry)["acme.audit-log.v1"] == version
    origin = registry.origin("acme.audit-log.v1")
    assert origin.kind == "package"
    assert origin.signed_by == (sim.index_key.keyid,)
    assert "modelmesh.null.v1" in _versions(registry)  # built-ins still there


def test_prereleases_only_when_asked(sim: RepositorySimulator) -> None:
    registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log"], prereleases=True))
    assert _versions(registry)["acme.audit-log.v1"] == "2.0.0rc1"


def test_yanked_only_when_pinned_exactly_with_warning(sim: RepositorySimulator, caplog: pytest.LogCaptureFixture) -> None:
    sim.yank("acme-audit-log", "1.1.0", "broken redaction")
    registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log"], metadata_max_age=0))
    assert _versions(registry)["acme.audit-log.v1"] == "1.0.0"
    with caplog.at_level(logging.WARNING):
        registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log==1.1.0"]))
    assert _versions(registry)["acme.audit-log.v1"] == "1.1.0"
    assert "yanked: broken redaction" in caplog.text


def test_unknown_package_and_unsatisfiable(sim: RepositorySimulator) -> None:
    with pytest.raises(ResolutionError, match="no package named 'nope'"):
        ConnectorRegistry.from_config(sim.config(["nope"]))
    with pytest.raises(ResolutionError, match=r"available: 1.0.0, 1.1.0, 2.0.0rc1"):
        ConnectorRegistry.from_config(sim.config(["acme-audit-log>=3"]))


def test_url_with_detached_signature(sim: RepositorySimulator) -> None:
    url = sim.url + "archives/acme-audit-log/acme-audit-log-1.0.0.zip"
    registry = ConnectorRegistry.from_config(sim.config([url]))
    assert _versions(registry)["acme.audit-log.v1"] == "1.0.0"
    assert registry.origin("acme.audit-log.v1").signed_by == (sim.index_key.keyid,)


def test_url_pinned_sha256(sim: RepositorySimulator) -> None:
    path = sim.archives[("acme-audit-log", "1.0.0")]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    url = sim.url + "archives/acme-audit-log/acme-audit-log-1.0.0.zip"
    registry = ConnectorRegistry.from_config(sim.config([f"{url}#sha256={digest}"]))
    assert _versions(registry)["acme.audit-log.v1"] == "1.0.0"
    with pytest.raises(HashMismatchError, match="does not match the signed"):
        ConnectorRegistry.from_config(sim.config([f"{url}#sha256={'0' * 64}"]))


def test_pin_only_url_without_signature(sim: RepositorySimulator, tmp_path: Path) -> None:
    path = sim.archives[("acme-audit-log", "1.0.0")]
    data = path.read_bytes()
    sim.server.add_file("/loose/pkg.zip", data)
    url = sim.url + "loose/pkg.zip"
    with pytest.raises(TrustError, match="no detached signature"):
        ConnectorRegistry.from_config(sim.config([url]))
    good = f"{url}#sha256={hashlib.sha256(data).hexdigest()}"
    assert "acme.audit-log.v1" in _versions(ConnectorRegistry.from_config(sim.config([good])))
    with pytest.raises(HashMismatchError):
        ConnectorRegistry.from_config(sim.config([f"{url}#sha256={'1' * 64}"], cache_dir=str(tmp_path / "c2")))
    with pytest.raises(TrustError, match="no detached signature"):
        ConnectorRegistry.from_config(sim.config([good], require_signatures=True))


def test_local_forms_alongside_remote(sim: RepositorySimulator, tmp_path: Path) -> None:
    zip_path = sim.build_archive("local-sink", "0.1.0", connectors=[("local.sink.v1", "observability", "local_sink.sink:Sink")])
    dir_path = tmp_path / "src" / "dir-sink-0.2.0"
    from tests.support.packages import make_package

    dir_path = make_package(tmp_path / "src2", "dir-sink", "0.2.0", connectors=[("dir.sink.v1", "observability", "dir_sink.sink:Sink")])
    registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log", str(zip_path), str(dir_path)]))
    assert {"acme.audit-log.v1", "local.sink.v1", "dir.sink.v1"} <= set(_versions(registry))
    assert registry.origin("local.sink.v1").kind == "local"
    with pytest.raises(PolicyError, match="require_signatures"):
        ConnectorRegistry.from_config(sim.config([str(dir_path)], require_signatures=True))


def test_signed_local_zip_with_require_signatures(sim: RepositorySimulator, tmp_path: Path) -> None:
    published = sim.archives[("acme-audit-log", "1.0.0")]
    local = tmp_path / "copy" / published.name
    local.parent.mkdir()
    local.write_bytes(published.read_bytes())
    local.with_name(local.name + ".sig").write_bytes(Path(str(published) + ".sig").read_bytes())
    registry = ConnectorRegistry.from_config(sim.config([str(local)], require_signatures=True))
    assert registry.origin("acme.audit-log.v1").kind == "package"
    local.write_bytes(local.read_bytes() + b"x")
    with pytest.raises(TrustError):
        ConnectorRegistry.from_config(sim.config([str(local)], require_signatures=True))


def test_cold_then_warm_then_offline_warm_start(sim: RepositorySimulator) -> None:
    ConnectorRegistry.from_config(sim.config(["acme-audit-log"]))
    cold = sim.server.request_count()
    assert cold >= 5  # root/2 (404), timestamp, top, group, bin, archive
    assert sim.server.request_count("/archives/acme-audit-log/acme-audit-log-1.1.0.zip") == 1
    sim.server.clear_requests()
    registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log"]))
    assert sim.server.request_count() == 0  # fresh cached state: no network at all
    assert _versions(registry)["acme.audit-log.v1"] == "1.1.0"
    sim.server.stop()
    registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log"], offline=True))
    assert _versions(registry)["acme.audit-log.v1"] == "1.1.0"


def test_online_check_after_max_age_fetches_only_timestamp(sim: RepositorySimulator) -> None:
    ConnectorRegistry.from_config(sim.config(["acme-audit-log"]))
    sim.server.clear_requests()
    ConnectorRegistry.from_config(sim.config(["acme-audit-log"], metadata_max_age=0))
    paths = sorted(r.path for r in sim.server.requests)
    assert paths == ["/root/2.json", "/timestamp.json"]


def test_new_release_seen_after_refresh(sim: RepositorySimulator) -> None:
    ConnectorRegistry.from_config(sim.config(["acme-audit-log"]))
    sim.publish("acme-audit-log", "1.2.0")
    registry = ConnectorRegistry.from_config(sim.config(["acme-audit-log"], metadata_max_age=0))
    assert _versions(registry)["acme.audit-log.v1"] == "1.2.0"


def test_load_package_accepts_remote_forms_after_from_config(sim: RepositorySimulator) -> None:
    sim.publish("other-sink", "1.0.0", connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")])
    registry = ConnectorRegistry.from_config(sim.config([]))
    assert registry.load_package("other-sink") == ["other.sink.v1"]
    assert registry.load_package("other-sink==1.0.0") == ["other.sink.v1"]  # identical: no-op
    assert registry.origin("other.sink.v1").kind == "package"


def test_httpx_not_imported_on_local_only_path(tmp_path: Path) -> None:
    import subprocess

    from tests.support.packages import make_zip

    path = make_zip(tmp_path)
    code = (
        "import sys\nfrom modelmesh_connectors import ConnectorRegistry\n"
        f"r = ConnectorRegistry.from_config({{'packages': [{str(path)!r}]}})\n"
        "assert 'acme.audit-log.v1' in [i.id for i in r.list_connectors()]\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
