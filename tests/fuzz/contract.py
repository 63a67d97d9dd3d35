"""The property every fuzz test checks: only the project's typed errors come out.

:func:`run_parser` calls a parser and sorts the outcome: a value, an error of the class
the parser documents, or a bug already reported in :mod:`tests.fuzz.known_bugs`. Anything
else (a foreign exception, or a project error of another class than documented) is
re-raised unchanged, so hypothesis shrinks it and reports each distinct bug separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import currently_in_test_context, event

from modelmesh_connectors.errors import ConnectorError
from tests.fuzz.known_bugs import match_known_bug

__all__ = ["Outcome", "note_event", "run_parser"]

T = TypeVar("T")


def note_event(text: str) -> None:
    """Record a statistics event when running under hypothesis (plain tests skip it)."""
    if currently_in_test_context():
        event(text)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one parser call did.

    Attributes:
        value: The return value when the input was accepted.
        error: The documented error when it was refused.
        known_bug: Key of the reported bug it ran into instead.
    """

    value: T | None = None
    error: ConnectorError | None = None
    known_bug: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the parser returned normally."""
        return self.error is None and self.known_bug is None


def run_parser(
    target: str,
    expected: type[ConnectorError] | tuple[type[ConnectorError], ...],
    parser: Callable[..., T],
    *args: Any,
    **kwargs: Any,
) -> Outcome[T]:
    """Call ``parser`` and check that it returns or raises ``expected``.

    Args:
        target: Fuzz target name (selects which known bugs may be stepped over).
        expected: The error class(es) the parser's docstring promises.
        parser: The callable under test.
        *args: Positional arguments for ``parser``.
        **kwargs: Keyword arguments for ``parser``.

    Returns:
        The outcome.

    Raises:
        Exception: whatever else ``parser`` raised, unchanged.
    """
    try:
        value = parser(*args, **kwargs)
    except expected as exc:
        note_event(f"{target}: refused with {type(exc).__name__}")
        return Outcome(error=exc)
    except Exception as exc:
        bug = match_known_bug(target, exc)
        if bug is None:
            raise
        note_event(f"{target}: known bug {bug.key}")
        return Outcome(known_bug=bug.key)
    note_event(f"{target}: accepted")
    return Outcome(value=value)
