"""Which release an entry names: bind a verified release to the file name the entry used.

A detached ``.sig`` proves that trusted keys signed *some* release. It does not prove that it
is the release the configuration asked for: a server that may put any signed file at an
entry's URL could otherwise serve an older, vulnerable version (downgrade), a yanked one, or
another package entirely (substitution) under ``…/acme-audit-log-2.0.0.zip``. A signed
release's ``file`` is always ``archives/<name>/<name>-<version>.zip`` (FORMAT.md §3), so
requiring its last segment to equal the file name the entry names binds name and version too.

File names are compared after strict percent-decoding, and anything a server or proxy could
read in more than one way is refused rather than guessed: an encoded ``/`` or ``\\``, an
encoded ``%`` (double decoding), dot segments, control characters, invalid UTF-8, a query
string, and any character outside the archive name alphabet.

Pure: strings in, a value or a typed error out; no I/O.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from packaging.version import InvalidVersion, Version

from modelmesh_connectors._internal.redact import redact_url
from modelmesh_connectors.errors import PolicyError
from modelmesh_connectors.index.metadata import Release

__all__ = ["bind_release", "url_file_name", "url_is_under"]

# Names are [a-z0-9-], versions [0-9A-Za-z.+!_-] (FORMAT.md §3): the archive name alphabet.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]*")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a '%' not followed by two hex digits
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")  # C0 controls and DEL, raw in the URL
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _refuse(url: str, why: str) -> PolicyError:
    return PolicyError(
        f"{redact_url(url)[:200]}: refusing an archive URL whose path is ambiguous: {why}",
        hint="write the URL's path plainly, e.g. https://host/dir/<name>-<version>.zip",
    )


def _decoded_segments(url: str, path: str) -> list[str]:
    """The path's segments, each strictly percent-decoded and checked for ambiguity."""
    out: list[str] = []
    for raw in path.split("/")[1:]:
        if _ESCAPE.search(raw):
            raise _refuse(url, f"malformed percent-escape in segment {raw[:80]!r}")
        try:
            segment = unquote(raw, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _refuse(url, f"segment {raw[:80]!r} is not valid UTF-8") from None
        if segment in (".", ".."):
            # Servers and proxies disagree on whether (encoded) dot segments are resolved.
            raise _refuse(url, f"dot segment {raw!r}")
        bad = next((c for c in segment if c in "/\\%" or ord(c) < 0x20 or ord(c) == 0x7F), None)
        if bad is not None:
            # An encoded '/' or '\\' is a separator to some servers and not to others; an
            # encoded '%' decodes again somewhere (double decoding).
            raise _refuse(url, f"segment {raw[:80]!r} encodes {bad!r}")
        out.append(segment)
    return out


def url_file_name(url: str) -> str:
    """The archive file name an ``https://`` entry names: its last path segment, decoded.

    Args:
        url: The entry's URL, without the ``#sha256=`` fragment.

    Returns:
        The decoded last path segment, e.g. ``acme-audit-log-2.0.0.zip``.

    Raises:
        PolicyError: the path can be read in more than one way (see the module docstring),
            has a query string, ends with ``/``, or the file name uses characters outside
            the archive name alphabet.
    """
    control = _CONTROL_CHARACTER.search(url)
    if control is not None:
        # urlsplit deletes tab, CR and LF (WHATWG), so 'a-1.0.z\nip' would name 'a-1.0.zip'
        # here while another reader (a proxy, the TypeScript client) reads other bytes.
        raise _refuse(url, f"it contains the control character {control.group()!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _refuse(url, str(exc)) from exc
    if "?" in url or parts.query:
        # The detached signature lives at '<url>.sig'; with a query that is no file name.
        raise _refuse(url, "it has a query string")
    segments = _decoded_segments(url, parts.path)
    name = segments[-1] if segments else ""
    if not _FILE_NAME.fullmatch(name):
        raise _refuse(
            url,
            f"its file name {name[:80]!r} is not a plain archive name "
            "([A-Za-z0-9.+!_-], like <name>-<version>.zip)",
        )
    return name


def bind_release(release: Release, file_name: str, *, where: str) -> None:
    """The verified release must be the one ``file_name`` names.

    A file name states one name and version only because versions are normalized PEP 440
    (no ``-``, as every manifest's must be): ``a-b-1.0.zip`` is ``a-b`` 1.0, never ``a``
    ``b-1.0``. So the version is what follows the last ``-``.

    Args:
        release: The release whose signature verified.
        file_name: The file name the entry used (from :func:`url_file_name`, or a local
            zip's name).
        where: The entry, for the message.

    Raises:
        PolicyError: the signed file name differs, the release's version is not a
            normalized PEP 440 version, or the name and version the release states are
            not the ones the file name states.
    """
    signed = PurePosixPath(release.file).name
    stem = file_name[: -len(".zip")] if file_name.endswith(".zip") else ""
    stated_name, _, stated_version = stem.rpartition("-")
    try:
        normalized = str(Version(release.version))
    except InvalidVersion:
        normalized = None
    if normalized != release.version:
        raise PolicyError(
            f"{where}: the signed release {release.name} {release.version!r} has no normalized "
            "PEP 440 version, so no file name can state its name and version unambiguously"
        )
    if file_name != signed or (stated_name, stated_version) != (release.name, release.version):
        raise PolicyError(
            f"{where}: the entry names {file_name!r} ({stated_name or '?'} "
            f"{stated_version or '?'}) but the signature there is for {release.name} "
            f"{release.version} ({signed!r}); a signed release served under another "
            "release's name (downgrade or substitution) is refused",
            hint="use the URL of the release you mean, or load it by requirement from the index",
        )


def url_is_under(url: str, base: str) -> bool:
    """Whether ``url`` points into the directory ``base`` (an index mirror or bundle URL).

    Scheme and host compare case-insensitively, a default port equals its absence, and the
    paths compare segment by segment after decoding (``url`` must already have passed
    :func:`url_file_name`, so it holds no dot segment or encoded separator).

    Args:
        url: The entry's URL.
        base: The index base URL (ends with ``/``).

    Returns:
        True when ``url`` lies at or below ``base``.
    """
    try:
        u, b = urlsplit(url), urlsplit(base)
        u_port = u.port or _DEFAULT_PORTS.get(u.scheme.lower())
        b_port = b.port or _DEFAULT_PORTS.get(b.scheme.lower())
    except ValueError:
        return False
    if (u.scheme.lower(), (u.hostname or "").lower(), u_port) != (
        b.scheme.lower(),
        (b.hostname or "").lower(),
        b_port,
    ):
        return False
    base_segments = [unquote(s) for s in b.path.split("/")[1:] if s]
    url_segments = [unquote(s) for s in u.path.split("/")[1:]]
    return url_segments[: len(base_segments)] == base_segments
