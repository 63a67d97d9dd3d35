"""ModelMesh on verified packages: ``bridge.load_mesh`` from a YAML file, end to end.

The first-party demo packages (``index/sources/``) are published into a simulator index
served on 127.0.0.1. A ModelMesh YAML names them in ``connectors.packages``, uses the echo
provider for a chat pool and the audit log as its observability sink. A chat completion
through ModelMesh's OpenAI-style client must come back from the echo provider, and the
audit file must receive ModelMesh's trace events.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmesh_connectors import ConnectorType
from modelmesh_connectors.bridge import LoadedMesh, load_mesh
from modelmesh_connectors.errors import HashMismatchError
from tests.support.simulator import RepositorySimulator

SOURCES = Path(__file__).resolve().parents[2] / "index" / "sources"
CHAT = "generation.text-generation.chat-completion"
POOL = "chat"
ECHO_ARCHIVE = "archives/modelmesh-echo-provider/modelmesh-echo-provider-1.0.0.zip"


@pytest.fixture(autouse=True)
def _no_bytecode_in_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packing reads ``index/sources/``; keep ``__pycache__`` out of it."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path / "repo") as simulator:
        for name in (
            "modelmesh-echo-provider-1.0.0",
            "acme-audit-log-1.0.0",
            "acme-audit-log-1.1.0",
        ):
            simulator.publish_dir(SOURCES / name)
        yield simulator


def _write_mesh_yaml(
    sim: RepositorySimulator, directory: Path, audit: Path, audit_requirement: str
) -> Path:
    """A ModelMesh YAML beside its own copy of the trust root (paths relative to the file)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "keys").mkdir(exist_ok=True)
    shutil.copyfile(sim.trust_root, directory / "keys" / "root.json")
    config: dict[str, Any] = {
        "connectors": {
            "packages": ["modelmesh-echo-provider", audit_requirement],
            "index": sim.url,
            "trust_root": "keys/root.json",
            "cache_dir": "cache",
            "retries": 0,
            "timeouts": {"connect": 2, "read": 2},
        },
        "providers": {
            "echo": {"connector": "demo.echo.v1", "config": {"answers": {"ping": "pong"}}},
        },
        "models": {"echo.echo-1": {"provider": "demo.echo.v1"}},
        "pools": {POOL: {"capability": CHAT}},
        "observability": {"connector": "acme.audit-log.v1", "config": {"path": str(audit)}},
    }
    path = directory / "modelmesh.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _chat(loaded: LoadedMesh, text: str) -> Any:
    return loaded.client.chat.completions.create(
        model=POOL, messages=[{"role": "user", "content": text}]
    )


def _audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("audit_requirement", "audit_version"),
    [("acme-audit-log", "1.1.0"), ("acme-audit-log==1.0.0", "1.0.0")],
)
def test_chat_completion_through_verified_packages(
    sim: RepositorySimulator, tmp_path: Path, audit_requirement: str, audit_version: str
) -> None:
    audit = tmp_path / "audit.jsonl"
    yaml_path = _write_mesh_yaml(sim, tmp_path / "deploy", audit, audit_requirement)
    loaded = load_mesh(yaml_path)
    try:
        answer = _chat(loaded, "hello mesh")
        canned = _chat(loaded, "ping")  # the provider got its `config:` mapping
    finally:
        loaded.mesh.shutdown()
        loaded.mesh.observability.close()

    assert answer.choices[0].message.content == "echo: hello mesh"
    assert answer.model == "echo-1"
    assert canned.choices[0].message.content == "pong"

    registry = loaded.registry
    versions = {i.id: i.version for i in registry.list_connectors()}
    assert versions["demo.echo.v1"] == "1.0.0"
    assert versions["acme.audit-log.v1"] == audit_version
    for cid in ("demo.echo.v1", "acme.audit-log.v1"):
        origin = registry.origin(cid)
        assert origin.kind == "package"
        assert origin.signed_by == (sim.index_key.keyid,)
    # ModelMesh runs the verified package classes, not something it found elsewhere.
    assert type(loaded.mesh.observability) is registry.get_connector("acme.audit-log.v1")
    assert {type(p) for p in loaded.mesh.providers.values()} == {
        registry.get_connector("demo.echo.v1")
    }
    assert "demo.echo.v1" in {i.id for i in registry.list_connectors(ConnectorType.PROVIDER)}
    # Relative paths in the YAML are resolved next to it, and the archives were fetched.
    cached = list((tmp_path / "deploy" / "cache" / "archives").rglob("*"))
    assert len([p for p in cached if p.is_file() and not p.name.endswith(".lock")]) == 2
    assert sim.server.request_count("/" + ECHO_ARCHIVE) == 1

    records = _audit_lines(audit)
    assert {r["kind"] for r in records} == {"trace"}  # ModelMesh 0.1.1 only calls trace()
    messages = [(r["data"]["component"], r["data"]["message"]) for r in records]
    # The bridge handed ModelMesh a ready instance of the verified provider class.
    assert ("mesh", "Registered pre-built provider 'echo' as 'demo.echo.v1'") in messages
    assert ("mesh", "Initialized: 1 provider(s), 1 pool(s)") in messages
    assert messages.count(("router", "Request succeeded on 'echo.echo-1'")) == 2
    assert messages[-1] == ("mesh", "ModelMesh shut down")
    if audit_version == "1.1.0":  # 1.1.0 numbers its lines; 1.0.0 does not
        assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    else:
        assert all("seq" not in r for r in records)


def test_tampered_package_builds_no_mesh(sim: RepositorySimulator, tmp_path: Path) -> None:
    sim.corrupt(ECHO_ARCHIVE)
    audit = tmp_path / "audit.jsonl"
    yaml_path = _write_mesh_yaml(sim, tmp_path / "deploy", audit, "acme-audit-log")
    with pytest.raises(HashMismatchError, match="modelmesh-echo-provider 1.0.0"):
        load_mesh(yaml_path)
    assert not audit.exists()  # no sink was built, so nothing was logged
