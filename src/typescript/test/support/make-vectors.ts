/**
 * Generates the sample conformance vectors in test/vectors-sample/ from the test publisher.
 * Run after a build: `node dist/test/support/make-vectors.js` (keys are fresh each run, so
 * the committed files change whenever they are regenerated).
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { formatTime } from "../../src/trust/metadata.js";
import { canonicalJson } from "../../src/trust/strict-json.js";
import { jsPackage, manifestYaml, sha256, signEnvelope, TestKey, TestPublisher, TIMESTAMP_TYPE } from "./publisher.js";
import { b64, type Expect, type Step, VECTOR_FORMAT, type VectorCase } from "./vectors.js";
import { buildZip } from "./zip-writer.js";

const OUT = fileURLToPath(new URL("../../../test/vectors-sample/", import.meta.url));
const NOW = new Date("2026-01-01T00:00:00Z");

function write(suite: string, description: string, cases: VectorCase[]): void {
  mkdirSync(OUT, { recursive: true });
  const body = { format: VECTOR_FORMAT, suite, description, cases };
  writeFileSync(join(OUT, `${suite}.json`), `${JSON.stringify(body, null, 1)}\n`);
}

const err = (code: string) => ({ error: code });

write("strict-json", "The strict JSON reader (FORMAT.md §2).", [
  { name: "object", input: '{"a":[1,true,null,"x"]}', expect: { ok: true, value: { a: [1, true, null, "x"] } } },
  { name: "duplicate key", input: '{"a":1,"a":2}', expect: err("input.json") },
  { name: "float", input: '{"a":1.0}', expect: err("input.json") },
  { name: "exponent", input: "[1e3]", expect: err("input.json") },
  { name: "largest safe integer", input: "[9007199254740991]", expect: { ok: true, value: [9007199254740991] } },
  { name: "integer beyond 2^53-1", input: "[9007199254740992]", expect: err("input.json") },
  { name: "NaN", input: "[NaN]", expect: err("input.json") },
  { name: "Infinity", input: "[-Infinity]", expect: err("input.json") },
  { name: "BOM", input: { hex: "efbbbf7b7d" }, expect: err("input.json") },
  { name: "invalid UTF-8", input: { hex: "22ff22" }, expect: err("input.json") },
]);

const k1 = new TestKey();
const k2 = new TestKey();
const stranger = new TestKey();
const payload = canonicalJson({ type: "timestamp" });
const keys = { [k1.keyid]: k1.publicHex, [k2.keyid]: k2.publicHex };
const envCase = (name: string, signers: TestKey[], threshold: number, expect: object, type = TIMESTAMP_TYPE): VectorCase => ({
  name,
  input: {
    envelope: b64(canonicalJson(signEnvelope(type, payload, signers))),
    expected_type: TIMESTAMP_TYPE,
    keys,
    keyids: [k1.keyid, k2.keyid],
    threshold,
  },
  expect: expect as Expect,
});
write("envelope", "DSSE parsing and threshold counting (FORMAT.md §2).", [
  envCase("two of two", [k1, k2], 2, { ok: true, valid_keyids: [k1.keyid, k2.keyid].sort() }),
  envCase("one of two needed two", [k1], 2, err("trust.signature")),
  envCase("stranger does not count", [k1, stranger], 2, err("trust.signature")),
  envCase("wrong payload type", [k1, k2], 1, err("trust.signature"), "application/vnd.modelmesh.root+json"),
]);

const cands = [
  { version: "1.0.0" },
  { version: "1.1.0" },
  { version: "1.2.0", yanked: true, yanked_reason: "broken" },
  { version: "2.0.0a1" },
];
const pep = (name: string, requirement: string, expect: object, prereleases = false): VectorCase => ({
  name,
  input: { requirement, prereleases, candidates: cands },
  expect: expect as Expect,
});
write("pep440", "Release choice: PEP 440 specifiers, yanked and pre-release rules (resolve.py).", [
  pep("highest final", "p", { ok: true, version: "1.1.0", warning: false }),
  pep("yanked only when pinned", "p==1.2.0", { ok: true, version: "1.2.0", warning: true }),
  pep("yanked not chosen by range", "p>=1.2", err("resolution")),
  pep("pre-release when asked", "p", { ok: true, version: "2.0.0a1" }, true),
  pep("pre-release when named", "p>=2.0.0a1", { ok: true, version: "2.0.0a1" }),
  pep("extras refused", "p[x]>=1", err("input.package-spec")),
]);

write("zip-name", "Raw zip entry names (ERROR-CODES.md package.archive rules).", [
  { name: "plain", input: { name: "lib/a.mjs" }, expect: { ok: true, name: "lib/a.mjs", is_dir: false } },
  { name: "directory", input: { name: "lib/" }, expect: { ok: true, name: "lib", is_dir: true } },
  { name: "NUL", input: { name: { hex: "610062" } }, expect: err("package.archive") },
  { name: "non-ASCII without UTF-8 flag", input: { name: "café.mjs", flags: 0 }, expect: err("package.archive") },
  { name: "unicode path extra field", input: { name: "a.mjs", extra_ids: [0x7075] }, expect: err("package.archive") },
  { name: "NFD", input: { name: "cafe\u0301.mjs" }, expect: err("package.archive") },
  { name: "traversal", input: { name: "a/../b" }, expect: err("package.archive") },
  { name: "device name", input: { name: "aux.txt" }, expect: err("package.archive") },
  { name: "bidi override", input: { name: "a\u202egpj.mjs" }, expect: err("package.archive") },
  { name: "pyc", input: { name: "a/b.pyc" }, expect: err("package.archive") },
]);

const manifest = manifestYaml("p", "1.0.0", [{ id: "p.sink.v1", type: "observability", node: { module: "index.mjs", export: "Sink" } }]);
write("manifest", "modelmesh-package.yaml, including the proposed node entry (MANIFEST-NODE.md).", [
  { name: "node entry", input: manifest, expect: { ok: true, name: "p", version: "1.0.0", connectors: ["p.sink.v1"] } },
  { name: "float version", input: manifest.replace('"1.0.0"', "1.0"), expect: err("package.manifest") },
  { name: "unknown key", input: `${manifest}extra: 1\n`, expect: err("package.manifest") },
]);

write("zip", "Whole archives through the hardened reader.", [
  {
    name: "clean",
    input: b64(buildZip([{ name: "modelmesh-package.yaml", data: manifest }, { name: "index.mjs", data: "x", method: 8 }])),
    expect: { ok: true, files: { "modelmesh-package.yaml": sha256(manifest), "index.mjs": sha256("x") } },
  },
  {
    name: "duplicate entry",
    input: b64(buildZip([{ name: "modelmesh-package.yaml", data: manifest }, { name: "a", data: "1" }, { name: "a", data: "2" }])),
    expect: err("package.archive"),
  },
  {
    name: "symlink",
    input: b64(buildZip([{ name: "modelmesh-package.yaml", data: manifest }, { name: "l", data: "/etc", unixMode: 0o120777 }])),
    expect: err("package.archive"),
  },
]);

write("connector-id", "Connector IDs (ids.py).", [
  { name: "valid", input: "acme.audit-log.v1", expect: { ok: true, id: "acme.audit-log.v1" } },
  { name: "v0", input: "acme.x.v0", expect: err("input.connector-id") },
  { name: "two parts", input: "acme.x", expect: err("input.connector-id") },
]);

// -- index sequences ---------------------------------------------------------------

function serveAll(files: Map<string, Uint8Array>): Record<string, ReturnType<typeof b64>> {
  return Object.fromEntries([...files].map(([k, v]) => [k, b64(v)]));
}

const at = (days: number) => formatTime(new Date(NOW.getTime() + days * 86_400_000));
const resolve = (requirement: string) => ({ op: "resolve" as const, requirement });

function basePublisher(): TestPublisher {
  const pub = new TestPublisher({ now: NOW });
  pub.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [{ id: "acme.sink.v1", type: "observability" }]);
  pub.commit();
  return pub;
}

const cases: VectorCase[] = [];
{
  const pub = basePublisher();
  const sha = sha256(pub.files.get("archives/acme-sink/acme-sink-1.0.0.zip") as Uint8Array);
  cases.push({
    name: "fresh load",
    trust_root: b64(pub.anchor()),
    steps: [{ serve: serveAll(pub.files), now: at(0), action: resolve("acme-sink"), expect: { ok: true, version: "1.0.0", sha256: sha } }],
  });
}
{
  const pub = basePublisher();
  const old = pub.snapshot();
  pub.commit();
  const steps: Step[] = [
    { serve: serveAll(pub.files), now: at(0), action: { op: "refresh" }, expect: { ok: true, timestamp_version: 2, index_version: 2 } },
    { serve: serveAll(old), now: at(1), action: { op: "refresh" }, expect: { error: "trust.rollback" } },
  ];
  cases.push({ name: "timestamp rollback against the stored state", trust_root: b64(pub.anchor()), steps });
}
{
  const pub = basePublisher();
  cases.push({
    name: "expired timestamp (freeze)",
    trust_root: b64(pub.anchor()),
    steps: [{ serve: serveAll(pub.files), now: at(8), action: { op: "refresh" }, expect: { error: "trust.expired" } }],
  });
}
{
  const pub = basePublisher();
  const good = pub.files.get("archives/acme-sink/acme-sink-1.0.0.zip") as Uint8Array;
  const bad = Uint8Array.from(good);
  bad[bad.length - 40] = (bad[bad.length - 40] as number) ^ 1;
  cases.push({
    name: "tampered archive",
    trust_root: b64(pub.anchor()),
    steps: [
      {
        serve: { ...serveAll(pub.files), "archives/acme-sink/acme-sink-1.0.0.zip": b64(bad) },
        now: at(0),
        action: resolve("acme-sink"),
        expect: { error: "trust.hash" },
      },
    ],
  });
}
{
  const pub = basePublisher();
  const anchor = pub.anchor();
  const oldTs = pub.timestampKey;
  pub.rotateRoot({ newTimestampKey: true });
  pub.timestampKey = oldTs;
  pub.writeTimestamp();
  cases.push({
    name: "timestamp signed by a key revoked by root 2",
    trust_root: b64(anchor),
    steps: [{ serve: serveAll(pub.files), now: at(0), action: { op: "refresh" }, expect: { error: "trust.signature" } }],
  });
}
write("index-sequence", "Served index states over loopback, an injected clock and the outcome per step.", cases);
console.log(`wrote vectors to ${OUT}`);
