"""CLI: ``completion bash|zsh`` — a shell completion script generated from the parser (shtab)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]

_SHELLS = ("bash", "zsh")


def register(sub: Any) -> None:
    """Add this module's subcommands to the parser."""
    p = sub.add_parser(
        "completion",
        help="print a shell completion script",
        epilog="examples:\n"
        "  modelmesh-connectors completion bash > "
        "~/.local/share/bash-completion/completions/modelmesh-connectors\n"
        '  modelmesh-connectors completion zsh > "${fpath[1]}/_modelmesh-connectors"\n',
    )
    p.add_argument("shell", choices=_SHELLS, help="the shell to complete in")
    p.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(args.root_parser, shell=args.shell), end="")
    return 0
