"""Every error class carries its own stable code; the TypeScript client uses the same list."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import modelmesh_connectors
from modelmesh_connectors.errors import ConnectorError

ROOT = Path(__file__).resolve().parents[2]
TS_ERRORS = ROOT / "src/typescript/src/errors.ts"
CODES_DOC = ROOT / "src/typescript/ERROR-CODES.md"
_CODE = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[a-z]+(?:-[a-z]+)*)*")


def _error_classes() -> list[type[ConnectorError]]:
    for module in pkgutil.walk_packages(
        modelmesh_connectors.__path__, modelmesh_connectors.__name__ + "."
    ):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: list[type[ConnectorError]] = []
    todo: list[type[ConnectorError]] = [ConnectorError]
    while todo:
        cls = todo.pop()
        if cls not in found and cls.__module__.startswith("modelmesh_connectors"):
            found.append(cls)
            todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_has_its_own_unique_code() -> None:
    classes = _error_classes()
    assert len(classes) > 40
    missing = [c.__qualname__ for c in classes if "code" not in vars(c)]
    assert missing == []
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes), sorted(codes)
    assert all(_CODE.fullmatch(code) for code in codes), codes


def test_a_code_extends_its_parents_code() -> None:
    # Lets a caller (and a conformance vector) match a family by prefix.
    for cls in _error_classes():
        if cls is ConnectorError:
            continue
        parent = next(b for b in cls.__bases__ if issubclass(b, ConnectorError))
        if parent is ConnectorError:
            assert "." not in cls.code, cls
        else:
            assert cls.code.startswith(parent.code + "."), (cls, parent)


def ts_codes() -> list[str]:
    text = TS_ERRORS.read_text(encoding="utf-8")
    block = re.search(r"export const ERROR_CODES = \[(.*?)\] as const;", text, re.S)
    assert block is not None, "ERROR_CODES not found in errors.ts"
    return re.findall(r'"([^"]+)"', block.group(1))


def test_typescript_list_equals_python_list() -> None:
    ts = ts_codes()
    assert len(ts) == len(set(ts))
    assert sorted(ts) == sorted(c.code for c in _error_classes())


def test_error_codes_document_lists_every_code() -> None:
    documented = set(re.findall(r"^\| `([a-z.-]+)` \|", CODES_DOC.read_text("utf-8"), re.M))
    assert documented == {c.code for c in _error_classes()}
