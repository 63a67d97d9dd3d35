"""What one ``connectors.packages`` entry asks for: a local path, a URL, or a requirement."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urlsplit

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors._internal.redact import redact_text, redact_url
from modelmesh_connectors.errors import InvalidInput
from modelmesh_connectors.package.manifest import is_normalized_name

__all__ = [
    "InvalidPackageSpec",
    "LocalSpec",
    "PackageSpec",
    "RequirementSpec",
    "UrlSpec",
    "parse_package_spec",
]

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

_HEX64 = re.compile(r"[0-9a-f]{64}")


class InvalidPackageSpec(InvalidInput):
    """A ``packages:`` entry is neither a path, a URL nor a valid requirement."""

    code = "input.package-spec"


class LocalSpec(Frozen):
    """A package directory or ``.zip`` on local disk."""

    __slots__ = ("path",)

    path: Path

    def __init__(self, path: Path) -> None:
        object.__setattr__(self, "path", path)


class UrlSpec(Frozen):
    """An archive URL, optionally pinned with ``#sha256=<hex>``."""

    __slots__ = ("sha256", "url")

    url: str
    sha256: str | None

    def __init__(self, url: str, sha256: str | None) -> None:
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "sha256", sha256)


class RequirementSpec(Frozen):
    """A requirement resolved against the index: ``name`` + PEP 440 specifier."""

    __slots__ = ("_specifier", "name", "text")
    _hidden = frozenset({"_specifier"})

    name: str
    _specifier: SpecifierSet | None
    text: str

    def __init__(self, name: str, specifier: SpecifierSet | None, text: str) -> None:
        """``specifier`` None is "any version" (the empty set, built only when asked for)."""
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_specifier", specifier)
        object.__setattr__(self, "text", text)

    @property
    def specifier(self) -> SpecifierSet:
        """The PEP 440 specifier set (empty: any version)."""
        spec = self._specifier
        if spec is None:
            # Here, not at the top: a bare name (the common entry) never needs
            # packaging.specifiers to be resolved (~2 ms of a start-up).
            from packaging.specifiers import SpecifierSet

            spec = SpecifierSet()
            object.__setattr__(self, "_specifier", spec)
        return spec

    @property
    def any_version(self) -> bool:
        """True when no version constraint is given (a bare name)."""
        return self._specifier is None or not len(self._specifier)

    @property
    def exact_version(self) -> str | None:
        """The version when the requirement pins exactly one (``==1.2.0``), else None."""
        if self._specifier is None:
            return None
        specs = list(self._specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            return specs[0].version
        return None


# ==, hash and repr over (name, specifier, text), as the dataclass had: the property builds
# the empty set for a bare name, so both spellings of "any version" compare equal.
RequirementSpec._set_fields(("name", "specifier", "text"))

PackageSpec = LocalSpec | UrlSpec | RequirementSpec


def parse_package_spec(value: object, *, base_dir: Path | None = None) -> PackageSpec:
    """Classify and validate one entry.

    Args:
        value: The entry as written in the config.
        base_dir: Directory relative paths are resolved against (the config file's).

    Returns:
        The parsed spec.

    Raises:
        InvalidPackageSpec: saying what was seen and what forms are accepted.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidPackageSpec(f"package entry must be a non-empty string, got {value!r}")
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith(("https://", "http://")):
        try:
            url, fragment = urldefrag(text)
            urlsplit(url).port  # noqa: B018 - validates host and port syntax
        except ValueError as exc:
            raise InvalidPackageSpec(
                f"{redact_url(text)[:200]!r} is not a valid URL: {redact_text(str(exc))}"
            ) from None
        sha: str | None = None
        if fragment:
            key, _, digest = fragment.partition("=")
            if key != "sha256" or not _HEX64.fullmatch(digest):
                raise InvalidPackageSpec(
                    f"{redact_url(text)!r}: URL fragment must be '#sha256=<64 lowercase hex>', got "
                    f"'#{fragment}'"
                )
            sha = digest
        return UrlSpec(url, sha)
    if "://" in text:
        # Not a URL as a whole ('name @ https://user:token@…', another scheme): the credential
        # may sit anywhere in the text, so free-text redaction too, not only the URL parser's.
        raise InvalidPackageSpec(
            f"{redact_text(redact_url(text))!r}: only https:// (or http:// to loopback) URLs "
            "are supported"
        )
    looks_like_path = (
        "/" in text or text.startswith(".") or lowered.endswith(".zip") or text.startswith("~")
    )
    if looks_like_path:
        try:
            path = Path(text).expanduser()
        except (RuntimeError, ValueError) as exc:  # ~unknown-user, NUL in the user name
            raise InvalidPackageSpec(f"{text!r}: cannot expand the home directory: {exc}") from exc
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return LocalSpec(path)
    if is_normalized_name(text):
        # A bare normalized name (the common entry) is the requirement "any version of it":
        # what the PEP 508 parser returns for it, without importing or running that parser.
        return RequirementSpec(text, None, text)
    # Here, not at the top: the PEP 508 parser (markers, tags, platform, subprocess) costs a
    # start-up ~14 ms, and a configuration of bare names never needs it.
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise InvalidPackageSpec(
            f"{text!r} is not a path, an https:// URL, or a PEP 440 requirement "
            f"(name, name==1.2.0, name>=1.1,<2): {exc}"
        ) from exc
    if req.extras or req.url or req.marker:
        raise InvalidPackageSpec(f"{text!r}: extras, markers and direct URLs are not supported")
    name = canonicalize_name(req.name)
    if not is_normalized_name(name):
        raise InvalidPackageSpec(f"{text!r}: {req.name!r} is not a valid package name")
    return RequirementSpec(name, req.specifier, text)
