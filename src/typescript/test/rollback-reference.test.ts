/**
 * One rollback reference per trust root, whatever the mirror list (as Python's
 * `tests/attack/test_rollback_reference.py`).
 *
 * Mirror A (the publisher, current) and mirror B (a static copy taken before a security yank:
 * validly signed, older) run on loopback servers. The client first loads through A, so its
 * reference is the state in which the canary is yanked. B then offers the older state in
 * which the canary is not yanked; a rollback would load it and its code would run (it sets a
 * global marker). Keyed by the first mirror's URL, every row below started with no reference.
 */

import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { IndexView } from "../src/client/index-view.js";
import type { LoaderOptions } from "../src/client/loader.js";
import { normalizeIndexUrl, originId, StateStore } from "../src/client/statestore.js";
import { ConnectorRegistry } from "../src/registry.js";
import { trustRootId } from "../src/trust/state.js";
import { canonicalJson, type JsonValue } from "../src/trust/strict-json.js";
import { connectorSource, manifestYaml, sha256, signEnvelope, TestKey, TestPublisher, TIMESTAMP_TYPE } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { zipFiles } from "./support/zip-writer.js";
import { rejectsWith } from "./support/scratch.js";

const NOW = new Date("2026-01-01T00:00:00Z");
const CANARY = "canary-pkg";
const CANARY_ID = "canary.pkg.v1";
const OTHER = "acme-audit-log"; // published after the yank: its load sets the client's reference
const OTHER_ID = "acme.audit-log.v1";
const MARKER = "__mmcRollbackCanaryRan";

const made: string[] = [];
const servers: TestServer[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mmc-ts-rollback-"));
  made.push(dir);
  return dir;
}
after(async () => {
  for (const s of servers) {
    await s.close();
  }
  for (const dir of made) {
    rmSync(dir, { recursive: true, force: true });
  }
});

function canaryRan(): boolean {
  return (globalThis as Record<string, unknown>)[MARKER] === true;
}

/** A package whose import leaves a marker: its code running means the client was rolled back. */
function canaryPackage(): Uint8Array {
  return zipFiles({
    "modelmesh-package.yaml": manifestYaml(CANARY, "1.0.0", [
      { id: CANARY_ID, type: "observability", node: { module: "index.mjs", export: "Sink" } },
    ]),
    "index.mjs": connectorSource(CANARY_ID, "observability", "Sink", `globalThis.${MARKER} = true;`),
  });
}

function otherPackage(version = "1.0.0"): Uint8Array {
  return zipFiles({
    "modelmesh-package.yaml": manifestYaml(OTHER, version, [
      { id: OTHER_ID, type: "observability", node: { module: "index.mjs", export: "Sink" } },
    ]),
    "index.mjs": connectorSource(OTHER_ID, "observability", "Sink"),
  });
}

function writeDir(files: Map<string, Uint8Array>): string {
  const dir = tempDir();
  for (const [path, data] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
  return dir;
}

/** Every file below `dir` with its sha256: a change anywhere shows. */
function snapshotFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) {
    return out;
  }
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath, e.name);
      out.set(p, sha256(readFileSync(p)));
    }
  }
  return out;
}

interface Stage {
  pub: TestPublisher;
  a: TestServer;
  b: TestServer;
  staleDir: string;
  cache: string;
  warnings: string[];
  options(extra?: Partial<LoaderOptions>): LoaderOptions;
  record(): string;
}

/** Publish the canary, keep a stale copy, yank it (and publish OTHER), load OTHER through A. */
async function stage(opts: { rotate?: boolean } = {}): Promise<Stage> {
  const pub = new TestPublisher({ now: NOW });
  pub.addRelease(CANARY, "1.0.0", canaryPackage(), [{ id: CANARY_ID, type: "observability" }]);
  pub.commit();
  const stale = pub.snapshot(); // what a mirror that stopped syncing keeps serving
  if (opts.rotate) {
    pub.rotateRoot({ newRootKeys: [new TestKey(), new TestKey()] }); // the record must stay the anchor's
  }
  const release = pub.packages.get(CANARY)?.[0];
  assert.ok(release);
  release.yanked = true;
  release.yanked_reason = "remote code execution";
  pub.addRelease(OTHER, "1.0.0", otherPackage(), [{ id: OTHER_ID, type: "observability" }]);
  pub.commit();
  const a = await TestServer.start(pub.files);
  const b = await TestServer.start(stale);
  servers.push(a, b);
  const cache = tempDir();
  const warnings: string[] = [];
  const s: Stage = {
    pub,
    a,
    b,
    staleDir: writeDir(stale),
    cache,
    warnings,
    // metadataMaxAgeMs -1: the client really asks the mirrors instead of reusing its state.
    options: (extra = {}) => ({
      index: [a.url],
      trustRoot: pub.anchor(),
      cacheDir: cache,
      now: () => NOW,
      metadataMaxAgeMs: -1,
      fetch: { retries: 0 },
      warn: (m) => warnings.push(m),
      ...extra,
    }),
    record: () => join(cache, "metadata", `trust-${trustRootId(pub.anchor()).slice(0, 16)}`),
  };
  await new ConnectorRegistry({ loader: s.options() }).loadPackage(OTHER); // the reference
  return s;
}

