"""Repeated keys against the loader: a later line must never silently replace an earlier one.

Each attack writes input where a reviewer reads the first occurrence of a key and a
last-wins parser would use the second: the ModelMesh configuration (``require_signatures:
true`` … ``false``), a signed package's manifest (two ``connectors:`` lists), the lock file
(two ``sha256`` pins). For each: the exact typed error naming the key and both lines, no
registry, no package code run, nothing new in the cache. Controls show the same harness
loads when the input is honest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from modelmesh_connectors import (
    ConfigError,
    ConnectorError,
    ManifestError,
    PolicyError,
)
from modelmesh_connectors.client.lockfile import LockFile
from modelmesh_connectors.index.metadata import archive_path
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ID,
    CANARY_NAME,
    CANARY_SOURCE,
    Arena,
    cache_problems,
    canary_entries,
    crafted_zip,
    force_publish,
    private_modules,
    release_for,
)

HOSTILE = "6.6.6"


def _refused(
    load: object, error: type[ConnectorError], match: str, canary: Path, arena: Arena | None = None
) -> ConnectorError:
    """Run ``load`` and check the refusal: exact type, message, no code run, cache clean."""
    modules = private_modules()
    before = arena.cache_files() if arena else {}
    trusted = arena.index_files() if arena else {}
    with pytest.raises(ConnectorError) as info:
        load()  # type: ignore[operator]
    assert type(info.value) is error, repr(info.value)
    assert match in info.value.message, info.value.message
    assert not canary.exists(), "code from the refused package ran"
    assert private_modules() == modules
    if arena is not None:
        assert cache_problems(before, arena.cache_files(), trusted, archives_allowed=True) == []
    return info.value


def _local_config(tmp_path: Path, section: str) -> Path:
    package = tmp_path / "pkg"
    shutil.copytree(CANARY_SOURCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "modelmesh.yaml"
    path.write_text(
        "providers: {}\n"
        "connectors:\n"
        "  packages: [./pkg]\n"
        f"  cache_dir: {tmp_path / 'cache'}\n" + section
    )
    return path


def test_config_duplicate_cannot_turn_require_signatures_off(tmp_path: Path, canary: Path) -> None:
    # Reviewed: line 5 turns signatures on. Appended later, line 7 turns them off again.
    path = _local_config(tmp_path, "  require_signatures: true\n\n  require_signatures: false\n")
    error = _refused(lambda: build_registry(path), ConfigError, "", canary)
    assert error.message == f"{path}: duplicate key 'require_signatures' at line 7 (first at line 5)"


def test_control_require_signatures_alone(tmp_path: Path, canary: Path) -> None:
    on = _local_config(tmp_path / "on", "  require_signatures: true\n")
    _refused(lambda: build_registry(on), PolicyError, "require_signatures is on", canary)
    off = _local_config(tmp_path / "off", "  require_signatures: false\n")
    registry = build_registry(off)
    assert CANARY_ID in {i.id for i in registry.list_connectors()}
    assert canary.exists()  # the harness does see code run when the input is honest


DOUBLED_CONNECTORS = (
    "connectors:\n"
    "  - id: demo.canary.v1\n"
    "    type: observability\n"
    "    entry: demo_canary.canary:Canary\n"
    "    description: the list a last-wins reader would use\n"
)


def _line_of(text: str, prefix: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(prefix))


def test_signed_manifest_with_a_repeated_key(tmp_path: Path, canary: Path) -> None:
    with Arena(tmp_path) as arena:
        entries = canary_entries(HOSTILE, extra_manifest=DOUBLED_CONNECTORS)
        manifest = dict(entries)["modelmesh-package.yaml"].decode()
        data = crafted_zip(entries)
        # Signed by the index key: the release itself is valid, its manifest is not.
        force_publish(arena.sim, data, release=release_for(data, version=HOSTILE))
        config = arena.sim.config([f"{CANARY_NAME}=={HOSTILE}"])
        error = _refused(lambda: build_registry(config), ManifestError, "", canary, arena)
        lines = [i for i, line in enumerate(manifest.splitlines(), 1) if line == "connectors:"]
        assert len(lines) == 2
        assert (
            f"duplicate key 'connectors' at line {lines[1]} (first at line {lines[0]})"
            in error.message
        )
        assert archive_path(CANARY_NAME, HOSTILE).split("/")[-1] in error.message


def test_lock_file_with_a_second_pin(tmp_path: Path, canary: Path) -> None:
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        lock = tmp_path / "connectors.lock"
        config = tmp_path / "modelmesh.yaml"
        section = arena.sim.config([CANARY_NAME], locked=True, lock_file=str(lock))
        config.write_text(yaml.safe_dump({"connectors": section}))
        from modelmesh_connectors.cli import main

        assert main(["lock", "--config", str(config), "-o", str(lock)]) == 0
        good = lock.read_text()
        [entry] = LockFile.read(lock).entries
        # A second sha256 after the reviewed one: json.loads would keep this one.
        other = hashlib.sha256(b"attacker").hexdigest()
        pin = f'"sha256": "{entry.sha256}",'
        assert good.count(pin) == 1
        lock.write_text(good.replace(pin, f'{pin}\n      "sha256": "{other}",'))
        line = _line_of(lock.read_text(), f'      "sha256": "{other}"')
        error = _refused(lambda: build_registry(config), ConfigError, "", canary, arena)
        assert f"duplicate key 'sha256' at line {line} (first at line {line - 1})" in error.message
        # Control: the honest lock loads.
        lock.write_text(good)
        assert CANARY_ID in {i.id for i in build_registry(config).list_connectors()}


def test_state_json_with_a_repeated_key_counts_as_never_refreshed(tmp_path: Path) -> None:
    with Arena(tmp_path) as arena:
        arena.publish_canary()
        config = arena.sim.config([CANARY_NAME], metadata_max_age="1h")
        build_registry(config)
        [state] = list((arena.sim.cache / "metadata").glob("*/state.json"))
        recorded = json.loads(state.read_text())["last_refresh"]
        # Control: the honest, fresh state is reused without a request.
        arena.sim.server.clear_requests()
        build_registry(config)
        assert not any(r.path.endswith("timestamp.json") for r in arena.sim.server.requests)
        # A repeated key: a reader of the first sees a stale state, last-wins a fresh one.
        state.write_text(
            f'{{"last_refresh": "2000-01-01T00:00:00+00:00", "last_refresh": "{recorded}"}}'
        )
        build_registry(config)
        assert any(r.path.endswith("timestamp.json") for r in arena.sim.server.requests)
