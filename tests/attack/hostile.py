"""What an attacker can do to an index, and how the suite proves nothing got through.

:class:`Arena` wraps :class:`~tests.support.simulator.RepositorySimulator` (which builds a
signed index and serves it on 127.0.0.1) with what the attack tables need and the
simulator does not offer:

* :func:`force_publish` and :func:`commit_state` sign index states *without* the
  publisher's safety checks, so a test can put a validly signed hostile zip, an unsigned
  release or a release outside a publisher's namespace in front of the client;
* :func:`next_root` signs root rotations with any keys, version and publishers;
* :func:`crafted_zip` and :func:`patch_zip_entry` build the zips the safe reader must refuse;
* :func:`cache_problems` checks that every file the loader left in the cache is verified:
  archives named by their own sha256 and signed, metadata byte-identical to what the
  trusted keys signed, no temp file;
* :func:`private_modules` lists imported package namespaces (nothing may stay behind).

The canary (``index/sources/demo-canary-1.0.0``) writes a marker file named by
``$MODELMESH_CANARY_PATH`` when any of its modules is imported: an attack test sets the
variable and asserts the marker never appears.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from modelmesh_connectors._internal import record
from modelmesh_connectors.client.config import parse_config
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.index.envelope import (
    INDEX_TYPE,
    RELEASE_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    Envelope,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey
from modelmesh_connectors.index.metadata import (
    BinNode,
    BinRelease,
    GroupNode,
    MetaRef,
    Publisher,
    Release,
    ReleaseConnector,
    RoleSpec,
    Root,
    Timestamp,
    TimestampLink,
    archive_path,
    parse_bin,
    parse_group,
)
from modelmesh_connectors.package.pack import pack_to_bytes
from modelmesh_connectors.publish import repository
from tests.support.simulator import RepositorySimulator

__all__ = [
    "CANARY_ENV",
    "CANARY_ID",
    "CANARY_NAME",
    "CANARY_SOURCE",
    "DAY",
    "Arena",
    "cache_problems",
    "canary_entries",
    "commit_state",
    "crafted_zip",
    "force_publish",
    "next_root",
    "patch_zip_entry",
    "private_modules",
    "rename_problems",
    "snapshot_files",
    "watch_renames",
    "zip_of_length",
]

REPO = Path(__file__).resolve().parents[2]
CANARY_SOURCE = REPO / "index" / "sources" / "demo-canary-1.0.0"
CANARY_ENV = "MODELMESH_CANARY_PATH"
CANARY_NAME = "demo-canary"
CANARY_ID = "demo.canary.v1"
CANARY_REQUIRES = ">=0.1.1,<0.2"
DAY = timedelta(days=1)


# -- files on disk ---------------------------------------------------------------------------


def snapshot_files(directory: Path) -> dict[str, bytes]:
    """Every regular file below ``directory`` except lock files: relative path -> bytes."""
    if not directory.exists():
        return {}
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink() and not p.name.endswith(".lock")
    }


def private_modules() -> set[str]:
    """Top-level names of imported packages (the importer's ``_mmpkg_*`` namespaces)."""
    return {name for name in sys.modules if name.startswith("_mmpkg_")}


def _signed_release_hashes(index: Mapping[str, bytes]) -> set[str]:
    hashes: set[str] = set()
    for path, data in index.items():
        if path.endswith(".zip.sig"):
            try:
                env = parse_envelope(data)
            except Exception:  # noqa: S112 - a hostile .sig simply signs nothing
                continue
            if env.signatures and env.payload_type == RELEASE_TYPE:
                import json

                hashes.add(json.loads(env.payload)["sha256"])
    return hashes


def _trusted_release_digests(index: Mapping[str, bytes]) -> set[str]:
    """Digests of the release envelopes the trusted index embeds in its bin nodes."""
    from modelmesh_connectors.index.metadata import parse_bin
    from modelmesh_connectors.index.verify import release_digest

    digests: set[str] = set()
    for path, data in index.items():
        if not path.startswith("meta/"):
            continue
        try:
            node = parse_bin(data)
        except Exception:  # noqa: S112 - not a bin node (top, group) or hostile bytes
            continue
        for entries in node.packages.values():
            digests.update(release_digest(e.release) for e in entries)
    return digests


def _verified_record_ok(data: bytes, trusted_index: Mapping[str, bytes]) -> bool:
    """``verified-releases.json`` may only list releases the trusted index embeds."""
    import json

    try:
        listed = set(json.loads(data)["releases"])
    except Exception:
        return False
    return listed <= _trusted_release_digests(trusted_index)


def cache_problems(
    before: Mapping[str, bytes],
    after: Mapping[str, bytes],
    trusted_index: Mapping[str, bytes],
    *,
    archives_allowed: bool,
    planted_tmp: Iterable[str] = (),
) -> list[str]:
    """What the loader left in the cache that it must not have.

    A file that is new or changed since ``before`` is acceptable only when it is verified:

    * ``archives/sha256/<hh>/<hex>``: only if ``archives_allowed``, its bytes hash to
      ``<hex>`` and ``<hex>`` is the signed hash of a release of ``trusted_index``;
    * ``metadata/<origin>/timestamp.json``: exactly the trusted ``timestamp.json``;
    * ``metadata/<origin>/index.json``: exactly the index top that timestamp pins;
    * ``metadata/<origin>/root.json``: exactly one of the trusted ``root/N.json``;
    * ``metadata/<origin>/roots/<N>.json``: exactly the trusted ``root/<N>.json``;
    * ``metadata/<origin>/nodes/<hex>.json``: exactly the trusted ``meta/<hex>.json``;
    * ``metadata/<origin>/verified-releases.json``: lists only release envelopes that the
      trusted index embeds in its bin nodes;
    * ``origin.txt`` and ``state.json`` are bookkeeping;
    * a ``*.tmp`` file is never acceptable unless it was planted by the test.

    Args:
        before: Cache snapshot before the attack (see :func:`snapshot_files`).
        after: Cache snapshot after it.
        trusted_index: The index files as the trusted keys signed them.
        archives_allowed: Whether a verified archive entry may be new.
        planted_tmp: Temp files the test itself put there.

    Returns:
        One line per problem; empty when the cache is clean.
    """
    planted = set(planted_tmp)
    signed = _signed_release_hashes(trusted_index)
    roots = {data for path, data in trusted_index.items() if path.startswith("root/")}
    ts = trusted_index.get("timestamp.json", b"")
    top: bytes | None = None
    try:
        import json

        pin = json.loads(parse_envelope(ts).payload)["index"]["sha256"]
        top = trusted_index.get(f"meta/{pin}.json")
    except Exception:
        top = None
    problems: list[str] = []
    for path, data in sorted(after.items()):
        if before.get(path) == data:
            continue
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".tmp"):
            if path not in planted:
                problems.append(f"temp file left behind: {path}")
            continue
        if path.startswith("archives/"):
            digest = hashlib.sha256(data).hexdigest()
            if not archives_allowed:
                problems.append(f"new archive entry: {path}")
            elif name != digest or digest not in signed:
                problems.append(f"unverified archive entry: {path} (sha256 {digest})")
            continue
        if path.startswith("metadata/"):
            if name in ("origin.txt", "state.json"):
                continue
            if name == "timestamp.json":
                ok = data == ts
            elif name == "index.json":
                ok = data == top
            elif name == "root.json":
                ok = data in roots
            elif "/roots/" in path:  # the stored chain: roots/<N>.json is exactly root/<N>.json
                ok = trusted_index.get(f"root/{name}") == data
            elif "/nodes/" in path:
                ok = trusted_index.get(f"meta/{name}") == data
            elif name == "verified-releases.json":
                ok = _verified_record_ok(data, trusted_index)
            else:
                ok = False
            if not ok:
                problems.append(f"unverified metadata stored: {path}")
            continue
        problems.append(f"unexpected file: {path}")
    return problems


