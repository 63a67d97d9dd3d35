"""load_package for directories and zips: all-or-nothing, isolated, idempotent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelmesh_connectors import (
    ConnectorRegistry,
    ConnectorType,
    ConnectorTypeError,
    DuplicateConnectorError,
    ManifestError,
    PackageError,
    PackageImportError,
    PolicyError,
)
from tests.support.packages import (
    OBSERVABILITY_SOURCE,
    PROVIDER_SOURCE,
    make_package,
    make_zip,
    zip_directory,
)


def _private_modules() -> set[str]:
    return {m for m in sys.modules if m.startswith("_mmpkg_")}


@pytest.fixture
def registry() -> ConnectorRegistry:
    return ConnectorRegistry(include_builtins=False)


@pytest.mark.parametrize("form", ["directory", "zip"])
def test_load_registers_declared_connectors(tmp_path: Path, registry: ConnectorRegistry, form: str) -> None:
    path = make_package(tmp_path) if form == "directory" else make_zip(tmp_path)
    ids = registry.load_package(str(path))
    assert ids == ["acme.audit-log.v1"]
    [info] = registry.list_connectors("observability")
    assert (info.id, info.version, info.description) == ("acme.audit-log.v1", "1.2.0", "acme.audit-log.v1 connector")
    cls = registry.get_connector("acme.audit-log.v1")
    assert cls.__name__ == "Sink"
    assert cls.__module__.startswith("_mmpkg_acme_audit_log_1_2_0_")
    assert registry.origin("acme.audit-log.v1").kind == "local"
    sink = cls()
    sink.emit("e")
    assert sink.events == ["e"]


def test_same_package_twice_is_noop(tmp_path: Path, registry: ConnectorRegistry) -> None:
    path = str(make_zip(tmp_path))
    first = registry.load_package(path)
    cls = registry.get_connector(first[0])
    assert registry.load_package(path) == first
    assert registry.get_connector(first[0]) is cls


def test_same_version_other_content_refused(tmp_path: Path, registry: ConnectorRegistry) -> None:
    registry.load_package(str(make_zip(tmp_path / "a")))
    other = make_zip(tmp_path / "b", extra_manifest="dependencies: []\n")
    with pytest.raises(PackageError, match="already loaded .* different content"):
        registry.load_package(str(other))


def test_two_packages_with_same_module_names_do_not_collide(tmp_path: Path, registry: ConnectorRegistry) -> None:
    a = make_package(tmp_path, "pkg-a", "1.0", connectors=[("a.sink.v1", "observability", "lib.sink:Sink")],
                     modules={"lib/__init__.py": "", "lib/sink.py": OBSERVABILITY_SOURCE + "NAME = 'a'\n"})
    b = make_package(tmp_path, "pkg-b", "1.0", connectors=[("b.sink.v1", "observability", "lib.sink:Sink")],
                     modules={"lib/__init__.py": "", "lib/sink.py": OBSERVABILITY_SOURCE + "NAME = 'b'\n"})
    registry.load_package(str(a))
    registry.load_package(str(b))
    mod_a = sys.modules[registry.get_connector("a.sink.v1").__module__]
    mod_b = sys.modules[registry.get_connector("b.sink.v1").__module__]
    assert (mod_a.NAME, mod_b.NAME) == ("a", "b")
    assert "lib" not in sys.modules


def test_two_versions_conflict_on_ids_and_leave_nothing(tmp_path: Path, registry: ConnectorRegistry) -> None:
    registry.load_package(str(make_zip(tmp_path, version="1.0.0")))
    before = _private_modules()
    with pytest.raises(DuplicateConnectorError, match=r"acme.audit-log.v1.*local .*1.0.0"):
        registry.load_package(str(make_zip(tmp_path, version="2.0.0")))
    assert _private_modules() == before
    assert [i.version for i in registry.list_connectors()] == ["1.0.0"]


def test_relative_imports_inside_package_work(tmp_path: Path, registry: ConnectorRegistry) -> None:
    path = make_package(tmp_path, modules={
        "acme_audit_log/__init__.py": "",
        "acme_audit_log/base.py": OBSERVABILITY_SOURCE,
        "acme_audit_log/sink.py": "from .base import Sink as _S\n\nclass Sink(_S):\n    '''Derived.'''\n",
    })
    registry.load_package(str(path))
    assert registry.get_connector("acme.audit-log.v1").__doc__ == "Derived."


def _assert_untouched(registry: ConnectorRegistry, before: set[str]) -> None:
    assert registry.list_connectors() == []
    assert _private_modules() == before


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"modules": {"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": "raise RuntimeError('boom')\n"}},
         PackageImportError, "raised RuntimeError: boom"),
        ({"modules": {"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": "import acme_audit_log.other\n"}},
         PackageImportError, "cannot import"),
        ({"modules": {"acme_audit_log/__init__.py": ""}}, PackageImportError, "cannot import module 'acme_audit_log.sink'"),
        ({"modules": {"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": "X = 1\n"}},
         PackageImportError, "has no attribute 'Sink'"),
        ({"modules": {"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": PROVIDER_SOURCE},
          "connectors": [("acme.audit-log.v1", "provider", "acme_audit_log.sink:NotAProvider")]},
         ConnectorTypeError, "declared type 'provider'"),
        ({"connectors": [("acme.audit-log.v1", "provider", "acme_audit_log.sink:Sink")]},
         ConnectorTypeError, "does not implement"),
        ({"extra_manifest": "requires-modelmesh: '>=9'\n"}, PackageError, "requires modelmesh-lite >=9"),
        ({"extra_manifest": "dependencies: ['surely-not-installed-pkg>=1']\n"}, PackageError, "not installed"),
        ({"extra_manifest": "dependencies: ['pyyaml>=999']\n"}, PackageError, "pyyaml>=999"),
        ({"extra_manifest": "colour: red\n"}, ManifestError, "unknown key"),
    ],
)
@pytest.mark.parametrize("form", ["directory", "zip"])
def test_every_failure_is_all_or_nothing(
    tmp_path: Path, registry: ConnectorRegistry, kwargs: dict[str, object], error: type[Exception], fragment: str, form: str
) -> None:
    before = _private_modules()
    kwargs = dict(kwargs)
    # a second connector that would be fine on its own must not be registered either
    connectors = kwargs.pop("connectors", [("acme.audit-log.v1", "observability", "acme_audit_log.sink:Sink")])
    assert isinstance(connectors, list)
    modules = kwargs.pop("modules", None)
    ok = {"good/__init__.py": "", "good/sink.py": OBSERVABILITY_SOURCE}
    base_modules = {"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": OBSERVABILITY_SOURCE}
    all_modules = {**ok, **(modules if isinstance(modules, dict) else base_modules)}
    path = make_package(tmp_path, connectors=[("good.sink.v1", "observability", "good.sink:Sink"), *connectors],
                        modules=all_modules, **kwargs)  # type: ignore[arg-type]
    if form == "zip":
        path = zip_directory(path, tmp_path / "pkg.zip")
    with pytest.raises(error, match=fragment):
        registry.load_package(str(path))
    _assert_untouched(registry, before)


def test_package_registering_undeclared_id_is_refused(tmp_path: Path) -> None:
    registry = ConnectorRegistry(include_builtins=False)
    sneaky = OBSERVABILITY_SOURCE + (
        "\nimport gc\nfrom modelmesh_connectors import ConnectorRegistry as _R\n"
        "for _o in gc.get_objects():\n"
        "    if isinstance(_o, _R):\n"
        "        try:\n"
        "            _o.register('evil.backdoor.v1', Sink)\n"
        "        except Exception:\n"
        "            pass\n"
    )
    path = make_package(tmp_path, modules={"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": sneaky})
    before = _private_modules()
    with pytest.raises(PackageImportError, match="undeclared connector.*evil.backdoor.v1"):
        registry.load_package(str(path))
    _assert_untouched(registry, before)


def test_package_tampering_with_upstream_table_is_refused_and_undone(tmp_path: Path) -> None:
    from modelmesh.connectors import CONNECTOR_REGISTRY

    original = dict(CONNECTOR_REGISTRY)
    sneaky = OBSERVABILITY_SOURCE + (
        "\nfrom modelmesh.connectors import CONNECTOR_REGISTRY\nCONNECTOR_REGISTRY['openai.llm.v1'] = Sink\n"
    )
    path = make_package(tmp_path, modules={"acme_audit_log/__init__.py": "", "acme_audit_log/sink.py": sneaky})
    registry = ConnectorRegistry(include_builtins=False)
    with pytest.raises(PackageImportError, match="openai.llm.v1"):
        registry.load_package(str(path))
    assert original == CONNECTOR_REGISTRY
    assert registry.list_connectors() == []


def test_require_signatures_refuses_local_paths(tmp_path: Path) -> None:
    registry = ConnectorRegistry(include_builtins=False, require_signatures=True)
    with pytest.raises(PolicyError, match="require_signatures"):
        registry.load_package(str(make_zip(tmp_path)))
    assert registry.list_connectors() == []


def test_remote_forms_without_index_are_clear_errors(registry: ConnectorRegistry) -> None:
    with pytest.raises(PackageError, match="no index is configured"):
        registry.load_package("acme-audit-log>=1.0")
    with pytest.raises(PackageError, match="no index is configured"):
        registry.load_package("https://example.invalid/a.zip")


def test_missing_path_and_wrong_suffix(tmp_path: Path, registry: ConnectorRegistry) -> None:
    with pytest.raises(PackageError, match="no such file"):
        registry.load_package(str(tmp_path / "nope.zip"))
    (tmp_path / "x.tar").write_bytes(b"x")
    with pytest.raises(PackageError, match="directory or a .zip"):
        registry.load_package(str(tmp_path / "x.tar"))


def test_loaded_type_listed_under_its_type(tmp_path: Path) -> None:
    registry = ConnectorRegistry()
    registry.load_package(str(make_zip(tmp_path)))
    ids = [i.id for i in registry.list_connectors(ConnectorType.OBSERVABILITY)]
    assert "acme.audit-log.v1" in ids
    assert "modelmesh.null.v1" in ids
