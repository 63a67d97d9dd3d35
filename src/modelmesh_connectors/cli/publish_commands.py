"""CLI: the publisher's commands — keys, roots, publishing, auditing and a local server.

``keygen``; ``root init|sign|rotate|publish``; ``init``; ``publish``; ``yank``; ``timestamp``;
``refresh``; ``resign``; ``verify``; ``gc``; ``serve``. ``--index`` is a directory or
``s3://bucket/prefix/`` (``--s3-endpoint`` or ``$AWS_ENDPOINT_URL`` for a non-AWS store).
Every signing key is a *key reference*
(``file:PATH`` or a bare path, ``pkcs11:URI``, ``vault:KEY``, ``exec:PROGRAM``; see
:mod:`modelmesh_connectors.publish.signers`); a passphrase or PIN comes from the environment
or a prompt, never from an argument (arguments leak into shell history and the process list).

Commands import what only they need inside their function: ``--help`` and the other
commands stay fast. Over 600 lines because it is one parser per publisher command, each
with its help text; every handler is a few lines calling :mod:`~modelmesh_connectors.publish`.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelmesh_connectors.cli.exit_codes import ExitCode
from modelmesh_connectors.cli.output import emit, info, note
from modelmesh_connectors.errors import ConfigError, ConnectorError, PackageError

if TYPE_CHECKING:
    from modelmesh_connectors.index.keys import PublicKey, SigningKey
    from modelmesh_connectors.publish import repository
    from modelmesh_connectors.publish.storage import Storage


__all__ = ["register"]

_PASSPHRASE_ENV = "MODELMESH_KEY_PASSPHRASE"  # noqa: S105 - names a variable, holds no secret
KEY_REFERENCE = "REF"  # metavar of every signing-key option
KEY_REFERENCE_HELP = (
    "key reference: file:PATH (or PATH), pkcs11:URI, vault:[MOUNT/]KEY, exec:PROGRAM"
)


def register(sub: Any) -> None:
    """Add this module's subcommands to the parser."""
    p = sub.add_parser("keygen", help="generate an Ed25519 signing key (PKCS#8 PEM, mode 0600)")
    p.add_argument("output", type=Path, help="private key file to create (public key: .pub.pem)")
    p.add_argument(
        "--encrypt",
        action="store_true",
        help=f"encrypt with a passphrase (from ${_PASSPHRASE_ENV} or a prompt)",
    )
    p.set_defaults(handler=_keygen)

    root = sub.add_parser("root", help="stage, sign, rotate and publish trust roots")
    rsub = root.add_subparsers(dest="root_command", required=True, metavar="ACTION")
    p = rsub.add_parser("init", help="stage root version 1 from public keys")
    _role_args(p, required=True)
    p.add_argument("--expires", default="365d", help="lifetime of the root (e.g. 365d)")
    p.add_argument("-o", "--output", type=Path, required=True, help="staged root file to create")
    p.set_defaults(handler=_root_init)
    p = rsub.add_parser("sign", help="add one key holder's signature to a staged root")
    p.add_argument("staged", type=Path, help="staged root file (from 'root init' or 'root rotate')")
    p.add_argument(
        "--key", required=True, metavar=KEY_REFERENCE, help=f"root signing {KEY_REFERENCE_HELP}"
    )
    _index_arg(
        p,
        required=False,
        help="index directory or s3:// (rotation: lets a root key of its current root sign "
        "root N+1)",
    )
    p.set_defaults(handler=_root_sign)
    p = rsub.add_parser("rotate", help="stage root N+1 from an index's current root")
    _index_arg(p)
    _role_args(p, required=False)
    p.add_argument("--expires", default="365d", help="lifetime of the new root")
    p.add_argument("-o", "--output", type=Path, required=True, help="staged root file to create")
    p.set_defaults(handler=_root_rotate)
    p = rsub.add_parser("publish", help="add a fully signed staged root N+1 to an index")
    p.add_argument("staged", type=Path, help="the staged root, signed by enough root keys")
    _index_arg(p)
    p.set_defaults(handler=_root_publish)

    p = sub.add_parser("init", help="create an empty index from a signed root version 1")
    _index_arg(p, help="index directory (or s3://bucket/prefix/) to create")
    p.add_argument("--root", type=Path, required=True, help="signed root version 1")
    _signer_args(p)
    p.set_defaults(handler=_init)

    p = sub.add_parser(
        "publish",
        help="publish package archives into an index (several: one change, one timestamp; "
        "their connectors are checked first)",
    )
    p.add_argument("archive", type=Path, nargs="+", help="package .zip file(s) (from 'pack')")
    _index_arg(p)
    _signer_args(p)
    p.add_argument(
        "--release-key",
        action="append",
        metavar=KEY_REFERENCE,
        help=f"publisher key(s) to sign the release with (namespace-scoped); {KEY_REFERENCE_HELP}",
    )
    p.add_argument(
        "--allow-failing-checks",
        action="store_true",
        help="publish even if a connector fails its interface check (refused by default: "
        "a published version never changes)",
    )
    p.set_defaults(handler=_publish)

    p = sub.add_parser("yank", help="mark a published version as yanked")
    p.add_argument("name", help="package name")
    p.add_argument("version", help="the published version to yank")
    p.add_argument("--reason", required=True, help="why (shown to clients and in the catalogue)")
    _index_arg(p)
    _signer_args(p)
    p.set_defaults(handler=_yank)

    p = sub.add_parser("timestamp", help="re-sign the short-lived freshness file")
    _index_arg(p)
    p.add_argument(
        "--timestamp-key",
        required=True,
        action="append",
        metavar=KEY_REFERENCE,
        help=f"timestamp {KEY_REFERENCE_HELP} (repeat to meet the threshold)",
    )
    p.add_argument("--expires", default="7d", help="lifetime of the new timestamp")
    p.set_defaults(handler=_timestamp)

    p = sub.add_parser("refresh", help="re-sign the index top (new expiry) and the timestamp")
    _index_arg(p)
    _signer_args(p)
    p.set_defaults(handler=_refresh)

    p = sub.add_parser(
        "resign",
        help="re-sign a publisher's releases with its current key after a key rotation",
    )
    p.add_argument("name", nargs="?", help="only this package (default: every package)")
    _index_arg(p)
    p.add_argument(
        "--release-key",
        required=True,
        action="append",
        metavar=KEY_REFERENCE,
        help="the publisher's current key(s) (repeat; several publishers' keys are fine); "
        + KEY_REFERENCE_HELP,
    )
    _signer_args(p)
    p.set_defaults(handler=_resign)

    p = sub.add_parser(
        "verify",
        help="audit an index: every signature, expiry, hash and length; warn of stray "
        "signatures and orphan files",
    )
    p.add_argument("location", help="index directory, s3://bucket/prefix/ or http(s) URL")
    p.add_argument("--root", type=Path, required=True, help="trusted root (keys/root.json)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    _s3_endpoint_arg(p)
    p.set_defaults(handler=_verify)

    p = sub.add_parser(
        "gc",
        help="remove files no timestamp of the grace period reaches (superseded nodes, "
        "orphans of interrupted publishes)",
    )
    _index_arg(p)
    p.add_argument(
        "--grace",
        default="8d",
        help="honour timestamps replaced within this long, and keep files younger than it "
        "(default: 8d, longer than a timestamp's validity; at least 1h)",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(handler=_gc)

    p = sub.add_parser("serve", help="serve a directory on 127.0.0.1 (local testing)")
    p.add_argument("directory", type=Path, help="directory to serve (an index, a mirror)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    p.set_defaults(handler=_serve)


def _index_arg(
    p: argparse.ArgumentParser,
    *,
    required: bool = True,
    help: str = "index directory or s3://bucket/prefix/",
) -> None:
    # A string, not a Path: Path("s3://b/p") would fold the '//'.
    p.add_argument("--index", required=required, help=help)
    _s3_endpoint_arg(p)


def _s3_endpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible endpoint for s3:// indexes (default: $AWS_ENDPOINT_URL, else AWS)",
    )


def _index(args: argparse.Namespace) -> Storage:
    from modelmesh_connectors.publish.stores import open_storage

    return open_storage(args.index, s3_endpoint=args.s3_endpoint)


def _role_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    for role in ("root", "index", "timestamp"):
        p.add_argument(
            f"--{role}-key",
            action="append",
            required=required,
            metavar="PUB",
            help=f"{role} role public key: a .pem public key file, or the key reference "
            "(pkcs11:, vault:, exec:) whose public half to list (repeat)",
        )
        p.add_argument(
            f"--{role}-threshold",
            type=int,
            default=None if not required else 1,
            help=f"{role} signatures required" + ("" if required else " (default: unchanged)"),
        )
    p.add_argument(
        "--publisher",
        action="append",
        default=[],
        metavar="NAME:NS[,NS]:PUB[,PUB]",
        help="namespace-scoped publisher (threshold 1)",
    )
    p.add_argument(
        "--allow-shared-keys",
        action="store_true",
        help="accept one key in several roles or publishers (refused by default)",
    )


def _signer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index-key",
        required=True,
        action="append",
        metavar=KEY_REFERENCE,
        help=f"index {KEY_REFERENCE_HELP} (repeat to meet the threshold)",
    )
    p.add_argument(
        "--timestamp-key",
        required=True,
        action="append",
        metavar=KEY_REFERENCE,
        help=f"timestamp {KEY_REFERENCE_HELP} (repeat to meet the threshold)",
    )
    p.add_argument("--index-expires", default="90d", help="lifetime of the new index top")
    p.add_argument("--timestamp-expires", default="7d", help="lifetime of the new timestamp")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _days(text: str, key: str) -> timedelta:
    from modelmesh_connectors.client.config import parse_duration

    try:
        return timedelta(seconds=parse_duration(text, key=key))
    except ConfigError as e:
        # parse_duration names config keys ("connectors.<key>"); here it is an option.
        raise ConfigError(e.message.replace(f"connectors.{key}", f"--{key}", 1)) from e


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot read: {e.strerror or e}") from e


def _write_new(path: Path, data: bytes, what: str) -> None:
    """Create ``path``; never overwrite (a staged root may hold collected signatures)."""
    try:
        with path.open("xb") as f:
            f.write(data)
    except FileExistsError as e:
        raise ConfigError(
            f"{what} {path}: exists; refusing to overwrite it",
            hint="choose another -o path, or remove the old file first",
        ) from e
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot write: {e.strerror or e}") from e


def _private(references: list[str]) -> list[SigningKey]:
    """Open each key reference (a file, an HSM key, a Vault key or a signing program)."""
    from modelmesh_connectors.publish.signers import open_signers

    return open_signers(references)


def _public_key(text: str) -> PublicKey:
    """A public key file, or the public half of a key held by reference (HSM, Vault …)."""
    from modelmesh_connectors.publish.keyfiles import read_public_key
    from modelmesh_connectors.publish.signers import close_signers, open_signer, reference_kind

    if reference_kind(text) == "file":
        return read_public_key(Path(text.removeprefix("file:")))
    key = open_signer(text)
    try:
        return key.public
    finally:
        close_signers([key])


def _public(paths: list[str] | None) -> list[PublicKey] | None:
    return None if paths is None else [_public_key(p) for p in paths]


def _publishers(specs: list[str]) -> list[repository.PublisherSpec]:
    from modelmesh_connectors.publish import repository

    out: list[repository.PublisherSpec] = []
    for spec in specs:
        # maxsplit 2: a key file path may itself contain ':'.
        parts = spec.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"--publisher {spec!r}: expected NAME:NS[,NS]:PUBKEY[,PUBKEY]")
        name, namespaces, keys = parts
        out.append(
            repository.PublisherSpec(
                name,
                tuple(_public_key(k) for k in keys.split(",")),
                1,
                tuple(namespaces.split(",")),
            )
        )
    return out


