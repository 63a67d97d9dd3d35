"""CLI: publishers submit, the index signs — ``submit``, ``ingest``, ``submission``, ``pubkey``.

``submit`` signs a release with the publisher's own key (any key reference) and places it in
an inbox; ``ingest`` (the index's scheduled job, holding the index and timestamp signers)
verifies and publishes what is waiting in one index update; ``submission`` reads back what
became of a submission, for the publisher's CI; ``pubkey`` prints or writes the public half of
any key reference, to list it in a root. See docs/PUBLISHING.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from modelmesh_connectors.errors import ConfigError

__all__ = ["register"]

_REF_HELP = "key reference: file:PATH (or PATH), pkcs11:URI, vault:[MOUNT/]KEY, exec:PROGRAM"
_PENDING_EXIT = 3  # `submission`: not decided yet (0 published, 1 rejected)


def register(sub: Any) -> None:
    """Add this module's subcommands to the parser."""
    p = sub.add_parser("pubkey", help="show (or write) the public key of a key reference")
    p.add_argument("reference", metavar="REF", help=_REF_HELP)
    p.add_argument("-o", "--output", type=Path, help="write a public key PEM file (new file)")
    p.set_defaults(handler=_pubkey)

    p = sub.add_parser(
        "submit", help="sign a release with a publisher key and place it in an ingest inbox"
    )
    p.add_argument("archive", type=Path, help="the packed release (.zip) to submit")
    p.add_argument("--inbox", type=Path, required=True, help="inbox directory")
    p.add_argument("--publisher", required=True, help="the publisher's name in the root")
    p.add_argument("--release-key", required=True, action="append", metavar="REF", help=_REF_HELP)
    p.add_argument(
        "--root",
        type=Path,
        help="check against this root first (keys/root.json or the index's newest root/N.json)",
    )
    p.add_argument("--json", action="store_true", help="print the submission as JSON")
    p.set_defaults(handler=_submit)

    p = sub.add_parser(
        "ingest", help="verify waiting submissions and publish them in one index update"
    )
    p.add_argument("--index", type=Path, required=True, help="index directory to publish into")
    p.add_argument("--inbox", type=Path, required=True, help="inbox directory to ingest from")
    p.add_argument("--index-key", required=True, action="append", metavar="REF", help=_REF_HELP)
    p.add_argument("--timestamp-key", required=True, action="append", metavar="REF", help=_REF_HELP)
    p.add_argument("--index-expires", default="90d", help="lifetime of the new index top")
    p.add_argument("--timestamp-expires", default="7d", help="lifetime of the new timestamp")
    p.add_argument(
        "--per-publisher", type=int, default=16, help="submissions per publisher per run"
    )
    p.add_argument("--max-total", type=int, default=256, help="submissions per run")
    p.add_argument("--json", action="store_true", help="print the run's report as JSON")
    p.set_defaults(handler=_ingest)

    p = sub.add_parser(
        "submission",
        help="what became of a submission (exit 0 published, 1 rejected, 3 pending)",
    )
    p.add_argument("id", help="the submission ID printed by 'submit'")
    p.add_argument("--inbox", type=Path, required=True, help="inbox directory")
    p.add_argument("--publisher", required=True, help="the publisher's name in the root")
    p.set_defaults(handler=_submission)


def _pubkey(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish.keyfiles import write_public_key
    from modelmesh_connectors.publish.signers import close_signers, open_signer

    key = open_signer(args.reference)
    try:
        if args.output is not None:
            write_public_key(args.output, key.public)
            print(f"{args.output} (public)\nkey id {key.keyid}")
        else:
            print(f"{key.public.public_hex}\nkey id {key.keyid}")
    finally:
        close_signers([key])
    return 0


def _submit(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish.inbox import submit
    from modelmesh_connectors.publish.signers import close_signers, open_signers

    if not args.archive.is_file():
        raise ConfigError(f"archive {args.archive}: not a file")
    root = None
    if args.root is not None:
        try:
            root = args.root.read_bytes()
        except OSError as e:
            raise ConfigError(f"root file {args.root}: cannot read: {e.strerror or e}") from e
    keys = open_signers(args.release_key)
    try:
        s = submit(args.inbox, args.archive, keys, publisher=args.publisher, root=root)
    finally:
        close_signers(keys)
    if args.json:
        print(
            json.dumps(
                {
                    "id": s.id,
                    "publisher": s.publisher,
                    "name": s.release.name,
                    "version": s.release.version,
                    "sha256": s.release.sha256,
                    "already": s.already,
                },
                sort_keys=True,
            )
        )
    else:
        state = "already waiting" if s.already else "submitted"
        print(f"{state}: {s.release.name} {s.release.version} as {s.id} ({s.path})")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from modelmesh_connectors.cli.publish_commands import _days
    from modelmesh_connectors.publish.ingest import IngestLimits, ingest
    from modelmesh_connectors.publish.signers import close_signers, open_signers

    if args.per_publisher < 1 or args.max_total < 1:
        raise ConfigError("--per-publisher and --max-total: expected at least 1")
    index_keys = open_signers(args.index_key)
    try:
        timestamp_keys = open_signers(args.timestamp_key)
        try:
            report = ingest(
                args.index,
                args.inbox,
                index_keys=index_keys,
                timestamp_keys=timestamp_keys,
                limits=IngestLimits(per_publisher=args.per_publisher, total=args.max_total),
                index_expiry=_days(args.index_expires, "index-expires"),
                timestamp_expiry=_days(args.timestamp_expires, "timestamp-expires"),
            )
        finally:
            close_signers(timestamp_keys)
    finally:
        close_signers(index_keys)
    if args.json:
        print(report.to_json())
        return 0
    for r in report.published:
        print(f"published {r.publisher}/{r.id}: {r.name} {r.version} ({r.reason})")
    for r in report.rejected:
        print(f"rejected  {r.publisher}/{r.id}: {r.reason}: {r.message}")
    for name, count in sorted(report.deferred.items()):
        print(f"deferred  {name}: {count} submission(s) wait for the next run")
    version = report.index_version
    print(
        f"{len(report.published)} published, {len(report.rejected)} rejected"
        + (f"; index version {version}" if version is not None else "; index unchanged")
    )
    return 0


def _submission(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish.inbox import read_status

    record = read_status(args.inbox, args.publisher, args.id)
    print(json.dumps(record, sort_keys=True, indent=2))
    status = record.get("status")
    return 0 if status == "published" else _PENDING_EXIT if status == "pending" else 1
