/** The trust core with bytes: strict JSON, envelopes, metadata and the stateful update. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConnectorError } from "../src/errors.js";
import { parseEnvelope, pae, verifyThreshold } from "../src/trust/envelope.js";
import { PublicKey, smallOrderProblem } from "../src/trust/keys.js";
import { nameHash } from "../src/trust/metadata.js";
import { canonicalJson, strictJson } from "../src/trust/strict-json.js";
import { TrustedState } from "../src/trust/state.js";
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
