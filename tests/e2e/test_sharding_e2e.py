"""Adaptive sharding end to end: request counts of a small index, clients across a re-level."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmesh_connectors import ConnectorRegistry, ConnectorType
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish import state as publish_state
from modelmesh_connectors.publish.audit import audit_directory
from tests.support.simulator import RepositorySimulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as simulator:
        yield simulator


def publish(sim: RepositorySimulator, i: int, version: str = "1.0.0") -> None:
    name = f"pkg-{i}"
    sim.publish(
        name,
        version,
        connectors=[(f"acme.{name}.v1", "observability", f"{name.replace('-', '_')}.sink:Sink")],
    )


def loaded(registry: ConnectorRegistry) -> dict[str, str]:
    return {i.id: i.version for i in registry.list_connectors(ConnectorType.OBSERVABILITY)}


def level(sim: RepositorySimulator) -> tuple[int, int]:
    return repository.load_state(sim.dir).top.level


def test_cold_install_of_a_small_index_costs_n_plus_5_requests(sim: RepositorySimulator) -> None:
    n = 6
    for i in range(n):
        publish(sim, i)
    assert level(sim) == (0, 0)
    registry = ConnectorRegistry.from_config(sim.config([f"pkg-{i}" for i in range(n)]))
    assert {f"acme.pkg-{i}.v1" for i in range(n)} <= set(loaded(registry))
    # root/2.json (404), timestamp, top, the one group, the one bin, n archives; no file twice
    # although the packages resolve concurrently and share the group and the bin.
    paths = Counter(r.path for r in sim.server.requests)
    assert sum(paths.values()) == n + 5, paths
    assert max(paths.values()) == 1, paths
    assert sum(1 for p in paths if p.startswith("/meta/")) == 3


def test_clients_keep_loading_across_every_level_change(
    sim: RepositorySimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish_state, "SMALL_INDEX_MAX_PACKAGES", 2)
    monkeypatch.setattr(publish_state, "MEDIUM_INDEX_MAX_PACKAGES", 4)
    published: list[str] = []
    for i, expected in enumerate([(0, 0), (0, 0), (0, 2), (0, 2), (2, 4), (2, 4)]):
        publish(sim, i)
        published.append(f"pkg-{i}")
        assert level(sim) == expected
        # The same cache every time: the client's trusted state is from the previous level.
        registry = ConnectorRegistry.from_config(sim.config(published, metadata_max_age=0))
        assert {f"acme.{p}.v1" for p in published} <= set(loaded(registry))
        report = audit_directory(sim.dir, now=sim.now, trusted_root=sim.root_bytes)
        assert report.ok, [(f.path, f.message) for f in report.errors]
    publish(sim, 0, "1.1.0")
    registry = ConnectorRegistry.from_config(sim.config(published, metadata_max_age=0))
    assert loaded(registry)["acme.pkg-0.v1"] == "1.1.0"