def watch_renames(monkeypatch: Any, root: Path) -> list[tuple[str, bytes]]:
    """Record every file ``os.replace`` makes visible below ``root``, with its bytes.

    The final state of the cache can look clean although unverified bytes were visible
    for a moment (renamed into place, then found bad and removed). Checking every rename
    with :func:`cache_problems` proves that nothing unverified was *ever* visible.

    Args:
        monkeypatch: pytest's ``monkeypatch`` (undoes the wrapper after the test).
        root: The cache directory.

    Returns:
        The list the wrapper appends ``(path relative to root, bytes)`` to.
    """
    seen: list[tuple[str, bytes]] = []
    real = os.replace
    base = os.path.abspath(root)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        target = os.path.abspath(os.fsdecode(dst))
        if target.startswith(base + os.sep):
            with open(src, "rb") as handle:
                seen.append((os.path.relpath(target, base).replace(os.sep, "/"), handle.read()))
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return seen


def rename_problems(
    renames: Iterable[tuple[str, bytes]],
    trusted_index: Mapping[str, bytes],
    *,
    archives_allowed: bool,
) -> list[str]:
    """:func:`cache_problems` for every file that was renamed into the cache."""
    problems: list[str] = []
    for rel, data in renames:
        found = cache_problems({}, {rel: data}, trusted_index, archives_allowed=archives_allowed)
        problems += [f"made visible: {p}" for p in found]
    return problems


