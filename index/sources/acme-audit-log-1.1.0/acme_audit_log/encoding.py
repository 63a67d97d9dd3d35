"""Turn ModelMesh's observability records (dataclasses, enums, datetimes …) into JSON values.

The result always serialises with ``json.dumps(..., allow_nan=False)``: nothing here
raises on odd input, because an audit sink must never break the request it observes.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import TypeAlias
from uuid import UUID

__all__ = ["JSONValue", "to_jsonable"]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

_MAX_DEPTH = 32  # nesting levels; deeper (or cyclic) structures are cut with a marker


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, Enum):
        return str(key.value)
    return str(key)


def to_jsonable(value: object, _depth: int = 0) -> JSONValue:
    """Convert *value* to plain JSON data.

    Enums become their value, dates and times ISO 8601 strings, timedeltas seconds,
    dataclasses objects of their fields, mappings objects with string keys, sequences
    and sets lists (sets sorted), bytes ``{"base64": …}``, exceptions
    ``{"type": …, "message": …}``, non-finite floats strings (``"nan"``, ``"inf"``),
    anything else its ``repr``.

    Args:
        value: Any object.

    Returns:
        Data made only of ``None``, bools, ints, finite floats, strings, lists and
        string-keyed dicts.
    """
    if _depth > _MAX_DEPTH:
        return "<max depth>"
    down = _depth + 1
    if isinstance(value, Enum):  # before str/int: StrEnum and IntEnum are those too
        return to_jsonable(value.value, down)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: to_jsonable(getattr(value, f.name), down) for f in fields}
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v, down) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item, down) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(item, down) for item in value), key=repr)
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    return repr(value)
