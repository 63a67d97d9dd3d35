"""Value classes without ``@dataclass``: the same equality, hash, repr and immutability.

``@dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__`` (and, frozen,
``__setattr__``/``__delattr__``/``__hash__``) and compiles it with ``exec`` every time the
class is defined — in every process, since a ``.pyc`` cannot hold it. For the ~30 value
classes on the offline start path that was about a third of the start-up above
``import modelmesh`` (issue 14). A subclass here annotates its fields (in ``__init__``
order), lists them in ``__slots__`` and writes its own typed ``__init__``; the shared
methods below give it what the dataclass gave:

- ``==`` compares the fields as a tuple, only between instances of the same class
  (``NotImplemented`` otherwise), like ``@dataclass(eq=True)``;
- :class:`Frozen` refuses assignment and deletion (an :class:`AttributeError`, like
  ``dataclasses.FrozenInstanceError``) and hashes the field tuple, like
  ``@dataclass(frozen=True)``; :class:`Mutable` is unhashable, like ``eq=True`` without
  ``frozen``;
- ``repr`` is ``Name(field=value, ...)``.

A class that must keep a ``__dict__`` (code reads ``vars(config)``) leaves ``__slots__``
out; then every annotated name (``ClassVar`` aside) is a field. Names in ``_hidden``
(caches a class computes itself) are left out of all three, like
``field(init=False, repr=False, compare=False)``.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, TypeVar, dataclass_transform

__all__ = ["Frozen", "FrozenInstanceError", "Mutable", "replace"]


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen value (same role as the dataclass error)."""


class _Record:
    __slots__ = ()
    _hidden: ClassVar[frozenset[str]] = frozenset()

    _field_names: ClassVar[tuple[str, ...]] = ()
    _getter: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Field order is the order of the class's annotations (``__init__`` order), as in
        # a dataclass; ``__slots__`` may be listed in any order.
        # (not inspect.get_annotations: `inspect` is kept off the start path)
        names = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        slots = cls.__dict__.get("__slots__")
        if slots is None:  # a class with a __dict__: every annotated name is a field
            slots = tuple(n for n in names if not str(names[n]).startswith("ClassVar"))
        cls._set_fields(tuple(n for n in names if n in slots and n not in cls._hidden))

    @classmethod
    def _set_fields(cls, names: tuple[str, ...]) -> None:
        """Fix the fields ==, hash and repr use (at class creation only)."""
        cls._field_names = names
        if len(names) == 1:
            one = attrgetter(names[0])
            cls._getter = lambda value: (one(value),)
        else:  # attrgetter of several names returns their tuple (in C)
            cls._getter = attrgetter(*names) if names else lambda value: ()

    def _values(self) -> tuple[Any, ...]:
        return type(self)._getter(self)  # from the class: a lambda there is not bound

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._field_names)
        return f"{type(self).__qualname__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        # copy, deepcopy and pickle: rebuilt through __init__ (its checks and caches run
        # again), since their default reconstruction assigns attributes, which a Frozen
        # value refuses; a dataclass copied and pickled, so a record does too.
        return (_rebuild, (type(self), {name: getattr(self, name) for name in self._field_names}))


def _rebuild(cls: type[_Record], fields: dict[str, Any]) -> Any:
    return cls(**fields)


class Mutable(_Record):
    """A value with field equality, unhashable (``@dataclass`` with ``eq=True``)."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]


# For type checkers: fields of a Frozen subclass are read-only, as in a frozen dataclass
# (at run time this only sets an attribute).
@dataclass_transform(frozen_default=True)
class Frozen(_Record):
    """An immutable, hashable value (``@dataclass(frozen=True)``).

    ``__init__`` sets fields with ``object.__setattr__(self, name, value)``.
    """

    __slots__ = ()

    # Blocks rebinding a field after checks ran on it (a verified envelope, a pinned hash):
    # code holding a reference cannot swap what was verified for what was not.
    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())


_R = TypeVar("_R", bound=_Record)


def replace(value: _R, **changes: Any) -> _R:
    """A copy of ``value`` with some fields changed (``dataclasses.replace`` for records).

    The copy goes through the class's ``__init__``, so its checks and normalisation run again.

    Raises:
        TypeError: A name in ``changes`` is not a field.
    """
    unknown = changes.keys() - set(value._field_names)
    if unknown:
        raise TypeError(f"{type(value).__name__} has no field(s) {sorted(unknown)}")
    fields = {name: getattr(value, name) for name in value._field_names}
    return type(value)(**{**fields, **changes})
