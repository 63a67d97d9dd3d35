"""Choosing a release for a requirement (pure: no I/O, no trust decisions)."""

from __future__ import annotations

from collections.abc import Sequence

from packaging.version import InvalidVersion, Version

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.client.updater import Mirror
from modelmesh_connectors.errors import ResolutionError
from modelmesh_connectors.index.metadata import Release
from modelmesh_connectors.package.origin import Origin
from modelmesh_connectors.package.requirements import PackageSpec, RequirementSpec

__all__ = ["Candidate", "Choice", "ResolvedArchive", "choose"]


class Candidate(Frozen):
    """A published version as the index lists it."""

    __slots__ = ("version", "yanked", "yanked_reason")

    version: str
    yanked: bool
    yanked_reason: str | None

    def __init__(self, version: str, yanked: bool, yanked_reason: str | None) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "yanked", yanked)
        object.__setattr__(self, "yanked_reason", yanked_reason)


class Choice(Frozen):
    """The chosen candidate plus any warning the user must see."""

    __slots__ = ("candidate", "warning")

    candidate: Candidate
    warning: str | None

    def __init__(self, candidate: Candidate, warning: str | None) -> None:
        object.__setattr__(self, "candidate", candidate)
        object.__setattr__(self, "warning", warning)


def choose(
    requirement: RequirementSpec, candidates: Sequence[Candidate], *, prereleases: bool = False
) -> Choice:
    """Pick the highest version that satisfies ``requirement``.

    Pre-releases count only when asked (``prereleases`` or a specifier that names one).
    Yanked versions count only when the requirement pins exactly that version, and then
    with a warning — a yank means "do not pick this by accident", not "never".

    Args:
        requirement: What the user asked for.
        candidates: Versions the index lists for the package.
        prereleases: Allow pre-releases in general.

    Returns:
        The choice.

    Raises:
        ResolutionError: nothing satisfies the requirement; lists what is available.
    """
    exact = requirement.exact_version
    any_version = requirement.any_version
    allow_pre = prereleases or (not any_version and bool(requirement.specifier.prereleases))
    parsed: list[tuple[Version, Candidate]] = []
    for cand in candidates:
        try:
            parsed.append((Version(cand.version), cand))
        except InvalidVersion:
            continue  # a malformed entry can never be chosen; the audit reports it
    matching: list[tuple[Version, Candidate]] = []
    for version, cand in parsed:
        if any_version:
            # The empty specifier set: every version, pre-releases only when allowed —
            # what SpecifierSet().contains answers, without importing packaging.specifiers.
            if version.is_prerelease and not allow_pre:
                continue
        elif not requirement.specifier.contains(
            version, prereleases=allow_pre or exact is not None
        ):
            continue
        if cand.yanked and (exact is None or Version(exact) != version):
            continue
        matching.append((version, cand))
    if not matching:
        available = (
            ", ".join(f"{c.version}{' (yanked)' if c.yanked else ''}" for _, c in sorted(parsed))
            or "none"
        )
        hint = None
        if any(v.is_prerelease for v, _ in parsed) and not allow_pre:
            hint = "pre-releases are only chosen when asked for (prereleases: true)"
        raise ResolutionError(
            f"no release of {requirement.name} satisfies {requirement.text!r}; "
            f"available: {available}",
            hint=hint,
        )
    version, cand = max(matching, key=lambda item: item[0])
    warning = None
    if cand.yanked:
        reason = f": {cand.yanked_reason}" if cand.yanked_reason else ""
        warning = (
            f"{requirement.name} {cand.version} is yanked{reason} (used because pinned exactly)"
        )
    return Choice(cand, warning)


class ResolvedArchive(Frozen):
    """An archive chosen for one entry, verified or about to be.

    Attributes:
        spec: The entry it answers.
        name: Package name.
        version: Package version.
        sha256: Signed (or pinned) sha256 of the archive.
        length: Signed length in bytes (None only for a pin-only URL).
        urls: Where to fetch it, in order (mirrors).
        release: The verified release attestation, if signed.
        signed_by: Key IDs with a valid signature on the release.
        source: Human description of where it came from (index URL or archive URL).
    """

    __slots__ = (
        "length",
        "name",
        "release",
        "sha256",
        "signed_by",
        "source",
        "spec",
        "urls",
        "version",
    )

    spec: PackageSpec
    name: str
    version: str
    sha256: str
    length: int | None
    urls: tuple[tuple[str, Mirror], ...]
    release: Release | None
    signed_by: tuple[str, ...]
    source: str

    def __init__(
        self,
        spec: PackageSpec,
        name: str,
        version: str,
        sha256: str,
        length: int | None,
        urls: tuple[tuple[str, Mirror], ...],
        release: Release | None,
        signed_by: tuple[str, ...],
        source: str,
    ) -> None:
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "urls", urls)
        object.__setattr__(self, "release", release)
        object.__setattr__(self, "signed_by", signed_by)
        object.__setattr__(self, "source", source)

    @property
    def origin(self) -> Origin:
        """The registry origin for packages loaded from this archive."""
        return Origin("package", f"{self.name}@{self.version} from {self.source}", self.signed_by)
