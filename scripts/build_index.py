"""Build or re-sign the project's committed demo index (``index/``) and trust root (``keys/``).

The maintainers' private keys live outside the repository; pass their folder with ``--keys``
or ``$MODELMESH_MAINTAINER_KEYS`` (e.g. ``../shared/maintainer-keys``). Expected files there:
``root-1.pem root-2.pem root-3.pem index.pem timestamp.pem`` (see that folder's README).

    python scripts/build_index.py --keys ../shared/maintainer-keys            # first build
    python scripts/build_index.py --keys ../shared/maintainer-keys --resign   # extend expiries
    python scripts/build_index.py --keys ../shared/maintainer-keys --add demo-js-canary-1.0.0
                                                       # publish more sources into the index
    python scripts/build_index.py --catalogue                                 # index/index.html only

Every run also regenerates the catalogue page ``index/index.html`` (unsigned, informational).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.package.pack import pack_to_bytes
from modelmesh_connectors.publish import repository
from modelmesh_connectors.publish.catalogue_writer import write_catalogue
from modelmesh_connectors.publish.keyfiles import KeyFileError, read_signing_key

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT / "index"
SOURCES = INDEX / "sources"
TRUST_ROOT = ROOT / "keys" / "root.json"

# Publication order; the last entry is yanked to show yanking in the demo index.
PUBLISH = [
    "modelmesh-echo-provider-1.0.0",
    "acme-audit-log-1.0.0",
    "acme-audit-log-1.1.0",
    "demo-weighted-rotation-1.0.0",
    "demo-canary-1.0.0",
    "demo-js-event-log-1.0.0",
    "demo-js-canary-1.0.0",
]
YANK = ("acme-audit-log", "1.0.0", "superseded by 1.1.0, which can redact message content")
ROOT_EXPIRY = timedelta(days=3 * 365)  # the demo must keep working for years
META_EXPIRY = timedelta(days=2 * 365)  # index top and timestamp of the demo index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=Path, default=os.environ.get("MODELMESH_MAINTAINER_KEYS"))
    parser.add_argument("--resign", action="store_true", help="only re-sign top and timestamp")
    parser.add_argument("--add", nargs="+", metavar="SOURCE", default=[],
                        help="publish these index/sources/ directories into the existing index")
    parser.add_argument(
        "--catalogue", action="store_true", help="only regenerate index/index.html (no keys)"
    )
    args = parser.parse_args()
    if args.catalogue:
        print(f"wrote {write_catalogue(INDEX)}")
        return 0
    if args.keys is None:
        parser.error("--keys DIR (or $MODELMESH_MAINTAINER_KEYS) is required")
    keys = {n: _maintainer_key(args.keys / f"{n}.pem") for n in
            ("root-1", "root-2", "root-3", "index", "timestamp")}
    now = datetime.now(UTC).replace(microsecond=0)
    if args.resign:
        repository.refresh_index(INDEX, index_keys=keys["index"], timestamp_keys=keys["timestamp"],
                                 now=now, index_expiry=META_EXPIRY, timestamp_expiry=META_EXPIRY)
        print(f"re-signed {INDEX} (expires {now + META_EXPIRY:%Y-%m-%d})")
        print(f"wrote {write_catalogue(INDEX, now=now)}")
        return 0
    if args.add:
        for name in args.add:
            _publish(name, keys, now)
        removed = _drop_superseded_nodes()
        print(f"removed {removed} superseded meta nodes")
        print(f"wrote {write_catalogue(INDEX, now=now)}")
        return 0
    if (INDEX / "timestamp.json").exists():
        print("index/ already exists; use --resign to extend expiries", file=sys.stderr)
        return 1
    staged = repository.root_init(
        root_keys=[keys[f"root-{i}"].public for i in (1, 2, 3)], root_threshold=2,
        index_keys=[keys["index"].public], index_threshold=1,
        timestamp_keys=[keys["timestamp"].public], timestamp_threshold=1,
        expires=now + ROOT_EXPIRY,
    )
    root = staged.with_signature(keys["root-1"]).with_signature(keys["root-2"]).to_bytes()
    repository.init_repository(INDEX, root, keys["index"], keys["timestamp"], now=now,
                               index_expiry=META_EXPIRY, timestamp_expiry=META_EXPIRY)
    TRUST_ROOT.parent.mkdir(exist_ok=True)
    TRUST_ROOT.write_bytes(root)
    for name in PUBLISH:
        _publish(name, keys, now)
    repository.yank(INDEX, *YANK, index_keys=keys["index"], timestamp_keys=keys["timestamp"],
                    now=now, index_expiry=META_EXPIRY, timestamp_expiry=META_EXPIRY)
    print(f"yanked {YANK[0]} {YANK[1]}")
    removed = _drop_superseded_nodes()
    print(f"removed {removed} superseded meta nodes (no reader can be mid-update on a new index)")
    print(f"wrote {write_catalogue(INDEX, now=now)}")
    return 0


def _maintainer_key(path: Path) -> SigningKey:
    """Read one of the shared demo maintainer keys.

    The shared folder holds them read-only for every agent (0444), which the publisher CLI's
    reader refuses for a user's own key; these demo keys are public knowledge by design, so
    only here is the file read without the owner-only check.
    """
    try:
        return read_signing_key(path, prompt=False)
    except KeyFileError:
        return SigningKey.from_pem(path.read_bytes(), None)


def _publish(name: str, keys: dict[str, SigningKey], now: datetime) -> None:
    """Pack ``index/sources/<name>`` (deterministic bytes) and publish it into ``index/``."""
    dist = ROOT / "build" / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    data, filename = pack_to_bytes(SOURCES / name)
    (dist / filename).write_bytes(data)
    release = repository.publish(INDEX, dist / filename, index_keys=keys["index"],
                                 timestamp_keys=keys["timestamp"], now=now,
                                 index_expiry=META_EXPIRY, timestamp_expiry=META_EXPIRY)
    print(f"published {release.name} {release.version} ({', '.join(release.runtimes)}) "
          f"sha256={release.sha256}")


def _drop_superseded_nodes() -> int:
    """Delete meta nodes no longer reachable from the current timestamp.

    A live index keeps them for clients that read mid-publish; the committed demo index has
    no such readers, and keeping only reachable files means every committed byte is checked.
    """
    from modelmesh_connectors.index.metadata import parse_group

    state = repository.load_state(INDEX)
    keep = {state.timestamp.index.path}
    for ref in state.top.groups.values():
        keep.add(ref.path)
        group = parse_group((INDEX / ref.path).read_bytes())
        keep.update(b.path for b in group.bins.values())
    removed = 0
    for path in (INDEX / "meta").iterdir():
        if f"meta/{path.name}" not in keep:
            path.unlink()
            removed += 1
    (INDEX / ".modelmesh-publish.lock").unlink(missing_ok=True)
    return removed


if __name__ == "__main__":
    raise SystemExit(main())
