"""Choosing a release: highest match, pre-releases only when asked, yanked only when pinned."""

from __future__ import annotations

import pytest

from modelmesh_connectors import ResolutionError
from modelmesh_connectors.client.resolve import Candidate, choose
from modelmesh_connectors.package.requirements import (
    InvalidPackageSpec,
    RequirementSpec,
    parse_package_spec,
)

CANDIDATES = [
    Candidate("1.0.0", False, None),
    Candidate("1.1.0", True, "broken"),
    Candidate("1.2.0", False, None),
    Candidate("2.0.0rc1", False, None),
    Candidate("not a version", False, None),
]


def _req(text: str) -> RequirementSpec:
    spec = parse_package_spec(text)
    assert isinstance(spec, RequirementSpec)
    return spec


@pytest.mark.parametrize(
    ("text", "prereleases", "version", "warned"),
    [
        ("acme", False, "1.2.0", False),
        ("acme", True, "2.0.0rc1", False),
        ("acme>=2.0.0rc1", False, "2.0.0rc1", False),
        ("acme<1.2", False, "1.0.0", False),  # 1.1.0 is yanked
        ("acme==1.1.0", False, "1.1.0", True),  # exact pin takes a yanked version, warned
        ("acme==1.*", False, "1.2.0", False),
        ("acme~=1.0", False, "1.2.0", False),
    ],
)
def test_choose(text: str, prereleases: bool, version: str, warned: bool) -> None:
    choice = choose(_req(text), CANDIDATES, prereleases=prereleases)
    assert choice.candidate.version == version
    assert (choice.warning is not None) == warned
    if warned:
        assert "yanked: broken" in str(choice.warning)


def test_nothing_matches_lists_available_and_hints_prereleases() -> None:
    with pytest.raises(ResolutionError, match=r"available: 1.0.0, 1.1.0 \(yanked\), 1.2.0, 2.0.0rc1") as info:
        choose(_req("acme>=2"), CANDIDATES)
    assert info.value.hint is not None and "pre-releases" in info.value.hint
    with pytest.raises(ResolutionError, match="==1.1.1"):
        choose(_req("acme==1.1.1"), CANDIDATES)


@pytest.mark.parametrize("text", ["", "   ", "acme[x]", "acme; python_version<'3'", "acme @ https://x/y.zip", "ftp://x/y.zip", "acme>>1"])
def test_invalid_specs(text: str) -> None:
    with pytest.raises(InvalidPackageSpec):
        parse_package_spec(text)


def test_names_are_normalized() -> None:
    assert _req("Acme_Audit.Log>=1").name == "acme-audit-log"


VERSION_SETS = [
    ["1.0.0", "2.0.0rc1"],
    ["2.0.0rc1", "2.0.0.dev3"],  # only pre-releases
    ["1.0.0.post1", "1.0.0", "1!0.1.0", "3.0.0a1"],
    ["0.0.1.dev0"],
]


@pytest.mark.parametrize("versions", VERSION_SETS)
@pytest.mark.parametrize("prereleases", [False, True])
def test_a_bare_name_chooses_what_the_empty_specifier_set_would(
    versions: list[str], prereleases: bool
) -> None:
    """A bare name resolves without packaging.specifiers; same answer as SpecifierSet()."""
    from packaging.specifiers import SpecifierSet

    candidates = [Candidate(v, False, None) for v in versions]
    bare = _req("acme-audit-log")
    assert bare.any_version and bare.exact_version is None
    explicit = RequirementSpec("acme-audit-log", SpecifierSet(), "acme-audit-log")
    assert bare == explicit and hash(bare) == hash(explicit) and repr(bare) == repr(explicit)

    def outcome(req: RequirementSpec) -> str:
        try:
            return choose(req, candidates, prereleases=prereleases).candidate.version
        except ResolutionError as e:
            return f"refused: {e}"

    # The explicit set goes through SpecifierSet.contains: the reference answer.
    reference = RequirementSpec("acme-audit-log", SpecifierSet(">=0"), "acme-audit-log>=0")
    assert not reference.any_version
    assert outcome(_req("acme-audit-log")) == outcome(reference).replace("'acme-audit-log>=0'", "'acme-audit-log'")
