/** The trust core with bytes: strict JSON, envelopes, metadata and the stateful update. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConnectorError, DownloadError } from "../src/errors.js";
import { parseEnvelope, pae, verifyThreshold } from "../src/trust/envelope.js";
import { PublicKey, smallOrderProblem } from "../src/trust/keys.js";
import { formatTime, historyPath, nameHash, parseTimestamp, type TimestampLink } from "../src/trust/metadata.js";
import { canonicalJson, type JsonObject, strictJson } from "../src/trust/strict-json.js";
import { type HistoryReader, TrustedState, verifyHistoryLink } from "../src/trust/state.js";
import {
  envelopeBytes,
  jsPackage,
  RELEASE_TYPE,
  ROOT_TYPE,
  sha256,
  signEnvelope,
  TestKey,
  TestPublisher,
  TIMESTAMP_TYPE,
} from "./support/publisher.js";

const NOW = new Date("2026-01-01T00:00:00Z");
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConnectorError) {
      return err.code;
    }
    throw err;
  }
  return "ok";
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConnectorError) {
      return err.code;
    }
    throw err;
  }
  return "ok";
}

describe("strict JSON", () => {
  const cases: [string, string][] = [
    ['{"a":1}', "ok"],
    ['{"a":1,"a":2}', "input.json"],
    ['{"a":1.5}', "input.json"],
    ['{"a":1e3}', "input.json"],
    ["[9007199254740991]", "ok"],
    ["[9007199254740992]", "input.json"],
    ["[-9007199254740992]", "input.json"],
    ["[NaN]", "input.json"],
    ["[Infinity]", "input.json"],
    ["[-Infinity]", "input.json"],
    ["\ufeff{}", "input.json"],
    ['{"a":"\u0001"}', "input.json"],
    ["[01]", "input.json"],
    ["{} x", "input.json"],
    ['{"__proto__":{"x":1}}', "ok"],
    [`${"[".repeat(600)}${"]".repeat(600)}`, "input.json"],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text).slice(0, 40)} → ${expected}`, () => {
      assert.equal(code(() => strictJson(enc(text))), expected);
    });
  }
  test("invalid UTF-8 is refused", () => {
    assert.equal(code(() => strictJson(Uint8Array.from([0x22, 0xff, 0x22]))), "input.json");
  });
  test("__proto__ is plain data", () => {
    const v = strictJson(enc('{"__proto__":{"x":1}}')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), ["__proto__"]);
  });
  test("canonical JSON matches Python's json.dumps(sort_keys, compact, ensure_ascii)", () => {
    const out = Buffer.from(canonicalJson({ b: "é\u007f\n", a: [1, true, null], "\u00e9": 0 })).toString();
    assert.equal(out, '{"a":[1,true,null],"b":"\\u00e9\\u007f\\n","\\u00e9":0}');
  });
});

describe("Ed25519 public keys", () => {
  // The 8 small-order points (canonical encodings), then non-canonical ones (y >= p, x = 0 with the sign bit).
  const smallOrder = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0100000000000000000000000000000000000000000000000000000000000080",
  ];
  for (const hex of smallOrder) {
    test(`small-order key ${hex.slice(0, 8)}… is refused`, () => {
      assert.equal(smallOrderProblem(Buffer.from(hex, "hex")), "a point of small order (8·P is the identity)");
      assert.equal(code(() => PublicKey.fromHex(hex)), "input.key");
    });
  }
  test("an encoding off the curve is refused; generated keys are accepted", () => {
    const off = Buffer.alloc(32);
    off[0] = 2;
    assert.equal(smallOrderProblem(off), "not a point on the curve");
    for (let i = 0; i < 20; i++) {
      assert.equal(code(() => PublicKey.fromHex(new TestKey().publicHex)), "ok");
    }
  });
});

describe("DSSE envelopes", () => {
  const key = new TestKey();
  const other = new TestKey();
  const keys = new Map([
    [key.keyid, PublicKey.fromHex(key.publicHex)],
    [other.keyid, PublicKey.fromHex(other.publicHex)],
  ]);
  const check = (threshold: number, keyids = [key.keyid, other.keyid]) => ({
    expectedType: TIMESTAMP_TYPE,
    keys,
    keyids,
    threshold,
    what: "t",
  });

  test("PAE is the DSSE v1 encoding", () => {
    assert.equal(Buffer.from(pae("ab", enc("xyz"))).toString(), "DSSEv1 2 ab 3 xyz");
  });
  test("a threshold counts distinct valid trusted keys", () => {
    const env = parseEnvelope(canonicalJson(signEnvelope(TIMESTAMP_TYPE, enc("{}"), [key, other])));
    assert.equal(verifyThreshold(env, check(2)).size, 2);
    const dup = { ...env, signatures: [env.signatures[0], env.signatures[0]] as typeof env.signatures };
    assert.equal(code(() => verifyThreshold(dup, check(2))), "trust.signature");
    assert.equal(code(() => verifyThreshold(env, check(2, [key.keyid]))), "trust.signature");
  });
  test("the wrong payload type is refused before any signature work", () => {
    const env = parseEnvelope(canonicalJson(signEnvelope(ROOT_TYPE, enc("{}"), [key])));
    assert.equal(code(() => verifyThreshold(env, check(1))), "trust.signature");
  });
  test("a tampered payload fails", () => {
    const obj = signEnvelope(TIMESTAMP_TYPE, enc("{}"), [key]);
    obj["payload"] = Buffer.from("[]").toString("base64");
    assert.equal(code(() => verifyThreshold(parseEnvelope(canonicalJson(obj)), check(1))), "trust.signature");
  });
  const malformed: [string, string][] = [
    ['{"payloadType":"x","payload":"","signatures":[],"extra":1}', "extra key"],
    ['{"payloadType":"x","payload":"YQ=","signatures":[]}', "bad padding"],
    ['{"payloadType":"x","payload":"YR==","signatures":[]}', "non-canonical base64"],
    ['{"payloadType":"","payload":"","signatures":[]}', "empty type"],
    [`{"payloadType":"x","payload":"","signatures":[{"keyid":"${"A".repeat(64)}","sig":""}]}`, "upper-case keyid"],
    [`{"payloadType":"x","payload":"","signatures":[{"keyid":"${"a".repeat(64)}","sig":"YQ=="}]}`, "short signature"],
  ];
  for (const [text, why] of malformed) {
    test(`malformed envelope: ${why}`, () => {
      assert.equal(code(() => parseEnvelope(enc(text))), "trust.signature");
    });
  }
});

/** Feed a publisher's files to a TrustedState as a client update would. */
function update(pub: TestPublisher, anchor: Uint8Array, previous?: { ts: Uint8Array; top: Uint8Array }, now = NOW) {
  const state = new TrustedState(anchor, now);
  for (let v = 2; pub.files.has(`root/${v}.json`); v++) {
    state.updateRoot(pub.files.get(`root/${v}.json`) as Uint8Array);
  }
  if (previous) {
    state.loadTrustedTimestamp(previous.ts);
    state.loadTrustedIndex(previous.top);
  }
  const ts = state.updateTimestamp(pub.files.get("timestamp.json") as Uint8Array);
  const top = pub.files.get(ts.index.path) as Uint8Array;
  state.updateIndex(top);
  return { state, ts: pub.files.get("timestamp.json") as Uint8Array, top };
}

