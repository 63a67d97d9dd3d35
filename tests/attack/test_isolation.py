"""One package cannot act for another (issue 11, item 1): isolation attacks by signed packages.

A signed package runs code by design. What the registry still promises, and these tests
check with real signed packages served on 127.0.0.1:

* **verify all, then import**: every configured package is downloaded, hashed, signature
  checked and its manifest checked against the registry before the first one is imported —
  on every start-up path (``build_registry``, ``from_config``, the CLI ``load``, the ModelMesh
  bridge). A later package failing leaves the first one's code un-run (the canary);
* **a package registers only what its manifest declares**, by the registry's hand: a
  ``register`` call from package code — at import, from a thread it started, later, with its
  own class, a class with a forged ``__module__`` or someone else's class — is refused;
* **each package's connector is that package's code**: modules planted under another
  package's private namespace are purged or detected;
* **built-in IDs are never replaced**;
* **frozen registries** refuse every later ``register``/``load_package``;
* **rebinding the verifying code** after package code ran makes later loads refuse.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmesh_connectors import ConnectorRegistry
from modelmesh_connectors import errors as errors_module
from modelmesh_connectors.bridge import load_mesh
from modelmesh_connectors.cli import main
from modelmesh_connectors.errors import (
    ConnectorError,
    DuplicateConnectorError,
    HashMismatchError,
    LibraryTamperedError,
    PackageError,
    PackageImportError,
    RegistryFrozenError,
    SignatureError,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import archive_path
from modelmesh_connectors.package.importer import owner_of
from modelmesh_connectors.registry import build_registry
from tests.attack.hostile import (
    CANARY_ID,
    CANARY_NAME,
    Arena,
    canary_entries,
    crafted_zip,
    force_publish,
    private_modules,
    release_for,
)
from tests.support.packages import OBSERVABILITY_SOURCE

HOSTILE = "6.6.6"
HOSTILE_SPEC = f"{CANARY_NAME}=={HOSTILE}"
VICTIM = "acme-audit-log"  # the package that fails verification, second in the config
VICTIM_ID = "acme.audit-log.v1"
RESULT_ENV = "MODELMESH_ISOLATION_RESULT"


@pytest.fixture
def arena(tmp_path: Path) -> Iterator[Arena]:
    with Arena(tmp_path) as a:
        yield a


@pytest.fixture
def result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a hostile package's background thread reports what happened to its attempt."""
    path = tmp_path / "thread-result.txt"
    monkeypatch.setenv(RESULT_ENV, str(path))
    return path


def _victim_archive(arena: Arena, **kwargs: Any) -> bytes:
    return arena.sim.build_archive(VICTIM, "1.0.0", **kwargs).read_bytes()


def _victim_release(data: bytes, connectors: tuple[tuple[str, str], ...]) -> Any:
    return release_for(data, name=VICTIM, version="1.0.0", connectors=connectors)


def _publish_hostile_canary(arena: Arena, code: str) -> str:
    """The canary package (its import leaves the marker) with ``code`` appended, signed."""
    entries = [
        (n, d + code.encode() if n == "demo_canary/canary.py" else d)
        for n, d in canary_entries(HOSTILE)
    ]
    archive = arena.tmp / "hostile.zip"
    archive.write_bytes(crafted_zip(entries))
    arena.sim.publish_archive(archive)
    return HOSTILE_SPEC


# -- 1. verify every package before importing any, on every start-up path ---------------------


def _bad_signature(arena: Arena) -> None:
    data = _victim_archive(arena)
    force_publish(
        arena.sim,
        data,
        release=_victim_release(data, ((VICTIM_ID, "observability"),)),
        signers=[SigningKey.generate()],  # a key the trust root does not know
    )


