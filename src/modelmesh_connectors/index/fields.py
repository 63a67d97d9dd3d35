"""The strict field reader of index metadata, and its time format (FORMAT.md §3).

:class:`FieldReader` reads one field at a time and raises a
:class:`MetadataError` naming the file kind and the field: exact key sets, checked types (a
bool is not an int), fixed-length lowercase hex, positive integers and ``Z`` timestamps. A
lenient reader would let two clients read one signed file two ways. Pure: no I/O, no clock.
"""

from __future__ import annotations

__all__ = [
    "SPEC_VERSION",
    "FieldReader",
    "MetadataError",
    "format_time",
    "load_payload",
    "parse_time",
    "utc_seconds",
]

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from modelmesh_connectors.errors import TrustError
from modelmesh_connectors.index.envelope import JSONFormatError, strict_json
from modelmesh_connectors.index.layout import MetaRef

SPEC_VERSION = 1
_HEX_RE = re.compile(r"[0-9a-f]*")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_MAX_TEXT_LEN = 1000  # characters of a free-text field (requires_modelmesh, yanked_reason)


class MetadataError(TrustError):
    """Signed (or hash-pinned) metadata is malformed: a field is missing, extra or invalid."""

    code = "trust.metadata"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 UTC time with ``Z`` and whole seconds.

    Args:
        text: e.g. ``"2027-11-25T00:00:00Z"``.

    Returns:
        An aware UTC datetime.

    Raises:
        ValueError: Any other spelling.
    """
    if not _TIME_RE.fullmatch(text):
        raise ValueError(f"expected YYYY-MM-DDTHH:MM:SSZ, got {text!r:.80}")
    # The pattern fixed every field's position: the datetime constructor checks the ranges
    # (month, day of that month, hour, minute, second), as strptime did, without importing
    # _strptime (and calendar, locale) into every client start.
    try:
        return datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            tzinfo=UTC,
        )
    except ValueError as e:  # e.g. month 13, February 30
        raise ValueError(f"date or time out of range in {text!r:.80}: {e}") from e


def format_time(when: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC ``Z`` with whole seconds (truncating)."""
    t = utc_seconds(when)
    # Not strftime("%Y"): glibc does not zero-pad years below 1000, and parse_time needs 4 digits.
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def utc_seconds(when: datetime) -> datetime:
    """``when`` in UTC with whole seconds.

    Raises:
        ValueError: ``when`` is naive.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {when!r}")
    return when.astimezone(UTC).replace(microsecond=0)


class FieldReader:
    """Reads fields of one file kind, raising MetadataError that names kind and field."""

    def __init__(self, what: str) -> None:
        self.what = what

    def fail(self, field: str, problem: str) -> MetadataError:
        return MetadataError(f"{self.what}: {field}: {problem}")

    def obj(
        self,
        value: Any,
        field: str,
        required: frozenset[str],
        optional: frozenset[str] = frozenset(),
    ) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, f"expected an object, got {_type(value)}")
        keys = set(value)
        missing = required - keys
        extra = keys - required - optional
        if missing:
            raise self.fail(field, f"missing field(s) {sorted(missing)}")
        if extra:
            raise self.fail(field, f"unknown field(s) {sorted(map(str, extra))}")
        return value

    def mapping(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, f"expected an object, got {_type(value)}")
        return value

    def array(self, value: Any, field: str, *, nonempty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {_type(value)}")
        if nonempty and not value:
            raise self.fail(field, "expected a non-empty list, got []")
        return value

    def integer(self, value: Any, field: str, minimum: int = 1) -> int:
        # bool is an int subclass in Python: true must not be read as version 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(field, f"expected an integer, got {_type(value)}")
        if value < minimum:
            raise self.fail(field, f"expected an integer >= {minimum}, got {value}")
        return value

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, f"expected true or false, got {_type(value)}")
        return value

    def text(
        self,
        value: Any,
        field: str,
        pattern: re.Pattern[str] | None = None,
        max_len: int = _MAX_TEXT_LEN,
        describe: str = "a string",
    ) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"expected {describe}, got {_type(value)}")
        if not value or len(value) > max_len:
            raise self.fail(
                field, f"expected {describe} of 1 to {max_len} characters, got {value!r:.80}"
            )
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(field, f"expected {describe}, got {value!r:.80}")
        if pattern is None and not value.isprintable():
            raise self.fail(field, f"expected printable text, got {value!r:.80}")
        return value

    def prefix(self, value: Any, field: str, lengths: frozenset[int]) -> str:
        # Unlike text(), the empty string is a valid prefix (a single group or bin).
        shown = " or ".join(str(n) for n in sorted(lengths))
        if not isinstance(value, str) or len(value) not in lengths or not _HEX_RE.fullmatch(value):
            raise self.fail(
                field, f"expected a prefix of {shown} lowercase hex characters, got {value!r:.80}"
            )
        return value

    def hex64(self, value: Any, field: str) -> str:
        return self.text(value, field, _HEX64_RE, 64, "64 lowercase hex characters")

    def time(self, value: Any, field: str) -> datetime:
        text = self.text(
            value, field, _TIME_RE, 20, "an RFC 3339 UTC time like 2027-01-01T00:00:00Z"
        )
        try:
            return parse_time(text)
        except ValueError as e:  # e.g. month 13
            raise self.fail(field, f"expected a valid date and time, got {text!r}: {e}") from e

    def spec(self, obj: Mapping[str, Any]) -> None:
        spec = self.integer(obj["spec"], "spec")
        if spec != SPEC_VERSION:
            raise self.fail("spec", f"expected spec version {SPEC_VERSION}, got {spec}")

    def meta_ref(self, value: Any, field: str) -> MetaRef:
        obj = self.obj(value, field, frozenset({"sha256", "length"}))
        return MetaRef(
            sha256=self.hex64(obj["sha256"], f"{field}.sha256"),
            length=self.integer(obj["length"], f"{field}.length"),
        )


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    return type(value).__name__


def load_payload(payload: bytes, what: str, kind: str) -> Mapping[str, Any]:
    try:
        obj = strict_json(payload)
    except JSONFormatError as e:
        raise MetadataError(f"{what}: {e.message}") from e
    if not isinstance(obj, Mapping):
        raise MetadataError(f"{what}: expected a JSON object, got {_type(obj)}")
    # The kind is checked first so a file of another kind gets a clear message.
    if obj.get("type") != kind:
        raise MetadataError(f"{what}: type: expected {kind!r}, got {obj.get('type')!r:.80}")
    return obj