function lookup(state: TrustedState, pub: TestPublisher, name: string) {
  const top = state.index;
  assert.ok(top);
  const h = nameHash(name);
  const gp = h.slice(0, top.groupChars);
  const gref = top.groups.get(gp);
  assert.ok(gref);
  const group = state.verifyGroup(gp, pub.files.get(gref.path) as Uint8Array);
  const bp = h.slice(0, top.binChars);
  const bref = group.bins.get(bp);
  assert.ok(bref);
  const bin = state.verifyBin(group, bp, pub.files.get(bref.path) as Uint8Array);
  const entries = bin.packages.get(name);
  assert.ok(entries);
  return entries.map((e) => state.verifyBinRelease(name, e).release);
}

function published(opts: ConstructorParameters<typeof TestPublisher>[0] = {}): TestPublisher {
  const pub = new TestPublisher({ now: NOW, ...opts });
  pub.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [
    { id: "acme.sink.v1", type: "observability" },
  ]);
  pub.commit();
  return pub;
}

describe("trusted state", () => {
  test("a clean update verifies the whole path at every fan-out level", () => {
    for (const level of [
      [0, 0],
      [0, 2],
      [2, 4],
    ] as [number, number][]) {
      const pub = published({ level });
      const { state } = update(pub, pub.anchor());
      const [release] = lookup(state, pub, "acme-sink");
      assert.equal(release?.sha256, sha256(pub.files.get("archives/acme-sink/acme-sink-1.0.0.zip") as Uint8Array));
    }
  });

  test("timestamp rollback, version reuse and index rollback are refused", () => {
    const pub = published();
    const first = update(pub, pub.anchor());
    const oldTs = pub.files.get("timestamp.json") as Uint8Array;
    pub.commit();
    const second = update(pub, pub.anchor(), first);
    // The old timestamp against the new reference.
    const s = new TrustedState(pub.anchor(), NOW);
    s.loadTrustedTimestamp(second.ts);
    assert.equal(code(() => s.updateTimestamp(oldTs)), "trust.rollback");
    // The same version re-signed over another top.
    pub.commit({ timestampVersion: pub.timestampVersion });
    const s2 = new TrustedState(pub.anchor(), NOW);
    s2.loadTrustedTimestamp(second.ts);
    assert.equal(code(() => s2.updateTimestamp(pub.files.get("timestamp.json") as Uint8Array)), "trust.rollback");
  });

  test("expired timestamp, index and root are refused", () => {
    const later = new Date(NOW.getTime() + 8 * 86_400_000);
    assert.equal(code(() => update(published(), published().anchor(), undefined, later)), "trust.signature");
    const pub = published();
    assert.equal(code(() => update(pub, pub.anchor(), undefined, later)), "trust.expired");
    const pub2 = published({ rootDays: 1 });
    assert.equal(code(() => update(pub2, pub2.anchor(), undefined, new Date(NOW.getTime() + 2 * 86_400_000))), "trust.expired");
  });

  test("root rotation: accepted with both thresholds, refused when skipped or badly signed", () => {
    const pub = published();
    const anchor = pub.anchor();
    pub.rotateRoot({ newRootKeys: [new TestKey(), new TestKey()], newTimestampKey: true });
    pub.writeTimestamp();
    const { state } = update(pub, anchor);
    assert.equal(state.root.version, 2);

    const bad = published();
    const badAnchor = bad.anchor();
    bad.rotateRoot({ newRootKeys: [new TestKey()], signers: [new TestKey()] });
    assert.equal(code(() => update(bad, badAnchor)), "trust.signature");

    const skip = published();
    const skipAnchor = skip.anchor();
    skip.rootVersion++; // the next root written claims version 3 at root/2.json
    const data = envelopeBytes(ROOT_TYPE, skip.rootPayload(3), skip.rootKeys);
    const s = new TrustedState(skipAnchor, NOW);
    assert.equal(code(() => s.updateRoot(data)), "trust.root-rotation");
    assert.equal(s.root.version, 1);
  });

  test("an old timestamp key stops counting after rotation", () => {
    const pub = published();
    const anchor = pub.anchor();
    const oldTsKey = pub.timestampKey;
    pub.rotateRoot({ newTimestampKey: true });
    pub.timestampKey = oldTsKey; // the server keeps serving a timestamp by the revoked key
    pub.writeTimestamp();
    assert.equal(code(() => update(pub, anchor)), "trust.signature");
  });

  test("node bytes that are not the pinned ones are refused before parsing", () => {
    const pub = published();
    const { state } = update(pub, pub.anchor());
    const top = state.index;
    assert.ok(top);
    const gref = top.groups.get("");
    assert.ok(gref);
    const data = Uint8Array.from(pub.files.get(gref.path) as Uint8Array);
    data[5] = (data[5] as number) ^ 1;
    assert.equal(code(() => state.verifyGroup("", data)), "trust.hash");
    assert.equal(code(() => state.verifyGroup("", data.subarray(1))), "trust.length");
  });

  test("publisher scope: a release outside the publisher's namespaces is refused", () => {
    const acmeKey = new TestKey();
    const pub = new TestPublisher({ now: NOW, publishers: [{ name: "acme", keys: [acmeKey], namespaces: ["acme"] }] });
    const zip = jsPackage("acme-sink", "1.0.0", "acme.sink.v1");
    pub.addRelease("acme-sink", "1.0.0", zip, [{ id: "acme.sink.v1", type: "observability" }], { signers: [acmeKey] });
    pub.addRelease("squat", "1.0.0", zip, [{ id: "modelmesh.sink.v1", type: "observability" }], { signers: [acmeKey] });
    pub.commit();
    const { state } = update(pub, pub.anchor());
    assert.equal(lookup(state, pub, "acme-sink")[0]?.name, "acme-sink");
    assert.equal(code(() => lookup(state, pub, "squat")), "trust.policy");
    const sig = pub.files.get("archives/squat/squat-1.0.0.zip.sig") as Uint8Array;
    assert.equal(code(() => state.verifyRelease(sig)), "trust.policy");
  });

  test("a release must be signed by the index role or a publisher", () => {
    const pub = published();
    const { state } = update(pub, pub.anchor());
    const env = signEnvelope(RELEASE_TYPE, enc("{}"), [new TestKey()]);
    assert.equal(code(() => state.verifyRelease(canonicalJson(env))), "trust.signature");
  });
});