def _keygen(args: argparse.Namespace) -> int:
    from modelmesh_connectors.index.keys import SigningKey
    from modelmesh_connectors.publish.keyfiles import write_public_key, write_signing_key

    passphrase: bytes | None = None
    if args.encrypt:
        text = os.environ.get(_PASSPHRASE_ENV)
        if not text:
            if not sys.stdin.isatty():
                raise ConfigError(f"--encrypt needs ${_PASSPHRASE_ENV} or an interactive prompt")
            text = getpass.getpass("passphrase: ")
            if getpass.getpass("again: ") != text:
                raise ConfigError("passphrases differ")
        passphrase = text.encode()
    public = args.output.with_name(args.output.name.removesuffix(".pem") + ".pub.pem")
    if public.exists() or public.is_symlink():
        # Checked first, so a refused run leaves no private key without its public half.
        raise ConfigError(f"public key file {public}: exists; refusing to overwrite it")
    created = _make_key_directory(args.output.parent)
    key = SigningKey.generate()
    write_signing_key(args.output, key, passphrase)
    write_public_key(public, key.public)
    lines = [f"created {created} (0700)"] if created else []
    lines += [f"{args.output} (private, 0600)", f"{public} (public)", f"key id {key.keyid}"]
    emit(
        args,
        {
            "private_key": str(args.output),
            "public_key": str(public),
            "keyid": key.keyid,
            "encrypted": passphrase is not None,
            "created_directory": str(created) if created else None,
        },
        lines,
    )
    return 0


