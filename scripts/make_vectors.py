#!/usr/bin/env python3
"""Generate the conformance vectors in ``tests/vectors/`` (format: src/typescript/VECTORS.md).

Both clients run every file: ``tests/test_vectors.py`` (Python) and
``src/typescript/test/vectors.test.ts`` (TypeScript). Index states are made by the Python
publisher (:mod:`modelmesh_connectors.publish.repository`) in a temporary directory, one
publisher call at a time, and snapshotted: each step serves the files that changed since the
previous step. Attacks then change what is served — bytes, envelopes, whole files, or how the
server answers (endless body, stall, 5xx, redirect) — and each step states the outcome as an
error code (ERROR-CODES.md), never a message.

Deterministic: keys come from fixed seeds (test keys, public by construction), the clock is
fixed, archives are packed with fixed timestamps and Ed25519 signatures are deterministic, so
running this again writes the same bytes (a test checks). Regenerate after changing the
publisher or the format::

    .venv/bin/python scripts/make_vectors.py            # writes tests/vectors/
    .venv/bin/python scripts/make_vectors.py --check    # exit 1 if a file would change
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fuzz.zips: the raw zip writer for hostile archives

from modelmesh_connectors._internal import record  # noqa: E402
from modelmesh_connectors.index.envelope import (  # noqa: E402
    INDEX_TYPE,
    RELEASE_TYPE,
    ROOT_TYPE,
    TIMESTAMP_TYPE,
    canonical_json,
    parse_envelope,
    sign,
)
from modelmesh_connectors.index.keys import SigningKey  # noqa: E402
from modelmesh_connectors.index.metadata import (  # noqa: E402
    BinNode,
    BinRelease,
    GroupNode,
    MetaRef,
    TimestampLink,
    parse_bin,
    parse_group,
    parse_timestamp,
)
from modelmesh_connectors.package.pack import pack_to_bytes  # noqa: E402
from modelmesh_connectors.publish import repository  # noqa: E402
from tests.fuzz.zips import UTF8_FLAG, RawEntry, build_raw_zip, extra_field  # noqa: E402

OUT = ROOT / "tests" / "vectors"
FORMAT = "modelmesh-conformance/1"
SEED = b"modelmesh-conformance/1 test key:"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ROOT_LIFE = 365 * DAY
TOP_LIFE = 30 * DAY
TS_LIFE = 7 * DAY
DEFAULT_ROOT_WALK = 32  # new roots per update (FORMAT.md §3), both clients
DEFAULT_HISTORY_WALK = 1024  # history links per update (FORMAT.md §3 history), both clients


def key(label: str) -> SigningKey:
    """A deterministic test key: the seed is public, so is the key (vectors only)."""
    seed = hashlib.sha256(SEED + label.encode()).digest()
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))


ROOT_KEYS = [key(f"root-{i}") for i in (1, 2, 3)]
INDEX_KEY = key("index")
TS_KEY = key("timestamp")
STRANGER = key("stranger")
ACME_KEY = key("publisher-acme")


def when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def vbytes(data: bytes) -> Any:
    """Bytes as a vector value: readable UTF-8 text when it is printable, else base64."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}
    if text.isprintable() or all(c.isprintable() or c in "\n\t" for c in text):
        return {"utf8": text}
    return {"b64": base64.b64encode(data).decode("ascii")}


def err(code: str) -> dict[str, Any]:
    return {"error": code}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- packages --------------------------------------------------------------------------------


def manifest_text(
    name: str,
    version: str,
    connectors: Sequence[tuple[str, str]] = (),
    runtimes: Sequence[str] = ("node", "python"),
) -> str:
    connectors = connectors or ((f"vec.{name}.v1", "observability"),)
    module = name.replace("-", "_")
    lines = [f"name: {name}", f'version: "{version}"', "description: Conformance vector package"]
    lines.append("connectors:")
    for cid, ctype in connectors:
        lines += [f"  - id: {cid}", f"    type: {ctype}"]
        if "python" in runtimes:
            lines.append(f"    entry: {module}.connector:Connector")
        if "node" in runtimes:
            lines.append("    node: {module: node/connector.mjs, export: Connector}")
    return "\n".join(lines) + "\n"


def package_zip(
    work: Path,
    name: str,
    version: str,
    connectors: Sequence[tuple[str, str]] = (),
    runtimes: Sequence[str] = ("node", "python"),
) -> bytes:
    """A real package, packed by ``pack`` (fixed timestamps: the same bytes every run)."""
    src = work / "src" / f"{name}-{version}-{'-'.join(runtimes)}"
    module = name.replace("-", "_")
    files = {"modelmesh-package.yaml": manifest_text(name, version, connectors, runtimes)}
    if "python" in runtimes:
        files[f"{module}/__init__.py"] = ""
        files[f"{module}/connector.py"] = "class Connector:\n    pass\n"
    if "node" in runtimes:
        files["node/connector.mjs"] = "export class Connector {}\n"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    data, _ = pack_to_bytes(src)
    return data


@dataclass(frozen=True)
class _Connector:
    id: str
    type: str


@dataclass(frozen=True)
class _Manifest:
    name: str
    version: str
    requires_modelmesh: str | None
    connectors: tuple[_Connector, ...]
    runtimes: tuple[str, ...]


@dataclass(frozen=True)
class _Claimed:
    manifest: _Manifest
    sha256: str
    length: int


def claiming(
    name: str,
    version: str,
    connectors: Sequence[tuple[str, str]],
    runtimes: Sequence[str] = ("node", "python"),
) -> Callable[[Path], _Claimed]:
    """An inspector that says what a careless publisher would sign, whatever the archive is.

    Lets the real publisher sign hostile archives (unsafe names, a manifest that differs from
    the release) so the vectors test the *client's* checks.
    """

    def inspect(path: Path) -> _Claimed:
        data = path.read_bytes()
        m = _Manifest(
            name, version, None, tuple(_Connector(i, t) for i, t in connectors), tuple(runtimes)
        )
        return _Claimed(m, sha(data), len(data))

    return inspect


# -- an index made by the publisher ----------------------------------------------------------


class World:
    """One index directory written by the publisher API, with a clock."""

    def __init__(
        self,
        work: Path,
        name: str,
        *,
        publishers: Sequence[repository.PublisherSpec] = (),
        ts_keys: Sequence[SigningKey] = (TS_KEY,),
        ts_threshold: int = 1,
        root_expires: datetime = T0 + ROOT_LIFE,
    ) -> None:
        self.work = work
        self.dir = work / "worlds" / name
        self.now = T0
        self.ts_keys = list(ts_keys)
        staged = repository.root_init(
            root_keys=[k.public for k in ROOT_KEYS],
            root_threshold=2,
            index_keys=[INDEX_KEY.public],
            index_threshold=1,
            timestamp_keys=[k.public for k in ts_keys],
            timestamp_threshold=ts_threshold,
            expires=root_expires,
            publishers=publishers,
        )
        self.anchor = staged.with_signature(ROOT_KEYS[0]).with_signature(ROOT_KEYS[1]).to_bytes()
        repository.init_repository(
            self.dir,
            self.anchor,
            INDEX_KEY,
            self.ts_keys,
            now=self.now,
            index_expiry=TOP_LIFE,
            timestamp_expiry=TS_LIFE,
        )

    def tick(self, delta: timedelta = HOUR) -> datetime:
        self.now += delta
        return self.now

    def publish(
        self,
        name: str,
        version: str,
        *,
        connectors: Sequence[tuple[str, str]] = (),
        runtimes: Sequence[str] = ("node", "python"),
        archive: bytes | None = None,
        inspect: Callable[[Path], Any] | None = None,
        release_keys: Sequence[SigningKey] | None = None,
        timestamp_expiry: timedelta = TS_LIFE,
        index_expiry: timedelta = TOP_LIFE,
    ) -> bytes:
        data = archive or package_zip(self.work, name, version, connectors, runtimes)
        path = self.work / "dist" / f"{name}-{version}.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.tick()
        repository.publish(
            self.dir,
            path,
            index_keys=INDEX_KEY,
            timestamp_keys=self.ts_keys,
            release_keys=release_keys,
            now=self.now,
            index_expiry=index_expiry,
            timestamp_expiry=timestamp_expiry,
            inspect=inspect,
        )
        return data

    def refresh_timestamp(self, expiry: timedelta = TS_LIFE, step: timedelta = HOUR) -> None:
        self.tick(step)
        repository.refresh_timestamp(self.dir, self.ts_keys, expiry, now=self.now)

    def fork(self, suffix: str) -> World:
        """A copy of this index that goes on separately: a second writer syncing its own copy
        without a compare-and-swap (FORMAT.md §3 history), or a server showing two branches."""
        other = copy.copy(self)
        other.dir = self.dir.with_name(f"{self.dir.name}-{suffix}")
        other.ts_keys = list(self.ts_keys)
        shutil.copytree(self.dir, other.dir)
        return other

    def yank(self, name: str, version: str) -> None:
        self.tick()
        repository.yank(
            self.dir,
            name,
            version,
            "broken",
            index_keys=INDEX_KEY,
            timestamp_keys=self.ts_keys,
            now=self.now,
            index_expiry=TOP_LIFE,
            timestamp_expiry=TS_LIFE,
        )

    def rotate(self, signers: Sequence[SigningKey], **changes: Any) -> bytes:
        """Publish root N+1 signed by ``signers``; returns its bytes."""
        staged = repository.root_rotate(self.dir, expires=T0 + ROOT_LIFE, **changes)
        for k in signers:
            staged = staged.with_signature(k)
        self.tick()
        root = repository.root_publish(self.dir, staged.to_bytes(), now=self.now)
        return (self.dir / "root" / f"{root.version}.json").read_bytes()

    def files(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.dir).as_posix(): p.read_bytes()
            for p in sorted(self.dir.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.parts[-3:])
        }

    def archive(self, name: str, version: str) -> str:
        return f"archives/{name}/{name}-{version}.zip"

    def pinned_top(self, files: Mapping[str, bytes] | None = None) -> str:
        """Path of the index top the served timestamp pins."""
        files = files or self.files()
        payload = json.loads(parse_envelope(files["timestamp.json"]).payload)
        return f"meta/{payload['index']['sha256']}.json"

    def nodes(self, files: Mapping[str, bytes] | None = None) -> tuple[str, str]:
        """Paths of the (single) group and bin node of a small index."""
        files = files or self.files()
        top = json.loads(parse_envelope(files[self.pinned_top(files)]).payload)
        [gref] = top["groups"].values()
        group = parse_group(files[f"meta/{gref['sha256']}.json"])
        [bref] = group.bins.values()
        return f"meta/{gref['sha256']}.json", bref.path

    def rewrite_bin(
        self,
        change: Callable[[dict[str, tuple[BinRelease, ...]]], dict[str, tuple[BinRelease, ...]]],
    ) -> None:
        """Re-sign the tree around a changed bin (a compromised index key can do this)."""
        state = repository.load_state(self.dir)
        gpath, bpath = self.nodes()
        group = parse_group((self.dir / gpath).read_bytes())
        node = parse_bin((self.dir / bpath).read_bytes())
        bin_bytes = BinNode(node.prefix, change(dict(node.packages))).to_payload()
        bref = MetaRef.of(bin_bytes)
        group_bytes = GroupNode(group.prefix, {node.prefix: bref}).to_payload()
        gref = MetaRef.of(group_bytes)
        self.tick()
        top = record.replace(
            state.top,
            version=state.top.version + 1,
            expires=self.now + TOP_LIFE,
            groups={group.prefix: gref},
        )
        top_bytes = sign(INDEX_TYPE, top.to_payload(), [INDEX_KEY]).to_bytes()
        for data in (bin_bytes, group_bytes, top_bytes):
            (self.dir / MetaRef.of(data).path).write_bytes(data)
        self.write_timestamp(
            version=state.timestamp.version + 1,
            index_version=top.version,
            index=MetaRef.of(top_bytes),
        )

    def write_timestamp(self, signers: Sequence[SigningKey] | None = None, **changes: Any) -> bytes:
        """Write a timestamp changed from the current one (by dataclass fields), signed."""
        state = repository.load_state(self.dir)
        changes.setdefault("expires", self.now + TS_LIFE)
        ts = record.replace(state.timestamp, **changes)
        data = sign(TIMESTAMP_TYPE, ts.to_payload(), signers or self.ts_keys).to_bytes()
        (self.dir / "timestamp.json").write_bytes(data)
        return data


