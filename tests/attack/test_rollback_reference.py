"""One rollback reference per trust root, whatever the mirror list (issue 10 item 2).

The client's stored state (last trusted timestamp and index top: the rollback reference) is
keyed by the identity of the shipped trust root, never by a URL. Keyed by the first mirror's
URL, reordering, replacing or adding a mirror started the client with no reference, and a
stale but validly signed mirror rolled it back to an older release.

Every attack here runs real loopback servers: mirror A (the simulator, current) and mirror B
(a static copy of the index taken before a security yank: validly signed, older). The client
first loads through A, so its reference is the state in which the canary is yanked. B then
offers the older state in which the canary is not yanked. A rollback would load the canary
and its code would run (it leaves a marker). Each attack asserts the exact typed error, no
registry, no canary code run, no package module left imported and not a byte of the cache
changed.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors.client.file_fetch import path_to_url
from modelmesh_connectors.client.state import (
    MetadataStore,
    normalize_index_url,
    origin_id,
)
from modelmesh_connectors.errors import (
    ConnectorError,
    DownloadError,
    RollbackError,
)
from modelmesh_connectors.index.envelope import TIMESTAMP_TYPE, sign
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import Timestamp
from modelmesh_connectors.index.trust import trust_root_id
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ID,
    CANARY_NAME,
    DAY,
    Arena,
    next_root,
    private_modules,
    snapshot_files,
)
from tests.support.http_server import LoopbackServer, Reply
from tests.support.simulator import RepositorySimulator

OTHER = "acme-audit-log"  # published after the yank: its load sets the client's reference


@dataclass
class Stage:
    """Mirror A (current, the simulator) and mirror B (stale copy), after the client loaded."""

    arena: Arena
    stale_dir: Path
    stale: LoopbackServer

    @property
    def sim(self) -> RepositorySimulator:
        return self.arena.sim

    @property
    def a(self) -> str:
        return self.sim.url

    @property
    def b(self) -> str:
        return self.stale.base_url + "/"

    def config(self, packages: list[str], **overrides: Any) -> dict[str, Any]:
        # metadata_max_age 0: the client really asks the mirrors instead of reusing its state.
        return self.sim.config(packages, metadata_max_age=0, **overrides)

    def record(self) -> Path:
        """The one metadata record of the simulator's trust root."""
        return self.sim.cache / "metadata" / f"trust-{trust_root_id(self.sim.root_bytes)[:16]}"


def _stage(tmp_path: Path, *, rotate: bool = False) -> Iterator[Stage]:
    with Arena(tmp_path) as arena:
        sim = arena.sim
        arena.publish_canary()
        stale_dir = sim.snapshot()  # what a mirror that stopped syncing keeps serving
        if rotate:  # new root keys: the stored chain must still map to the same record
            fresh = [SigningKey.generate() for _ in range(3)]
            next_root(sim, signers=[*sim.root_keys[:2], *fresh[:2]], root_keys=fresh)
        sim.yank(CANARY_NAME, "1.0.0", "remote code execution")
        sim.publish(OTHER, "1.0.0")
        build_registry(sim.config([OTHER], metadata_max_age=0))  # the client's reference
        with LoopbackServer(stale_dir) as stale:
            yield Stage(arena, stale_dir, stale)


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    yield from _stage(tmp_path)


def _assert_rolled_back_refused(
    stage: Stage, cfg: dict[str, Any], canary: Path, *, match: str = "rollback"
) -> None:
    before = snapshot_files(stage.sim.cache)
    modules = private_modules()
    with pytest.raises(ConnectorError) as caught:
        build_registry(cfg)
    assert type(caught.value) is RollbackError, f"expected RollbackError, got {caught.value!r}"
    assert match in str(caught.value)
    assert not canary.exists(), "the yanked canary's code ran: the client was rolled back"
    assert private_modules() == modules
    assert snapshot_files(stage.sim.cache) == before, "the cache changed"
    # Into an existing registry: refused the same way, the registry unchanged.
    registry = build_registry({**cfg, "packages": []})
    listed = registry.list_connectors()
    with pytest.raises(RollbackError):
        registry.load_package(CANARY_NAME)
    assert registry.list_connectors() == listed
    assert CANARY_ID not in {i.id for i in listed}
    assert not canary.exists()
    assert snapshot_files(stage.sim.cache) == before


