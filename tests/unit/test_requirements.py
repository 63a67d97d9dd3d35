"""Package specs: hostile strings are InvalidPackageSpec, never a foreign exception.

The general parsing tables live in tests/unit/test_resolve.py; these are the regressions the
fuzz suite (tests/fuzz/test_fuzz_inputs.py) found.
"""

from __future__ import annotations

import pytest

from modelmesh_connectors.package.requirements import InvalidPackageSpec, parse_package_spec


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("~no-such-user-modelmesh/pkg.zip", "cannot expand the home directory"),  # RuntimeError
        ("~\x00", "cannot expand the home directory"),  # ValueError: embedded null byte
        ("http://[#x", "is not a valid URL"),  # ValueError: Invalid IPv6 URL
    ],
)
def test_hostile_specs_are_invalid_package_specs(text: str, fragment: str) -> None:
    with pytest.raises(InvalidPackageSpec) as info:
        parse_package_spec(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "acme @ https://user:s3cr3t@host.example/acme-1.0.zip",  # PEP 508 direct reference
        "acme@https://s3cr3t@host.example/acme-1.0.zip",
        "ftp://user:s3cr3t@host.example/acme-1.0.zip",
        "https://user:s3cr3t@host.example/acme-1.0.zip#sha256=not-hex",
        "https://user:s3cr3t@host.example:99999/acme-1.0.zip",
    ],
)
def test_a_refused_entry_never_shows_its_credential(text: str) -> None:
    with pytest.raises(InvalidPackageSpec) as info:
        parse_package_spec(text)
    assert "s3cr3t" not in str(info.value)
    assert "***" in str(info.value)