# -- envelope surgery (independent of the payload's fields) ----------------------------------


def envelope_obj(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(data)
    return obj


def unsigned(data: bytes) -> bytes:
    obj = envelope_obj(data)
    obj["signatures"] = []
    return canonical_json(obj)


def flip_signature(data: bytes) -> bytes:
    obj = envelope_obj(data)
    sig = bytearray(base64.b64decode(obj["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    obj["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return canonical_json(obj)


def resigned(data: bytes, signers: Sequence[SigningKey], payload_type: str | None = None) -> bytes:
    env = parse_envelope(data)
    return sign(payload_type or env.payload_type, env.payload, signers).to_bytes()


def with_payload(
    data: bytes, change: Callable[[dict[str, Any]], None], signers: Sequence[SigningKey]
) -> bytes:
    """Re-sign an envelope whose payload JSON was changed (a key holder's forgery)."""
    env = parse_envelope(data)
    obj = json.loads(env.payload)
    change(obj)
    return sign(env.payload_type, canonical_json(obj), signers).to_bytes()


def duplicate_signature(data: bytes) -> bytes:
    obj = envelope_obj(data)
    obj["signatures"] = obj["signatures"] * 2
    return canonical_json(obj)


def flip_byte(data: bytes, at: int | None = None) -> bytes:
    out = bytearray(data)
    out[len(out) // 2 if at is None else at] ^= 0x01
    return bytes(out)


# -- cases -----------------------------------------------------------------------------------


@dataclass
class Sequence_:
    """One index-sequence case: steps serve deltas of the full file set they name."""

    name: str
    trust_root: bytes
    steps: list[dict[str, Any]] = field(default_factory=list)
    _served: dict[str, bytes] = field(default_factory=dict)
    _now: datetime = T0

    def step(
        self,
        files: Mapping[str, bytes],
        now: datetime,
        action: dict[str, Any],
        expect: dict[str, Any],
        *,
        misbehave: Mapping[str, dict[str, Any]] | None = None,
        by_runtime: Mapping[str, dict[str, Any]] | None = None,
    ) -> Sequence_:
        if self.steps and now <= self._now:
            raise ValueError(f"{self.name}: 'now' must increase from step to step")
        serve: dict[str, Any] = {}
        for path in sorted(set(files) | set(self._served)):
            if path not in files:
                serve[path] = None
            elif self._served.get(path) != files[path]:
                serve[path] = vbytes(files[path])
        self._served, self._now = dict(files), now
        step: dict[str, Any] = {
            "serve": serve,
            "now": when(now),
            "action": action,
            "expect": expect,
        }
        if misbehave:
            step["misbehave"] = dict(misbehave)
        if by_runtime:
            step["expect_by_runtime"] = dict(by_runtime)
        self.steps.append(step)
        return self

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "trust_root": vbytes(self.trust_root), "steps": self.steps}


REFRESH = {"op": "refresh"}


def resolve(requirement: str, prereleases: bool = False) -> dict[str, Any]:
    return {"op": "resolve", "requirement": requirement, "prereleases": prereleases}


def fresh(ts: int, index: int, root: int = 1) -> dict[str, Any]:
    return {"ok": True, "root_version": root, "timestamp_version": ts, "index_version": index}


def loaded(name: str, version: str, data: bytes) -> dict[str, Any]:
    return {"ok": True, "name": name, "version": version, "sha256": sha(data)}


class Generator:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.files: dict[str, tuple[str, str, list[dict[str, Any]]]] = {}
        self._worlds = 0

    def world(self, **kwargs: Any) -> World:
        self._worlds += 1
        return World(self.work, f"w{self._worlds}", **kwargs)

    def seq(self, category: str, name: str, world: World, anchor: bytes | None = None) -> Sequence_:
        s = Sequence_(name, anchor or world.anchor)
        self.add(f"index-{category}", "index-sequence", s)
        return s

    def add(self, file: str, suite: str, case: Any, description: str = "") -> None:
        entry = self.files.setdefault(file, (suite, description, []))
        entry[2].append(case)

    def describe(self, file: str, suite: str, description: str) -> None:
        self.files[file] = (suite, description, self.files.get(file, ("", "", []))[2])

    def write(self, out: Path) -> dict[str, bytes]:
        written: dict[str, bytes] = {}
        for file, (suite, description, cases) in sorted(self.files.items()):
            body = {
                "format": FORMAT,
                "suite": suite,
                "description": description,
                "cases": [c.to_json() if isinstance(c, Sequence_) else c for c in cases],
            }
            text = json.dumps(body, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
            written[f"{file}.json"] = text.encode("ascii")
        return written


# -- index sequences -------------------------------------------------------------------------

PKG = "vec-sink"
SINK = [("vec.sink.v1", "observability")]


def basic(g: Generator) -> tuple[World, bytes]:
    w = g.world()
    data = w.publish(PKG, "1.0.0", connectors=SINK)
    return w, data


def index_baseline(g: Generator) -> None:
    g.describe("index-baseline", "index-sequence", "Honest index states: what must load.")
    w, data = basic(g)
    files = w.files()
    g.seq("baseline", "fresh refresh", w).step(files, w.tick(), REFRESH, fresh(2, 2))
    g.seq("baseline", "fresh resolve and download", w).step(
        files, w.tick(), resolve(PKG), loaded(PKG, "1.0.0", data)
    )
    newer = w.publish(PKG, "1.1.0", connectors=SINK)
    w.publish(PKG, "2.0.0a1", connectors=SINK)
    w.yank(PKG, "1.1.0")
    later = w.files()
    (
        g.seq("baseline", "updates follow the newest state; yanked and pre-releases", w)
        .step(files, w.now + HOUR, resolve(PKG), loaded(PKG, "1.0.0", data))
        .step(later, w.now + 2 * HOUR, REFRESH, fresh(5, 5))
        .step(later, w.now + 3 * HOUR, resolve(PKG), loaded(PKG, "1.0.0", data))
        .step(later, w.now + 4 * HOUR, resolve(f"{PKG}==1.1.0"), loaded(PKG, "1.1.0", newer))
        .step(later, w.now + 5 * HOUR, resolve(f"{PKG}>=1.1"), err("resolution"))
        .step(later, w.now + 6 * HOUR, resolve("no-such-package"), err("resolution"))
    )
    w2, _ = basic(g)
    w2.refresh_timestamp()
    g.seq("baseline", "a re-signed timestamp with the same top", w2).step(
        w2.files(), w2.tick(), REFRESH, fresh(3, 2)
    )


def index_signature(g: Generator) -> None:
    g.describe(
        "index-signature",
        "index-sequence",
        "Signatures: unsigned, invalid, untrusted or wrong-role keys, wrong payload type, "
        "malformed envelopes (FORMAT.md §2).",
    )
    w, _ = basic(g)
    files = w.files()
    ts = files["timestamp.json"]
    top_path = w.pinned_top(files)
    top = files[top_path]

    def case(
        name: str,
        changed: Mapping[str, bytes],
        expect: dict[str, Any],
        action: dict[str, Any] = REFRESH,
    ) -> None:
        g.seq("signature", name, w).step({**files, **changed}, w.now + HOUR, action, expect)

    case("unsigned timestamp", {"timestamp.json": unsigned(ts)}, err("trust.signature"))
    case(
        "invalid timestamp signature",
        {"timestamp.json": flip_signature(ts)},
        err("trust.signature"),
    )
    case(
        "timestamp signed by an untrusted key",
        {"timestamp.json": resigned(ts, [STRANGER])},
        err("trust.signature"),
    )
    case(
        "timestamp signed by the index key (wrong role)",
        {"timestamp.json": resigned(ts, [INDEX_KEY])},
        err("trust.signature"),
    )
    case("unsigned index top", {top_path: unsigned(top)}, err("trust.length"))
    case(
        "release served as the timestamp (wrong payload type)",
        {"timestamp.json": resigned(ts, [TS_KEY], RELEASE_TYPE)},
        err("trust.signature"),
    )
    case("malformed envelope", {"timestamp.json": b'{"payloadType": '}, err("trust.signature"))
    case(
        "envelope with a fourth key",
        {"timestamp.json": canonical_json({**envelope_obj(ts), "extra": 1})},
        err("trust.signature"),
    )
    case(
        "envelope signature of the wrong length",
        {
            "timestamp.json": canonical_json(
                {
                    **envelope_obj(ts),
                    "signatures": [
                        {"keyid": TS_KEY.keyid, "sig": base64.b64encode(b"x" * 63).decode()}
                    ],
                }
            )
        },
        err("trust.signature"),
    )
    # A release inside the bin signed by a stranger: the tree around it is validly signed.
    ws, _ = basic(g)
    ws.rewrite_bin(
        lambda pk: {
            n: tuple(
                BinRelease(
                    e.version,
                    parse_envelope(resigned(e.release.to_bytes(), [STRANGER])),
                    e.yanked,
                    e.yanked_reason,
                )
                for e in es
            )
            for n, es in pk.items()
        }
    )
    g.seq("signature", "release in the bin signed by an untrusted key", ws).step(
        ws.files(), ws.tick(), resolve(PKG), err("trust.signature")
    )


def index_threshold(g: Generator) -> None:
    g.describe(
        "index-threshold",
        "index-sequence",
        "Thresholds count distinct trusted keys with a valid signature (FORMAT.md §2).",
    )
    k2 = key("timestamp-2")
    w = g.world(ts_keys=[TS_KEY, k2], ts_threshold=2)
    w.publish(PKG, "1.0.0", connectors=SINK)
    files = w.files()
    ts = files["timestamp.json"]
    g.seq("threshold", "two of two timestamp keys", w).step(files, w.tick(), REFRESH, fresh(2, 2))
    one = resigned(ts, [TS_KEY])
    g.seq("threshold", "one of two timestamp keys", w).step(
        {**files, "timestamp.json": one}, w.now + HOUR, REFRESH, err("trust.signature")
    )
    g.seq("threshold", "one key counted twice", w).step(
        {**files, "timestamp.json": duplicate_signature(one)},
        w.now + HOUR,
        REFRESH,
        err("trust.signature"),
    )
    g.seq("threshold", "a stranger does not make up the threshold", w).step(
        {**files, "timestamp.json": resigned(ts, [TS_KEY, STRANGER])},
        w.now + HOUR,
        REFRESH,
        err("trust.signature"),
    )
    # Root rotation needs a threshold of the old root's keys too.
    wr, _ = basic(g)
    before = wr.files()
    staged = repository.root_rotate(wr.dir, expires=T0 + ROOT_LIFE)
    root2 = staged.with_signature(ROOT_KEYS[0]).to_bytes()  # 1 of 2
    g.seq("threshold", "root 2 signed by one root key of two needed", wr).step(
        {**before, "root/2.json": root2}, wr.tick(), REFRESH, err("trust.signature")
    )


def index_rollback(g: Generator) -> None:
    g.describe(
        "index-rollback",
        "index-sequence",
        "Rollback against the client's stored state (FORMAT.md §4): older timestamp, same "
        "version with other bytes, a lower pinned index version.",
    )
    w, _ = basic(g)
    old = w.files()
    w.publish(PKG, "1.1.0", connectors=SINK)
    new = w.files()
    (
        g.seq("rollback", "older timestamp after a newer one", w)
        .step(new, w.tick(), REFRESH, fresh(3, 3))
        .step(old, w.tick(), REFRESH, err("trust.rollback"))
    )
    same_version = w.write_timestamp(expires=w.now + 3 * DAY)
    other = {**new, "timestamp.json": same_version}
    (
        g.seq("rollback", "same timestamp version with other bytes", w)
        .step(new, w.tick(), REFRESH, fresh(3, 3))
        .step(other, w.tick(), REFRESH, err("trust.rollback"))
    )
    # A newer timestamp pinning an older index version (a compromised timestamp key).
    state = repository.load_state(w.dir)
    lower = w.write_timestamp(
        version=state.timestamp.version + 1,
        index_version=2,
        index=MetaRef.of(old[w.pinned_top(old)]),
    )
    (
        g.seq("rollback", "newer timestamp pinning an older index top", w)
        .step(new, w.tick(), REFRESH, fresh(3, 3))
        .step({**old, "timestamp.json": lower}, w.tick(), REFRESH, err("trust.rollback"))
    )
    (
        g.seq("rollback", "a state older than the stored one resolves nothing", w)
        .step(new, w.tick(), resolve(PKG), {"ok": True, "version": "1.1.0"})
        .step(old, w.tick(), resolve(PKG), err("trust.rollback"))
    )


def index_expiry(g: Generator) -> None:
    g.describe(
        "index-expiry",
        "index-sequence",
        "Freeze attacks: timestamp, index top or root past `expires` at the injected time.",
    )
    w, _ = basic(g)
    files = w.files()
    g.seq("expiry", "timestamp expired (freeze)", w).step(
        files, T0 + 8 * DAY, REFRESH, err("trust.expired")
    )
    g.seq("expiry", "timestamp expires at exactly now", w).step(
        files, w.now + TS_LIFE, REFRESH, err("trust.expired")
    )
    g.seq("expiry", "a second before the timestamp expires", w).step(
        files, w.now + TS_LIFE - timedelta(seconds=1), REFRESH, fresh(2, 2)
    )
    (
        g.seq("expiry", "a frozen mirror after a good refresh", w)
        .step(files, w.now + HOUR, REFRESH, fresh(2, 2))
        .step(files, T0 + 9 * DAY, resolve(PKG), err("trust.expired"))
    )
    wt, _ = basic(g)
    wt.publish(PKG, "1.1.0", connectors=SINK, index_expiry=2 * DAY, timestamp_expiry=20 * DAY)
    g.seq("expiry", "index top expired under a fresh timestamp", wt).step(
        wt.files(), T0 + 3 * DAY, REFRESH, err("trust.expired")
    )
    wr = g.world(root_expires=T0 + 20 * DAY)
    wr.publish(PKG, "1.0.0", connectors=SINK, timestamp_expiry=40 * DAY, index_expiry=40 * DAY)
    g.seq("expiry", "root expired", wr).step(
        wr.files(), T0 + 21 * DAY, REFRESH, err("trust.expired")
    )


def index_mix_and_match(g: Generator) -> None:
    g.describe(
        "index-mix-and-match",
        "index-sequence",
        "Files from different index states or packages served together.",
    )
    w, _ = basic(g)
    old = w.files()
    old_group, old_bin = w.nodes(old)
    w.publish("vec-other", "1.0.0", connectors=[("vec.other.v1", "observability")])
    new = w.files()
    new_group, new_bin = w.nodes(new)
    g.seq("mix-and-match", "old bin served under the new bin's name", w).step(
        {**new, new_bin: old[old_bin]}, w.tick(), resolve(PKG), err("trust.hash")
    )
    g.seq("mix-and-match", "old group served under the new group's name", w).step(
        {**new, new_group: old[old_group]}, w.tick(), resolve(PKG), err("trust.hash")
    )
    new_top = w.pinned_top(new)
    g.seq("mix-and-match", "old top served under the new top's name", w).step(
        {**new, new_top: old[w.pinned_top(old)]}, w.tick(), REFRESH, err("trust.hash")
    )
    # A signed bin entry moved to another package's name (a compromised index key).
    wm, _ = basic(g)
    wm.publish("vec-other", "1.0.0", connectors=[("vec.other.v1", "observability")])
    wm.rewrite_bin(lambda pk: {**pk, "vec-other": pk[PKG]})
    g.seq("mix-and-match", "bin entry names another package's release", wm).step(
        wm.files(), wm.tick(), resolve("vec-other"), err("trust.policy")
    )


def index_rotation(g: Generator) -> None:
    g.describe(
        "index-rotation",
        "index-sequence",
        "Root rotation: the walk, both thresholds, exact versions, revoked keys (FORMAT.md §3).",
    )
    w, data = basic(g)
    before = w.files()
    new_ts = key("timestamp-rotated")
    root2 = w.rotate(ROOT_KEYS[:2], timestamp_keys=[new_ts.public])
    w.ts_keys = [new_ts]
    w.refresh_timestamp()
    after = w.files()
    (
        g.seq("rotation", "good rotation with a new timestamp key", w)
        .step(before, w.now + HOUR, REFRESH, fresh(2, 2))
        .step(after, w.now + 2 * HOUR, REFRESH, fresh(3, 2, root=2))
        .step(after, w.now + 3 * HOUR, resolve(PKG), loaded(PKG, "1.0.0", data))
    )
    g.seq("rotation", "old timestamp key after the rotation", w).step(
        {**after, "timestamp.json": resigned(after["timestamp.json"], [TS_KEY])},
        w.now + HOUR,
        REFRESH,
        err("trust.signature"),
    )
    skipped = with_payload(root2, lambda p: p.update(version=3), ROOT_KEYS[:2])
    g.seq("rotation", "root 2 says version 3", w).step(
        {**before, "root/2.json": skipped}, w.now + HOUR, REFRESH, err("trust.root-rotation")
    )
    g.seq("rotation", "root 2 says version 1", w).step(
        {
            **before,
            "root/2.json": with_payload(root2, lambda p: p.update(version=1), ROOT_KEYS[:2]),
        },
        w.now + HOUR,
        REFRESH,
        err("trust.root-rotation"),
    )
    new_root_key = key("root-new")
    only_new = with_payload(
        root2,
        lambda p: (
            p["keys"].update(
                {
                    new_root_key.keyid: {
                        "keytype": "ed25519",
                        "public": new_root_key.public.public_hex,
                    }
                }
            ),
            p["roles"]["root"].update(keyids=[new_root_key.keyid], threshold=1),
        ),
        [new_root_key],
    )
    g.seq("rotation", "root 2 signed only by its own new keys", w).step(
        {**before, "root/2.json": only_new}, w.now + HOUR, REFRESH, err("trust.signature")
    )
    g.seq("rotation", "root 2 with an invalid signature", w).step(
        {**before, "root/2.json": flip_signature(root2)},
        w.now + HOUR,
        REFRESH,
        err("trust.signature"),
    )
    g.seq("rotation", "timestamp served as root 2", w).step(
        {**before, "root/2.json": resigned(root2, ROOT_KEYS[:2], TIMESTAMP_TYPE)},
        w.now + HOUR,
        REFRESH,
        err("trust.signature"),
    )


def index_root_walk(g: Generator) -> None:
    """At most 32 new roots per update (FORMAT.md §3); the walked roots stay trusted."""
    w, data = basic(g)
    for _ in range(DEFAULT_ROOT_WALK):
        w.rotate(ROOT_KEYS[:2])
    at_bound = w.files()
    (
        g.seq("rotation", "32 new roots in one update are walked (the bound)", w)
        .step(at_bound, w.tick(), REFRESH, fresh(2, 2, root=1 + DEFAULT_ROOT_WALK))
        .step(at_bound, w.tick(), resolve(PKG), loaded(PKG, "1.0.0", data))
    )
    w.rotate(ROOT_KEYS[:2])
    past = w.files()
    # Reaching the bound is not a failure: the update goes on with root 33, and the next
    # update continues the walk from there.
    (
        g.seq("rotation", "33 new roots: 32 walked in one update, the rest in the next", w)
        .step(past, w.tick(), REFRESH, fresh(2, 2, root=1 + DEFAULT_ROOT_WALK))
        .step(past, w.tick(), REFRESH, fresh(2, 2, root=2 + DEFAULT_ROOT_WALK))
        .step(past, w.tick(), resolve(PKG), loaded(PKG, "1.0.0", data))
    )


def index_hash_length(g: Generator) -> None:
    g.describe(
        "index-hash-length",
        "index-sequence",
        "Bytes that are not the signed ones: archives and nodes (hash, length, caps).",
    )
    w, data = basic(g)
    files = w.files()
    path = w.archive(PKG, "1.0.0")
    gpath, bpath = w.nodes(files)
    top = w.pinned_top(files)

    def case(
        name: str, changed: Mapping[str, bytes], expect: dict[str, Any], action: dict[str, Any]
    ) -> None:
        g.seq("hash-length", name, w).step({**files, **changed}, w.now + HOUR, action, expect)

    case("archive with one byte changed", {path: flip_byte(data)}, err("trust.hash"), resolve(PKG))
    case("archive one byte longer", {path: data + b"\0"}, err("trust.length"), resolve(PKG))
    case("archive one byte shorter", {path: data[:-1]}, err("trust.length"), resolve(PKG))
    other = package_zip(w.work, PKG, "1.0.0", SINK, ("node",))
    case(
        "archive replaced by another valid package",
        {path: other},
        err("trust.hash") if len(other) == len(data) else err("trust.length"),
        resolve(PKG),
    )
    case(
        "bin node with one byte changed",
        {bpath: flip_byte(files[bpath])},
        err("trust.hash"),
        resolve(PKG),
    )
    case(
        "group node one byte longer",
        {gpath: files[gpath] + b" "},
        err("trust.length"),
        resolve(PKG),
    )
    case("index top one byte longer", {top: files[top] + b" "}, err("trust.length"), REFRESH)
    missing = dict(files)
    del missing[path]
    g.seq("hash-length", "archive missing", w).step(
        missing, w.now + HOUR, resolve(PKG), err("download")
    )
    no_top = dict(files)
    del no_top[top]
    g.seq("hash-length", "pinned index top missing", w).step(
        no_top, w.now + HOUR, REFRESH, err("download")
    )


def index_server(g: Generator) -> None:
    g.describe(
        "index-server",
        "index-sequence",
        "A misbehaving server: endless bodies, stalls, 5xx, 404, redirects (FORMAT.md §4 caps).",
    )
    w, data = basic(g)
    files = w.files()
    path = w.archive(PKG, "1.0.0")

    def case(
        name: str,
        misbehave: dict[str, dict[str, Any]],
        expect: dict[str, Any],
        action: dict[str, Any] = REFRESH,
    ) -> None:
        g.seq("server", name, w).step(files, w.now + HOUR, action, expect, misbehave=misbehave)

    case("endless timestamp", {"timestamp.json": {"kind": "endless"}}, err("trust.length"))
    case("endless archive", {path: {"kind": "endless"}}, err("trust.length"), resolve(PKG))
    case("timestamp stalls", {"timestamp.json": {"kind": "stall"}}, err("download"))
    case(
        "timestamp answers 503",
        {"timestamp.json": {"kind": "status", "status": 503}},
        err("download"),
    )
    case(
        "timestamp answers 404",
        {"timestamp.json": {"kind": "status", "status": 404}},
        err("download"),
    )
    case("root 2 answers 500", {"root/2.json": {"kind": "status", "status": 500}}, err("download"))
    g.seq("server", "archive redirected within the server", w).step(
        {**files, "mirror/" + path: data},
        w.now + HOUR,
        resolve(PKG),
        loaded(PKG, "1.0.0", data),
        misbehave={path: {"kind": "redirect", "to": "mirror/" + path}},
    )
    case(
        "timestamp redirected to plain http off loopback",
        {"timestamp.json": {"kind": "redirect", "url": "http://mirror.invalid/timestamp.json"}},
        err("trust.policy"),
    )


def index_policy(g: Generator) -> None:
    g.describe(
        "index-policy",
        "index-sequence",
        "Signed but not allowed: publisher namespaces, a manifest that differs from its "
        "signed release (FORMAT.md §3).",
    )
    acme = repository.PublisherSpec("acme", (ACME_KEY.public,), 1, ("acme",))
    w = g.world(publishers=[acme])
    good = w.publish(
        "acme-sink",
        "1.0.0",
        connectors=[("acme.sink.v1", "observability")],
        release_keys=[ACME_KEY],
    )
    g.seq("policy", "publisher inside its namespace", w).step(
        w.files(), w.tick(), resolve("acme-sink"), loaded("acme-sink", "1.0.0", good)
    )
    # The publisher's key signs a release naming another namespace (signed by hand: the
    # publisher tool refuses to).
    ws = g.world(publishers=[acme])
    ws.publish("squat", "1.0.0", connectors=[("vec.squat.v1", "observability")])
    ws.rewrite_bin(
        lambda pk: {
            n: tuple(
                BinRelease(
                    e.version,
                    parse_envelope(resigned(e.release.to_bytes(), [ACME_KEY])),
                    e.yanked,
                    e.yanked_reason,
                )
                for e in es
            )
            for n, es in pk.items()
        }
    )
    g.seq("policy", "publisher key signs outside its namespace", ws).step(
        ws.files(), ws.tick(), resolve("squat"), err("trust.policy")
    )
    wm = g.world()
    real = package_zip(wm.work, "vec-liar", "1.0.0", [("vec.liar.v1", "observability")])
    wm.publish(
        "vec-liar",
        "1.0.0",
        archive=real,
        inspect=claiming("vec-liar", "1.0.0", [("vec.innocent.v1", "observability")]),
    )
    g.seq("policy", "archive's manifest declares other connectors than the release", wm).step(
        wm.files(), wm.tick(), resolve("vec-liar"), err("trust.policy")
    )
    wv = g.world()
    v2 = package_zip(wv.work, "vec-ver", "2.0.0", SINK)
    wv.publish("vec-ver", "1.0.0", archive=v2, inspect=claiming("vec-ver", "1.0.0", SINK))
    g.seq("policy", "archive's manifest states another version", wv).step(
        wv.files(), wv.tick(), resolve("vec-ver"), err("trust.policy")
    )
    wr = g.world()
    both = package_zip(wr.work, "vec-rt", "1.0.0", SINK, ("node", "python"))
    wr.publish(
        "vec-rt", "1.0.0", archive=both, inspect=claiming("vec-rt", "1.0.0", SINK, ("node",))
    )
    g.seq("policy", "archive's runtimes differ from the signed runtimes", wr).step(
        wr.files(),
        wr.tick(),
        resolve("vec-rt"),
        err("trust.policy"),
        by_runtime={"python": err("package.no-entry-point"), "node": err("trust.policy")},
    )


def index_runtimes(g: Generator) -> None:
    g.describe(
        "index-runtimes",
        "index-sequence",
        "Entry points per runtime (FORMAT.md §7): a client refuses a release without its "
        "runtime before downloading it.",
    )
    w = g.world()
    node_only = w.publish(
        "vec-node", "1.0.0", connectors=[("vec.node.v1", "observability")], runtimes=("node",)
    )
    py_only = w.publish(
        "vec-py", "1.0.0", connectors=[("vec.py.v1", "observability")], runtimes=("python",)
    )
    files = w.files()
    g.seq("runtimes", "a Node-only release", w).step(
        files,
        w.tick(),
        resolve("vec-node"),
        loaded("vec-node", "1.0.0", node_only),
        by_runtime={
            "python": err("package.no-entry-point"),
            "node": loaded("vec-node", "1.0.0", node_only),
        },
    )
    g.seq("runtimes", "a Python-only release", w).step(
        files,
        w.tick(),
        resolve("vec-py"),
        loaded("vec-py", "1.0.0", py_only),
        by_runtime={
            "python": loaded("vec-py", "1.0.0", py_only),
            "node": err("package.no-entry-point"),
        },
    )
    missing = dict(files)
    del missing[w.archive("vec-node", "1.0.0")]
    g.seq("runtimes", "refused before the download", w).step(
        missing,
        w.tick(),
        resolve("vec-node"),
        err("download"),
        by_runtime={"python": err("package.no-entry-point"), "node": err("download")},
    )


def hostile_zip_entries() -> list[tuple[str, list[RawEntry], str]]:
    manifest = manifest_text("vec-zip", "1.0.0", SINK).encode()
    m = RawEntry(b"modelmesh-package.yaml", manifest)
    py = [
        RawEntry(b"vec_zip/__init__.py", b""),
        RawEntry(b"vec_zip/connector.py", b"class Connector:\n    pass\n"),
        RawEntry(b"node/connector.mjs", b"export class Connector {}\n"),
    ]
    return [
        ("traversal", [m, *py, RawEntry(b"../evil.mjs", b"x")], "package.archive"),
        (
            "duplicate entry",
            [m, *py, RawEntry(b"a.txt", b"1"), RawEntry(b"a.txt", b"2")],
            "package.archive",
        ),
        ("symlink", [m, *py, RawEntry(b"link", b"/etc/passwd", mode=0o120777)], "package.archive"),
    ]


def index_zip(g: Generator) -> None:
    g.describe(
        "index-zip",
        "index-sequence",
        "Validly signed hostile archives: the reader refuses them (FORMAT.md §6).",
    )
    for name, entries, code in hostile_zip_entries():
        w = g.world()
        data = build_raw_zip(entries)
        w.publish("vec-zip", "1.0.0", archive=data, inspect=claiming("vec-zip", "1.0.0", SINK))
        g.seq("zip", f"signed archive: {name}", w).step(
            w.files(), w.tick(), resolve("vec-zip"), err(code)
        )


def index_strict(g: Generator) -> None:
    g.describe(
        "index-strict",
        "index-sequence",
        "Signed payloads that break the strict rules: integer bounds, duplicate keys, floats, "
        "unknown fields; small-order keys in a root (FORMAT.md §2-3).",
    )
    w, _ = basic(g)
    files = w.files()
    ts = files["timestamp.json"]

    def raw_payload(text: bytes) -> bytes:
        return sign(TIMESTAMP_TYPE, text, [TS_KEY]).to_bytes()

    payload = parse_envelope(ts).payload
    obj = json.loads(payload)
    big = canonical_json({**obj, "version": 2**53})
    g.seq("strict", "timestamp version 2^53", w).step(
        {**files, "timestamp.json": raw_payload(big)}, w.now + HOUR, REFRESH, err("trust.metadata")
    )
    top_len = dict(obj["index"])
    top_len["length"] = 2**53 - 1
    g.seq("strict", "pinned length 2^53-1 over the node cap", w).step(
        {**files, "timestamp.json": raw_payload(canonical_json({**obj, "index": top_len}))},
        w.now + HOUR,
        REFRESH,
        err("trust.length"),
    )
    dup = payload[:-1] + b',"version":99}'
    g.seq("strict", "timestamp payload with a duplicate key", w).step(
        {**files, "timestamp.json": raw_payload(dup)}, w.now + HOUR, REFRESH, err("trust.metadata")
    )
    flt = payload.replace(b'"spec":1', b'"spec":1.0')
    g.seq("strict", "timestamp payload with a float", w).step(
        {**files, "timestamp.json": raw_payload(flt)}, w.now + HOUR, REFRESH, err("trust.metadata")
    )
    extra = canonical_json({**obj, "note": "x"})
    g.seq("strict", "timestamp payload with an unknown field", w).step(
        {**files, "timestamp.json": raw_payload(extra)},
        w.now + HOUR,
        REFRESH,
        err("trust.metadata"),
    )
    boolean = canonical_json({**obj, "version": True})
    g.seq("strict", "timestamp version true", w).step(
        {**files, "timestamp.json": raw_payload(boolean)},
        w.now + HOUR,
        REFRESH,
        err("trust.metadata"),
    )
    env_dup = ts[:-1] + b',"payloadType":"' + TIMESTAMP_TYPE.encode() + b'"}'
    g.seq("strict", "envelope with a duplicate key", w).step(
        {**files, "timestamp.json": env_dup}, w.now + HOUR, REFRESH, err("trust.signature")
    )
    # A trust root listing a small-order key (here as a third timestamp key: still refused).
    anchor = parse_envelope(w.anchor)
    root = json.loads(anchor.payload)
    small = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
    kid = sha(bytes.fromhex(small))
    root["keys"][kid] = {"keytype": "ed25519", "public": small}
    root["roles"]["timestamp"]["keyids"] = sorted([*root["roles"]["timestamp"]["keyids"], kid])
    bad_anchor = sign(ROOT_TYPE, canonical_json(root), ROOT_KEYS[:2]).to_bytes()
    g.seq("strict", "trust root with a small-order key", w, anchor=bad_anchor).step(
        files, w.now + HOUR, REFRESH, err("trust.metadata")
    )


# -- pure suites -----------------------------------------------------------------------------


def strict_json_cases(g: Generator) -> None:
    f = "strict-json"
    g.describe(f, "strict-json", "The strict JSON reader (FORMAT.md §2): value or input.json.")
    ok = [
        ("object", '{"a":[1,true,null,"x"]}', {"a": [1, True, None, "x"]}),
        ("largest safe integer", "[9007199254740991]", [9007199254740991]),
        ("smallest safe integer", "[-9007199254740991]", [-9007199254740991]),
        ("minus zero is 0", "[-0]", [0]),
        ("escapes", '["\\u00e9\\n\\"\\\\"]', ['\u00e9\n"\\']),
        ("whitespace", ' { "a" : 1 } \n', {"a": 1}),
        ("nesting of 512", "[" * 512 + "]" * 512, None),
        ("__proto__ is a plain key", '{"__proto__":{"a":1}}', {"__proto__": {"a": 1}}),
    ]
    for name, text, value in ok:
        expect: dict[str, Any] = {"ok": True}
        if value is not None:
            expect["value"] = value
        g.add(f, f, {"name": name, "input": {"utf8": text}, "expect": expect})
    bad = [
        ("duplicate key", {"utf8": '{"a":1,"a":2}'}),
        ("duplicate key nested", {"utf8": '[{"b":{"a":1,"a":1}}]'}),
        ("float", {"utf8": '{"a":1.0}'}),
        ("exponent", {"utf8": "[1e3]"}),
        ("integer beyond 2^53-1", {"utf8": "[9007199254740992]"}),
        ("negative integer beyond", {"utf8": "[-9007199254740992]"}),
        ("huge integer", {"utf8": "[" + "9" * 400 + "]"}),
        ("NaN", {"utf8": "[NaN]"}),
        ("Infinity", {"utf8": "[-Infinity]"}),
        ("BOM", {"hex": "efbbbf7b7d"}),
        ("invalid UTF-8", {"hex": "22ff22"}),
        ("UTF-16", {"hex": "fffe7b007d00"}),
        ("nesting of 513", {"utf8": "[" * 513 + "]" * 513}),
        ("trailing comma", {"utf8": "[1,]"}),
        ("single quotes", {"utf8": "{'a':1}"}),
        ("trailing data", {"utf8": "{} {}"}),
        ("leading zero", {"utf8": "[01]"}),
        ("empty", {"utf8": ""}),
        ("raw control character in a string", {"utf8": '["a\tb"]'}),
    ]
    for name, data in bad:
        g.add(f, f, {"name": name, "input": data, "expect": err("input.json")})


def envelope_cases(g: Generator) -> None:
    f = "envelope"
    g.describe(f, "envelope", "DSSE parsing and threshold counting (FORMAT.md §2).")
    k1, k2 = key("env-1"), key("env-2")
    payload = b'{"type":"timestamp"}'
    keys = {k1.keyid: k1.public.public_hex, k2.keyid: k2.public.public_hex}

    def case(
        name: str,
        env: bytes,
        threshold: int,
        expect: dict[str, Any],
        keyids: Sequence[str] | None = None,
    ) -> None:
        g.add(
            f,
            f,
            {
                "name": name,
                "input": {
                    "envelope": vbytes(env),
                    "expected_type": TIMESTAMP_TYPE,
                    "keys": keys,
                    "keyids": list(keyids or [k1.keyid, k2.keyid]),
                    "threshold": threshold,
                },
                "expect": expect,
            },
        )

    both = sign(TIMESTAMP_TYPE, payload, [k1, k2]).to_bytes()
    case("two of two", both, 2, {"ok": True, "valid_keyids": sorted([k1.keyid, k2.keyid])})
    case(
        "one of two needed two",
        sign(TIMESTAMP_TYPE, payload, [k1]).to_bytes(),
        2,
        err("trust.signature"),
    )
    case(
        "one of two needed one",
        sign(TIMESTAMP_TYPE, payload, [k1]).to_bytes(),
        1,
        {"ok": True, "valid_keyids": [k1.keyid]},
    )
    case(
        "stranger does not count",
        sign(TIMESTAMP_TYPE, payload, [k1, STRANGER]).to_bytes(),
        2,
        err("trust.signature"),
    )
    case(
        "a key outside the role does not count", both, 2, err("trust.signature"), keyids=[k1.keyid]
    )
    case(
        "duplicate signature counts once",
        duplicate_signature(sign(TIMESTAMP_TYPE, payload, [k1]).to_bytes()),
        2,
        err("trust.signature"),
    )
    case(
        "wrong payload type",
        sign(ROOT_TYPE, payload, [k1, k2]).to_bytes(),
        1,
        err("trust.signature"),
    )
    case("invalid signature ignored, other counts", flip_signature(both), 1, {"ok": True})
    case("no signatures", unsigned(both), 1, err("trust.signature"))
    obj = envelope_obj(both)
    case(
        "non-canonical base64 payload",
        canonical_json({**obj, "payload": obj["payload"].rstrip("=")}),
        1,
        err("trust.signature"),
    )
    case(
        "payload type too long",
        canonical_json({**obj, "payloadType": "x" * 129}),
        1,
        err("trust.signature"),
    )
    case(
        "keyid in upper case",
        canonical_json(
            {**obj, "signatures": [{**s, "keyid": s["keyid"].upper()} for s in obj["signatures"]]}
        ),
        1,
        err("trust.signature"),
    )
    case("not an object", b"[]", 1, err("trust.signature"))
    case("duplicate key", both[:-1] + b',"payload":"e30="}', 1, err("trust.signature"))


def public_key_cases(g: Generator) -> None:
    f = "public-key"
    g.describe(
        f,
        "public-key",
        "Ed25519 public keys in roots: 64 lowercase hex, a curve point not of small order (FORMAT.md §2).",
    )
    good = key("pk-good").public
    g.add(
        f,
        f,
        {
            "name": "generated key",
            "input": good.public_hex,
            "expect": {"ok": True, "keyid": good.keyid},
        },
    )
    small = {
        "identity": "0100000000000000000000000000000000000000000000000000000000000000",
        "order 2": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "order 4": "0000000000000000000000000000000000000000000000000000000000000000",
        "order 4, sign bit": "0000000000000000000000000000000000000000000000000000000000000080",
        "order 8 (a)": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "order 8 (b)": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "order 8 (c)": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "order 8 (d)": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "identity, y = p + 1": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "order 4, y = p": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "identity, x = 0 with the sign bit": "0100000000000000000000000000000000000000000000000000000000000080",
        "not on the curve": "0200000000000000000000000000000000000000000000000000000000000000",
    }
    for name, hex_key in small.items():
        g.add(f, f, {"name": name, "input": hex_key, "expect": err("input.key")})
    g.add(
        f, f, {"name": "upper case", "input": good.public_hex.upper(), "expect": err("input.key")}
    )
    g.add(f, f, {"name": "31 bytes", "input": good.public_hex[:62], "expect": err("input.key")})


def pep440_cases(g: Generator) -> None:
    f = "pep440"
    g.describe(
        f,
        "pep440",
        "Release choice: PEP 440 specifiers, yanked and pre-release rules (resolve.py), checked against packaging.",
    )
    cands = [
        {"version": "0.9", "yanked": False, "yanked_reason": None},
        {"version": "1.0.0", "yanked": False, "yanked_reason": None},
        {"version": "1.0.0.post1", "yanked": False, "yanked_reason": None},
        {"version": "1.1.0", "yanked": False, "yanked_reason": None},
        {"version": "1.2.0", "yanked": True, "yanked_reason": "broken"},
        {"version": "2.0.0a1", "yanked": False, "yanked_reason": None},
        {"version": "2.0.0rc1", "yanked": False, "yanked_reason": None},
        {"version": "1!0.1", "yanked": False, "yanked_reason": None},
    ]
    table: list[tuple[str, str, bool, dict[str, Any]]] = [
        ("highest final", "p", False, {"ok": True, "version": "1!0.1", "warning": False}),
        ("range", "p>=1,<2", False, {"ok": True, "version": "1.1.0", "warning": False}),
        ("compatible release", "p~=1.0.0", False, {"ok": True, "version": "1.0.0.post1"}),
        ("exact pin", "p==1.0.0", False, {"ok": True, "version": "1.0.0"}),
        ("wildcard", "p==1.0.*", False, {"ok": True, "version": "1.0.0.post1"}),
        ("exclusion", "p>=1,<2,!=1.1.0", False, {"ok": True, "version": "1.0.0.post1"}),
        (
            "yanked only when pinned",
            "p==1.2.0",
            False,
            {"ok": True, "version": "1.2.0", "warning": True},
        ),
        ("yanked not chosen by a range", "p>=1.2,<2", False, err("resolution")),
        ("pre-release when asked", "p>=1,<3", True, {"ok": True, "version": "2.0.0rc1"}),
        ("pre-release when named", "p>=2.0.0a1,<3", False, {"ok": True, "version": "2.0.0rc1"}),
        ("no pre-release by default", "p>=1.5,<3", False, err("resolution")),
        ("epoch", "p<1!0", False, {"ok": True, "version": "1.1.0"}),
        ("arbitrary equality", "p===1.0.0", False, {"ok": True, "version": "1.0.0"}),
        ("greater than excludes post", "p>1.0.0,<1.1", False, err("resolution")),
        ("nothing matches", "p>=5,<6", False, err("resolution")),
        ("extras refused", "p[x]>=1", False, err("input.package-spec")),
        ("marker refused", 'p>=1; python_version>"3"', False, err("input.package-spec")),
        ("direct URL refused", "p @ https://x.example/p.zip", False, err("input.package-spec")),
        ("bad specifier", "p>=1..0", False, err("input.package-spec")),
    ]
    for name, requirement, pre, expect in table:
        g.add(
            f,
            f,
            {
                "name": name,
                "input": {"requirement": requirement, "prereleases": pre, "candidates": cands},
                "expect": expect,
            },
        )


def manifest_cases(g: Generator) -> None:
    f = "manifest"
    g.describe(f, "manifest", "modelmesh-package.yaml (FORMAT.md §7 for node entries).")
    base = manifest_text("p", "1.0.0", [("p.sink.v1", "observability")])
    ok = {"ok": True, "name": "p", "version": "1.0.0", "connectors": ["p.sink.v1"]}
    g.add(
        f,
        f,
        {
            "name": "both entry points",
            "input": {"utf8": base},
            "expect": {**ok, "runtimes": ["node", "python"]},
        },
    )
    node = manifest_text("p", "1.0.0", [("p.sink.v1", "observability")], ("node",))
    g.add(
        f,
        f,
        {
            "name": "node entry only",
            "input": {"utf8": node},
            "expect": {**ok, "runtimes": ["node"]},
        },
    )
    py = manifest_text("p", "1.0.0", [("p.sink.v1", "observability")], ("python",))
    g.add(
        f,
        f,
        {
            "name": "python entry only",
            "input": {"utf8": py},
            "expect": {**ok, "runtimes": ["python"]},
        },
    )
    bad = [
        (
            "no entry point",
            base.replace("    entry: p.connector:Connector\n", "").replace(
                "    node: {module: node/connector.mjs, export: Connector}\n", ""
            ),
        ),
        ("float version", base.replace('"1.0.0"', "1.0")),
        ("unnormalized version", base.replace('"1.0.0"', '"1.0.0.0-a"')),
        ("unknown key", base + "extra: 1\n"),
        ("repeated key", base + "name: q\n"),
        ("bad name", base.replace("name: p", "name: P_q")),
        ("bad connector id", base.replace("p.sink.v1", "p.sink")),
        ("bad connector type", base.replace("observability", "logger")),
        ("node module outside the package", base.replace("node/connector.mjs", "../connector.mjs")),
        ("node module not a module", base.replace("node/connector.mjs", "node/connector.ts")),
        ("node export not an identifier", base.replace("export: Connector", "export: 1x")),
        (
            "node entry with an extra key",
            base.replace("export: Connector}", "export: Connector, type: esm}"),
        ),
        (
            "mixed runtimes",
            node.replace(
                "connectors:\n",
                "connectors:\n  - id: p.other.v1\n    type: observability\n    entry: p.o:O\n",
            ),
        ),
        ("duplicate connector id", base + base[base.index("  - id") :]),
        ("not a mapping", "- a\n"),
        ("not UTF-8", None),
    ]
    for name, text in bad:
        data = {"hex": "ff" + base.encode().hex()} if text is None else {"utf8": text}
        g.add(f, f, {"name": name, "input": data, "expect": err("package.manifest")})


def connector_id_cases(g: Generator) -> None:
    f = "connector-id"
    g.describe(f, "connector-id", "Connector IDs (ids.py).")
    for cid in ["acme.audit-log.v1", "a.b.v12", "demo.js-event-log.v1"]:
        g.add(f, f, {"name": cid, "input": cid, "expect": {"ok": True, "id": cid}})
    for name, value in [
        ("v0", "acme.x.v0"),
        ("two parts", "acme.x"),
        ("upper case", "Acme.x.v1"),
        ("leading zero version", "acme.x.v01"),
        ("empty", ""),
        ("not a string", 5),
        ("trailing dot", "acme.x.v1."),
        ("space", "acme.x .v1"),
    ]:
        g.add(f, f, {"name": name, "input": value, "expect": err("input.connector-id")})


def url_file_name_cases(g: Generator) -> None:
    f = "url-file-name"
    g.describe(
        f,
        "url-file-name",
        "The archive file name an entry URL names (binding.py url_file_name): strictly "
        "percent-decoded; a path that could be read two ways is trust.policy before any request.",
    )
    base = "https://cdn.example/pkgs/"
    for name, url, file_name in [
        ("plain", base + "acme-audit-log-2.0.0.zip", "acme-audit-log-2.0.0.zip"),
        ("encoded unreserved", base + "acme%2Daudit-log-2.0.0.zip", "acme-audit-log-2.0.0.zip"),
        (
            "encoded plus",
            base + "acme-audit-log-2.0.0%2blocal.zip",
            "acme-audit-log-2.0.0+local.zip",
        ),
        ("literal plus", base + "acme-audit-log-2.0.0+local.zip", "acme-audit-log-2.0.0+local.zip"),
        ("epoch", base + "a-1!2.0rc1.zip", "a-1!2.0rc1.zip"),
        ("at the root", "https://cdn.example/pkg.zip", "pkg.zip"),
        ("loopback http", "http://127.0.0.1:8080/x/pkg-1.0.zip", "pkg-1.0.zip"),
        ("encoded unreserved directory", base + "%70kgs/pkg-1.0.zip", "pkg-1.0.zip"),
        ("bracketed IPv6 host", "https://[::1]:8443/x/pkg-1.0.zip", "pkg-1.0.zip"),
    ]:
        g.add(f, f, {"name": name, "input": url, "expect": {"ok": True, "name": file_name}})
    for name, url in [
        ("encoded slash", base + "a%2Facme-audit-log-2.0.0.zip"),
        ("encoded slash lower case", base + "a%2facme-audit-log-2.0.0.zip"),
        ("encoded slash and dots", base + "x%2F..%2Facme-audit-log-2.0.0.zip"),
        ("encoded backslash", base + "a%5Cacme-audit-log-2.0.0.zip"),
        ("encoded slash in a directory", base + "a%2Fb/acme-audit-log-2.0.0.zip"),
        ("double encoding", base + "acme-audit-log-2.0.0%252ezip"),
        ("encoded dot dot segment", base + "%2e%2e/acme-audit-log-2.0.0.zip"),
        ("encoded dot dot mixed case", base + "x/%2e%2E/acme-audit-log-2.0.0.zip"),
        ("half encoded dot dot", base + ".%2e/acme-audit-log-2.0.0.zip"),
        ("encoded dot segment", base + "%2E/acme-audit-log-2.0.0.zip"),
        ("plain dot dot segment", "https://cdn.example/x/../acme-audit-log-2.0.0.zip"),
        ("plain dot segment", "https://cdn.example/x/./acme-audit-log-2.0.0.zip"),
        ("overlong UTF-8", base + "acme-audit-log-2.0.0%C0%AEzip"),
        ("encoded surrogate", base + "acme-audit-log-2.0.0%ED%A0%80.zip"),
        ("truncated UTF-8", base + "acme-audit-log-2.0.0.zip%C3"),
        ("invalid UTF-8 in a directory", base + "%FF/acme-audit-log-2.0.0.zip"),
        ("percent without hex", base + "acme-audit-log-2.0.0%zip"),
        ("percent with one hex digit", base + "acme-audit-log-2.0.0%2.zip"),
        ("percent at the end", base + "acme-audit-log-2.0.0.zip%"),
        ("encoded NUL", base + "acme-audit-log-2.0.0.zip%00"),
        ("encoded newline", base + "acme-audit-log-2.0.0.zip%0A"),
        ("encoded DEL", base + "acme-audit-log-2.0.0.zip%7F"),
        ("encoded control in a directory", base + "a%09b/acme-audit-log-2.0.0.zip"),
        ("query", base + "acme-audit-log-2.0.0.zip?x=1"),
        ("file name in the query", base + "download?file=acme-audit-log-2.0.0.zip"),
        ("empty query", base + "acme-audit-log-2.0.0.zip?"),
        ("trailing slash", base + "acme-audit-log-2.0.0.zip/"),
        ("path parameter", base + "acme-audit-log-2.0.0.zip;v=1"),
        ("encoded space", base + "acme-audit-log-2.0.0%20.zip"),
        ("encoded non-ASCII", base + "acme-audit-l%C3%B6g-2.0.0.zip"),
        ("literal non-ASCII", base + "acme-audit-l\u00f6g-2.0.0.zip"),
        ("leading dot", base + ".acme-audit-log-2.0.0.zip"),
        ("encoded leading dot", base + "%2Eacme-audit-log-2.0.0.zip"),
        ("no path", "https://cdn.example"),
        ("only a slash", "https://cdn.example/"),
        ("unbalanced IPv6 bracket", "https://[::1/pkg-1.0.zip"),
        ("IPv4 address in brackets", "https://[127.0.0.1]/pkg-1.0.zip"),
        ("raw newline in the file name", base + "acme-audit-log-2.0.0.z\nip"),
        ("raw tab in the file name", base + "acme-audit-log-2.0.0.z\tip"),
        ("raw carriage return at the end", base + "acme-audit-log-2.0.0.zip\r"),
        ("raw tab in the host", "https://cdn.exa\tmple/acme-audit-log-2.0.0.zip"),
        ("raw DEL in a directory", base + "a\x7fb/acme-audit-log-2.0.0.zip"),
    ]:
        g.add(f, f, {"name": name, "input": url, "expect": err("trust.policy")})


def redact_url_cases(g: Generator) -> None:
    f = "redact-url"
    g.describe(
        f,
        "redact-url",
        "One redaction for every URL shown or stored (_internal/redact.py): a string input is "
        "redact_url (user info and query values masked as ***), {'text': ...} is redact_text "
        "(scheme://userinfo@ masked in free text).",
    )
    for name, url, shown in [
        ("plain", "https://cdn.example/pkgs/a-1.0.zip", "https://cdn.example/pkgs/a-1.0.zip"),
        ("user and password", "https://user:s3cr3t@cdn.example/p", "https://***@cdn.example/p"),
        ("user only", "https://tok3n@cdn.example/p", "https://***@cdn.example/p"),
        ("empty password", "https://user:@cdn.example/p", "https://***@cdn.example/p"),
        ("at in the password", "https://u:p@ss@cdn.example/p", "https://***@cdn.example/p"),
        ("port kept", "http://u:p@127.0.0.1:8080/x", "http://***@127.0.0.1:8080/x"),
        ("query token", "https://h/p?token=s3cr3t", "https://h/p?token=***"),
        (
            "presigned query",
            "https://h/a.zip?X-Amz-Signature=abc&X-Amz-Expires=60",
            "https://h/a.zip?X-Amz-Signature=***&X-Amz-Expires=***",
        ),
        ("query key without value", "https://h/p?s3cr3t", "https://h/p?s3cr3t=***"),
        ("empty query items kept", "https://h/p?a=1&&b=2&", "https://h/p?a=***&&b=***&"),
        ("value with equals", "https://h/p?t=a=b", "https://h/p?t=***"),
        ("empty query dropped", "https://h/p?", "https://h/p"),
        (
            "fragment kept",
            "https://u:p@h/p?token=abc&v=1#frag",
            "https://***@h/p?token=***&v=***#frag",
        ),
        (
            "sha256 fragment kept",
            "https://h/a-1.0.zip#sha256=" + "ab" * 32,
            "https://h/a-1.0.zip#sha256=" + "ab" * 32,
        ),
        ("idempotent", "https://***@h/p?token=***", "https://***@h/p?token=***"),
        ("scheme lower-cased", "HTTPS://u:p@h/p", "https://***@h/p"),
        ("host case kept", "https://u:p@CDN.Example/P", "https://***@CDN.Example/P"),
        ("percent escapes kept", "https://h/a%2Fb?x=%41", "https://h/a%2Fb?x=***"),
        ("dot segments kept", "https://u:p@h/a/../b", "https://***@h/a/../b"),
        ("bracketed IPv6", "http://u:p@[::1]:8443/x?t=1", "http://***@[::1]:8443/x?t=***"),
        ("bad bracketed host", "http://u:p@[::1/x?t=1", "http://***@[::1/x?t=1"),
        ("file URL", "file:///tmp/mirror", "file:///tmp/mirror"),
        ("relative path", "pkgs/a.zip?t=1", "pkgs/a.zip?t=***"),
        ("not a URL", "acme-audit-log>=1.0", "acme-audit-log>=1.0"),
        ("empty", "", ""),
        ("tab removed", "https://u:p@h/a\tb", "https://***@h/ab"),
        ("leading space stripped", "  https://u:p@h/", "https://***@h/"),
        ("bundle", "bundle:/tmp/b.zip", "bundle:/tmp/b.zip"),
    ]:
        g.add(f, f, {"name": name, "input": url, "expect": {"ok": True, "url": shown}})
    for name, text, shown in [
        ("no URL", "nothing to see", "nothing to see"),
        (
            "user info in a message",
            "cannot fetch https://user:s3cr3t@h/p: refused",
            "cannot fetch https://***@h/p: refused",
        ),
        (
            "two URLs",
            "from http://a:b@h1/x to https://c@h2/y",
            "from http://***@h1/x to https://***@h2/y",
        ),
        ("query left to redact_url", "see https://h/p?token=abc", "see https://h/p?token=abc"),
        ("quoted", "got 'https://u:p@h/'", "got 'https://***@h/'"),
        ("upper-case scheme", "HTTPS://u:p@h/", "HTTPS://***@h/"),
        ("at in the path is not user info", "https://h/a@b", "https://h/a@b"),
    ]:
        g.add(f, f, {"name": name, "input": {"text": text}, "expect": {"ok": True, "text": shown}})


def zip_cases(g: Generator) -> None:
    f = "zip"
    g.describe(
        f,
        "zip",
        "Whole archives through the hardened reader (FORMAT.md §6): files or package.archive.",
    )
    manifest = manifest_text("p", "1.0.0", [("p.sink.v1", "observability")], ("node",)).encode()
    m = RawEntry(b"modelmesh-package.yaml", manifest)
    mod = RawEntry(b"node/connector.mjs", b"export class Connector {}\n")
    clean = build_raw_zip([m, mod])
    g.add(
        f,
        f,
        {
            "name": "clean",
            "input": vbytes(clean),
            "expect": {
                "ok": True,
                "files": {
                    "modelmesh-package.yaml": sha(manifest),
                    "node/connector.mjs": sha(mod.data),
                },
            },
        },
    )
    stored = build_raw_zip([m, RawEntry(b"a.txt", b"stored", method=0)])
    g.add(
        f,
        f,
        {
            "name": "stored entry",
            "input": vbytes(stored),
            "expect": {
                "ok": True,
                "files": {"modelmesh-package.yaml": sha(manifest), "a.txt": sha(b"stored")},
            },
        },
    )
    utf8 = build_raw_zip([m, RawEntry("caf\u00e9.txt".encode(), b"x", flags=UTF8_FLAG)])
    g.add(f, f, {"name": "UTF-8 name with the flag", "input": vbytes(utf8), "expect": {"ok": True}})
    bad: list[tuple[str, list[RawEntry]]] = [
        ("traversal", [m, RawEntry(b"../evil.mjs", b"x")]),
        ("nested traversal", [m, RawEntry(b"a/../../evil.mjs", b"x")]),
        ("absolute path", [m, RawEntry(b"/tmp/evil.mjs", b"x")]),
        ("drive letter", [m, RawEntry(b"C:/evil.mjs", b"x")]),
        ("backslash", [m, RawEntry(b"a\\b.mjs", b"x")]),
        ("NUL in a name", [m, RawEntry(b"a\x00.mjs", b"x")]),
        ("non-ASCII without the UTF-8 flag", [m, RawEntry("caf\u00e9.txt".encode(), b"x")]),
        ("invalid UTF-8 name", [m, RawEntry(b"a\xff.txt", b"x", flags=UTF8_FLAG)]),
        ("not NFC", [m, RawEntry("cafe\u0301.txt".encode(), b"x", flags=UTF8_FLAG)]),
        ("bidi override", [m, RawEntry("a\u202egpj.mjs".encode(), b"x", flags=UTF8_FLAG)]),
        ("control character", [m, RawEntry(b"a\x01.mjs", b"x")]),
        ("Windows device name", [m, RawEntry(b"aux.txt", b"x")]),
        ("Windows reserved character", [m, RawEntry(b"a?.txt", b"x")]),
        ("trailing dot", [m, RawEntry(b"a.", b"x")]),
        ("duplicate entry", [m, RawEntry(b"a.txt", b"1"), RawEntry(b"a.txt", b"2")]),
        ("case-fold collision", [m, RawEntry(b"A.txt", b"1"), RawEntry(b"a.txt", b"2")]),
        ("file and directory", [m, RawEntry(b"a", b"1"), RawEntry(b"a/b.txt", b"2")]),
        ("symlink", [m, RawEntry(b"link", b"/etc/passwd", mode=0o120777)]),
        ("encrypted", [m, RawEntry(b"a.txt", b"x", flags=0x1)]),
        ("unsupported compression", [m, RawEntry(b"a.txt", b"x", method=12)]),
        ("declared size smaller", [m, RawEntry(b"a.txt", b"hello", declared_size=3)]),
        ("declared size larger", [m, RawEntry(b"a.txt", b"hello", declared_size=9)]),
        ("wrong CRC-32", [m, RawEntry(b"a.txt", b"hello", crc=1)]),
        ("local name differs", [m, RawEntry(b"a.txt", b"x", local_name=b"b.txt")]),
        (
            "unicode path extra field",
            [m, RawEntry(b"a.txt", b"x", extra=extra_field(0x7075, b"\x01\x00\x00\x00\x00b.txt"))],
        ),
        ("native module", [m, RawEntry(b"addon.node", b"x")]),
        ("bytecode", [m, RawEntry(b"a/b.pyc", b"x")]),
        ("VCS directory", [m, RawEntry(b".git/config", b"x")]),
        ("no manifest", [mod]),
        ("manifest not at the root", [mod, RawEntry(b"sub/modelmesh-package.yaml", manifest)]),
        ("two manifests", [m, RawEntry(b"MODELMESH-PACKAGE.YAML", manifest)]),
        ("bomb", [m, RawEntry(b"bomb.txt", b"\0" * (16 * 1024 * 1024 + 1))]),
    ]
    for name, entries in bad:
        g.add(
            f,
            f,
            {
                "name": name,
                "input": vbytes(build_raw_zip(entries)),
                "expect": err("package.archive"),
            },
        )
    g.add(
        f,
        f,
        {"name": "not a zip", "input": {"utf8": "not a zip"}, "expect": err("package.archive")},
    )
    g.add(
        f,
        f,
        {"name": "trailing data", "input": vbytes(clean + b"x"), "expect": err("package.archive")},
    )
    g.add(
        f,
        f,
        {
            "name": "archive comment",
            "input": vbytes(build_raw_zip([m, mod], comment=b"hi")),
            "expect": err("package.archive"),
        },
    )
    for name, raw in [
        ("data before the first entry", build_raw_zip([m, mod], prefix=b"MZ")),
        ("gap before the central directory", build_raw_zip([m, mod], gap=b"\0" * 4)),
        ("entry comment", build_raw_zip([m, RawEntry(b"a.txt", b"x", comment=b"hi")])),
        ("end record miscounts", build_raw_zip([m, mod], count=1)),
    ]:
        g.add(f, f, {"name": name, "input": vbytes(raw), "expect": err("package.archive")})


# -- main ------------------------------------------------------------------------------------


def payload_of(data: bytes) -> bytes:
    return parse_envelope(data).payload


def link_of(data: bytes) -> TimestampLink:
    """The ``previous`` link naming the timestamp file ``data``."""
    payload = payload_of(data)
    return TimestampLink.of(parse_timestamp(payload).version, payload)


def previous_of(data: bytes) -> TimestampLink:
    """The ``previous`` link the timestamp file ``data`` carries."""
    link = parse_timestamp(payload_of(data)).previous
    if link is None:
        raise ValueError("the timestamp names no predecessor")
    return link


def index_history(g: Generator) -> None:
    g.describe(
        "index-history",
        "index-sequence",
        "Timestamp history (FORMAT.md §3 history, §4 step 2): a newer timestamp must extend "
        "the trusted one, across a gap through history/<version>-<sha256>.json; a fork, a "
        "dropped history or a history starting above the trusted version is refused; a gap "
        "longer than 1,024 timestamps is accepted unwalked; indexes written before history "
        "keep working.",
    )
    w, _ = basic(g)  # timestamp 2, chained to 1
    start = w.files()
    for _ in range(3):
        w.refresh_timestamp()
    gap = w.files()  # timestamp 5: the client walks history 4 and 3 back to its 2
    (
        g.seq("history", "a gap is explained by the history files", w)
        .step(start, w.tick(), REFRESH, fresh(2, 2))
        .step(gap, w.tick(), REFRESH, fresh(5, 2))
    )
    link4 = previous_of(gap["timestamp.json"])
    link3 = previous_of(gap[link4.path])
    (
        g.seq("history", "a history file that is not the one its link names", w)
        .step(start, w.tick(), REFRESH, fresh(2, 2))
        .step({**gap, link3.path: gap[link4.path]}, w.tick(), REFRESH, err("trust.hash"))
    )
    missing = dict(gap)
    del missing[link3.path]
    (
        g.seq("history", "a missing history file fails the update", w)
        .step(start, w.tick(), REFRESH, fresh(2, 2))
        .step(missing, w.tick(), REFRESH, err("download"))
    )
    resigned_ts = resigned(start["timestamp.json"], [TS_KEY, STRANGER])
    (
        g.seq("history", "the same payload re-signed is the same timestamp", w)
        .step(start, w.tick(), REFRESH, fresh(2, 2))
        .step({**start, "timestamp.json": resigned_ts}, w.tick(), REFRESH, fresh(2, 2))
    )

    # Two writers from one state: each publishes its own version 3. Branch b then moves its
    # index on (a newer top than the client's, so only the history tells the branches apart).
    a, _ = basic(g)
    b = a.fork("b")
    a.publish(PKG, "1.1.0", connectors=SINK)
    b.publish("vec-other", "1.0.0", connectors=[("vec.other.v1", "observability")])
    a3, b3 = a.files(), b.files()
    b.publish("vec-third", "1.0.0", connectors=[("vec.third.v1", "observability")])
    b4 = b.files()
    b.refresh_timestamp()
    b.refresh_timestamp()
    b6 = b.files()
    (
        g.seq("history", "a fork at the next version is refused", a)
        .step(a3, b.tick(), REFRESH, fresh(3, 3))
        .step(b4, b.tick(), REFRESH, err("trust.rollback.fork"))
        .step(a3, b.tick(), REFRESH, fresh(3, 3))  # the trusted branch still loads
    )
    (
        g.seq("history", "a fork hidden in a gap is refused", a)
        .step(a3, b.tick(), REFRESH, fresh(3, 3))
        .step(b6, b.tick(), REFRESH, err("trust.rollback.fork"))
    )
    (
        g.seq("history", "the other branch is trusted by a client that never saw this one", b)
        .step(b3, b.tick(), REFRESH, fresh(3, 3))
        .step(b6, b.tick(), REFRESH, fresh(6, 4))
    )

    # A timestamp key holder drops the history: version 4 names no predecessor.
    d, _ = basic(g)
    d.refresh_timestamp()
    chained = d.files()
    state = repository.load_state(d.dir)
    dropped = d.write_timestamp(version=state.timestamp.version + 1, previous=None)
    (
        g.seq("history", "a newer timestamp without previous after a chained one", d)
        .step(chained, d.tick(), REFRESH, fresh(3, 2))
        .step({**chained, "timestamp.json": dropped}, d.tick(), REFRESH, err("trust.rollback.fork"))
    )
    # ... or starts a new history above the trusted version: 5 names an unchained 4.
    served = d.write_timestamp(version=state.timestamp.version + 2, previous=link_of(dropped))
    late = {**chained, link_of(dropped).path: dropped, "timestamp.json": served}
    (
        g.seq("history", "a history starting above the trusted version", d)
        .step(chained, d.tick(), REFRESH, fresh(3, 2))
        .step(late, d.tick(), REFRESH, err("trust.rollback.fork"))
    )

    # An index written before history existed: unchained timestamps follow each other, and
    # the first chained one links to the last unchained one.
    p, _ = basic(g)
    p1 = p.write_timestamp(previous=None)  # version 2, as a pre-history publisher wrote it
    p2 = p.write_timestamp(version=3, previous=None)
    p3 = p.write_timestamp(version=4, previous=link_of(p2))
    base = p.files()
    (
        g.seq("history", "timestamps written before history keep working", p)
        .step({**base, "timestamp.json": p1}, p.tick(), REFRESH, fresh(2, 2))
        .step({**base, "timestamp.json": p2}, p.tick(), REFRESH, fresh(3, 2))
        .step({**base, "timestamp.json": p3}, p.tick(), REFRESH, fresh(4, 2))
    )

    # The walk bound: a gap of 1,024 timestamps is walked (1,023 history files, then the
    # trusted version is compared); a longer one is accepted after 1,024 links, unchecked.
    la, _ = basic(g)
    lb = la.fork("b")
    la.refresh_timestamp()
    lb.refresh_timestamp(expiry=TS_LIFE - HOUR)  # another version 3: a fork
    trusted = la.files()
    for _ in range(DEFAULT_HISTORY_WALK):
        lb.refresh_timestamp(step=timedelta(seconds=10))
    at_bound = lb.files()
    lb.refresh_timestamp(step=timedelta(seconds=10))
    past_bound = lb.files()
    bound_version = 3 + DEFAULT_HISTORY_WALK
    (
        g.seq("history", "a fork 1,024 versions back is found; 1,025 back is not walked", lb)
        .step(trusted, lb.tick(), REFRESH, fresh(3, 2))
        .step(at_bound, lb.tick(), REFRESH, err("trust.rollback.fork"))
        .step(past_bound, lb.tick(), REFRESH, fresh(bound_version + 1, 2))
    )


BUILDERS: list[Callable[[Generator], None]] = [
    index_baseline,
    index_signature,
    index_threshold,
    index_rollback,
    index_expiry,
    index_mix_and_match,
    index_rotation,
    index_root_walk,
    index_history,
    index_hash_length,
    index_server,
    index_policy,
    index_runtimes,
    index_zip,
    index_strict,
    strict_json_cases,
    envelope_cases,
    public_key_cases,
    pep440_cases,
    manifest_cases,
    connector_id_cases,
    url_file_name_cases,
    redact_url_cases,
    zip_cases,
]


def generate() -> dict[str, bytes]:
    """Every vector file's name and bytes."""
    with tempfile.TemporaryDirectory(prefix="mmc-vectors-") as tmp:
        g = Generator(Path(tmp))
        for build in BUILDERS:
            build(g)
        return g.write(OUT)


def iter_counts(files: Mapping[str, bytes]) -> Iterator[tuple[str, int]]:
    for name, data in sorted(files.items()):
        yield name, len(json.loads(data)["cases"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    args = parser.parse_args(argv)
    files = generate()
    stale = sorted(
        name
        for name, data in files.items()
        if not (OUT / name).exists() or (OUT / name).read_bytes() != data
    )
    extra = (
        sorted(p.name for p in OUT.glob("*.json") if p.name not in files) if OUT.exists() else []
    )
    if args.check:
        for name in stale + extra:
            print(f"out of date: tests/vectors/{name}", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (OUT / name).unlink()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    for name, count in iter_counts(files):
        print(f"{count:4d}  tests/vectors/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
