"""The ``modelmesh-connectors`` command line: a thin shell over the library.

Each subcommand parses arguments, calls the library and prints (through
:mod:`~modelmesh_connectors.cli.output`). Errors from the library's one tree are caught once
here: one line with the message, one with the hint (or one JSON document with ``--json``),
and the exit status of :mod:`~modelmesh_connectors.cli.exit_codes`; ``-v`` also shows the
traceback. ``-v``/``-q`` are accepted before or after any command word and stack.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from modelmesh_connectors._internal.redact import redact_text
from modelmesh_connectors.cli import completion_commands, package_commands
from modelmesh_connectors.cli.exit_codes import ExitCode, exit_code_for
from modelmesh_connectors.cli.help_text import EXAMPLES, MAIN_EPILOG, HelpFormatter
from modelmesh_connectors.errors import ConnectorError

__all__ = ["build_parser", "main", "version_text"]

_MODULES = [package_commands]
_PROG = "modelmesh-connectors"
_VERBOSITY = "_verbosity_"  # one attribute per parser level: a sub-parser cannot reset a count
_NO_JSON = frozenset({"completion"})  # commands whose output is not a report
# Set while parsing: usage errors of a command line that asked for --json are JSON too.
_json_errors: contextvars.ContextVar[bool] = contextvars.ContextVar("json_errors", default=False)


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
    if completion_commands not in _MODULES:
        _MODULES.append(completion_commands)


def version_text() -> str:
    """``modelmesh-connectors X (modelmesh-lite Y, Python Z)``."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    python = ".".join(map(str, sys.version_info[:3]))
    return (
        f"{_PROG} {installed('modelmesh-connectors')} "
        f"(modelmesh-lite {installed('modelmesh-lite')}, Python {python})"
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are JSON when ``--json`` was asked for."""

    def error(self, message: str) -> NoReturn:
        if _json_errors.get():
            _print_json_error("UsageError", f"{self.prog}: {message}", f"run '{self.prog} -h'")
            sys.exit(ExitCode.USAGE)
        super().error(message)


class _Version(argparse.Action):
    """``--version``: the text is looked up only when asked for (importlib.metadata is not
    free, and every other command line would pay for it)."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        print(version_text())
        parser.exit()


class _Count(argparse.Action):
    """``-v`` adds one, ``-q`` takes one away; absent unless given (a sub-parser's copy
    must not overwrite what was counted before the command word)."""

    def __init__(self, option_strings: list[str], dest: str, step: int, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)
        self.step = step

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, getattr(namespace, self.dest, 0) + self.step)


def _add_global(parser: argparse.ArgumentParser, depth: int) -> None:
    dest = f"{_VERBOSITY}{depth}"
    parser.add_argument(
        "-v",
        "--verbose",
        action=_Count,
        step=1,
        dest=dest,
        help="more output: name the configuration used, tracebacks; -vv: debug logs",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action=_Count,
        step=-1,
        dest=dest,
        help="less output: no notes or progress; -qq: no result either (errors still print)",
    )


def _finish(parser: argparse.ArgumentParser, path: tuple[str, ...], depth: int) -> None:
    """Give every sub-parser the global options, the formatter, examples and ``--json``."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            child_path = (*path, name)
            child.formatter_class = HelpFormatter
            key = " ".join(child_path)
            if child.epilog is None and key in EXAMPLES:
                child.epilog = EXAMPLES[key]
            _add_global(child, depth + 1)
            has_sub = any(isinstance(a, argparse._SubParsersAction) for a in child._actions)
            if (
                not has_sub
                and child_path[0] not in _NO_JSON
                and "--json" not in child._option_string_actions
            ):
                child.add_argument(
                    "--json",
                    action="store_true",
                    help='print one JSON document (errors too: {"error": {...}})',
                )
            _finish(child, child_path, depth + 1)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    _extend_modules()
    parser = _Parser(
        prog=_PROG,
        description="ModelMesh connector registry and signed package distribution.",
        epilog=MAIN_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    _add_global(parser, 0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _MODULES:
        module.register(sub)
    _finish(parser, (), 0)
    # The completion command describes the whole parser; handed down, not imported back.
    parser.set_defaults(root_parser=parser)
    return parser


class _RedactingFormatter(logging.Formatter):
    """Last line of defence: no log line shows URL user info, whoever logged it."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def _print_json_error(kind: str, message: str, hint: str | None, code: str | None = None) -> None:
    error: dict[str, Any] = {"type": kind, "message": redact_text(message)}
    error["hint"] = redact_text(hint) if hint else None
    if code is not None:
        error["code"] = code
    print(json.dumps({"error": error}, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    wants_json = (
        "--json" in arguments[: arguments.index("--")]
        if "--" in arguments
        else ("--json" in arguments)
    )
    token = _json_errors.set(wants_json)
    try:
        parser = build_parser()
        args = parser.parse_args(arguments)
    finally:
        _json_errors.reset(token)
    level = sum(v for k, v in vars(args).items() if k.startswith(_VERBOSITY))
    args.verbosity = level
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level={-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
            max(-1, min(level, 2)), logging.DEBUG
        ),
        handlers=[handler],
        force=True,
    )
    as_json = bool(getattr(args, "json", False))
    try:
        status: int = args.handler(args)
    except ConnectorError as exc:
        if level >= 1:
            traceback.print_exc()
        code = exit_code_for(exc)
        if as_json:
            _print_json_error(type(exc).__name__, exc.message, exc.hint, getattr(exc, "code", None))
        else:
            print(f"error: {redact_text(exc.message)}", file=sys.stderr)
            if exc.hint:
                print(f"hint: {redact_text(exc.hint)}", file=sys.stderr)
        return int(code)
    except KeyboardInterrupt:
        # Progress displays end their line on the way out; this starts on a fresh one.
        if as_json:
            _print_json_error("KeyboardInterrupt", "interrupted", None)
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    return status
