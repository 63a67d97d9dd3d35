"""A trust root never comes from the medium it is meant to check (issue 10 item 3).

The attacker swaps the air-gap bundle for one they built: their own signed index with the
canary package (its code leaves a marker when imported) *and* their own ``keys/root.json``.
A client whose ``trust_root`` lies inside the bundle (or the cache, or a ``file://`` index
mirror) would verify the attacker's index with the attacker's keys and run the canary. The
loader refuses such a configuration with a ``ConfigError`` that says why and how to provision
the root out of band, before reading a byte: no registry, no code run, nothing cached.
Symlinks, ``..``, a symlinked directory on either side and a hard link all count as inside.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.client.config import LoaderConfig, parse_config
from modelmesh_connectors.client.file_fetch import path_to_url
from modelmesh_connectors.errors import (
    ConfigError,
    ConnectorError,
    SignatureError,
)
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ID,
    CANARY_NAME,
    CANARY_SOURCE,
    private_modules,
    snapshot_files,
)
from tests.support.simulator import RepositorySimulator


@dataclass
class Scene:
    """The genuine index (``sim``) and the attacker's bundle that replaced the carried one."""

    tmp: Path
    sim: RepositorySimulator
    attacker: RepositorySimulator
    carry: Path  # the bundle directory on the isolated machine, now the attacker's
    cache: Path

    def config(self, trust_root: Path, **overrides: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "packages": [CANARY_NAME],
            "bundle": str(self.carry),
            "trust_root": str(trust_root),
            "cache_dir": str(self.cache),
            "offline": True,
        }
        cfg.update(overrides)
        return cfg


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    (tmp_path / "genuine").mkdir()
    (tmp_path / "attacker").mkdir()
    with (
        RepositorySimulator(tmp_path / "genuine", serve=False) as sim,
        RepositorySimulator(tmp_path / "attacker", serve=False) as attacker,
    ):
        sim.publish_dir(CANARY_SOURCE)
        attacker.publish_dir(CANARY_SOURCE)  # the same package name, the attacker's keys
        carry = tmp_path / "carry"
        shutil.copytree(attacker.dir, carry)
        (carry / "keys").mkdir()
        (carry / "keys" / "root.json").write_bytes(attacker.root_bytes)
        yield Scene(tmp_path, sim, attacker, carry, tmp_path / "isolated-cache")