/** The rollback is refused: typed error, no canary code run, nothing registered, cache unchanged. */
async function assertRollbackRefused(s: Stage, options: LoaderOptions): Promise<void> {
  const before = snapshotFiles(s.cache);
  const registry = new ConnectorRegistry({ loader: options });
  await rejectsWith(registry.loadPackage(CANARY), "trust.rollback", /rollback|older|lower/);
  assert.equal(canaryRan(), false, "the yanked canary's code ran: the client was rolled back");
  assert.ok(!registry.listConnectors().some((c) => c.id === CANARY_ID));
  assert.deepEqual(snapshotFiles(s.cache), before, "the cache changed");
}

const ATTACKS: [string, (s: Stage) => Partial<LoaderOptions>][] = [
  ["only the stale mirror", (s) => ({ index: [s.b.url] })],
  ["stale mirror listed first, the current one failing", (s) => ({ index: [s.b.url, s.a.url] })],
  ["stale mirror under another spelling", (s) => ({ index: [s.b.url.replace("127.0.0.1", "localhost")] })],
  ["stale bundle offline", (s) => ({ index: [], bundle: s.staleDir, offline: true })],
  ["stale bundle online, no index", (s) => ({ index: [], bundle: s.staleDir })],
  ["stale file:// mirror", (s) => ({ index: [pathToFileURL(s.staleDir).href] })],
];

