"""The property every fuzz test checks: only the project's typed errors come out.

:func:`run_parser` calls a parser and sorts the outcome: a value, or an error of the class
the parser documents. Anything else (a foreign exception, or a project error of another
class than documented) is re-raised unchanged, so hypothesis shrinks it and reports each
distinct bug separately. A bug found this way is fixed in ``src`` and gets a plain
regression test next to the code it covers (``tests/unit/test_<module>.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import currently_in_test_context, event

from modelmesh_connectors.errors import ConnectorError

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
    """

    value: T | None = None
    error: ConnectorError | None = None

    @property
    def accepted(self) -> bool:
        """True when the parser returned normally."""
        return self.error is None


def run_parser(
    target: str,
    expected: type[ConnectorError] | tuple[type[ConnectorError], ...],
    parser: Callable[..., T],
    *args: Any,
    **kwargs: Any,
) -> Outcome[T]:
    """Call ``parser`` and check that it returns or raises ``expected``.

    Args:
        target: Fuzz target name (labels the statistics events).
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
    note_event(f"{target}: accepted")
    return Outcome(value=value)
