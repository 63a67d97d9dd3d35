"""Start-up cost guards: a registry that never loads a package imports none of the heavy parts.

``ConnectorRegistry()`` runs in every ModelMesh process; most never load a package. These
tests fail if an eager import creeps back onto that path (issue 14: the start-up target is
the bare interpreter + 30 ms). The lazily imported parts are still used, and still checked,
the moment a package is loaded (the registry, loader and attack suites cover that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelmesh_connectors import ConnectorInfo, ConnectorType, Origin
from modelmesh_connectors.builtins import BUILTINS, Builtin
from modelmesh_connectors.registry import build_registry
from tests.support.simulator import RepositorySimulator

# Each of these costs a bare registry 5-60 ms; none is needed until a package is added.
HEAVY = (
    "yaml",
    "packaging",
    "cryptography",
    "httpx",
    "dataclasses",
    "inspect",
    "importlib.abc",
    "modelmesh_connectors.package.archive",
    "modelmesh_connectors.package.manifest",
    "modelmesh_connectors.package.package",
    "modelmesh_connectors.client",
    "modelmesh_connectors.index",
)


def _modules_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    # Without the coverage hooks the CI run installs into child processes (coverage itself
    # imports dataclasses and inspect): what is measured is the library's own start-up.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def _heavy(loaded: list[str]) -> list[str]:
    return [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_a_bare_registry_imports_nothing_heavy() -> None:
    loaded = _modules_after(
        "from modelmesh_connectors import ConnectorRegistry\n"
        "r = ConnectorRegistry()\n"
        "assert len(r.list_connectors()) == 38\n"
    )
    assert _heavy(loaded) == []


# Loaded by an offline registry whose packages come from the cache: still none of these.
# (packaging.specifiers is imported only for a version range: a requirement or a package's
# requires-modelmesh; these packages and requirements have neither.)
OFFLINE_UNUSED = (
    "httpx",
    "packaging.specifiers",
    "packaging.requirements",
    "tempfile",
    "difflib",
    "_strptime",
    "importlib.metadata",
    "filelock",
)


def test_an_offline_registry_from_the_cache_imports_only_what_it_uses(tmp_path: Path) -> None:
    with RepositorySimulator(tmp_path) as sim:
        sim.publish("acme-audit-log", "1.0.0")
        sim.publish("acme-other", "1.0.0", connectors=[("acme.other.v1", "observability", "acme_other.sink:Sink")])
        build_registry(sim.config(["acme-audit-log", "acme-other"]))  # fills the cache online
        config = sim.config(["acme-audit-log", "acme-other"], offline=True)
    loaded = _modules_after(
        "from modelmesh_connectors import ConnectorRegistry\n"
        f"r = ConnectorRegistry.from_config({config!r})\n"
        "assert {'acme.audit-log.v1', 'acme.other.v1'} <= {i.id for i in r.list_connectors()}\n"
        # Patterns compiled on first use only: none of these inputs appears on this path.
        "from modelmesh_connectors._internal import redact\n"
        "from modelmesh_connectors.client import config\n"
        "from modelmesh_connectors.package import manifest\n"
        "lazy = [redact._userinfo_in_text, config._duration_re, config._rate_re,\n"
        "        manifest._node_patterns]\n"
        "assert [f.__name__ for f in lazy if f.cache_info().currsize] == []\n"
    )
    assert [m for m in loaded if any(m == h or m.startswith(h + ".") for h in OFFLINE_UNUSED)] == []
    assert "cryptography.hazmat.primitives.asymmetric.ed25519" in loaded  # still verified


def test_registering_a_runtime_class_still_imports_no_package_reader() -> None:
    loaded = _modules_after(
        "from modelmesh_connectors import ConnectorRegistry, ConnectorType\n"
        "class Sink:\n"
        "    '''A sink.'''\n"
        "r = ConnectorRegistry(include_builtins=False)\n"
        "try:\n"
        "    r.register('acme.sink.v1', Sink, connector_type=ConnectorType.OBSERVABILITY)\n"
        "except Exception:\n"
        "    pass  # Sink implements no interface; only the imports matter here\n"
    )
    assert not [m for m in loaded if m.startswith(("yaml", "httpx", "cryptography"))]
    assert "modelmesh_connectors.package.archive" not in loaded


# -- the plain classes keep the value semantics of the dataclasses they replaced --------------


def test_connector_info_compares_and_prints_like_the_dataclass() -> None:
    a = ConnectorInfo("acme.sink.v1", ConnectorType.OBSERVABILITY, "1.0", "A sink.")
    b = ConnectorInfo("acme.sink.v1", ConnectorType.OBSERVABILITY, "1.0", "A sink.")
    assert a == b
    assert a != ConnectorInfo("acme.sink.v1", ConnectorType.OBSERVABILITY, "1.1", "A sink.")
    assert repr(a) == (
        "ConnectorInfo(id='acme.sink.v1', connector_type=<ConnectorType.OBSERVABILITY: "
        "'observability'>, version='1.0', description='A sink.')"
    )
    with pytest.raises(TypeError):
        hash(a)  # mutable, like an eq=True dataclass
    a.version = "2.0"
    assert a.version == "2.0"


def test_origin_is_an_immutable_hashable_value() -> None:
    a = Origin("package", "acme@1.0", ("k1",))
    assert a == Origin("package", "acme@1.0", ("k1",))
    assert hash(a) == hash(Origin("package", "acme@1.0", ("k1",)))
    assert a != Origin("package", "acme@1.0")
    assert Origin("local", "/x").signed_by == ()
    assert repr(a) == "Origin(kind='package', detail='acme@1.0', signed_by=('k1',))"
    with pytest.raises(AttributeError):
        a.kind = "builtin"
    with pytest.raises(AttributeError):
        del a.detail


def test_builtin_rows_are_immutable_values() -> None:
    row = BUILTINS[0]
    copy = Builtin(row.id, row.module, row.attribute, row.connector_type, row.description)
    assert copy == row and hash(copy) == hash(row)
    assert repr(row).startswith(f"Builtin(id={row.id!r}, module={row.module!r}")
    with pytest.raises(AttributeError):
        row.id = "other.id.v1"


def test_record_values_keep_the_dataclass_semantics() -> None:
    from modelmesh_connectors._internal.record import FrozenInstanceError
    from modelmesh_connectors.index.envelope import Envelope, Signature
    from modelmesh_connectors.index.layout import MetaRef

    sig = Signature("k1", b"\x01" * 64)
    a = Envelope("application/x", b"{}", (sig,))
    assert a == Envelope("application/x", b"{}", (Signature("k1", b"\x01" * 64),))
    assert hash(a) == hash(Envelope("application/x", b"{}", (Signature("k1", b"\x01" * 64),)))
    assert a != Envelope("application/x", b"{}")
    assert Envelope("t", b"").signatures == ()
    assert repr(MetaRef("ab", 3)) == "MetaRef(sha256='ab', length=3)"
    # Same fields, different class: not equal (as between two dataclasses).
    assert MetaRef("ab", 3) != Signature("ab", 3)  # type: ignore[arg-type]
    with pytest.raises(FrozenInstanceError):
        a.payload = b"evil"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.signatures
    with pytest.raises(AttributeError):
        a.extra = 1
    assert a.payload == b"{}"


def test_connector_ids_order_and_public_keys_compare_like_the_dataclasses() -> None:
    from modelmesh_connectors.index.keys import PublicKey, SigningKey
    from modelmesh_connectors.package.ids import ConnectorId

    a, b = ConnectorId("acme", "sink", 2), ConnectorId("acme", "sink", 10)
    assert a < b and b > a and a <= a and b >= a  # by (namespace, name, version), not text
    assert sorted([b, a]) == [a, b]
    with pytest.raises(TypeError):
        _ = a < ("acme", "sink", 3)  # type: ignore[operator]
    raw = SigningKey.generate().public.raw
    one, two = PublicKey(raw), PublicKey(raw)
    assert one == two and hash(one) == hash(two)  # the cached key objects are not compared
    assert repr(one) == f"PublicKey(raw={raw!r})"


def test_record_replace_runs_the_constructor_again() -> None:
    from datetime import UTC, datetime

    from modelmesh_connectors._internal.record import replace
    from modelmesh_connectors.index.layout import MetaRef
    from modelmesh_connectors.index.metadata import Timestamp

    ts = Timestamp(1, datetime(2030, 1, 1, 12, 0, 0, 500, tzinfo=UTC), 1, MetaRef("ab", 3))
    later = replace(ts, version=2, expires=datetime(2031, 1, 1, 0, 0, 0, 900, tzinfo=UTC))
    assert (later.version, later.index, ts.version) == (2, ts.index, 1)
    assert later.expires == datetime(2031, 1, 1, tzinfo=UTC)  # normalised by __init__
    with pytest.raises(TypeError, match="no field"):
        replace(ts, versoin=3)


def test_records_copy_deepcopy_and_pickle_like_the_dataclasses() -> None:
    import copy
    import pickle

    from modelmesh_connectors.client.config import LoaderConfig
    from modelmesh_connectors.index.envelope import Envelope, Signature
    from modelmesh_connectors.index.keys import PublicKey, SigningKey
    from modelmesh_connectors.package.ids import ConnectorId

    key = PublicKey(SigningKey.generate().public.raw)
    values = [
        Envelope("t", b"{}", (Signature("k1", b"\x01" * 64),)),
        ConnectorId("acme", "sink", 2),
        key,
        LoaderConfig(offline=True),
    ]
    for value in values:
        for clone in (copy.copy(value), copy.deepcopy(value), pickle.loads(pickle.dumps(value))):  # noqa: S301 - own bytes
            assert clone == value and type(clone) is type(value)
    again = pickle.loads(pickle.dumps(key))  # noqa: S301 - own bytes
    assert again.keyid == key.keyid  # rebuilt through __init__: the caches exist again


def test_loader_config_is_a_frozen_value_that_copies_through_its_dict() -> None:
    from modelmesh_connectors.client.config import LoaderConfig

    base = LoaderConfig(offline=True)
    copy = LoaderConfig(**{**base.__dict__, "locked": True})  # how the CLI derives a config
    assert (copy.offline, copy.locked, base.locked) == (True, True, False)
    assert LoaderConfig(**base.__dict__) == base
    assert hash(LoaderConfig(**base.__dict__)) == hash(base)
    assert base.network == LoaderConfig().network and base.base_dir.is_absolute()
    with pytest.raises(AttributeError):
        base.offline = False  # type: ignore[misc]
