"""Run the command line in the test process, shaped like a finished subprocess.

A console-script run costs a fresh interpreter (~0.2 s of start-up, more under load); a test
that checks what a command prints or which exit status it returns needs none of that. This
runner calls ``modelmesh_connectors.cli.main`` with the arguments, the environment, the
working directory and an empty, non-terminal standard input a subprocess would have had, and
returns a :class:`subprocess.CompletedProcess`. What only a real process shows (the console
script's exit status, a terminal, Ctrl-C, what a fresh process imports, that no secret leaks
from a process) stays in subprocess tests.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from modelmesh_connectors.cli import main

__all__ = ["cli_env", "run_cli", "run_in_process"]

# Where modules of the interpreter, the venv and this checkout live: anything imported from
# elsewhere during a run (a connector package loaded from the cache) is dropped afterwards, as
# a process ending would drop it.
_KEEP = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
_REPO = str(Path(__file__).resolve().parents[2])


def _stays(module: object) -> bool:
    file = getattr(module, "__file__", None)
    if file is None:
        spec = getattr(module, "__spec__", None)
        return getattr(spec, "origin", None) in ("built-in", "frozen")
    resolved = str(Path(file).resolve())
    return resolved.startswith(_KEEP) or resolved.startswith(_REPO)


@contextlib.contextmanager
def _process_like(cwd: Path | None, environ: Mapping[str, str] | None) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_path = list(sys.meta_path)
    saved_modules = set(sys.modules)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        sys.meta_path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if not _stays(sys.modules.get(name)):
                sys.modules.pop(name, None)


def run_in_process(
    args: Sequence[object],
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``main(args)`` as a subprocess would run it; returns status, stdout and stderr.

    ``SystemExit`` (argparse's ``-h`` and usage errors) gives its code; an exception that
    escapes ``main`` prints its traceback to stderr and gives status 1, as the interpreter would.
    """
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    status: int
    with (
        _process_like(cwd, environ),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        contextlib.ExitStack() as stack,
    ):
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO("")  # like stdin=DEVNULL: empty, not a terminal
        stack.callback(setattr, sys, "stdin", saved_stdin)
        try:
            status = main(argv)
        except SystemExit as exc:
            if exc.code is None:
                status = 0
            elif isinstance(exc.code, int):
                status = exc.code
            else:
                print(exc.code, file=sys.stderr)
                status = 1
        except Exception:
            traceback.print_exc()
            status = 1
    return subprocess.CompletedProcess(["modelmesh-connectors", *argv], status, out.getvalue(), err.getvalue())


# Variables a developer's shell may set that would change what a command does under test.
_SCRUBBED = frozenset({"MODELMESH_CONFIG", "MODELMESH_KEY_PASSPHRASE", "MODELMESH_CONNECTORS_CACHE"})


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without :data:`_SCRUBBED`, plus ``extra``."""
    out = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    out.update(extra)
    return out


def run_cli(
    *args: object, cwd: Path | None = None, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``main(args)`` in this process, with a subprocess's environment, directory and stdin."""
    return run_in_process(args, cwd=cwd, environ=environ or cli_env())
