/**
 * Offline mode, the offline expiry grace (`max_expired_age`) and `require_signatures`, end to
 * end over a loopback server that counts every request (as Python's updater and loader).
 */

import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { readConfig } from "../src/client/config.js";
import { IndexView } from "../src/client/index-view.js";
import { Loader, type LoaderOptions } from "../src/client/loader.js";
import { StateStore } from "../src/client/statestore.js";
import { trustRootId } from "../src/trust/state.js";
import { ConnectorRegistry } from "../src/registry.js";
import { jsPackage, sha256, TestPublisher } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { rejectsWith, tempDirs } from "./support/scratch.js";

const NOW = new Date("2026-01-01T00:00:00Z");
const DAY = 86_400_000;

const tempDir = tempDirs("mmc-ts-offline-");

/** Every file below `dir`, recursively. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe("offline mode and the offline expiry grace", () => {
  let pub: TestPublisher;
  let server: TestServer;

  before(async () => {
    pub = new TestPublisher({ now: NOW, timestampDays: 7, indexDays: 30 });
    pub.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    pub.commit();
    server = await TestServer.start(pub.files);
  });
  after(async () => {
    await server.close();
  });

  function options(cache: string, extra: Partial<LoaderOptions> = {}): LoaderOptions {
    return { index: [server.url], trustRoot: pub.anchor(), cacheDir: cache, now: () => NOW, warn: () => undefined, ...extra };
  }

  /** A cache filled by one online load of acme-sink. */
  async function warmCache(): Promise<string> {
    const cache = tempDir();
    await new ConnectorRegistry({ loader: options(cache) }).loadPackage("acme-sink");
    return cache;
  }

  test("offline loads from the cache with zero requests, however old the last refresh", async () => {
    const cache = await warmCache();
    const before = server.requests.length;
    // An hour later: online this state would be refreshed (metadata_max_age 5 min).
    const later = () => new Date(NOW.getTime() + 3_600_000);
    const reg = new ConnectorRegistry({ loader: options(cache, { offline: true, now: later }) });
    assert.deepEqual(await reg.loadPackage("acme-sink"), ["acme.sink.v1"]);
    assert.equal(reg.origin("acme.sink.v1").kind, "package");
    assert.equal(server.requests.length, before, `offline made requests: ${server.requests.slice(before).join(", ")}`);
  });

  test("offline, the index view asks its fetcher nothing and lists no archive URL", async () => {
    const cache = await warmCache();
    let calls = 0;
    const counting = {
      fetchBytes: () => {
        calls++;
        return Promise.reject(new Error("a request was made"));
      },
      fetchTo: () => {
        calls++;
        return Promise.reject(new Error("a request was made"));
      },
    };
    const view = new IndexView({
      anchor: pub.anchor(),
      store: new StateStore(cache).trustRoot(trustRootId(pub.anchor())),
      mirrors: [server.url],
      fetcher: counting,
      now: new Date(NOW.getTime() + 3_600_000),
      offline: true,
    });
    assert.equal((await view.releases("acme-sink")).length, 1);
    assert.deepEqual(view.archiveUrls("archives/acme-sink/acme-sink-1.0.0.zip"), []);
    assert.equal(calls, 0);
  });

  test("offline with no stored index state fails clearly, with zero requests", async () => {
    const before = server.requests.length;
    const reg = new ConnectorRegistry({ loader: options(tempDir(), { offline: true }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "download", /^offline, and no trusted index state is cached$/);
    assert.equal(server.requests.length, before);
  });

  test("offline, a tampered cached node is not used and nothing is fetched", async () => {
    const cache = await warmCache();
    const nodes = filesBelow(cache).filter((p) => p.includes(`${join("nodes", "")}`));
    assert.ok(nodes.length > 0, "the online run cached no node");
    for (const node of nodes) {
      writeFileSync(node, "{}");
    }
    const before = server.requests.length;
    const reg = new ConnectorRegistry({ loader: options(cache, { offline: true }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "download", /is not cached and no mirror may be used \(offline\)/);
    assert.equal(server.requests.length, before);
  });

  test("offline, a tampered cached archive is re-hashed, dropped, and not downloaded", async () => {
    const cache = await warmCache();
    const archives = filesBelow(join(cache, "archives"));
    assert.equal(archives.length, 1);
    writeFileSync(archives[0] as string, "not the signed bytes");
    const before = server.requests.length;
    const reg = new ConnectorRegistry({ loader: options(cache, { offline: true }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "download", /acme-sink 1\.0\.0 .* is not cached and offline mode allows no download/);
    assert.equal(server.requests.length, before);
  });

  test("offline, a tampered stored index top is not trusted", async () => {
    const cache = await warmCache();
    const top = filesBelow(cache).find((p) => p.endsWith(`${join("", "index.json")}`) && !p.includes("nodes"));
    assert.ok(top !== undefined);
    writeFileSync(top, "{}");
    const reg = new ConnectorRegistry({ loader: options(cache, { offline: true }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "download", /no trusted index state is cached/);
  });

  test("offline, an archive URL entry is refused before any request", async () => {
    const reg = new ConnectorRegistry({ loader: options(await warmCache(), { offline: true }) });
    const before = server.requests.length;
    await rejectsWith(
      reg.loadPackage(`${server.url}archives/acme-sink/acme-sink-1.0.0.zip`),
      "trust.policy",
      /offline mode: no network request may be made/,
    );
    assert.equal(server.requests.length - before, 0);
  });

  test("offline, an expired timestamp is refused without a grace period", async () => {
    const cache = await warmCache();
    const in8days = () => new Date(NOW.getTime() + 8 * DAY);
    const reg = new ConnectorRegistry({ loader: options(cache, { offline: true, now: in8days }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "trust.expired", /timestamp\.json: expired at/);
  });

  test("offline, an expired timestamp within max_expired_age is accepted with a warning", async () => {
    const cache = await warmCache();
    const warnings: string[] = [];
    const in8days = () => new Date(NOW.getTime() + 8 * DAY);
    const reg = new ConnectorRegistry({
      loader: options(cache, { offline: true, now: in8days, maxExpiredAgeMs: 2 * DAY, warn: (m) => warnings.push(m) }),
    });
    assert.deepEqual(await reg.loadPackage("acme-sink"), ["acme.sink.v1"]);
    const expiry = new Date(NOW.getTime() + 7 * DAY).toISOString();
    assert.deepEqual(
      warnings.filter((w) => w.includes("max_expired_age")),
      [`timestamp.json expired 1d ago (at ${expiry}); accepted offline within max_expired_age`],
    );
  });

  test("offline, a timestamp expired longer than max_expired_age is refused", async () => {
    const cache = await warmCache();
    const in10days = () => new Date(NOW.getTime() + 10 * DAY);
    const reg = new ConnectorRegistry({
      loader: options(cache, { offline: true, now: in10days, maxExpiredAgeMs: 2 * DAY }),
    });
    await rejectsWith(reg.loadPackage("acme-sink"), "trust.expired", /timestamp\.json: expired at/);
  });

  test("online, max_expired_age is ignored: an expired timestamp from the mirror is refused", async () => {
    const cache = await warmCache();
    const in8days = () => new Date(NOW.getTime() + 8 * DAY);
    const before = server.requests.length;
    const reg = new ConnectorRegistry({ loader: options(cache, { now: in8days, maxExpiredAgeMs: 2 * DAY }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "trust.expired", /timestamp\.json: expired at/);
    assert.ok(server.requests.length > before, "online should have asked the mirror");
  });
});

describe("require_signatures", () => {
  let pub: TestPublisher;
  let dir: string;
  let zipPath: string;
  const file = "archives/acme-sink/acme-sink-1.0.0.zip";

  before(() => {
    pub = new TestPublisher({ now: NOW });
    pub.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    pub.addRelease("acme-sink", "1.1.0", jsPackage("acme-sink", "1.1.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    dir = tempDir();
    zipPath = join(dir, "acme-sink-1.0.0.zip");
    writeFileSync(zipPath, pub.files.get(file) as Uint8Array);
    writeFileSync(`${zipPath}.sig`, pub.files.get(`${file}.sig`) as Uint8Array);
  });

  function registry(requireSignatures: boolean): ConnectorRegistry {
    return new ConnectorRegistry({
      loader: { trustRoot: pub.anchor(), cacheDir: tempDir(), now: () => NOW, warn: () => undefined, requireSignatures },
    });
  }

  test("a signed local zip loads as a verified package", async () => {
    const reg = registry(true);
    assert.deepEqual(await reg.loadPackage(zipPath), ["acme.sink.v1"]);
    const origin = reg.origin("acme.sink.v1");
    assert.equal(origin.kind, "package");
    assert.deepEqual(origin.signedBy, [pub.indexKey.keyid]);
  });

  test("a directory is refused, even one named like a zip", async () => {
    for (const name of ["acme-sink", "acme-sink-1.0.0.zip"]) {
      const pkgDir = join(tempDir(), name);
      mkdirSync(pkgDir);
      await rejectsWith(registry(true).loadPackage(pkgDir), "trust.policy", /require_signatures is on and a directory cannot be signed/);
    }
  });

  test("a zip without its .sig is refused, and loads when the policy is off", async () => {
    const bare = join(tempDir(), "acme-sink-1.0.0.zip");
    writeFileSync(bare, pub.files.get(file) as Uint8Array);
    await rejectsWith(registry(true).loadPackage(bare), "trust.policy", /\.zip\.sig cannot be read/);
    const reg = registry(false);
    assert.deepEqual(await reg.loadPackage(bare), ["acme.sink.v1"]);
    assert.equal(reg.origin("acme.sink.v1").kind, "local");
  });

  test("a signature of another release (renamed zip) is refused", async () => {
    const other = join(tempDir(), "acme-sink-1.1.0.zip");
    writeFileSync(other, pub.files.get(file) as Uint8Array);
    writeFileSync(`${other}.sig`, pub.files.get(`${file}.sig`) as Uint8Array);
    await rejectsWith(registry(true).loadPackage(other), "trust.policy", /names .acme-sink-1\.1\.0\.zip.*downgrade or substitution/);
  });

  test("a tampered zip is refused by hash before it is parsed", async () => {
    const bad = join(tempDir(), "acme-sink-1.0.0.zip");
    const data = Uint8Array.from(pub.files.get(file) as Uint8Array);
    data[data.length - 30] = (data[data.length - 30] as number) ^ 1;
    writeFileSync(bad, data);
    writeFileSync(`${bad}.sig`, pub.files.get(`${file}.sig`) as Uint8Array);
    await rejectsWith(registry(true).loadPackage(bad), "trust.hash");
  });

  test("a pinned archive URL without a .sig is refused", async () => {
    const server = await TestServer.start(new Map([[file, pub.files.get(file) as Uint8Array]]));
    try {
      const url = `${server.url}${file}#sha256=${sha256(pub.files.get(file) as Uint8Array)}`;
      await rejectsWith(registry(true).loadPackage(url), "trust", /no detached signature/);
      assert.deepEqual(await registry(false).loadPackage(url), ["acme.sink.v1"]);
    } finally {
      await server.close();
    }
  });
});

describe("configuration keys", () => {
  test("offline, max_expired_age and require_signatures are read", () => {
    const root = join(tempDir(), "root.json");
    writeFileSync(root, new TestPublisher({ now: NOW }).anchor());
    const parsed = readConfig({
      connectors: { trust_root: root, offline: true, max_expired_age: "2d", require_signatures: true },
    });
    assert.equal(parsed.loader.offline, true);
    assert.equal(parsed.loader.maxExpiredAgeMs, 2 * DAY);
    assert.equal(parsed.loader.requireSignatures, true);
    const defaults = readConfig({ trust_root: root });
    assert.equal(defaults.loader.offline, false);
    assert.equal(defaults.loader.maxExpiredAgeMs, 0);
    assert.equal(defaults.loader.requireSignatures, false);
    assert.throws(() => readConfig({ trust_root: root, offline: "yes" }), /offline: expected true or false/);
    assert.throws(() => readConfig({ trust_root: root, max_expired_age: -1 }), /max_expired_age: expected a duration/);
  });

  test("a Loader built offline refuses requests even when handed a fetcher", async () => {
    const loader = new Loader({
      trustRoot: new TestPublisher({ now: NOW }).anchor(),
      cacheDir: tempDir(),
      offline: true,
      now: () => NOW,
      fetcher: {
        fetchBytes: () => Promise.reject(new Error("a request was made")),
        fetchTo: () => Promise.reject(new Error("a request was made")),
      },
    });
    await rejectsWith(loader.fetchPackage("https://example.org/a-1.0.zip"), "trust.policy");
  });
});
