"""Minimal reproducers of the parser bugs the fuzz suite found.

While a bug is open its reproducers are strict xfails: they fail today, as expected. Once
``src`` is fixed they pass, ``strict=True`` turns that into a failure, and the entry in
``known_bugs.py`` gets ``open=False``: the reproducers then run as plain regression tests.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelmesh_connectors.errors import ConnectorError, ManifestError
from modelmesh_connectors.package.manifest import parse_manifest
from tests.fuzz.known_bugs import KNOWN_BUGS, KnownBug

CASES = [
    pytest.param(
        bug,
        repro,
        id=f"{bug.key}-{i}",
        marks=(
            [pytest.mark.xfail(strict=True, raises=bug.exc_types, reason=bug.summary)]
            if bug.open
            else []
        ),
    )
    for bug in KNOWN_BUGS
    for i, repro in enumerate(bug.reproducers)
]


@pytest.mark.parametrize(("bug", "reproducer"), CASES)
def test_only_typed_errors(bug: KnownBug, reproducer: Callable[[], object]) -> None:
    try:
        reproducer()
    except ConnectorError as exc:
        # A project error is the bug itself when the entry names it (round-trip defects).
        if type(exc) in bug.exc_types:
            raise


def _alias_bomb(levels: int) -> bytes:
    """A few hundred bytes of YAML whose aliases expand to 10**levels list items."""
    lines = ["name:", "  - &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    lines += ["version: '1.0'", "description: d", "connectors: [1]"]
    return ("\n".join(lines) + "\n").encode()


def test_manifest_error_message_does_not_amplify_aliases() -> None:
    data = _alias_bomb(6)
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, source="m.yaml")
    assert len(str(info.value)) <= 16 * len(data) + 2_000