describe("one rollback reference per trust root", () => {
  for (const [name, make] of ATTACKS) {
    test(`a stale mirror cannot roll back: ${name}`, async () => {
      const s = await stage();
      s.a.faults.set("timestamp.json", { kind: "status", status: 503 }); // A is down for the attack
      await assertRollbackRefused(s, s.options(make(s)));
    });
  }

  test("a stale mirror added first never wins: its rollback is refused, A serves the current state", async () => {
    const s = await stage();
    const registry = new ConnectorRegistry({ loader: s.options({ index: [s.b.url, s.a.url] }) });
    assert.deepEqual(await registry.loadPackage(OTHER), [OTHER_ID]);
    assert.ok(
      s.warnings.some((w) => w.includes(s.b.url) && /rollback|lower|older/.test(w)),
      `no rollback warning naming ${s.b.url}: ${s.warnings.join(" | ")}`,
    );
    await rejectsWith(
      new ConnectorRegistry({ loader: s.options({ index: [s.b.url, s.a.url] }) }).loadPackage(CANARY),
      "resolution",
      /yanked/,
    );
    assert.equal(canaryRan(), false);
    assert.deepEqual(readFileSync(join(s.record(), "timestamp.json")), Buffer.from(s.pub.files.get("timestamp.json") as Uint8Array));
  });

  test("every mirror list, spelling and the bundle read and write one record, claimed for the trust root", async () => {
    const s = await stage();
    const current = writeDir(s.pub.files);
    for (const extra of [
      { index: [s.a.url] },
      { index: [s.a.url.replace("127.0.0.1", "localhost")] },
      { index: ["http://127.0.0.1:9/", s.a.url] },
      { index: [], bundle: current },
      { index: [], bundle: current, offline: true },
      { offline: true },
    ]) {
      const registry = new ConnectorRegistry({ loader: s.options(extra) });
      assert.deepEqual(await registry.loadPackage(OTHER), [OTHER_ID], JSON.stringify(extra));
    }
    assert.deepEqual(readdirSync(join(s.cache, "metadata")), [`trust-${trustRootId(s.pub.anchor()).slice(0, 16)}`]);
    assert.equal(readFileSync(join(s.record(), "origin.txt"), "utf8"), `trust-root:${trustRootId(s.pub.anchor())}\n`);
  });

  test("the identity is the anchor's payload: another signature over the same root keeps it", () => {
    const pub = new TestPublisher({ now: NOW, rootKeyCount: 2 });
    const env = JSON.parse(Buffer.from(pub.anchor()).toString()) as { payload: string };
    const payload = Buffer.from(env.payload, "base64");
    const resigned = canonicalJson(signEnvelope("application/vnd.modelmesh.root+json", payload, pub.rootKeys.slice(0, 1)));
    assert.notDeepEqual(Buffer.from(resigned), Buffer.from(pub.anchor()));
    assert.equal(trustRootId(resigned), trustRootId(pub.anchor()));
    assert.equal(trustRootId(pub.anchor()), sha256(payload));
  });

  test("after a root rotation the record is still the shipped anchor's, and B cannot roll back", async () => {
    const s = await stage({ rotate: true });
    assert.deepEqual(readdirSync(join(s.cache, "metadata")), [`trust-${trustRootId(s.pub.anchor()).slice(0, 16)}`]);
    assert.deepEqual(readFileSync(join(s.record(), "roots", "2.json")), Buffer.from(s.pub.files.get("root/2.json") as Uint8Array));
    s.a.faults.set("timestamp.json", { kind: "status", status: 503 });
    await assertRollbackRefused(s, s.options({ index: [s.b.url] }));
  });

  test("two trust roots in one cache never share state; a record copied over the other's is refused", async () => {
    const cache = tempDir();
    const one = new TestPublisher({ now: NOW });
    one.addRelease(OTHER, "1.0.0", otherPackage(), [{ id: OTHER_ID, type: "observability" }]);
    one.commit();
    const two = new TestPublisher({ now: NOW });
    for (const v of ["1.0.0", "1.1.0", "1.2.0"]) {
      // a higher timestamp version than one's: shared, it would freeze one
      two.addRelease(OTHER, v, otherPackage(v), [{ id: OTHER_ID, type: "observability" }]);
      two.commit();
    }
    const sOne = await TestServer.start(one.files);
    const sTwo = await TestServer.start(two.files);
    servers.push(sOne, sTwo);
    const opts = (pub: TestPublisher, srv: TestServer): LoaderOptions => ({
      index: [srv.url],
      trustRoot: pub.anchor(),
      cacheDir: cache,
      now: () => NOW,
      metadataMaxAgeMs: -1,
      warn: () => undefined,
    });
    for (const [pub, srv] of [[two, sTwo], [one, sOne], [two, sTwo], [one, sOne]] as const) {
      assert.deepEqual(await new ConnectorRegistry({ loader: opts(pub, srv) }).loadPackage(OTHER), [OTHER_ID]);
    }
    const store = new StateStore(cache);
    const ids = [one, two].map((p) => trustRootId(p.anchor())).sort();
    assert.deepEqual(
      store.trustRoots().map((r) => r.claim),
      ids.map((i) => `trust-root:${i}`),
    );
    for (const pub of [one, two]) {
      assert.deepEqual(store.trustRoot(trustRootId(pub.anchor())).loadTimestamp(), Buffer.from(pub.files.get("timestamp.json") as Uint8Array));
    }
    const src = store.trustRoot(trustRootId(two.anchor())).directory;
    const dst = store.trustRoot(trustRootId(one.anchor())).directory;
    rmSync(dst, { recursive: true });
    cpSync(src, dst, { recursive: true });
    await rejectsWith(new ConnectorRegistry({ loader: opts(one, sOne) }).loadPackage(OTHER), "cache", /belongs to/);
  });
});

/** Turn the trust root's record into the layout earlier versions wrote for `url`. */
function asLegacy(s: Stage, url: string): string {
  const legacy = join(s.cache, "metadata", originId(url));
  renameSync(s.record(), legacy);
  writeFileSync(join(legacy, "origin.txt"), `${normalizeIndexUrl(url)}\n`);
  return legacy;
}

/** A timestamp of `version` re-signed by a key the root never named (a freeze attempt). */
function forgedTimestamp(pub: TestPublisher, version: number): Uint8Array {
  const env = JSON.parse(Buffer.from(pub.files.get("timestamp.json") as Uint8Array).toString()) as { payload: string };
  const payload = JSON.parse(Buffer.from(env.payload, "base64").toString()) as Record<string, JsonValue>;
  payload["version"] = version;
  return canonicalJson(signEnvelope(TIMESTAMP_TYPE, canonicalJson(payload as JsonValue), [new TestKey()]));
}