def _link(target: Path, link: Path, *, directory: bool = False) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=directory)
    return link


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _hard_link(target: Path, link: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.link(target, link)
    return link


def _in_cache(scene: Scene) -> Path:
    root = scene.cache / "keys" / "root.json"
    root.parent.mkdir(parents=True)
    root.write_bytes(scene.attacker.root_bytes)
    return root


# Each row: (id, how the configuration names the root, extra config, medium named in the error)
Row = tuple[str, Callable[[Scene], tuple[Path, dict[str, Any]]], str]
ROWS: list[Row] = [
    ("inside-the-bundle", lambda s: (s.carry / "keys" / "root.json", {}), "bundle"),
    ("root-chain-file-of-the-bundle", lambda s: (s.carry / "root" / "1.json", {}), "bundle"),
    (
        "dotdot-spelling",
        lambda s: (_mkdir(s.tmp / "elsewhere") / ".." / "carry" / "keys" / "root.json", {}),
        "bundle",
    ),
    (
        "symlink-from-outside-pointing-inside",
        lambda s: (_link(s.carry / "keys" / "root.json", s.tmp / "etc" / "root.json"), {}),
        "bundle",
    ),
    (
        "symlinked-directory-pointing-inside",
        lambda s: (
            _link(s.carry / "keys", s.tmp / "etc" / "keys", directory=True) / "root.json",
            {},
        ),
        "bundle",
    ),
    (
        "bundle-configured-through-a-symlink",
        lambda s: (
            s.carry / "keys" / "root.json",
            {"bundle": str(_link(s.carry, s.tmp / "media" / "usb", directory=True))},
        ),
        "bundle",
    ),
    (
        "hard-link-to-the-carried-copy",
        lambda s: (_hard_link(s.carry / "keys" / "root.json", s.tmp / "etc" / "root.json"), {}),
        "bundle",
    ),
    ("inside-the-cache-dir", lambda s: (_in_cache(s), {}), "cache"),
]


def _assert_refused(scene: Scene, cfg: dict[str, Any] | LoaderConfig, medium: str, canary: Path) -> None:
    before = snapshot_files(scene.cache)
    modules = private_modules()
    with pytest.raises(ConnectorError) as caught:
        build_registry(cfg)
    error = caught.value
    assert type(error) is ConfigError, f"expected ConfigError, got {error!r}"
    assert "connectors.trust_root" in error.message and "lies inside" in error.message
    assert medium in error.message
    assert error.hint is not None and "out of band" in error.hint
    assert not canary.exists(), "the attacker's package ran: the swapped bundle was trusted"
    assert private_modules() == modules
    assert snapshot_files(scene.cache) == before, "something was cached"


@pytest.mark.parametrize(("name", "place", "medium"), ROWS, ids=[r[0] for r in ROWS])
def test_trust_root_inside_the_medium_is_refused(
    name: str,
    place: Callable[[Scene], tuple[Path, dict[str, Any]]],
    medium: str,
    scene: Scene,
    canary: Path,
) -> None:
    root, extra = place(scene)
    cfg = scene.config(root, **extra)
    _assert_refused(scene, cfg, medium, canary)
    # Into an existing registry: refused the same way, the registry unchanged.
    registry = build_registry({**cfg, "packages": []})
    listed = registry.list_connectors()
    with pytest.raises(ConfigError, match="lies inside"):
        registry.load_package(CANARY_NAME)
    assert registry.list_connectors() == listed
    assert CANARY_ID not in {i.id for i in listed}
    assert not canary.exists()


def test_cache_dir_from_the_environment_counts(
    scene: Scene, canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _in_cache(scene)
    monkeypatch.setenv("MODELMESH_CONNECTORS_CACHE", str(scene.cache))
    cfg = scene.config(root)
    del cfg["cache_dir"]
    _assert_refused(scene, cfg, "cache", canary)


def test_file_url_index_mirror_counts(scene: Scene, canary: Path) -> None:
    # file:// index URLs come through the API and the CLI's --index (YAML accepts https only).
    base = parse_config(scene.config(scene.carry / "keys" / "root.json", bundle=None, offline=False))
    cfg = LoaderConfig(**{**base.__dict__, "index": (path_to_url(scene.carry),)})
    _assert_refused(scene, cfg, "index mirror", canary)


def test_case_variant_of_the_bundle_counts(scene: Scene, canary: Path) -> None:
    upper = scene.tmp / "CARRY"
    if not upper.exists():
        pytest.skip("case-sensitive file system: no other spelling of the bundle exists")
    _assert_refused(scene, scene.config(upper / "keys" / "root.json"), "bundle", canary)


def test_cli_refuses_too(scene: Scene, canary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelmesh_connectors.cli import main

    # The CLI refuses a file:// --index outright (index URLs are https or loopback http) ...
    args = ["install", CANARY_NAME, "--index", path_to_url(scene.carry)]
    args += ["--trust-root", str(scene.carry / "keys" / "root.json"), "--cache-dir", str(scene.cache)]
    assert main(args) == 3  # ExitCode.CONFIG
    assert "connectors.index[0]" in capsys.readouterr().err
    # ... and a configured bundle with the root inside it meets the placement check.
    config = scene.tmp / "mesh.yaml"
    config.write_text(
        "connectors:\n"
        f"  bundle: {scene.carry}\n"
        f"  trust_root: {scene.carry / 'keys' / 'root.json'}\n"
        f"  cache_dir: {scene.cache}\n"
        f"  packages: [{CANARY_NAME}]\n"
    )
    assert main(["load", "--config", str(config)]) == 3  # ExitCode.CONFIG
    err = capsys.readouterr().err
    assert "lies inside the bundle" in err and "out of band" in err
    assert not scene.cache.exists()
    assert not canary.exists()


def test_root_provisioned_out_of_band_catches_the_swap(scene: Scene, canary: Path) -> None:
    """Control: the same swapped bundle against a root installed out of band is refused."""
    provisioned = scene.tmp / "etc" / "modelmesh" / "root.json"
    provisioned.parent.mkdir(parents=True)
    provisioned.write_bytes(scene.sim.root_bytes)
    with pytest.raises(SignatureError):
        build_registry(scene.config(provisioned))
    assert not canary.exists()
    # ... and the genuine bundle loads with it.
    shutil.rmtree(scene.carry)
    shutil.copytree(scene.sim.dir, scene.carry)
    registry = build_registry(scene.config(provisioned))
    assert CANARY_ID in {i.id for i in registry.list_connectors()}
    assert canary.exists()  # the genuine canary ran: the check above can fail
