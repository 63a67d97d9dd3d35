"""The loader's CLI over a real loopback index: install, load, cache list/verify/prune."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelmesh_connectors.cli import main
from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.index.trust import trust_root_id
from modelmesh_connectors.package.requirements import parse_package_spec
from tests.support.simulator import RepositorySimulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        simulator.publish("acme-audit-log", "1.0.0")
        simulator.publish("other-sink", "2.0.0", connectors=[("other.sink.v1", "observability", "other_sink.sink:Sink")])
        yield simulator


def _args(sim: RepositorySimulator) -> list[str]:
    return ["--index", sim.url, "--trust-root", str(sim.trust_root), "--cache-dir", str(sim.cache)]


def test_install_load_and_cache_commands(sim: RepositorySimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "acme-audit-log", "other-sink==2.0.0", *_args(sim)]) == 0
    out = capsys.readouterr().out
    assert "acme-audit-log 1.0.0" in out and "other-sink 2.0.0" in out
    config = tmp_path / "mesh.yaml"
    config.write_text(yaml.safe_dump({"connectors": sim.config(["acme-audit-log"])}))
    assert main(["load", "--config", str(config), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["acme.audit-log.v1"]["signed_by"] == [sim.index_key.keyid]
    assert rows["acme.audit-log.v1"]["origin"].startswith("package acme-audit-log@1.0.0")
    assert rows["openai.llm.v1"]["origin"] == "builtin modelmesh-lite"
    assert main(["load", "--config", str(config)]) == 0
    assert "ORIGIN" in capsys.readouterr().out
    assert main(["cache", "list", "--cache-dir", str(sim.cache)]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len([line for line in listed if not line.startswith("metadata ")]) == 2
    # one metadata record, keyed by the trust root (not by the index URL)
    [record] = [line for line in listed if line.startswith("metadata ")]
    assert record.endswith("trust-root:" + trust_root_id(sim.root_bytes))
    # corrupt one cached archive: verify reports and removes it, exit 1
    victim = next((sim.cache / "archives").rglob("*"), None)
    victims = [p for p in (sim.cache / "archives").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert victim is not None and len(victims) == 2
    victims[0].write_bytes(b"garbage")
    assert main(["cache", "verify", "--cache-dir", str(sim.cache)]) == 8  # ExitCode.CACHE: corrupt entries were removed
    assert "corrupt (removed)" in capsys.readouterr().out
    # prune keeps what the config needs (re-installed first: verify may have removed it)
    assert main(["install", "acme-audit-log", *_args(sim)]) == 0
    capsys.readouterr()
    assert main(["cache", "prune", "--config", str(config)]) == 0
    assert "entries, kept 1 " in capsys.readouterr().out


def test_progress_callback_reports_bytes(sim: RepositorySimulator) -> None:
    seen: list[tuple[str, int, int]] = []
    cfg = parse_config(sim.config([]))
    with Loader(cfg, progress=lambda *a: seen.append(a)) as loader:
        [(resolved, path)] = loader.install([parse_package_spec("acme-audit-log")])
    assert seen[-1] == ("acme-audit-log 1.0.0", path.stat().st_size, resolved.length)


def test_install_errors_are_one_line(sim: RepositorySimulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "nope", *_args(sim)]) == 6  # ExitCode.RESOLUTION
    err = capsys.readouterr().err
    assert err.startswith("error: the index has no package named 'nope'")
