"""Mask the values of chosen keys anywhere inside JSON data."""

from __future__ import annotations

from .encoding import JSONValue

__all__ = ["REDACTED", "redact"]

REDACTED = "[redacted]"


def redact(value: JSONValue, keys: frozenset[str]) -> JSONValue:
    """Return a copy of *value* with every non-null value under a key in *keys* masked.

    The whole value is replaced (a list of content parts becomes one marker), so no
    fragment of it survives; sibling keys such as ``role`` are kept.

    Args:
        value: JSON data, as made by :func:`~.encoding.to_jsonable`.
        keys: Lower-case keys to mask; object keys are compared lower-cased.

    Returns:
        The masked copy; *value* itself is not changed.
    """
    if isinstance(value, dict):
        return {
            key: REDACTED if key.lower() in keys and item is not None else redact(item, keys)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, keys) for item in value]
    return value