# -- signing index states ----------------------------------------------------------------


def _state(sim: RepositorySimulator) -> repository.RepositoryState:
    return repository.load_state(sim.dir)


def commit_state(
    sim: RepositorySimulator,
    groups: Mapping[str, MetaRef] | None = None,
    *,
    top_signers: Sequence[SigningKey] | None = None,
    ts_signers: Sequence[SigningKey] | None = None,
    top_version: int | None = None,
    index_version: int | None = None,
    ts_version: int | None = None,
    top_expires: datetime | None = None,
    ts_expires: datetime | None = None,
    write_timestamp: bool = True,
) -> tuple[bytes, bytes]:
    """Sign and write a new index top and timestamp (no publisher checks at all).

    Defaults continue the current state: versions + 1, the simulator's keys, expiries a
    year (top) and a week (timestamp) after ``sim.now``.

    Returns:
        ``(top_bytes, timestamp_bytes)``.
    """
    state = _state(sim)
    top = record.replace(  # keeps the top's fan-out (sharding level)
        state.top,
        version=top_version if top_version is not None else state.top.version + 1,
        expires=top_expires or sim.now + 365 * DAY,
        groups=dict(groups if groups is not None else state.top.groups),
        packages=None,  # hand-made trees: the count is not kept
    )
    top_bytes = sign(
        INDEX_TYPE, top.to_payload(), top_signers if top_signers is not None else [sim.index_key]
    ).to_bytes()
    ref = MetaRef.of(top_bytes)
    sim.write(ref.path, top_bytes)
    ts = Timestamp(
        ts_version if ts_version is not None else state.timestamp.version + 1,
        ts_expires or sim.now + 7 * DAY,
        index_version if index_version is not None else top.version,
        ref,
        # Extends the current timestamp's history, as a publisher's next timestamp does.
        TimestampLink.of(state.timestamp.version, parse_envelope(state.timestamp_bytes).payload),
    )
    ts_bytes = sign(
        TIMESTAMP_TYPE,
        ts.to_payload(),
        ts_signers if ts_signers is not None else [sim.timestamp_key],
    ).to_bytes()
    if write_timestamp:
        link = TimestampLink.of(ts.version, ts.to_payload())
        (sim.dir / "history").mkdir(exist_ok=True)
        sim.write(link.path, ts_bytes)
        sim.write("timestamp.json", ts_bytes)
    return top_bytes, ts_bytes


def release_for(
    archive: bytes,
    name: str = CANARY_NAME,
    version: str = "1.0.0",
    connectors: Sequence[tuple[str, str]] = ((CANARY_ID, "observability"),),
) -> Release:
    """The release a publisher would sign for ``archive``."""
    return Release(
        name=name,
        version=version,
        file=archive_path(name, version),
        sha256=hashlib.sha256(archive).hexdigest(),
        length=len(archive),
        requires_modelmesh=CANARY_REQUIRES,
        connectors=tuple(ReleaseConnector(i, t) for i, t in connectors),
    )