def _swapped_archive(arena: Arena) -> None:
    release = arena.sim.publish(VICTIM, "1.0.0")
    arena.sim.corrupt(release.file, offset=len(arena.sim.read(release.file)) // 2)


def _declares(cid: str, extra_manifest: str = "") -> Callable[[Arena], None]:
    def setup(arena: Arena) -> None:
        entry = "acme_audit_log.sink:Sink"
        data = _victim_archive(
            arena, connectors=[(cid, "observability", entry)], extra_manifest=extra_manifest
        )
        force_publish(  # validly signed by the index role, which may sign any namespace
            arena.sim, data, release=_victim_release(data, ((cid, "observability"),))
        )

    return setup


LATER_FAILURES = {
    "bad-signature": (_bad_signature, SignatureError),
    "swapped-archive": (_swapped_archive, HashMismatchError),
    "builtin-id": (_declares("modelmesh.null.v1"), DuplicateConnectorError),
    "first-packages-id": (_declares(CANARY_ID), DuplicateConnectorError),
    "unmet-requires-modelmesh": (
        _declares(VICTIM_ID, 'requires-modelmesh: ">=99"\n'),
        PackageError,
    ),
}


def _via_build_registry(arena: Arena, cfg: dict[str, Any], tmp: Path) -> None:
    build_registry(cfg)


def _via_from_config(arena: Arena, cfg: dict[str, Any], tmp: Path) -> None:
    ConnectorRegistry.from_config(cfg, freeze=True)


def _via_cli(arena: Arena, cfg: dict[str, Any], tmp: Path) -> None:
    path = tmp / "cli.yaml"
    path.write_text(yaml.safe_dump({"connectors": cfg}), encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["load", "--config", str(path), "--json"])
    if status:
        # The JSON error names the class of the library's error tree: raise it again, typed.
        error = json.loads(out.getvalue())["error"]
        raise getattr(errors_module, error["type"])(error["message"])


def _via_bridge(arena: Arena, cfg: dict[str, Any], tmp: Path) -> None:
    load_mesh({"connectors": cfg})


PATHS = {
    "build_registry": _via_build_registry,
    "from_config": _via_from_config,
    "cli-load": _via_cli,
    "bridge": _via_bridge,
}


@pytest.mark.parametrize("failure", sorted(LATER_FAILURES))
@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_later_package_failing_means_the_first_never_ran(
    arena: Arena, canary: Path, tmp_path: Path, path: str, failure: str
) -> None:
    arena.publish_canary()
    setup, error = LATER_FAILURES[failure]
    setup(arena)
    before = private_modules()
    cfg = arena.sim.config([CANARY_NAME, VICTIM])
    with pytest.raises(ConnectorError) as caught:
        PATHS[path](arena, cfg, tmp_path)
    assert type(caught.value) is error, f"expected {error.__name__}, got {caught.value!r}"
    assert not canary.exists(), "the first package's code ran before the second was verified"
    assert private_modules() == before


def test_cli_load_reports_the_later_failure_without_running_the_first(
    arena: Arena, canary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arena.publish_canary()
    _bad_signature(arena)
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump({"connectors": arena.sim.config([CANARY_NAME, VICTIM])}))
    assert main(["load", "--config", str(path)]) == 4  # ExitCode.TRUST
    assert "error:" in capsys.readouterr().err
    assert not canary.exists()


def test_control_both_packages_load_on_every_path(
    arena: Arena, canary: Path, tmp_path: Path
) -> None:
    """Without a failing second package the same paths load both (the checks can fail)."""
    arena.publish_canary()
    arena.sim.publish(VICTIM, "1.0.0")
    cfg = arena.sim.config([CANARY_NAME, VICTIM])
    registry = ConnectorRegistry.from_config(cfg, freeze=True)
    assert {CANARY_ID, VICTIM_ID} <= {i.id for i in registry.list_connectors()}
    assert registry.frozen
    assert canary.exists()
    loaded = load_mesh({"connectors": cfg})
    assert loaded.registry.frozen
    assert VICTIM_ID in {i.id for i in loaded.registry.list_connectors()}


# -- 2. a package registers nothing itself: at import, later, from any thread -----------------

OWN_ID_AT_IMPORT = """
import gc as _gc
from modelmesh_connectors import ConnectorRegistry as _Registry
for _o in _gc.get_objects():
    if isinstance(_o, _Registry):
        try:
            _o.register("demo.canary.v1", Canary)
        except Exception:
            pass
"""


def test_registering_its_own_declared_id_at_import_is_refused(arena: Arena, canary: Path) -> None:
    spec = _publish_hostile_canary(arena, OWN_ID_AT_IMPORT)
    existing = build_registry(arena.sim.config([]))
    listed = existing.list_connectors()
    before = private_modules()
    with pytest.raises(ConnectorError) as whole:
        build_registry(arena.sim.config([spec]))
    assert type(whole.value) is PackageImportError
    assert "its own declared connector(s) demo.canary.v1" in str(whole.value)
    with pytest.raises(ConnectorError) as into:
        existing.load_package(spec)
    assert type(into.value) is PackageImportError
    assert existing.list_connectors() == listed  # no runtime entry left behind either
    assert private_modules() == before


LATER_FROM_A_THREAD = """
import gc as _gc, os as _os, threading as _threading, time as _time
from modelmesh.interfaces.observability import ObservabilityConnector as _Base
from modelmesh_connectors import ConnectorRegistry as _Registry


class _Forged(_Base):
    \"\"\"Defined by this package, but claims to live elsewhere.\"\"\"

    __module__ = "app.sinks"

    def emit(self, event): pass
    def log(self, entry): pass
    def flush(self, stats): pass
    def trace(self, entry): pass


for _method in list(vars(_Forged).values()):
    if callable(_method):
        _method.__module__ = "app.sinks"  # every name it carries says "not a package"


def _mine():
    for _o in _gc.get_objects():
        if isinstance(_o, _Registry):
            try:
                if _o.get_connector("demo.canary.v1") is Canary:
                    return _o
            except Exception:
                pass
    return None


def _report(text):
    with open(_os.environ["MODELMESH_ISOLATION_RESULT"], "w") as _f:
        _f.write(text)


def _later():
    _deadline = _time.monotonic() + 20
    _registry = None
    while _registry is None and _time.monotonic() < _deadline:
        _time.sleep(0.05)
        _registry = _mine()
    if _registry is None:
        _report("no registry")
        return
    _impl = {impl}
    try:
        if {pool}:  # the call runs on a pool thread: no frame of this package on its stack
            from concurrent.futures import ThreadPoolExecutor as _Pool

            with _Pool(1) as _p:
                _p.submit(_registry.register, {cid!r}, _impl).result()
        else:
            _registry.register({cid!r}, _impl)
    except Exception as _exc:
        _report(type(_exc).__name__ + ": " + str(_exc))
    else:
        _report("registered")


_threading.Thread(target=_later, daemon=True).start()
"""

THREAD_ATTEMPTS = {
    # what the thread passes, the ID it uses, whether a pool thread makes the call
    "own-class-undeclared-id": ("Canary", "evil.backdoor.v1", False),
    "own-class-own-id": ("Canary", CANARY_ID, False),
    "instance-of-own-class": ("Canary()", "evil.backdoor.v1", False),
    "forged-module-class": ("_Forged", "evil.backdoor.v1", False),
    "builtin-class-from-package-thread": (
        '_registry.get_connector("modelmesh.null.v1")',
        "evil.backdoor.v1",
        False,
    ),
    "own-class-via-pool-thread": ("Canary", "evil.backdoor.v1", True),
    "forged-module-class-via-pool-thread": ("_Forged", "evil.backdoor.v1", True),
}


def _wait_for(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), "the package's thread never reported"
    time.sleep(0.05)  # the file is written in one call; let it close
    return path.read_text()


@pytest.mark.parametrize("attempt", sorted(THREAD_ATTEMPTS))
def test_a_thread_started_by_a_package_cannot_register_later(
    arena: Arena, canary: Path, result: Path, attempt: str
) -> None:
    impl, cid, pool = THREAD_ATTEMPTS[attempt]
    code = LATER_FROM_A_THREAD.format(impl=impl, cid=cid, pool=pool)
    spec = _publish_hostile_canary(arena, code)
    registry = build_registry(arena.sim.config([spec]))  # loads: its import did nothing bad
    assert canary.exists()
    report = _wait_for(result)
    assert report.startswith("PackageImportError: "), report
    assert "evil.backdoor.v1" not in {i.id for i in registry.list_connectors()}
    assert registry.origin(CANARY_ID).kind == "package"


def test_a_package_thread_meets_a_frozen_registry(arena: Arena, canary: Path, result: Path) -> None:
    code = LATER_FROM_A_THREAD.format(impl="Canary", cid="evil.backdoor.v1", pool=False)
    spec = _publish_hostile_canary(arena, code)
    registry = ConnectorRegistry.from_config(arena.sim.config([spec]), freeze=True)
    assert _wait_for(result).startswith("RegistryFrozenError: ")
    assert "evil.backdoor.v1" not in {i.id for i in registry.list_connectors()}


def test_a_package_class_is_never_registered_under_another_id_by_anyone(
    arena: Arena, canary: Path
) -> None:
    """The application itself cannot alias a package's class to an undeclared ID either."""
    arena.publish_canary()
    registry = build_registry(arena.sim.config([CANARY_NAME]))
    cls = registry.get_connector(CANARY_ID)
    with pytest.raises(ConnectorError) as alias:
        registry.register("my.alias.v1", cls)
    assert type(alias.value) is PackageImportError
    assert "does not declare" in str(alias.value)
    # A registry that never loaded the package: the class is stale/foreign code there.
    with pytest.raises(ConnectorError) as foreign:
        ConnectorRegistry().register("my.alias.v1", cls)
    assert type(foreign.value) is PackageImportError
    assert "not loaded in this registry" in str(foreign.value)
    assert "my.alias.v1" not in {i.id for i in registry.list_connectors()}


def test_a_thread_running_during_the_load_fails_the_whole_batch(
    arena: Arena, canary: Path, result: Path
) -> None:
    """A thread of the first package registering while the second imports: all or nothing."""
    code = """
import threading as _threading, gc as _gc
from modelmesh_connectors import ConnectorRegistry as _Registry
_regs = [o for o in _gc.get_objects() if isinstance(o, _Registry)]
def _now():
    for _r in _regs:
        try:
            _r.register("evil.backdoor.v1", Canary)
        except Exception:
            pass
_t = _threading.Thread(target=_now)
_t.start()
_t.join()
"""
    spec = _publish_hostile_canary(arena, code)
    existing = build_registry(arena.sim.config([]))
    listed = existing.list_connectors()
    before = private_modules()
    with pytest.raises(ConnectorError) as caught:
        existing.load_package(spec)
    assert type(caught.value) is PackageImportError
    assert existing.list_connectors() == listed
    assert private_modules() == before


# -- 3. each package's connector is that package's code --------------------------------------


PLANT = """
import sys as _sys, types as _types


class _Impostor(Sink):
    \"\"\"The planter's class, to be credited to the other package's signer.\"\"\"


for _name in ({ns!r}, {ns!r} + ".demo_canary", {ns!r} + ".demo_canary.canary"):
    _module = _types.ModuleType(_name)
    _module.__path__ = []
    _module.Canary = _Impostor
    _sys.modules[_name] = _module
"""

HIJACK_FINDER = """
import importlib.abc as _abc, importlib.machinery as _machinery, sys as _sys


class _Impostor(Sink):
    \"\"\"The planter's class, to be credited to the other package's signer.\"\"\"


class _Hijack(_abc.MetaPathFinder, _abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == {ns!r} or name.startswith({ns!r} + "."):
            return _machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.Canary = _Impostor


class _StayFirst(list):
    def insert(self, index, item):
        self.append(item)  # whoever inserts at the front lands behind the hijacker


_sys.meta_path = _StayFirst([_Hijack(), *_sys.meta_path])
"""


def _canary_namespace(arena: Arena) -> str:
    digest = hashlib.sha256(arena.sim.read(archive_path(CANARY_NAME, "1.0.0"))).hexdigest()
    return f"_mmpkg_demo_canary_1_0_0_{digest[:12]}"


def _publish_planter(arena: Arena, template: str) -> None:
    source = OBSERVABILITY_SOURCE + template.format(ns=_canary_namespace(arena))
    arena.sim.publish(
        "acme-planter",
        "1.0.0",
        connectors=[("acme.planter.v1", "observability", "acme_planter.sink:Sink")],
        modules={"acme_planter/__init__.py": "", "acme_planter/sink.py": source},
    )


@pytest.fixture
def meta_path() -> Iterator[None]:
    """Put back the interpreter's own ``sys.meta_path`` list after a package replaced it."""
    saved = sys.meta_path
    try:
        yield
    finally:
        sys.meta_path = saved


def test_modules_planted_under_another_packages_namespace_are_purged(
    arena: Arena, canary: Path
) -> None:
    arena.publish_canary()
    _publish_planter(arena, PLANT)
    registry = build_registry(arena.sim.config(["acme-planter", CANARY_NAME]))
    cls = registry.get_connector(CANARY_ID)
    assert cls.__name__ == "Canary"
    assert cls.__module__ == _canary_namespace(arena) + ".demo_canary.canary"
    assert owner_of(cls) == _canary_namespace(arena)
    assert canary.exists(), "the canary's own code must have run"


def test_a_foreign_loader_under_another_packages_namespace_is_refused(
    arena: Arena, canary: Path, meta_path: None
) -> None:
    arena.publish_canary()
    _publish_planter(arena, HIJACK_FINDER)
    before = private_modules()
    with pytest.raises(ConnectorError) as caught:
        build_registry(arena.sim.config(["acme-planter", CANARY_NAME]))
    assert type(caught.value) is PackageImportError
    assert "not executed by this package's importer" in str(caught.value)
    assert private_modules() - before == set()  # the planter is unloaded with the batch


# -- 4. built-in IDs are never replaced --------------------------------------------------------


def test_a_package_declaring_a_builtin_id_is_refused_before_import(
    arena: Arena, canary: Path
) -> None:
    entries = [
        (n, d.replace(b"id: demo.canary.v1", b"id: modelmesh.null.v1"))
        for n, d in canary_entries(HOSTILE)
    ]
    data = crafted_zip(entries)
    builtin = (("modelmesh.null.v1", "observability"),)
    force_publish(arena.sim, data, release=release_for(data, version=HOSTILE, connectors=builtin))
    existing = build_registry(arena.sim.config([]))
    with pytest.raises(ConnectorError) as caught:
        existing.load_package(HOSTILE_SPEC)
    assert type(caught.value) is DuplicateConnectorError
    assert not canary.exists()
    assert existing.origin("modelmesh.null.v1").kind == "builtin"


REBIND_BUILTIN = """
import modelmesh.connectors.observability.null_connector as _null


class _Evil(Canary):
    \"\"\"Takes the place of ModelMesh's null connector.\"\"\"


_null.NullObservabilityConnector = _Evil
"""


def test_a_builtin_rebound_in_modelmeshs_module_is_refused(arena: Arena, canary: Path) -> None:
    import modelmesh.connectors.observability.null_connector as null

    original = null.NullObservabilityConnector
    spec = _publish_hostile_canary(arena, REBIND_BUILTIN)
    try:
        registry = build_registry(arena.sim.config([spec]))
        with pytest.raises(ConnectorError) as caught:
            registry.get_connector("modelmesh.null.v1")
        assert type(caught.value) is LibraryTamperedError
    finally:
        null.NullObservabilityConnector = original  # type: ignore[misc]  # put the class back


def test_the_bridge_refuses_a_tampered_upstream_table(
    arena: Arena, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code in the process rebinding ModelMesh's table after start-up: no mesh is built."""
    from modelmesh.connectors import CONNECTOR_REGISTRY

    class Evil:
        """Not ModelMesh's."""

    monkeypatch.setitem(CONNECTOR_REGISTRY, "openai.llm.v1", Evil)
    with pytest.raises(ConnectorError) as caught:
        load_mesh({"connectors": arena.sim.config([])})
    assert type(caught.value) is LibraryTamperedError
    monkeypatch.undo()
    loaded = load_mesh({"connectors": arena.sim.config([])})  # control
    assert loaded.registry.frozen


# -- 5. freeze -------------------------------------------------------------------------------


def test_a_frozen_registry_refuses_register_and_load(arena: Arena, canary: Path) -> None:
    arena.publish_canary()
    registry = ConnectorRegistry()
    registry.freeze()
    from modelmesh.connectors.observability.null_connector import NullObservabilityConnector

    with pytest.raises(RegistryFrozenError):
        registry.register("app.sink.v1", NullObservabilityConnector)
    with pytest.raises(RegistryFrozenError):
        registry.load_package(str(arena.sim.archives[(CANARY_NAME, "1.0.0")]))
    frozen = build_registry(arena.sim.config([]), freeze=True)
    arena.sim.server.clear_requests()
    with pytest.raises(RegistryFrozenError):
        frozen.load_package(CANARY_NAME)
    assert arena.sim.server.requests == []  # refused before resolving anything
    assert not canary.exists()


# -- 6. rebinding the verifying code ------------------------------------------------------------

PATCH_VERIFICATION = """
import os as _os
from modelmesh_connectors.index import trust as _trust
from modelmesh_connectors.index.metadata import parse_release as _parse


def _accept(self, name, entry):
    # Accept any release in a bin, signed or not, and credit a made-up signer.
    with open(_os.environ["MODELMESH_ISOLATION_RESULT"], "a") as _f:
        _f.write("patched verifier called\\n")
    return _parse(entry.release.payload), frozenset({"forged-signer"})


_trust.TrustedState.verify_bin_release_signed = _accept
"""


@pytest.fixture
def restore_trust() -> Iterator[None]:
    from modelmesh_connectors.index import trust

    saved = dict(vars(trust.TrustedState))
    try:
        yield
    finally:
        for name, value in saved.items():
            if vars(trust.TrustedState).get(name) is not value:
                setattr(trust.TrustedState, name, value)


def test_a_monkeypatching_package_first_in_the_config_runs_after_all_verification(
    arena: Arena, canary: Path, result: Path, restore_trust: None
) -> None:
    spec = _publish_hostile_canary(arena, PATCH_VERIFICATION)
    _bad_signature(arena)
    with pytest.raises(ConnectorError) as caught:
        build_registry(arena.sim.config([spec, VICTIM]))
    assert type(caught.value) is SignatureError
    assert not canary.exists()
    assert not result.exists()


@pytest.mark.parametrize("frozen", [False, True], ids=["unfrozen", "frozen"])
def test_a_late_load_after_the_verifier_was_rebound_is_refused(
    arena: Arena, canary: Path, result: Path, restore_trust: None, frozen: bool
) -> None:
    spec = _publish_hostile_canary(arena, PATCH_VERIFICATION)
    _bad_signature(arena)
    registry = build_registry(arena.sim.config([spec]), freeze=frozen)
    assert canary.exists()  # the hostile package loaded (it is validly signed) and patched
    before = private_modules()
    with pytest.raises(ConnectorError) as caught:
        registry.load_package(VICTIM)
    assert type(caught.value) is (RegistryFrozenError if frozen else LibraryTamperedError)
    assert "verify_bin_release_signed" in str(caught.value) or frozen
    assert not result.exists(), "the rebound verifier was used"
    assert VICTIM_ID not in {i.id for i in registry.list_connectors()}
    assert private_modules() == before


def test_control_a_late_load_with_untouched_code_works(arena: Arena, canary: Path) -> None:
    arena.publish_canary()
    arena.sim.publish(VICTIM, "1.0.0")
    registry = build_registry(arena.sim.config([CANARY_NAME]))
    assert registry.load_package(VICTIM) == [VICTIM_ID]


def test_an_entry_that_is_not_the_packages_own_code_is_refused(arena: Arena, canary: Path) -> None:
    """A manifest entry re-exporting someone else's class would credit it to this signer."""
    source = (
        "from modelmesh.connectors.observability.null_connector import "
        "NullObservabilityConnector as Sink\n"
    )
    arena.sim.publish(
        "acme-borrower",
        "1.0.0",
        connectors=[("acme.borrower.v1", "observability", "acme_borrower.sink:Sink")],
        modules={"acme_borrower/__init__.py": "", "acme_borrower/sink.py": source},
    )
    before = private_modules()
    with pytest.raises(ConnectorError) as caught:
        build_registry(arena.sim.config(["acme-borrower"]))
    assert type(caught.value) is PackageImportError
    assert "not by this package's verified code" in str(caught.value)
    assert private_modules() == before


def test_builtin_ids_are_reserved_even_without_builtins(arena: Arena, canary: Path) -> None:
    data = crafted_zip(
        [
            (n, d.replace(b"id: demo.canary.v1", b"id: openai.llm.v1"))
            for n, d in canary_entries(HOSTILE)
        ]
    )
    reserved = (("openai.llm.v1", "observability"),)
    force_publish(arena.sim, data, release=release_for(data, version=HOSTILE, connectors=reserved))
    bare = ConnectorRegistry(include_builtins=False)
    archive = arena.tmp / "reserved.zip"
    archive.write_bytes(data)
    with pytest.raises(ConnectorError) as caught:
        bare.load_package(str(archive))
    assert type(caught.value) is DuplicateConnectorError
    assert "built-in" in str(caught.value)
    assert bare.list_connectors() == []
    assert not canary.exists()


LOAD_AT_IMPORT = """
import gc as _gc
from modelmesh_connectors import ConnectorRegistry as _Registry
for _o in _gc.get_objects():
    if isinstance(_o, _Registry):
        try:
            _o.load_package({path!r})
        except Exception:
            pass
"""


def test_package_code_cannot_load_packages(arena: Arena, canary: Path, tmp_path: Path) -> None:
    """Only the application loads packages: a package loading another is refused."""
    other = arena.sim.build_archive(
        "acme-other",
        "1.0.0",
        connectors=[("acme.other.v1", "observability", "acme_other.sink:Sink")],
    )
    spec = _publish_hostile_canary(arena, LOAD_AT_IMPORT.format(path=str(other)))
    existing = build_registry(arena.sim.config([]))
    listed = existing.list_connectors()
    with pytest.raises(ConnectorError) as caught:
        existing.load_package(spec)
    assert type(caught.value) is PackageImportError
    assert "make a load of package" in str(caught.value)
    assert existing.list_connectors() == listed