def _make_key_directory(directory: Path) -> Path | None:
    """Create a missing key directory (and missing parents) readable by its owner only."""
    if directory.is_dir():
        return None
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        for d in reversed(missing):
            d.mkdir(mode=0o700)
            d.chmod(0o700)  # mkdir's mode is masked by the umask
    except OSError as e:
        raise ConfigError(f"key directory {d}: cannot create: {e.strerror or e}") from e
    return directory


def _root_init(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    staged = repository.root_init(
        root_keys=_public(args.root_key) or [],
        root_threshold=args.root_threshold,
        index_keys=_public(args.index_key) or [],
        index_threshold=args.index_threshold,
        timestamp_keys=_public(args.timestamp_key) or [],
        timestamp_threshold=args.timestamp_threshold,
        expires=_now() + _days(args.expires, "expires"),
        publishers=_publishers(args.publisher),
        allow_shared_keys=args.allow_shared_keys,
    )
    _write_new(args.output, staged.to_bytes(), "staged root")
    emit(
        args,
        {"staged": str(args.output), "version": 1, "signatures": len(staged.signatures)},
        f"staged root version 1 in {args.output}; each root key holder runs 'root sign'",
    )
    return 0


def _root_sign(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository
    from modelmesh_connectors.publish.signers import open_signer

    index = _index(args) if args.index is not None else None
    env = repository.root_sign(args.staged, open_signer(args.key), index=index)
    emit(
        args,
        {"staged": str(args.staged), "signatures": [e.keyid for e in env.signatures]},
        f"{args.staged}: {len(env.signatures)} signature(s)",
    )
    return 0


def _root_rotate(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    staged = repository.root_rotate(
        _index(args),
        expires=_now() + _days(args.expires, "expires"),
        root_keys=_public(args.root_key),
        root_threshold=args.root_threshold,
        index_keys=_public(args.index_key),
        index_threshold=args.index_threshold,
        timestamp_keys=_public(args.timestamp_key),
        timestamp_threshold=args.timestamp_threshold,
        publishers=_publishers(args.publisher) if args.publisher else None,
        allow_shared_keys=args.allow_shared_keys,
    )
    _write_new(args.output, staged.to_bytes(), "staged root")
    emit(
        args,
        {"staged": str(args.output), "signatures": len(staged.signatures)},
        f"staged the next root in {args.output}; old AND new root key holders sign it",
    )
    return 0


def _root_publish(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    index = _index(args)
    root = repository.root_publish(index, args.staged)
    lines = [f"published root version {root.version}"]
    stale = False
    with contextlib.suppress(ConnectorError):
        stale = repository.load_state(index).stale_signatures
    if stale:
        lines.append(
            "the timestamp or index top is signed by keys this root no longer lists: "
            "run 'refresh' (or 'timestamp') with the new keys now; until then clients "
            "reject the index"
        )
    else:
        _catalogue(args, args.index)
    emit(args, {"root_version": root.version, "stale_signatures": stale}, lines)
    return 0


def _init(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    repository.init_repository(
        args.index if "://" not in args.index else _index(args),
        _read_file(args.root, "root file"),
        _private(args.index_key),
        _private(args.timestamp_key),
        index_expiry=_days(args.index_expires, "index-expires"),
        timestamp_expiry=_days(args.timestamp_expires, "timestamp-expires"),
    )
    _catalogue(args, args.index)
    lines = [f"initialised index {args.index}"]
    emit(args, {"index": str(args.index)}, lines)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from modelmesh_connectors.package.interface_check import check_interfaces
    from modelmesh_connectors.publish import repository

    for archive in args.archive:
        if not archive.is_file():
            # Names the option's value plainly (the library says it cannot read the archive).
            raise ConfigError(f"archive {archive}: not a file")
    all_checks = []
    for archive in args.archive:
        # The package's code runs in a child process, never here beside the signing keys.
        checks = check_interfaces(archive)
        all_checks.append(checks)
        if not checks.ok:
            failing = "; ".join(c.message for c in checks.failures)
            if not args.allow_failing_checks:
                raise PackageError(
                    f"{checks.package}: {len(checks.failures)} connector(s) fail their "
                    "interface check, refusing to publish (a published version never "
                    f"changes): {failing}",
                    hint="fix the package (see 'modelmesh-connectors inspect'), or pass "
                    "--allow-failing-checks to publish it anyway",
                )
            note(args, f"publishing despite failing connector checks: {failing}")
    releases = repository.publish_many(
        _index(args),
        args.archive,
        index_keys=_private(args.index_key),
        timestamp_keys=_private(args.timestamp_key),
        release_keys=_private(args.release_key) if args.release_key else None,
        index_expiry=_days(args.index_expires, "index-expires"),
        timestamp_expiry=_days(args.timestamp_expires, "timestamp-expires"),
    )
    lines = [
        f"published {release.name} {release.version} sha256={release.sha256} "
        f"length={release.length}"
        for release in releases
    ]
    _catalogue(args, args.index)
    published = [
        {
            "name": release.name,
            "version": release.version,
            "file": release.file,
            "sha256": release.sha256,
            "length": release.length,
            "checks": checks.to_json_obj(),
        }
        for release, checks in zip(releases, all_checks, strict=True)
    ]
    # One archive: the release object itself; several: {"published": [...]} (one change).
    emit(args, published[0] if len(published) == 1 else {"published": published}, lines)
    return 0


def _yank(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    repository.yank(
        _index(args),
        args.name,
        args.version,
        args.reason,
        index_keys=_private(args.index_key),
        timestamp_keys=_private(args.timestamp_key),
        index_expiry=_days(args.index_expires, "index-expires"),
        timestamp_expiry=_days(args.timestamp_expires, "timestamp-expires"),
    )
    _catalogue(args, args.index)
    lines = [f"yanked {args.name} {args.version}: {args.reason}"]
    emit(args, {"name": args.name, "version": args.version, "reason": args.reason}, lines)
    return 0


def _timestamp(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    ts = repository.refresh_timestamp(
        _index(args), _private(args.timestamp_key), _days(args.expires, "expires")
    )
    _catalogue(args, args.index)
    lines = [f"timestamp version {ts.version}, expires {ts.expires.isoformat()}"]
    emit(args, {"version": ts.version, "expires": ts.expires.isoformat()}, lines)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    top = repository.refresh_index(
        _index(args),
        index_keys=_private(args.index_key),
        timestamp_keys=_private(args.timestamp_key),
        index_expiry=_days(args.index_expires, "index-expires"),
        timestamp_expiry=_days(args.timestamp_expires, "timestamp-expires"),
    )
    _catalogue(args, args.index)
    lines = [f"index top version {top.version}, expires {top.expires.isoformat()}"]
    emit(args, {"version": top.version, "expires": top.expires.isoformat()}, lines)
    return 0


def _resign(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish import repository

    releases = repository.resign_releases(
        _index(args),
        name=args.name,
        release_keys=_private(args.release_key),
        index_keys=_private(args.index_key),
        timestamp_keys=_private(args.timestamp_key),
        index_expiry=_days(args.index_expires, "index-expires"),
        timestamp_expiry=_days(args.timestamp_expires, "timestamp-expires"),
    )
    lines = [f"re-signed {r.name} {r.version} ({r.file}.sig)" for r in releases] or [
        "nothing to re-sign: every release verifies under the current root"
    ]
    if releases:
        _catalogue(args, args.index)
    emit(
        args,
        {"resigned": [{"name": r.name, "version": r.version, "file": r.file} for r in releases]},
        lines,
    )
    return 0


def _catalogue(args: argparse.Namespace, index: str | Path) -> None:
    """Regenerate the index's catalogue page after a change; a failure is only a note
    (the page is informational: the signed change already happened). Local indexes only:
    an object-store index gets its page from the job that syncs or serves it."""
    from modelmesh_connectors.publish.catalogue_writer import write_catalogue

    if "://" in str(index):
        info(args, "catalogue page: not written for an object-store index")
        return
    try:
        page = write_catalogue(Path(index))
    except (ConnectorError, OSError) as e:
        note(args, f"the catalogue page was not updated: {e}")
        return
    info(args, f"catalogue page: {page}")


def _verify(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish.audit import audit_directory, audit_index, audit_storage
    from modelmesh_connectors.publish.stores import open_storage

    trusted = _read_file(args.root, "trusted root")
    if args.location.startswith("s3://"):
        storage = open_storage(args.location, s3_endpoint=args.s3_endpoint)
        report = audit_storage(storage, trusted_root=trusted)
    elif "://" in args.location:
        report = _audit_url(args.location, trusted, audit_index)
    else:
        report = audit_directory(Path(args.location), trusted_root=trusted)
    if args.json:
        print(report.to_json())
    elif args.verbosity > -2:
        marks = {"ok": "ok   ", "warning": "WARN ", "error": "ERROR"}
        for finding in report.findings:
            print(f"{marks[finding.level]} {finding.path}: {finding.message}")
        warnings = len(report.warnings)
        print(
            f"{'verified' if report.ok else 'FAILED'}: {len(report.findings)} checks, "
            f"{len(report.errors)} error(s)"
            + (f", {warnings} warning(s)" if warnings else "")
            + (f"; {len(report.missing)} missing file(s)" if report.missing else "")
            + (f"; {len(report.orphans)} orphan(s) ('gc' removes them)" if report.orphans else "")
        )
    return 0 if report.ok else int(ExitCode.TRUST)


def _gc(args: argparse.Namespace) -> int:
    from modelmesh_connectors.publish.gc import collect_garbage

    report = collect_garbage(_index(args), grace=_days(args.grace, "grace"), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    lines = [f"{verb} {path}" for path in report.removed]
    lines += [f"left {path}: changed or removed meanwhile" for path in report.changed]
    lines.append(
        f"{verb} {len(report.removed)} file(s); kept {report.kept} reachable from "
        f"{report.timestamps} timestamp(s), and {len(report.young)} unreferenced file(s) "
        "younger than the grace period"
    )
    emit(args, report.to_json_obj(), lines)
    return 0


def _audit_url(url: str, trusted: bytes, audit_index: Any) -> Any:
    from modelmesh_connectors.client.fetch import HttpFetcher
    from modelmesh_connectors.package.package import MAX_ARCHIVE_BYTES

    base = url.rstrip("/") + "/"
    with HttpFetcher() as fetcher:

        def read(rel: str) -> bytes:
            return fetcher.fetch_bytes(base + rel, max_length=MAX_ARCHIVE_BYTES)

        return audit_index(read, now=_now(), trusted_root=trusted)


def _serve(args: argparse.Namespace) -> int:
    import functools
    import socketserver
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class LoopbackHTTPServer(ThreadingHTTPServer):
        def server_bind(self) -> None:
            # HTTPServer.server_bind would resolve the host name (socket.getfqdn).
            socketserver.TCPServer.server_bind(self)
            host, port = self.server_address[:2]
            self.server_name, self.server_port = str(host), int(port)

    if not args.directory.is_dir():
        raise ConnectorError(f"{args.directory}: not a directory")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: expected 0 (any free port) to 65535, got {args.port}")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(args.directory))
    try:
        server = LoopbackHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as e:
        raise ConnectorError(f"cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}") from e
    with server:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        if args.json:
            print(json.dumps({"directory": str(args.directory), "url": url}), flush=True)
        else:
            print(f"serving {args.directory} at {url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0
