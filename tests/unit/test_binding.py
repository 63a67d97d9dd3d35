"""The binding of an entry's file name to the verified release (pure: strings in, errors out)."""

from __future__ import annotations

import pytest

from modelmesh_connectors.client.binding import (
    bind_release,
    url_file_name,
    url_is_under,
)
from modelmesh_connectors.errors import PolicyError
from modelmesh_connectors.index.metadata import (
    Release,
    ReleaseConnector,
    archive_path,
)

BASE = "https://cdn.example/pkgs/"


def _release(name: str = "acme-audit-log", version: str = "2.0.0") -> Release:
    return Release(
        name=name,
        version=version,
        file=archive_path(name, version),
        sha256="ab" * 32,
        length=10,
        requires_modelmesh=None,
        connectors=(ReleaseConnector("acme.audit-log.v1", "observability"),),
    )


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (BASE + "acme-audit-log-2.0.0.zip", "acme-audit-log-2.0.0.zip"),
        (BASE + "acme%2Daudit-log-2.0.0.zip", "acme-audit-log-2.0.0.zip"),  # RFC 3986 equivalent
        (BASE + "acme-audit-log-2.0.0%2blocal.zip", "acme-audit-log-2.0.0+local.zip"),
        (BASE + "acme-audit-log-2.0.0+local.zip", "acme-audit-log-2.0.0+local.zip"),
        ("https://cdn.example/pkg.zip", "pkg.zip"),
    ],
)
def test_file_name_of_plain_urls(url: str, name: str) -> None:
    assert url_file_name(url) == name


@pytest.mark.parametrize(
    ("url", "match"),
    [
        (BASE + "a%2Facme-audit-log-2.0.0.zip", "encodes '/'"),
        (BASE + "a%2facme-audit-log-2.0.0.zip", "encodes '/'"),
        (BASE + "x%2F..%2Facme-audit-log-2.0.0.zip", "encodes '/'"),
        (BASE + "a%5Cacme-audit-log-2.0.0.zip", "encodes"),
        (BASE + "acme-audit-log-2.0.0%252ezip", "encodes '%'"),
        (BASE + "%2e%2e/acme-audit-log-2.0.0.zip", "dot segment"),
        (BASE + "%2E/acme-audit-log-2.0.0.zip", "dot segment"),
        ("https://cdn.example/x/../acme-audit-log-2.0.0.zip", "dot segment"),
        (BASE + "acme-audit-log-2.0.0%C0%AEzip", "not valid UTF-8"),
        (BASE + "acme-audit-log-2.0.0%zip", "malformed percent"),
        (BASE + "acme-audit-log-2.0.0%2.zip", "malformed percent"),
        (BASE + "acme-audit-log-2.0.0.zip%00", "encodes"),
        (BASE + "acme-audit-log-2.0.0.zip%0A", "encodes"),
        (BASE + "acme-audit-log-2.0.0.zip?x=1", "query string"),
        (BASE + "download?file=acme-audit-log-2.0.0.zip", "query string"),
        (BASE + "acme-audit-log-2.0.0.zip?", "query string"),
        (BASE + "acme-audit-log-2.0.0.zip/", "not a plain archive name"),
        (BASE + "acme-audit-log-2.0.0.zip;v=1", "not a plain archive name"),
        (BASE + "acme-audit-log-2.0.0%20.zip", "not a plain archive name"),
        (BASE + "acme-audit-l%C3%B6g-2.0.0.zip", "not a plain archive name"),  # non-ASCII
        (BASE + ".acme-audit-log-2.0.0.zip", "not a plain archive name"),
        ("https://cdn.example", "not a plain archive name"),
    ],
)
def test_ambiguous_paths_are_refused(url: str, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        url_file_name(url)


def test_bind_accepts_the_named_release() -> None:
    bind_release(_release(), "acme-audit-log-2.0.0.zip", where="x")


@pytest.mark.parametrize(
    "file_name",
    [
        "acme-audit-log-1.0.0.zip",  # downgrade
        "other-2.0.0.zip",  # substitution
        "ACME-AUDIT-LOG-2.0.0.zip",  # case differs: names compare exactly
        "acme-audit-log-2.0.0.ZIP",
        "acme-audit-log-2.0.0",
        "acme-audit-log-2.0.0.zip.zip",
        "acme-2.0.0.zip",
    ],
)
def test_bind_refuses_another_name(file_name: str) -> None:
    with pytest.raises(PolicyError, match="downgrade or substitution"):
        bind_release(_release(), file_name, where="x")


def test_bind_splits_name_and_version_only_as_signed() -> None:
    """``a-b-1.0.zip`` could be (a, b-1.0) or (a-b, 1.0): the signed pair decides, exactly."""
    bind_release(_release("a-b", "1.0"), "a-b-1.0.zip", where="x")
    # Signed (the release format allows it), same file name, but not a PEP 440 version.
    with pytest.raises(PolicyError, match="normalized PEP 440"):
        bind_release(_release("a", "b-1.0"), "a-b-1.0.zip", where="x")
    with pytest.raises(PolicyError, match="normalized PEP 440"):
        bind_release(_release("a", "1.0-1"), "a-1.0-1.zip", where="x")  # valid, not normalized
    bind_release(_release("a", "1.0.post1+local.7"), "a-1.0.post1+local.7.zip", where="x")
    bind_release(_release("a", "1!2.0rc1"), "a-1!2.0rc1.zip", where="x")


@pytest.mark.parametrize(
    ("url", "base", "inside"),
    [
        ("https://cdn.example/pkgs/a/x-1.zip", BASE, True),
        ("HTTPS://CDN.EXAMPLE/pkgs/x-1.zip", BASE, True),
        ("https://cdn.example:443/pkgs/x-1.zip", BASE, True),
        ("https://cdn.example/pkgs/x-1.zip", "https://cdn.example:443/pkgs/", True),
        ("https://cdn.example/%70kgs/x-1.zip", BASE, True),
        ("https://cdn.example/pkgs2/x-1.zip", BASE, False),
        ("https://cdn.example/x-1.zip", BASE, False),
        ("https://cdn.example:8443/pkgs/x-1.zip", BASE, False),
        ("http://cdn.example/pkgs/x-1.zip", BASE, False),
        ("https://other.example/pkgs/x-1.zip", BASE, False),
        ("https://cdn.example.evil/pkgs/x-1.zip", BASE, False),
        ("https://cdn.example/anything.zip", "https://cdn.example/", True),
        ("https://cdn.example:notaport/x.zip", BASE, False),
    ],
)
def test_url_is_under(url: str, base: str, inside: bool) -> None:
    assert url_is_under(url, base) is inside
