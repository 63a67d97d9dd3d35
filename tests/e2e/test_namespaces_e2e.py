"""Namespace-scoped publisher keys (FORMAT.md §3 ``publishers``) over a real HTTP server.

The root names a publisher ``acme`` whose key may sign releases only when *every* connector
the release declares is in the ``acme`` namespace. The platform team's index key may sign
anything, ``modelmesh.*`` included. The publisher tool refuses an out-of-scope release; the
client must refuse one too when it was signed and placed by hand (as a detached ``.zip.sig``
next to a bare archive URL, or embedded in a bin by an index that was built without the
publisher's checks), and no code from a refused package may run.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelmesh_connectors import ConnectorRegistry, PolicyError
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    IndexTop,
    MetaRef,
    Release,
    ReleaseConnector,
    Timestamp,
    archive_path,
    parse_bin,
    parse_group,
)
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.repository import PublisherSpec
from modelmesh_connectors.registry import build_registry
from tests.support.packages import OBSERVABILITY_SOURCE
from tests.support.simulator import DAY, RepositorySimulator

MARKER_ENV = "MODELMESH_NAMESPACE_TEST_MARKER"

# Importing the package appends its module name to $MODELMESH_NAMESPACE_TEST_MARKER: a
# refused package must leave no line there.
MARKED_INIT = f'''\
"""Package that reports being imported."""
import os

_marker = os.environ.get("{MARKER_ENV}")
if _marker:
    with open(_marker, "a", encoding="utf-8") as _file:
        _file.write(__name__ + "\\n")
'''


class ScopedRepositorySimulator(RepositorySimulator):
    """A simulator whose root also lists publisher ``acme`` scoped to namespace ``acme``.

    The base class builds a root without publishers; this one replaces the index with one
    rooted in a root (same root, index and timestamp keys) that adds the publisher, then
    starts serving it.

    Args:
        tmp: A temporary directory owned by the test.
    """

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, serve=False)
        self.acme_key = SigningKey.generate()
        staged = repository.root_init(
            root_keys=[k.public for k in self.root_keys],
            root_threshold=2,
            index_keys=[self.index_key.public],
            index_threshold=1,
            timestamp_keys=[self.timestamp_key.public],
            timestamp_threshold=1,
            expires=self.now + 365 * DAY,
            publishers=[PublisherSpec("acme", (self.acme_key.public,), 1, ("acme",))],
        )
        signed: Envelope = staged
        for key in self.root_keys[:2]:
            signed = signed.with_signature(key)
        self.root_bytes = signed.to_bytes()
        shutil.rmtree(self.dir)
        repository.init_repository(
            self.dir, self.root_bytes, self.index_key, self.timestamp_key, now=self.now
        )
        self.trust_root.write_bytes(self.root_bytes)
        self.server.start()
        self._url = self.server.base_url.rstrip("/") + "/"

    def build_marked(self, name: str, connectors: list[str]) -> Path:
        """A 1.0.0 archive of observability connectors whose import leaves a marker."""
        pkg = name.replace("-", "_")
        return self.build_archive(
            name,
            "1.0.0",
            connectors=[(cid, "observability", f"{pkg}.sink:Sink") for cid in connectors],
            modules={f"{pkg}/__init__.py": MARKED_INIT, f"{pkg}/sink.py": OBSERVABILITY_SOURCE},
        )

    def place_detached(self, archive: Path, envelope: Envelope, name: str) -> str:
        """Put an archive and its ``.zip.sig`` on the server, outside the index; its URL.

        The URL names the server as ``localhost``: another host than the configured index
        (a URL *into* the index must name a release the index lists)."""
        rel = f"loose/{name}/{archive.name}"
        self.server.add_file("/" + rel, archive.read_bytes())
        self.server.add_file("/" + rel + ".sig", envelope.to_bytes())
        return self.server.url("/" + rel, host="localhost")

    def place_in_bin(self, archive: Path, envelope: Envelope, name: str, version: str) -> None:
        """List a release in the index with no publisher-side checks: archive, bin, group,
        a new top signed by the index key, then ``timestamp.json`` last."""
        state = repository.load_state(self.dir)
        gp, bp = state.top.group_prefix(name), state.top.bin_prefix(name)
        group_ref = state.top.groups.get(gp)
        group = parse_group(self.read(group_ref.path)) if group_ref else GroupNode(gp, {})
        bin_ref = group.bins.get(bp)
        node = parse_bin(self.read(bin_ref.path)) if bin_ref else BinNode(bp, {})
        entries = (*node.packages.get(name, ()), BinRelease(version, envelope))
        bin_bytes = BinNode(bp, {**node.packages, name: entries}).to_payload()
        new_bin_ref = MetaRef.of(bin_bytes)
        group_bytes = GroupNode(gp, {**group.bins, bp: new_bin_ref}).to_payload()
        new_group_ref = MetaRef.of(group_bytes)
        top = IndexTop(
            state.top.version + 1,
            self.now + 365 * DAY,
            {**state.top.groups, gp: new_group_ref},
            *state.top.level,
        )
        top_bytes = sign(INDEX_TYPE, top.to_payload(), [self.index_key]).to_bytes()
        timestamp = Timestamp(
            state.timestamp.version + 1, self.now + 7 * DAY, top.version, MetaRef.of(top_bytes)
        )
        files = {
            archive_path(name, version): archive.read_bytes(),
            archive_path(name, version) + ".sig": envelope.to_bytes(),
            new_bin_ref.path: bin_bytes,
            new_group_ref.path: group_bytes,
            MetaRef.of(top_bytes).path: top_bytes,
        }
        for rel, data in files.items():
            (self.dir / rel).parent.mkdir(parents=True, exist_ok=True)
            self.write(rel, data)
        self.write(
            "timestamp.json",
            sign(TIMESTAMP_TYPE, timestamp.to_payload(), [self.timestamp_key]).to_bytes(),
        )


def release_for(archive: Path, name: str, connectors: list[str], key: SigningKey) -> Envelope:
    """A release of ``archive`` (1.0.0) declaring ``connectors``, signed by ``key`` alone."""
    data = archive.read_bytes()
    release = Release(
        name=name,
        version="1.0.0",
        file=archive_path(name, "1.0.0"),
        sha256=hashlib.sha256(data).hexdigest(),
        length=len(data),
        requires_modelmesh=None,
        connectors=tuple(ReleaseConnector(cid, "observability") for cid in connectors),
    )
    return sign(RELEASE_TYPE, release.to_payload(), [key])


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ScopedRepositorySimulator]:
    with ScopedRepositorySimulator(tmp_path) as simulator:
        yield simulator


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "imported.txt"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


def _ids(registry: ConnectorRegistry) -> set[str]:
    return {i.id for i in registry.list_connectors()}


def _cached_archives(sim: RepositorySimulator) -> set[str]:
    return {f for f in sim.cache_files() if f.startswith("archives/")}


def test_root_lists_the_scoped_publisher(sim: ScopedRepositorySimulator) -> None:
    state = repository.load_state(sim.dir)
    [publisher] = state.root.publishers
    assert (publisher.name, publisher.namespaces) == ("acme", ("acme",))
    assert publisher.keyids == (sim.acme_key.keyid,)
    assert sim.acme_key.keyid not in state.root.index.keyids


def test_publisher_key_loads_its_own_namespace(
    sim: ScopedRepositorySimulator, marker: Path
) -> None:
    archive = sim.build_marked("acme-x", ["acme.x.v1", "acme.y.v1"])
    release = sim.publish_archive(archive, release_keys=[sim.acme_key])
    assert [c.id for c in release.connectors] == ["acme.x.v1", "acme.y.v1"]
    # From the index (bin entry) and from the bare archive URL (detached .zip.sig).
    for entry in ("acme-x", sim.url + release.file):
        registry = build_registry(sim.config([entry], metadata_max_age=0))
        assert {"acme.x.v1", "acme.y.v1"} <= _ids(registry)
        origin = registry.origin("acme.x.v1")
        assert origin.kind == "package"
        assert origin.signed_by == (sim.acme_key.keyid,)  # the publisher, not the index key
    assert marker.read_text(encoding="utf-8").splitlines()[0].endswith("acme_x")


def test_index_key_may_publish_any_namespace(sim: ScopedRepositorySimulator) -> None:
    archive = sim.build_marked("modelmesh-x", ["modelmesh.x.v1", "other.b.v1"])
    sim.publish_archive(archive)  # the platform team signs with the index key
    registry = build_registry(sim.config(["modelmesh-x"]))
    assert {"modelmesh.x.v1", "other.b.v1"} <= _ids(registry)
    assert registry.origin("modelmesh.x.v1").signed_by == (sim.index_key.keyid,)


OUT_OF_SCOPE = [
    pytest.param("squat", ["modelmesh.x.v1"], "modelmesh.x.v1", id="modelmesh-squat"),
    pytest.param("mixed", ["acme.a.v1", "other.b.v1"], "other.b.v1", id="one-outside"),
    pytest.param("lookalike", ["acme-corp.x.v1"], "acme-corp.x.v1", id="namespace-prefix"),
]


@pytest.mark.parametrize(("name", "connectors", "outside"), OUT_OF_SCOPE)
def test_publisher_refuses_out_of_scope_release(
    sim: ScopedRepositorySimulator, name: str, connectors: list[str], outside: str
) -> None:
    before = sim.read("timestamp.json")
    archive = sim.build_marked(name, connectors)
    with pytest.raises(PolicyError, match=rf"connector '{outside}'") as raised:
        sim.publish_archive(archive, release_keys=[sim.acme_key])
    assert "publisher 'acme'" in raised.value.message
    assert sim.read("timestamp.json") == before  # nothing published
    assert not (sim.dir / archive_path(name, "1.0.0")).exists()


@pytest.mark.parametrize(("name", "connectors", "outside"), OUT_OF_SCOPE)
def test_loader_refuses_hand_signed_detached_release(
    sim: ScopedRepositorySimulator, marker: Path, name: str, connectors: list[str], outside: str
) -> None:
    archive = sim.build_marked(name, connectors)
    url = sim.place_detached(archive, release_for(archive, name, connectors, sim.acme_key), name)
    with pytest.raises(PolicyError, match=rf"connector '{outside}'") as raised:
        build_registry(sim.config([url]))
    assert sim.acme_key.keyid in raised.value.message  # names the key that overreached
    assert sim.server.request_count(url.removeprefix(sim.url.rstrip("/"))) == 0  # not fetched
    assert _cached_archives(sim) == set()
    assert not marker.exists()


@pytest.mark.parametrize(("name", "connectors", "outside"), OUT_OF_SCOPE)
def test_loader_refuses_out_of_scope_release_listed_in_the_index(
    sim: ScopedRepositorySimulator, marker: Path, name: str, connectors: list[str], outside: str
) -> None:
    archive = sim.build_marked(name, connectors)
    envelope = release_for(archive, name, connectors, sim.acme_key)
    sim.place_in_bin(archive, envelope, name, "1.0.0")
    with pytest.raises(PolicyError, match=rf"connector '{outside}'"):
        build_registry(sim.config([name]))
    assert sim.server.request_count("/" + archive_path(name, "1.0.0")) == 0
    assert _cached_archives(sim) == set()
    assert not marker.exists()


def test_placed_in_scope_release_loads(sim: ScopedRepositorySimulator) -> None:
    """Control for the hand-placing helpers: the same path with an in-scope release works."""
    archive = sim.build_marked("acme-ok", ["acme.ok.v1"])
    envelope = release_for(archive, "acme-ok", ["acme.ok.v1"], sim.acme_key)
    sim.place_in_bin(archive, envelope, "acme-ok", "1.0.0")
    url = sim.place_detached(archive, envelope, "acme-ok")
    for entry in ("acme-ok", url):
        registry = build_registry(sim.config([entry], metadata_max_age=0))
        assert "acme.ok.v1" in _ids(registry)
        assert registry.origin("acme.ok.v1").signed_by == (sim.acme_key.keyid,)


def test_in_scope_signature_over_an_out_of_scope_manifest_is_refused(
    sim: ScopedRepositorySimulator, marker: Path
) -> None:
    """The release lists only ``acme.*`` but the archive's manifest declares ``modelmesh.*``."""
    archive = sim.build_marked("acme-trojan", ["modelmesh.x.v1"])
    envelope = release_for(archive, "acme-trojan", ["acme.x.v1"], sim.acme_key)
    url = sim.place_detached(archive, envelope, "acme-trojan")
    with pytest.raises(PolicyError, match=r"modelmesh\.x\.v1") as raised:
        build_registry(sim.config([url]))
    assert "acme.x.v1" in raised.value.message
    assert not marker.exists()
