"""A loader process for the concurrency and crash tests: ``python -m tests.attack.child``.

Usage::

    python -m tests.attack.child CONFIG_JSON [READY_FILE GO_FILE]

Builds a registry from the ``connectors:`` mapping in CONFIG_JSON and prints one JSON line:
``{"connectors": [[id, version, origin kind, signed_by], ...]}`` or
``{"error": class name, "message": ...}`` (exit status 3). With READY_FILE and GO_FILE it
imports everything, creates READY_FILE and waits for GO_FILE before loading, so that many
processes start the load at the same instant.

``MMC_CRASH_AT`` makes the process stop dead at one point so a test can SIGKILL it there:

* ``archive-rename``: the archive is downloaded, verified and in its temp file, just
  before ``os.replace`` makes it visible;
* ``metadata-rename``: just before the new ``timestamp.json`` replaces the stored one.

At that point the process creates ``MMC_CRASH_SIGNAL`` and sleeps.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _stop_dead_before_replace(when: str, signal: Path) -> None:
    real = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        target = Path(dst)
        hit = (when == "archive-rename" and "archives" in target.parts and target.suffix == "") or (
            when == "metadata-rename" and target.name == "timestamp.json"
        )
        if hit:
            signal.write_text(str(src))
            time.sleep(600)  # killed here
        real(src, dst, *args, **kwargs)

    os.replace = replace


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    crash = os.environ.get("MMC_CRASH_AT")
    if crash:
        _stop_dead_before_replace(crash, Path(os.environ["MMC_CRASH_SIGNAL"]))
    from modelmesh_connectors.errors import ConnectorError
    from modelmesh_connectors.registry import build_registry

    if len(argv) > 3:
        Path(argv[2]).touch()
        go = Path(argv[3])
        while not go.exists():
            time.sleep(0.005)
    try:
        registry = build_registry(config)
    except ConnectorError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 3
    out = []
    for info in registry.list_connectors():
        origin = registry.origin(info.id)
        if origin.kind == "package":
            out.append([info.id, info.version, origin.kind, list(origin.signed_by)])
    print(json.dumps({"connectors": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