def force_publish(
    sim: RepositorySimulator,
    archive: bytes,
    *,
    release: Release | None = None,
    envelope: Envelope | None = None,
    signers: Sequence[SigningKey] | None = None,
    list_as: tuple[str, str] | None = None,
    write_sig: bool = True,
) -> Release:
    """Publish ``archive`` the way a compromised or careless publisher could.

    The archive is not inspected and the release is not checked against the root's rules:
    it is signed by ``signers`` (default: the index key), or ``envelope`` is used as is.
    The bin, group, index top and timestamp are then re-signed with the simulator's index
    and timestamp keys, so the metadata around the release is valid.

    Args:
        sim: The simulator.
        archive: The zip bytes (written to the release's file).
        release: The release (default :func:`release_for` ``(archive)``).
        envelope: A ready-made release envelope (overrides ``signers``).
        signers: Keys signing the release.
        list_as: ``(name, version)`` of the bin entry (default: the release's).
        write_sig: Also write the detached ``.zip.sig``.

    Returns:
        The release.
    """
    release = release or release_for(archive)
    env = envelope or sign(
        RELEASE_TYPE, release.to_payload(), signers if signers is not None else [sim.index_key]
    )
    (sim.dir / release.file).parent.mkdir(parents=True, exist_ok=True)
    sim.write(release.file, archive)
    if write_sig:
        sim.write(release.file + ".sig", env.to_bytes())
    name, version = list_as or (release.name, release.version)
    state = _state(sim)
    gp, bp = state.top.group_prefix(name), state.top.bin_prefix(name)
    gref = state.top.groups.get(gp)
    group = parse_group(sim.read(gref.path)) if gref else GroupNode(gp, {})
    bref = group.bins.get(bp)
    node = parse_bin(sim.read(bref.path)) if bref else BinNode(bp, {})
    entries = [e for e in node.packages.get(name, ()) if e.version != version]
    entries.append(BinRelease(version, env, False, None))
    bin_bytes = BinNode(bp, {**node.packages, name: tuple(entries)}).to_payload()
    bin_ref = MetaRef.of(bin_bytes)
    sim.write(bin_ref.path, bin_bytes)
    group_bytes = GroupNode(gp, {**group.bins, bp: bin_ref}).to_payload()
    group_ref = MetaRef.of(group_bytes)
    sim.write(group_ref.path, group_bytes)
    commit_state(sim, {**state.top.groups, gp: group_ref})
    sim.archives[(release.name, release.version)] = sim.dir / release.file
    return release


def current_root(sim: RepositorySimulator) -> Root:
    """The newest root of the simulator's chain."""
    return _state(sim).root


def next_root(
    sim: RepositorySimulator,
    *,
    signers: Iterable[SigningKey],
    version: int | None = None,
    root_keys: Sequence[SigningKey] | None = None,
    root_threshold: int = 2,
    timestamp_keys: Sequence[SigningKey] | None = None,
    publishers: Sequence[tuple[str, Sequence[SigningKey], Sequence[str]]] = (),
    payload: bytes | None = None,
    write: bool = True,
) -> bytes:
    """Sign root version N+1 (or ``version``) and write it as ``root/<N+1>.json``.

    Args:
        sim: The simulator.
        signers: Keys that sign it (old and new root keys as the rotation needs).
        version: The version written *inside* the file (default N+1).
        root_keys: The new root role (default: the simulator's three root keys).
        root_threshold: The new root threshold.
        timestamp_keys: The new timestamp role (default: the simulator's timestamp key).
        publishers: ``(name, keys, namespaces)`` entries of the new root.
        payload: Raw payload bytes to sign instead (malformed roots).
        write: Write the file (else only return the bytes).

    Returns:
        The envelope bytes.
    """
    current = current_root(sim)
    root_keys = list(root_keys or sim.root_keys)
    ts_keys = list(timestamp_keys or [sim.timestamp_key])
    pub_keys = [k for _, keys, _ in publishers for k in keys]
    keys = {k.keyid: k.public for k in [*root_keys, sim.index_key, *ts_keys, *pub_keys]}
    root = Root(
        version=version if version is not None else current.version + 1,
        expires=sim.now + 365 * DAY,
        keys=keys,
        root=RoleSpec(tuple(k.keyid for k in root_keys), root_threshold),
        index=RoleSpec((sim.index_key.keyid,), 1),
        timestamp=RoleSpec(tuple(k.keyid for k in ts_keys), 1),
        publishers=tuple(
            Publisher(name, tuple(k.keyid for k in ks), 1, tuple(ns)) for name, ks, ns in publishers
        ),
    )
    data = sign(ROOT_TYPE, payload if payload is not None else root.to_payload(), signers)
    out = data.to_bytes()
    if write:
        sim.write(f"root/{current.version + 1}.json", out)
    return out


# -- crafted zips ------------------------------------------------------------------------


def canary_entries(version: str = "1.0.0", *, extra_manifest: str = "") -> list[tuple[str, bytes]]:
    """The canary package's files as zip entries, manifest version set to ``version``."""
    entries: list[tuple[str, bytes]] = []
    for path in sorted(p for p in CANARY_SOURCE.rglob("*") if p.is_file()):
        rel = path.relative_to(CANARY_SOURCE).as_posix()
        if "__pycache__" in rel:
            continue
        data = path.read_bytes()
        if rel == "modelmesh-package.yaml":
            data = data.replace(b"version: 1.0.0", f"version: {version}".encode())
            data += extra_manifest.encode()
        entries.append((rel, data))
    return entries


