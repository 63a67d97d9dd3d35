"""Examples shown at the end of ``--help`` for the main commands, and the help formatter.

Requirements are quoted as a shell needs them: unquoted, ``acme-audit-log>=1.1`` would write
a file named ``=1.1``.
"""

from __future__ import annotations

import argparse

__all__ = ["EXAMPLES", "MAIN_EPILOG", "HelpFormatter"]

MAIN_EPILOG = """\
global options (accepted anywhere on the command line, stackable):
  -v / -vv      name the configuration used, show tracebacks; -vv: debug logs
  -q / -qq      hide notes and progress; -qq: also the result (errors still print)

configuration: --config, else $MODELMESH_CONFIG, else ./modelmesh.yaml (if it exists).
exit status: 0 ok, 1 other error, 2 usage, 3 configuration, 4 verification/trust failure,
  5 network, 6 resolution, 7 package or connector check, 8 cache, 9 publish, 10 registry,
  130 interrupted.  With --json, errors are {"error": {"type", "message", "hint", ...}}.

examples:
  modelmesh-connectors install 'acme-audit-log>=1.1' --config modelmesh.yaml
  modelmesh-connectors load --json
  modelmesh-connectors completion bash > ~/.local/share/bash-completion/completions/\
modelmesh-connectors
"""

EXAMPLES: dict[str, str] = {
    "install": """\
examples:
  modelmesh-connectors install 'acme-audit-log>=1.1' --config modelmesh.yaml
  modelmesh-connectors install 'acme-audit-log==1.2.0' --refresh --json
  modelmesh-connectors install ./dist/acme-audit-log-1.2.0.zip
""",
    "load": """\
examples:
  modelmesh-connectors load                       # ./modelmesh.yaml or $MODELMESH_CONFIG
  modelmesh-connectors load --config modelmesh.yaml --json
  modelmesh-connectors -v load --refresh          # names the file used; checks the index now
""",
    "lock": """\
examples:
  modelmesh-connectors lock --config modelmesh.yaml
  modelmesh-connectors lock --upgrade acme-audit-log --json
""",
    "mirror": """\
examples:
  modelmesh-connectors mirror --config modelmesh.yaml --to carry/ --bundle carry.tar
""",
    "cache": """\
examples:
  modelmesh-connectors cache list --json
  modelmesh-connectors cache verify
  modelmesh-connectors cache prune --config a.yaml --config b.yaml --dry-run
  modelmesh-connectors cache prune --all
""",
    "cache prune": """\
examples:
  modelmesh-connectors cache prune --config a.yaml --config b.yaml --dry-run
  modelmesh-connectors cache prune --config a.yaml --config b.yaml
  modelmesh-connectors cache prune --all          # every cached archive
""",
    "inspect": """\
examples:
  modelmesh-connectors inspect dist/acme-audit-log-1.2.0.zip
  modelmesh-connectors inspect ./acme-audit-log --json
""",
    "pack": """\
examples:
  modelmesh-connectors pack ./acme-audit-log -o dist/
""",
    "keygen": """\
examples:
  modelmesh-connectors keygen keys/root-1.pem     # creates keys/ (0700) if missing
  MODELMESH_KEY_PASSPHRASE=... modelmesh-connectors keygen keys/index.pem --encrypt
""",
    "root": """\
examples:
  modelmesh-connectors root init --root-key r1.pub.pem --index-key index.pub.pem \\
      --timestamp-key ts.pub.pem -o root.staged.json
  modelmesh-connectors root sign root.staged.json --key r1.pem
  modelmesh-connectors root rotate --index site/ --timestamp-key ts2.pub.pem -o root2.json
  modelmesh-connectors root publish root2.json --index site/
""",
    "root init": """\
examples:
  modelmesh-connectors root init --root-key r1.pub.pem --root-key r2.pub.pem --root-threshold 2 \\
      --index-key index.pub.pem --timestamp-key ts.pub.pem \\
      --publisher acme:acme:acme.pub.pem -o root.staged.json
""",
    "root sign": """\
examples:
  modelmesh-connectors root sign root.staged.json --key r1.pem
  modelmesh-connectors root sign root2.json --key r1.pem --index site/   # a rotation
""",
    "root rotate": """\
examples:
  modelmesh-connectors root rotate --index site/ --timestamp-key ts2.pub.pem -o root2.json
""",
    "root publish": """\
examples:
  modelmesh-connectors root publish root2.json --index site/
  modelmesh-connectors refresh --index site/ --index-key index.pem --timestamp-key ts2.pem
""",
    "init": """\
examples:
  modelmesh-connectors init --index site/ --root root.staged.json \\
      --index-key index.pem --timestamp-key ts.pem
""",
    "publish": """\
examples:
  modelmesh-connectors publish dist/acme-audit-log-1.2.0.zip --index site/ \\
      --index-key index.pem --timestamp-key ts.pem
  modelmesh-connectors publish dist/acme-audit-log-1.2.0.zip --index site/ \\
      --index-key index.pem --timestamp-key ts.pem --release-key acme.pem --json
""",
    "yank": """\
examples:
  modelmesh-connectors yank acme-audit-log 1.2.0 --reason "CVE-2026-1234" --index site/ \\
      --index-key index.pem --timestamp-key ts.pem
""",
    "verify": """\
examples:
  modelmesh-connectors verify site/ --root keys/root.json
  modelmesh-connectors verify https://connectors.example.com/index/ --root keys/root.json --json
""",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps epilog examples as written and appends each option's default to its help.

    A default is shown when it says something: not for flags (off unless given), not when
    absent (the help text then says what happens), not when the help already names it.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default" in text
            or default in (None, False, argparse.SUPPRESS, [])
            or not action.option_strings
            or action.nargs == 0
        ):
            return text
        return f"{text} (default: %(default)s)"
