"""The integrity fingerprint notices every kind of rebinding it claims to (its fast paths too)."""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator

import pytest

from modelmesh_connectors._internal import integrity, record
from modelmesh_connectors.index import envelope, keys, trust
from modelmesh_connectors.package import importer


@pytest.fixture
def undo() -> Iterator[Callable[[object, str, object], None]]:
    saved: list[tuple[object, str, object]] = []

    def set_(obj: object, name: str, value: object) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    yield set_
    for obj, name, value in reversed(saved):
        setattr(obj, name, value)


def _target() -> Callable[..., object]:
    func = trust.verify_history_link
    assert callable(func)
    return func


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("global", "modelmesh_connectors.index.trust.verify_history_link"),
        ("code", "modelmesh_connectors.index.trust.verify_history_link"),
        ("defaults", "modelmesh_connectors.index.envelope.verify_threshold"),
        ("kwdefaults", "modelmesh_connectors.index.envelope.verify_threshold"),
        ("class method", "modelmesh_connectors.index.trust.TrustedState.verify_release_signed"),
        ("record base", "modelmesh_connectors._internal.record.Frozen.__eq__"),
        ("module constant", "modelmesh_connectors.package.importer._EXECUTED"),
        ("class", "modelmesh_connectors.index.trust.TrustedState"),
        ("module", "modelmesh_connectors.index.keys.hashlib"),
    ],
)
def test_each_rebinding_is_named(
    undo: Callable[[object, str, object], None], what: str, expected: str
) -> None:
    baseline = integrity.fingerprint()
    if what == "global":
        undo(trust, "verify_history_link", lambda *a, **k: None)
    elif what == "code":
        undo(_target(), "__code__", (lambda *a, **k: None).__code__)
    elif what == "defaults":
        undo(envelope.verify_threshold, "__defaults__", (None, None, "someone else"))
    elif what == "kwdefaults":
        kw = dict(envelope.verify_threshold.__kwdefaults__ or {})
        kw["listed_by"] = "someone else"
        undo(envelope.verify_threshold, "__kwdefaults__", kw)
    elif what == "class method":
        undo(trust.TrustedState, "verify_release_signed", lambda self, data: None)
    elif what == "record base":
        undo(record.Frozen, "__eq__", lambda self, other: True)
    elif what == "class":
        undo(trust, "TrustedState", type("TrustedState", (trust.TrustedState,), {}))
    elif what == "module":
        undo(keys, "hashlib", types.ModuleType("hashlib"))
    else:
        undo(importer, "_EXECUTED", {})
    assert expected in integrity.changes(baseline)


def test_an_untouched_process_shows_no_change() -> None:
    assert integrity.changes(integrity.fingerprint()) == []
