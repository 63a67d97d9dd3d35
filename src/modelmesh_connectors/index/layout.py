"""Where things live in an index (FORMAT.md §2, §3): paths and the sharding rules.

A package's group and bin are prefixes of the SHA-256 of its normalized name; a node or the
index top lives content-addressed under ``meta/<sha256>.json``; an archive under
``archives/<name>/<name>-<version>.zip``. Pure: no I/O, no clock. The publisher places files
by these rules and the client finds them by the same ones.
"""

from __future__ import annotations

__all__ = [
    "MAX_NAME_LEN",
    "NAME_RE",
    "PREFIX_LENGTHS",
    "SHARDING_LEVELS",
    "InvalidNameError",
    "MetaRef",
    "archive_path",
    "bin_prefix",
    "group_prefix",
    "name_hash",
]

import functools
import hashlib
import re
from typing import Any

from modelmesh_connectors._internal.record import Frozen
from modelmesh_connectors.errors import InvalidInput

# (group_chars, bin_chars) pairs an index top may declare (FORMAT.md §3 fan-out): one
# group and one bin; one group of 256 bins; 256 groups of 256 bins each.
SHARDING_LEVELS = ((0, 0), (0, 2), (2, 4))
PREFIX_LENGTHS = frozenset(n for level in SHARDING_LEVELS for n in level)  # hex characters
NAME_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # a normalized package name
MAX_NAME_LEN = 200  # characters


class InvalidNameError(InvalidInput):
    """A package name is not normalized (``[a-z0-9]+(-[a-z0-9]+)*``)."""

    code = "input.package-name"


def name_hash(name: str) -> str:
    """Hex SHA-256 of a normalized package name: the path to its bin.

    Args:
        name: Normalized package name.

    Returns:
        64 lowercase hex characters.

    Raises:
        InvalidNameError: ``name`` is not normalized (hashing it would be ambiguous).
    """
    if not isinstance(name, str):
        raise _invalid_name(name)
    return _name_hash(name)


# A resolve asks for the same name's hash several times (group, bin, the bin's own check):
# answers are remembered (pure in the name; a refused name raises every time).
@functools.lru_cache(maxsize=4096)
def _name_hash(name: str) -> str:
    if len(name) > MAX_NAME_LEN or not NAME_RE.fullmatch(name):
        raise _invalid_name(name)
    return hashlib.sha256(name.encode("ascii")).hexdigest()


def _invalid_name(name: object) -> InvalidNameError:
    return InvalidNameError(
        f"package name: expected [a-z0-9]+(-[a-z0-9]+)* of at most {MAX_NAME_LEN} "
        f"characters, got {name!r:.80}"
    )


def group_prefix(name: str, chars: int) -> str:
    """Return the group prefix of a package name.

    Args:
        name: Normalized package name.
        chars: The index top's ``group_chars`` (hex characters of the prefix).

    Returns:
        The first ``chars`` hex characters of ``sha256(name)`` (``""`` when 0).

    Raises:
        InvalidNameError: ``name`` is not normalized.
    """
    return name_hash(name)[:chars]


def bin_prefix(name: str, chars: int) -> str:
    """Return the bin prefix of a package name.

    Args:
        name: Normalized package name.
        chars: The index top's ``bin_chars`` (hex characters of the prefix).

    Returns:
        The first ``chars`` hex characters of ``sha256(name)`` (``""`` when 0).

    Raises:
        InvalidNameError: ``name`` is not normalized.
    """
    return name_hash(name)[:chars]


def archive_path(name: str, version: str) -> str:
    """Return the index-relative path of a release archive.

    Args:
        name: Normalized package name.
        version: Release version.

    Returns:
        ``archives/<name>/<name>-<version>.zip``.
    """
    return f"archives/{name}/{name}-{version}.zip"


class MetaRef(Frozen):
    """A hash-and-length pin of one immutable file.

    Args:
        sha256: Lowercase hex SHA-256 of the file's exact bytes.
        length: Its size in bytes.
    """

    __slots__ = ("length", "sha256")

    sha256: str
    length: int

    def __init__(self, sha256: str, length: int) -> None:
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "length", length)

    @property
    def path(self) -> str:
        """The content-addressed path ``meta/<sha256>.json``."""
        return f"meta/{self.sha256}.json"

    def to_json_obj(self) -> dict[str, Any]:
        """Return ``{"sha256": ..., "length": ...}``."""
        return {"sha256": self.sha256, "length": self.length}

    @classmethod
    def of(cls, data: bytes) -> MetaRef:
        """Pin ``data``."""
        return cls(hashlib.sha256(data).hexdigest(), len(data))
