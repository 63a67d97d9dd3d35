"""How every command prints: one result (text or ``--json``), notes, and download progress.

``-q`` and ``-v`` stack into one verbosity: ``-q`` hides notes and progress, ``-qq`` also the
text result (errors always print); ``-v`` names the chosen configuration and shows tracebacks
and info logs, ``-vv`` debug logs. ``--json`` prints exactly one JSON document on stdout —
the result, or ``{"error": {...}}`` — and never progress.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from modelmesh_connectors._internal.redact import redact_text

__all__ = ["ProgressCallback", "emit", "info", "note", "progress_for", "verbosity", "wants_json"]

ProgressCallback = Callable[[str, int, int], None]


def verbosity(args: argparse.Namespace) -> int:
    """``-v`` count minus ``-q`` count (0: normal)."""
    return int(getattr(args, "verbosity", 0))


def wants_json(args: argparse.Namespace) -> bool:
    """Whether the command was asked for ``--json``."""
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, data: Any, text: str | Iterable[str]) -> None:
    """Print a command's result: ``data`` as JSON with ``--json``, else the text lines.

    Args:
        args: The parsed command line.
        data: The JSON-serialisable result.
        text: The human form (one string or lines); hidden by ``-qq``.
    """
    if wants_json(args):
        print(json.dumps(data, indent=2))
        return
    if verbosity(args) <= -2:
        return
    lines = [text] if isinstance(text, str) else list(text)
    for line in lines:
        print(line)


def note(args: argparse.Namespace, message: str) -> None:
    """An informational line on stderr (hidden by ``-q``)."""
    if verbosity(args) >= 0:
        print(f"note: {redact_text(message)}", file=sys.stderr)


def info(args: argparse.Namespace, message: str) -> None:
    """A line shown only with ``-v`` (on stderr)."""
    if verbosity(args) >= 1:
        print(redact_text(message), file=sys.stderr)


def progress_for(args: argparse.Namespace) -> _LazyProgress | None:
    """A download progress display, or None when nothing should be drawn.

    Drawn only on a terminal (stderr), never with ``--json`` or ``-q``. The progress library
    is imported on the first byte downloaded, not before: a warm start that downloads
    nothing never imports it.
    """
    if wants_json(args) or verbosity(args) < 0 or not sys.stderr.isatty():
        return None
    return _LazyProgress()


class _LazyProgress:
    """Forwards progress callbacks to :class:`~.progress.DownloadProgress`, made on first use."""

    def __init__(self) -> None:
        self._display: Any = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if self._display is None:
            from modelmesh_connectors.cli.progress import DownloadProgress

            self._display = DownloadProgress()
        self._display(label, done, total)

    def __enter__(self) -> _LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        # Also on Ctrl-C: the display ends its line before "interrupted" is printed.
        if self._display is not None:
            self._display.close()
