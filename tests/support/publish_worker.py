"""A publisher process for the race and crash tests.

Usage: python -m tests.support.publish_worker INDEX KEYDIR ARCHIVE... [--crash-before-swap]

Publishes each archive with its own publish (one commit each) through the public API, reading
the keys from KEYDIR (index.pem, timestamp.pem). S3 credentials and endpoint come from the
environment (boto3's chain and $AWS_ENDPOINT_URL), as in production. Prints one JSON line:
``{"published": N, "conflicts": M}``. With --crash-before-swap the process dies (os._exit)
right before replacing timestamp.json, after every upload: a crash mid-publish.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from modelmesh_connectors.publish import commit as commit_module
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.keyfiles import read_signing_key
from modelmesh_connectors.publish.storage import Storage

CRASH_STATUS = 86


def main(argv: list[str]) -> int:
    crash = "--crash-before-swap" in argv
    args = [a for a in argv if a != "--crash-before-swap"]
    index, keydir, archives = args[0], Path(args[1]), args[2:]
    index_key = read_signing_key(keydir / "index.pem")
    timestamp_key = read_signing_key(keydir / "timestamp.pem")
    if crash:
        original = Storage.ensure_conditions

        def crashing(self: Storage) -> None:
            original(self)
            replace = self.replace

            def replace_or_die(key: str, data: bytes, tag: str | None) -> str | None:
                if key == "timestamp.json":
                    os._exit(CRASH_STATUS)
                return replace(key, data, tag)

            self.replace = replace_or_die  # type: ignore[method-assign]

        Storage.ensure_conditions = crashing  # type: ignore[method-assign]
    for archive in archives:
        repository.publish(index, archive, index_keys=index_key, timestamp_keys=timestamp_key)
    print(json.dumps({"published": len(archives), "conflicts": commit_module.conflicts_seen()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