describe("migrating the URL-keyed state of earlier versions", () => {
  test("a valid legacy record is migrated (only read), then the stale mirror is refused", async () => {
    const s = await stage();
    const legacy = asLegacy(s, s.a.url);
    const legacyFiles = snapshotFiles(legacy);
    s.a.faults.set("timestamp.json", { kind: "status", status: 503 });
    const warnings: string[] = [];
    await rejectsWith(
      new ConnectorRegistry({ loader: s.options({ index: [s.b.url], warn: (m) => warnings.push(m) }) }).loadPackage(CANARY),
      "trust.rollback",
    );
    assert.ok(warnings.some((w) => w.startsWith("migrated the rollback reference")), warnings.join(" | "));
    assert.equal(canaryRan(), false);
    assert.deepEqual(readFileSync(join(s.record(), "timestamp.json")), Buffer.from(s.pub.files.get("timestamp.json") as Uint8Array));
    assert.deepEqual(snapshotFiles(legacy), legacyFiles, "a legacy record is only read");
    await assertRollbackRefused(s, s.options({ index: [s.b.url] }));
  });

  test("an upgraded client that is offline keeps working from the migrated reference and nodes", async () => {
    const s = await stage();
    asLegacy(s, s.a.url);
    const before = s.a.requests.length;
    const registry = new ConnectorRegistry({ loader: s.options({ offline: true }) });
    assert.deepEqual(await registry.loadPackage(OTHER), [OTHER_ID]);
    assert.equal(s.a.requests.length, before);
    assert.ok(readdirSync(join(s.record(), "nodes")).length > 0);
  });

  for (const forger of ["attacker-key", "corrupt-bytes"]) {
    test(`a forged legacy record is not adopted: ${forger}`, async () => {
      const s = await stage();
      const legacy = asLegacy(s, "https://old-mirror.example/");
      const good = readFileSync(join(legacy, "timestamp.json"));
      const forged =
        forger === "attacker-key"
          ? forgedTimestamp(s.pub, 1_000_000)
          : Buffer.from(good.toString().replace('"payload":"', '"payload":"A'));
      writeFileSync(join(legacy, "timestamp.json"), forged);
      const warnings: string[] = [];
      const warn = (m: string): number => warnings.push(m);
      await rejectsWith(
        new ConnectorRegistry({ loader: s.options({ offline: true, warn }) }).loadPackage(OTHER),
        "download",
        /no trusted index state/,
      );
      assert.equal(existsSync(join(s.record(), "timestamp.json")), false, "forged bytes were adopted");
      assert.ok(
        warnings.some((w) => w.includes("does not verify from the trust root") && w.includes("old-mirror.example")),
        warnings.join(" | "),
      );
      assert.deepEqual(await new ConnectorRegistry({ loader: s.options({ warn }) }).loadPackage(OTHER), [OTHER_ID]);
      assert.deepEqual(readFileSync(join(s.record(), "timestamp.json")), Buffer.from(s.pub.files.get("timestamp.json") as Uint8Array));
    });
  }

  test("with several legacy records the newest verified reference wins (never lowered)", async () => {
    const s = await stage();
    const current = readFileSync(join(s.record(), "timestamp.json"));
    asLegacy(s, s.a.url);
    const older = join(s.cache, "metadata", originId(s.b.url));
    mkdirSync(older);
    writeFileSync(join(older, "origin.txt"), `${normalizeIndexUrl(s.b.url)}\n`);
    writeFileSync(join(older, "timestamp.json"), readFileSync(join(s.staleDir, "timestamp.json")));
    s.a.faults.set("timestamp.json", { kind: "status", status: 503 });
    await rejectsWith(new ConnectorRegistry({ loader: s.options({ index: [s.b.url] }) }).loadPackage(CANARY), "trust.rollback");
    assert.deepEqual(readFileSync(join(s.record(), "timestamp.json")), current);
  });
});

describe("one record shared with the Python client", () => {
  // From dist/test/ back to the sources: the fixture is not copied by tsc.
  const FIXTURE = resolve(import.meta.dirname, "..", "..", "test", "fixtures", "python-state");

  test("a record Python wrote is found by the same identity and used offline, with its refresh time", async () => {
    const cache = tempDir();
    cpSync(join(FIXTURE, "metadata"), join(cache, "metadata"), { recursive: true });
    const anchor = readFileSync(join(FIXTURE, "root.json"));
    const id = trustRootId(anchor);
    const store = new StateStore(cache);
    assert.deepEqual(
      store.trustRoots().map((r) => r.claim),
      [`trust-root:${id}`],
    );
    assert.deepEqual(store.origins(), []);
    const record = store.trustRoot(id);
    const refreshed = record.lastRefresh(); // Python writes fractions of a second
    assert.ok(refreshed !== null, "Python's state.json was not read");
    const refuse = { fetchBytes: () => Promise.reject(new Error("a request was made")), fetchTo: () => Promise.reject(new Error("a request was made")) };
    const view = new IndexView({ anchor, store: record, mirrors: [], fetcher: refuse, now: refreshed, offline: true });
    assert.deepEqual((await view.releases("acme-audit-log")).map((r) => r.version).sort(), ["1.0.0", "1.1.0"]);
    // What this client writes back is Python's spelling.
    record.recordRefresh(new Date("2026-02-03T04:05:06Z"));
    assert.equal(readFileSync(join(record.directory, "state.json"), "utf8"), '{\n "last_refresh": "2026-02-03T04:05:06Z"\n}\n');
  });
});