def crafted_zip(entries: Sequence[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    """A zip holding exactly ``entries`` (duplicates allowed), with valid CRCs."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: intended here
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries:
                archive.writestr(info, data)
    return buffer.getvalue()


def zip_of_length(entries: Sequence[tuple[str | zipfile.ZipInfo, bytes]], length: int) -> bytes:
    """A valid zip of ``entries`` padded (with a zip comment) to exactly ``length`` bytes.

    Raises:
        ValueError: The entries alone are already longer than ``length``.
    """
    data = crafted_zip(entries)
    if len(data) > length:
        raise ValueError(f"entries take {len(data)} bytes, more than {length}")
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"#" * (length - len(data))
    padded = buffer.getvalue()
    if len(padded) != length:
        raise ValueError(f"padding gave {len(padded)} bytes, expected {length}")
    return padded


def patch_zip_entry(
    data: bytes, name: str, *, flags: int | None = None, file_size: int | None = None
) -> bytes:
    """Rewrite header fields of entry ``name`` in both the local header and the directory.

    Args:
        data: The zip bytes.
        name: The entry's file name.
        flags: New general-purpose flag bits (``0x1`` marks the entry encrypted).
        file_size: New *declared* uncompressed size (a lying header).

    Returns:
        The patched zip bytes.
    """
    out = bytearray(data)
    raw = name.encode()
    patched = 0
    for signature, flag_at, size_at, name_len_at, fixed in (
        (b"PK\x03\x04", 6, 22, 26, 30),
        (b"PK\x01\x02", 8, 24, 28, 46),
    ):
        start = 0
        while (at := out.find(signature, start)) != -1:
            start = at + 4
            (name_len,) = struct.unpack_from("<H", out, at + name_len_at)
            if bytes(out[at + fixed : at + fixed + name_len]) != raw:
                continue
            if flags is not None:
                struct.pack_into("<H", out, at + flag_at, flags)
            if file_size is not None:
                struct.pack_into("<I", out, at + size_at, file_size)
            patched += 1
    if patched < 2:
        raise ValueError(f"entry {name!r} not found in both headers")
    return bytes(out)


def canary_zip(version: str = "1.0.0") -> bytes:
    """The canary package packed by the project's own packer (a well-formed zip)."""
    data, _ = pack_to_bytes(CANARY_SOURCE)
    if version == "1.0.0":
        return data
    return crafted_zip(canary_entries(version))


# -- the arena ---------------------------------------------------------------------------


@dataclass
class Arena:
    """One simulator plus scratch space for a case's setup and attack steps."""

    tmp: Path
    now: datetime | None = None
    sim: RepositorySimulator = field(init=False)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sim = RepositorySimulator(self.tmp, now=self.now)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.sim.close()

    # -- shortcuts -------------------------------------------------------------------------

    def publish_canary(self) -> Release:
        """Publish the canary package 1.0.0 through the real publisher."""
        return self.sim.publish_dir(CANARY_SOURCE)

    def url(self, rel: str) -> str:
        """Absolute URL of an index file."""
        return self.sim.url + rel

    @property
    def canary_url(self) -> str:
        """URL of the published canary 1.0.0 archive."""
        return self.url(archive_path(CANARY_NAME, "1.0.0"))

    def index_files(self) -> dict[str, bytes]:
        """The index directory now."""
        return snapshot_files(self.sim.dir)

    def cache_files(self) -> dict[str, bytes]:
        """The cache directory now."""
        return snapshot_files(self.sim.cache)

    def warm(self, specs: Sequence[str], **overrides: Any) -> None:
        """Resolve and download ``specs`` into the cache without importing anything."""
        cfg = parse_config(self.sim.config(list(specs), **overrides))
        with Loader(cfg) as loader:
            loader.install(cfg.packages)

    def archive_entry(self, name: str = CANARY_NAME, version: str = "1.0.0") -> Path:
        """Where the cache keeps a published archive."""
        digest = hashlib.sha256(self.sim.archives[(name, version)].read_bytes()).hexdigest()
        return self.sim.cache / "archives" / "sha256" / digest[:2] / digest
