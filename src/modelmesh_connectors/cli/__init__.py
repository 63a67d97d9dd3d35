"""The ``modelmesh-connectors`` command line: a thin shell over the library.

Each subcommand parses arguments, calls the library and prints. Errors from the library's
one tree are caught once here: one line with the message, one with the hint, exit status 1
(2 for usage errors); ``-v`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from modelmesh_connectors._internal.redact import redact_text
from modelmesh_connectors.cli import package_commands
from modelmesh_connectors.errors import ConnectorError

__all__ = ["build_parser", "main"]

_MODULES = [package_commands]


def _extend_modules() -> None:
    """Add command groups that exist (publisher and loader arrive as separate modules)."""
    import importlib

    for name in ("publish_commands", "loader_commands", "inbox_commands"):
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        if module not in _MODULES:
            _MODULES.append(module)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    _extend_modules()
    parser = argparse.ArgumentParser(
        prog="modelmesh-connectors",
        description="ModelMesh connector registry and signed package distribution.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show tracebacks and debug logs"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _MODULES:
        module.register(sub)
    return parser


class _RedactingFormatter(logging.Formatter):
    """Last line of defence: no log line shows URL user info, whoever logged it."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[handler]
    )
    try:
        status: int = args.handler(args)
    except ConnectorError as exc:
        if args.verbose:
            raise
        print(f"error: {redact_text(exc.message)}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {redact_text(exc.hint)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status