ATTACKS: list[tuple[str, Callable[[Stage], dict[str, Any]]]] = [
    ("only-the-stale-mirror", lambda s: s.config([CANARY_NAME], index=[s.b])),
    (
        "stale-mirror-listed-first-current-one-failing",
        lambda s: s.config([CANARY_NAME], index=[s.b, s.a]),
    ),
    (
        "stale-mirror-under-another-spelling",
        lambda s: s.config([CANARY_NAME], index=[s.stale.origin("localhost") + "/"]),
    ),
    (
        "stale-bundle-offline",
        lambda s: s.config([CANARY_NAME], index=None, bundle=str(s.stale_dir), offline=True),
    ),
    (
        "stale-bundle-online-no-index",
        lambda s: s.config([CANARY_NAME], index=None, bundle=str(s.stale_dir)),
    ),
    (
        "stale-file-url-mirror",
        lambda s: s.config([CANARY_NAME], index=[path_to_url(s.stale_dir)]),
    ),
]


def _without_none(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if v is not None}


@pytest.mark.parametrize(("name", "make"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_stale_mirror_cannot_roll_back(
    name: str, make: Callable[[Stage], dict[str, Any]], stage: Stage, canary: Path
) -> None:
    stage.sim.server.script("/timestamp.json", Reply.error(503))  # A is down for the attack
    cfg = _without_none(make(stage))
    if name == "stale-file-url-mirror":
        from modelmesh_connectors.client.config import LoaderConfig, parse_config

        # file:// index URLs are not accepted in YAML; the API (and the CLI's --index) is.
        base = parse_config({**cfg, "index": stage.a})
        cfg_obj = LoaderConfig(**{**base.__dict__, "index": tuple(cfg["index"])})
        before = snapshot_files(stage.sim.cache)
        with pytest.raises(RollbackError, match="rollback"):
            build_registry(cfg_obj)
        assert not canary.exists()
        assert snapshot_files(stage.sim.cache) == before
        return
    _assert_rolled_back_refused(stage, cfg, canary)


def test_stale_mirror_added_first_never_wins(
    stage: Stage, canary: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """B listed before a healthy A: B's rollback is refused, A serves the current state."""
    with caplog.at_level(logging.WARNING):
        registry = build_registry(stage.config([OTHER], index=[stage.b, stage.a]))
    assert OTHER.replace("-", ".", 1) + ".v1" in {i.id for i in registry.list_connectors()}
    assert "rollback" in caplog.text and stage.b in caplog.text
    with pytest.raises(ConnectorError, match="yanked"):
        build_registry(stage.config([CANARY_NAME], index=[stage.b, stage.a]))
    assert not canary.exists()
    assert (stage.record() / "timestamp.json").read_bytes() == stage.sim.read("timestamp.json")


def test_one_record_per_trust_root_whatever_the_mirrors(stage: Stage) -> None:
    """Every mirror list of one trust root reads and writes the same record, and only it."""
    stage.stale.stop()
    for index in ([stage.a], [stage.sim.server.origin("localhost") + "/"], ["http://127.0.0.1:9/", stage.a]):
        build_registry(stage.config([OTHER], index=index))
    records = sorted(p.name for p in (stage.sim.cache / "metadata").iterdir())
    assert records == [stage.record().name]
    claim = (stage.record() / "origin.txt").read_text().strip()
    assert claim == "trust-root:" + trust_root_id(stage.sim.root_bytes)


def test_rotated_root_chain_keeps_the_record(tmp_path: Path, canary: Path) -> None:
    """After a root rotation the record is still the shipped anchor's; B cannot roll back."""
    for stage in _stage(tmp_path, rotate=True):
        records = list((stage.sim.cache / "metadata").iterdir())
        assert [p.name for p in records] == [stage.record().name]
        assert (stage.record() / "roots" / "2.json").read_bytes() == stage.sim.read("root/2.json")
        stage.sim.server.script("/timestamp.json", Reply.error(503))
        _assert_rolled_back_refused(stage, stage.config([CANARY_NAME], index=[stage.b]), canary)


# -- migration of the URL-keyed records of earlier versions ------------------------------------


def _as_legacy(stage: Stage, url: str) -> Path:
    """Turn the trust root's record into the layout earlier versions wrote for ``url``."""
    legacy = stage.sim.cache / "metadata" / origin_id(url)
    stage.record().rename(legacy)
    (legacy / "origin.txt").write_text(normalize_index_url(url) + "\n")
    return legacy


def test_legacy_record_is_migrated_then_stale_mirror_refused(
    stage: Stage, canary: Path, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = _as_legacy(stage, stage.a)
    legacy_files = snapshot_files(legacy)
    stage.sim.server.script("/timestamp.json", Reply.error(503))
    cfg = stage.config([CANARY_NAME], index=[stage.b])
    with caplog.at_level(logging.INFO), pytest.raises(RollbackError, match="rollback"):
        build_registry(cfg)
    assert "migrated the rollback reference" in caplog.text
    assert not canary.exists()
    assert (stage.record() / "timestamp.json").read_bytes() == stage.sim.read("timestamp.json")
    assert snapshot_files(legacy) == legacy_files, "a legacy record is only read"
    _assert_rolled_back_refused(stage, cfg, canary)


def test_legacy_record_migrates_offline_with_its_nodes(stage: Stage) -> None:
    """An upgraded client that is offline keeps working from the migrated reference."""
    _as_legacy(stage, stage.a)
    stage.sim.server.stop()
    registry = build_registry(stage.config([OTHER], offline=True))
    assert "acme.audit-log.v1" in {i.id for i in registry.list_connectors()}
    assert list((stage.record() / "nodes").iterdir())


def _forged_timestamp(sim: RepositorySimulator, key: SigningKey, version: int) -> bytes:
    from modelmesh_connectors.index.envelope import parse_envelope
    from modelmesh_connectors.index.metadata import parse_timestamp

    pin = parse_timestamp(parse_envelope(sim.read("timestamp.json")).payload).index
    forged = Timestamp(version, sim.now + 400 * DAY, 9999, pin)
    return sign(TIMESTAMP_TYPE, forged.to_payload(), [key]).to_bytes()


@pytest.mark.parametrize("forger", ["attacker-key", "corrupt-bytes"])
def test_forged_legacy_record_is_not_adopted(
    stage: Stage, forger: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A planted legacy record (a freeze attempt: version 10**6) is re-verified, not trusted."""
    legacy = _as_legacy(stage, "https://old-mirror.example/")
    if forger == "attacker-key":
        forged = _forged_timestamp(stage.sim, SigningKey.generate(), 10**6)
    else:
        good = (legacy / "timestamp.json").read_bytes()
        forged = good.replace(b'"payload":"', b'"payload":"A', 1)
    (legacy / "timestamp.json").write_bytes(forged)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(DownloadError, match="no trusted index state"):
            build_registry(stage.config([OTHER], offline=True))
        assert not (stage.record() / "timestamp.json").exists(), "forged bytes were adopted"
        registry = build_registry(stage.config([OTHER]))
    assert "acme.audit-log.v1" in {i.id for i in registry.list_connectors()}
    assert "does not verify from the trust root" in caplog.text
    assert (stage.record() / "timestamp.json").read_bytes() == stage.sim.read("timestamp.json")


def test_highest_verified_legacy_record_wins(stage: Stage) -> None:
    """With several legacy records the newest verified reference is kept (never lowered)."""
    current = (stage.record() / "timestamp.json").read_bytes()
    _as_legacy(stage, stage.a)
    older = stage.sim.cache / "metadata" / origin_id(stage.b)
    older.mkdir()
    (older / "origin.txt").write_text(normalize_index_url(stage.b) + "\n")
    (older / "timestamp.json").write_bytes((stage.stale_dir / "timestamp.json").read_bytes())
    stage.sim.server.script("/timestamp.json", Reply.error(503))
    with pytest.raises(RollbackError):
        build_registry(stage.config([CANARY_NAME], index=[stage.b]))
    assert (stage.record() / "timestamp.json").read_bytes() == current


def test_no_legacy_record_starts_clean_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with RepositorySimulator(tmp_path) as sim:
        sim.publish(OTHER, "1.0.0")
        with caplog.at_level(logging.INFO, logger="modelmesh_connectors.client.updater"):
            build_registry(sim.config([OTHER]))
        assert "starting with no rollback reference" in caplog.text


def test_two_trust_roots_in_one_cache_never_share_state(tmp_path: Path) -> None:
    """A second index (other keys) in the same cache gets its own record; neither freezes."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    cache = tmp_path / "shared-cache"
    with RepositorySimulator(tmp_path / "one") as one, RepositorySimulator(tmp_path / "two") as two:
        one.publish(OTHER, "1.0.0")
        for version in ("1.0.0", "1.1.0", "1.2.0"):  # a higher timestamp version than one's
            two.publish(OTHER, version)
        for sim in (two, one, two, one):
            build_registry(sim.config([OTHER], cache_dir=str(cache), metadata_max_age=0))
        store = MetadataStore(cache)
        ids = sorted(trust_root_id(s.root_bytes) for s in (one, two))
        assert [o.identity for o in store.trust_roots()] == [f"trust-root:{i}" for i in ids]
        for sim in (one, two):
            record = store.trust_root(trust_root_id(sim.root_bytes))
            assert record.load_timestamp() == sim.read("timestamp.json")
        # A record copied over from the other trust root is refused, not shared.
        src = cache / "metadata" / f"trust-{trust_root_id(two.root_bytes)[:16]}"
        dst = cache / "metadata" / f"trust-{trust_root_id(one.root_bytes)[:16]}"
        shutil.rmtree(dst)
        shutil.copytree(src, dst)
        with pytest.raises(ConnectorError, match="belongs to"):
            build_registry(one.config([OTHER], cache_dir=str(cache), metadata_max_age=0))
        assert json.loads((src / "state.json").read_text())["last_refresh"]