describe("timestamp history (fork detection, FORMAT.md §3 history)", () => {
  // Hand-made timestamps over one index state, as test_history.py builds them: each names
  // its predecessor's payload hash; two with the same predecessor are a fork.
  const pub = published({ history: false });
  const anchor = pub.anchor();
  const index = (JSON.parse(Buffer.from(payloadOf(pub.files.get("timestamp.json") as Uint8Array)).toString()) as {
    index: JsonObject;
  }).index;

  function payloadOf(data: Uint8Array): Uint8Array {
    return parseEnvelope(data).payload;
  }
  function linkOf(data: Uint8Array): TimestampLink {
    const payload = payloadOf(data);
    return { version: parseTimestamp(payload).version, sha256: sha256(payload) };
  }
  /** A signed timestamp of `version` linked to the timestamp file `previous` (none: unchained). */
  function stamp(version: number, previous: Uint8Array | null, salt = 0, signers = [pub.timestampKey]): Uint8Array {
    const payload = canonicalJson({
      type: "timestamp",
      spec: 1,
      version,
      expires: formatTime(new Date(NOW.getTime() + 7 * 86_400_000 - salt * 1000)),
      index,
      ...(previous === null ? {} : { previous: linkOf(previous) as unknown as JsonObject }),
    });
    return canonicalJson(signEnvelope(TIMESTAMP_TYPE, payload, signers));
  }
  function client(trusted: Uint8Array): TrustedState {
    const state = new TrustedState(anchor, NOW);
    state.loadTrustedTimestamp(trusted);
    return state;
  }
  /** A history reader serving `files` (404 for any other), recording what it was asked. */
  function reader(files: Uint8Array[], asked: string[] = []): HistoryReader {
    const byPath = new Map(files.map((f) => [historyPath(linkOf(f)), f]));
    return (link) => {
      const path = historyPath(link);
      asked.push(path);
      const data = byPath.get(path);
      if (data === undefined) {
        throw new DownloadError("download.not-found", `${path}: 404`);
      }
      return data;
    };
  }

  const T1 = stamp(1, null);
  const T2A = stamp(2, T1);
  const T2B = stamp(2, T1, 1); // the same predecessor: a fork at version 2
  const T3A = stamp(3, T2A);
  const T3B = stamp(3, T2B);
  const T4A = stamp(4, T3A);
  const T4B = stamp(4, T3B);

  test("the next timestamp must name the trusted one", () => {
    assert.equal(client(T1).updateTimestamp(T2A).version, 2);
    assert.equal(client(T2A).updateTimestamp(T3A).version, 3);
  });

  test("a fork is refused with trust.rollback.fork and the trusted timestamp stays", () => {
    const state = client(T2A);
    let caught: unknown;
    try {
      state.updateTimestamp(T3B);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConnectorError);
    assert.equal(caught.code, "trust.rollback.fork"); // a kind of rollback: the family matches
    assert.match(caught.message, /two different histories/);
    assert.ok(caught.hint);
    assert.equal(state.timestamp?.version, 2);
    assert.equal(state.updateTimestamp(T3A).version, 3);
  });

  test("a gap is explained by the history files, walked newest first", async () => {
    const asked: string[] = [];
    const ts = await client(T1).updateTimestampWithHistory(T4A, reader([T2A, T3A], asked));
    assert.equal(ts.version, 4);
    assert.deepEqual(asked, [historyPath(linkOf(T3A)), historyPath(linkOf(T2A))]);
  });

  test("the next version needs no history file", async () => {
    const asked: string[] = [];
    assert.equal((await client(T2A).updateTimestampWithHistory(T3A, reader([], asked))).version, 3);
    assert.deepEqual(asked, []);
  });

  test("a fork hidden in a gap is refused", async () => {
    const state = client(T2A);
    assert.equal(await codeOf(state.updateTimestampWithHistory(T4B, reader([T2B, T3B]))), "trust.rollback.fork");
    assert.equal(state.timestamp?.version, 2);
  });

  test("a history file must be the one its link names", async () => {
    const wrong: HistoryReader = () => T3B; // served under T3a's name
    assert.equal(await codeOf(client(T1).updateTimestampWithHistory(T4A, wrong)), "trust.hash");
    const notEnvelope: HistoryReader = () => new TextEncoder().encode("{}");
    assert.equal(await codeOf(client(T1).updateTimestampWithHistory(T4A, notEnvelope)), "trust.signature");
  });

  test("a missing history file fails the update with the reader's error", async () => {
    const state = client(T1);
    assert.equal(await codeOf(state.updateTimestampWithHistory(T4A, reader([T3A]))), "download.not-found");
    assert.equal(state.timestamp?.version, 1);
  });

  test("nothing is committed if the state moved while the history was read", async () => {
    const state = client(T1);
    const racing: HistoryReader = (link) => {
      state.updateTimestamp(T2A); // another update committed meanwhile
      return reader([T2A, T3A])(link);
    };
    await assert.rejects(state.updateTimestampWithHistory(T4A, racing), /changed while the timestamp history was read/);
    assert.equal(state.timestamp?.version, 2);
  });

  test("without a history reader a gap is not checked (documented limit)", () => {
    assert.equal(client(T2A).updateTimestamp(T4B).version, 4);
  });

  test("the walk is bounded: past maxHistoryWalk links the gap is accepted unchecked", async () => {
    // T4b over trusted T2a needs one file (T3b), then the comparison at version 2.
    assert.equal(await codeOf(client(T2A).updateTimestampWithHistory(T4B, reader([T3B]), 2)), "trust.rollback.fork");
    const asked: string[] = [];
    assert.equal((await client(T2A).updateTimestampWithHistory(T4B, reader([T3B], asked), 1)).version, 4);
    assert.equal(asked.length, 1);
    // Never more than maxHistoryWalk files, however long the chain behind them.
    const asked2: string[] = [];
    const t5b = stamp(5, T4B);
    assert.equal((await client(T2A).updateTimestampWithHistory(t5b, reader([T3B, T4B], asked2), 1)).version, 5);
    assert.deepEqual(asked2, [historyPath(linkOf(T4B))]);
  });

  test("dropping the history is a fork; an index written before history keeps working", async () => {
    const unlinked3 = stamp(3, null);
    let message = "";
    try {
      client(T2A).updateTimestamp(unlinked3);
    } catch (err) {
      message = (err as Error).message;
      assert.equal((err as ConnectorError).code, "trust.rollback.fork");
    }
    assert.match(message, /names no predecessor/);
    assert.equal(await codeOf(client(T2A).updateTimestampWithHistory(unlinked3, reader([]))), "trust.rollback.fork");
    const legacy1 = stamp(1, null);
    const legacy2 = stamp(2, null, 2);
    assert.equal(client(legacy1).updateTimestamp(legacy2).version, 2);
    // The first chained timestamp links to the last unchained one.
    assert.equal(client(legacy2).updateTimestamp(stamp(3, legacy2)).version, 3);
  });

  test("a history starting after the trusted version is a fork", async () => {
    const lateStart = stamp(3, null, 3);
    const t4 = stamp(4, lateStart);
    const state = client(T2A);
    await assert.rejects(state.updateTimestampWithHistory(t4, reader([lateStart])), (err: ConnectorError) => {
      assert.equal(err.code, "trust.rollback.fork");
      assert.match(err.message, /history starts at version 3/);
      return true;
    });
  });

  test("a link that skips the trusted version is a fork", async () => {
    const t5 = stamp(5, T3A); // trusted T4a; T5 names T3a
    assert.equal(await codeOf(client(T4A).updateTimestampWithHistory(t5, reader([]))), "trust.rollback.fork");
  });

  test("same version: a re-signature of the same payload is accepted, other payload bytes are not", () => {
    const resigned = stamp(2, T1, 0, [pub.timestampKey, new TestKey()]);
    assert.notDeepEqual(resigned, T2A);
    assert.equal(client(T2A).updateTimestamp(resigned).version, 2);
    assert.equal(code(() => client(T2A).updateTimestamp(T2B)), "trust.rollback");
  });

  test("verifyHistoryLink checks the payload hash and the version", () => {
    assert.equal(verifyHistoryLink(linkOf(T2A), T2A).version, 2);
    assert.equal(code(() => verifyHistoryLink({ ...linkOf(T2A), version: 3 }, T2A)), "trust.metadata");
    assert.equal(code(() => verifyHistoryLink(linkOf(T2A), T2B)), "trust.hash");
  });

  test("the test publisher's history explains its own gaps", async () => {
    const chained = published();
    const first = update(chained, chained.anchor());
    chained.commit();
    chained.commit();
    chained.writeTimestamp(); // version 4 over trusted version 1: two history files
    const state = new TrustedState(chained.anchor(), NOW);
    state.loadTrustedTimestamp(first.ts);
    const files = (link: TimestampLink) => chained.files.get(historyPath(link)) as Uint8Array;
    const ts = await state.updateTimestampWithHistory(chained.files.get("timestamp.json") as Uint8Array, files);
    assert.equal(ts.version, 4);
    assert.ok(ts.previous);
  });
});
