/**
 * `bundle:`: a mirror directory read through `file://` with the same verification as a
 * network mirror; offline, the only mirror (as Python's loader and updater).
 */

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { readConfig } from "../src/client/config.js";
import { DirectoryFetcher } from "../src/client/fetch.js";
import type { LoaderOptions } from "../src/client/loader.js";
import { ConnectorRegistry } from "../src/registry.js";
import { jsPackage, TestPublisher } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { rejectsWith, tempDirs } from "./support/scratch.js";

const NOW = new Date("2026-01-01T00:00:00Z");

const tempDir = tempDirs("mmc-ts-bundle-");

/** Write the publisher's files into a new directory: a bundle. */
function writeBundle(files: Map<string, Uint8Array>): string {
  const dir = tempDir();
  for (const [path, data] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
  return dir;
}

describe("bundle", () => {
  let pub: TestPublisher;
  let server: TestServer;
  let old: Map<string, Uint8Array>;

  before(async () => {
    pub = new TestPublisher({ now: NOW });
    pub.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    pub.commit();
    old = pub.snapshot();
    pub.commit();
    server = await TestServer.start(pub.files);
  });
  after(async () => {
    await server.close();
  });

  function options(cache: string, extra: Partial<LoaderOptions>): LoaderOptions {
    return { index: [server.url], trustRoot: pub.anchor(), cacheDir: cache, now: () => NOW, warn: () => undefined, ...extra };
  }

  test("offline, a bundle serves the index and the archive into an empty cache, with zero requests", async () => {
    const before = server.requests.length;
    const reg = new ConnectorRegistry({ loader: options(tempDir(), { offline: true, bundle: writeBundle(pub.files) }) });
    assert.deepEqual(await reg.loadPackage("acme-sink"), ["acme.sink.v1"]);
    assert.equal(server.requests.length, before);
  });

  test("a bundle alone (no index URL) works offline", async () => {
    const reg = new ConnectorRegistry({
      loader: { trustRoot: pub.anchor(), cacheDir: tempDir(), now: () => NOW, offline: true, bundle: writeBundle(pub.files), warn: () => undefined },
    });
    assert.deepEqual(await reg.loadPackage("acme-sink"), ["acme.sink.v1"]);
  });

  test("offline, an expired bundle is accepted within max_expired_age, with a warning", async () => {
    const warnings: string[] = [];
    const in8days = () => new Date(NOW.getTime() + 8 * 86_400_000);
    const bundle = writeBundle(pub.files);
    const expired = new ConnectorRegistry({ loader: options(tempDir(), { offline: true, bundle, now: in8days }) });
    await rejectsWith(expired.loadPackage("acme-sink"), "trust.expired", /timestamp\.json/);
    const reg = new ConnectorRegistry({
      loader: options(tempDir(), { offline: true, bundle, now: in8days, maxExpiredAgeMs: 2 * 86_400_000, warn: (m) => warnings.push(m) }),
    });
    assert.deepEqual(await reg.loadPackage("acme-sink"), ["acme.sink.v1"]);
    assert.equal(warnings.filter((w) => /^timestamp\.json expired 1d ago .* accepted offline within max_expired_age$/.test(w)).length, 1);
  });

  test("a tampered archive in the bundle is refused by hash", async () => {
    const bundle = writeBundle(pub.files);
    const file = "archives/acme-sink/acme-sink-1.0.0.zip";
    const bad = Uint8Array.from(pub.files.get(file) as Uint8Array);
    bad[bad.length - 30] = (bad[bad.length - 30] as number) ^ 1;
    writeFileSync(join(bundle, file), bad);
    const reg = new ConnectorRegistry({ loader: options(tempDir(), { offline: true, bundle }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "trust.hash");
  });

  test("offline, a bundle older than the stored state is a rollback", async () => {
    const cache = tempDir();
    await new ConnectorRegistry({ loader: options(cache, {}) }).loadPackage("acme-sink");
    const reg = new ConnectorRegistry({ loader: options(cache, { offline: true, bundle: writeBundle(old) }) });
    await rejectsWith(reg.loadPackage("acme-sink"), "trust.rollback");
  });

  test("online, the bundle is the last mirror: used when the index cannot be read", async () => {
    const down = await TestServer.start(new Map());
    const url = down.url;
    await down.close();
    const reg = new ConnectorRegistry({
      loader: options(tempDir(), { index: [url], bundle: writeBundle(pub.files), fetch: { retries: 0 } }),
    });
    assert.deepEqual(await reg.loadPackage("acme-sink"), ["acme.sink.v1"]);
  });

  test("the directory fetcher keeps the caps and the error tree", async () => {
    const dir = writeBundle(new Map([["a.json", new TextEncoder().encode("12345")]]));
    const f = new DirectoryFetcher();
    const base = pathToFileURL(dir).href;
    assert.equal((await f.fetchBytes(`${base}/a.json`, 5)).length, 5);
    await rejectsWith(f.fetchBytes(`${base}/a.json`, 4), "trust.length");
    await rejectsWith(f.fetchBytes(`${base}/missing.json`, 5), "download.not-found");
    await rejectsWith(f.fetchBytes(base, 5), "download.not-found", /is a directory/);
  });

  test("configuration: bundle is a path; a trust root inside the bundle or the cache is refused", () => {
    const dir = tempDir();
    const bundle = writeBundle(pub.files);
    writeFileSync(join(dir, "root.json"), pub.anchor());
    writeFileSync(join(dir, "ok.yaml"), `connectors:\n  trust_root: root.json\n  bundle: ${bundle}\n  offline: true\n`);
    assert.equal(readConfig(join(dir, "ok.yaml")).loader.bundle, bundle);
    writeFileSync(join(bundle, "root.json"), pub.anchor());
    assert.throws(
      () => readConfig({ trust_root: join(bundle, "root.json"), bundle }),
      /trust_root: .* lies inside the bundle directory \(connectors\.bundle\)/,
    );
    assert.throws(
      () => readConfig({ trust_root: join(bundle, "root.json"), cache_dir: bundle }),
      /lies inside the cache directory/,
    );
    assert.throws(() => readConfig({ trust_root: join(dir, "root.json"), bundle: 1 }), /bundle: expected the path/);
  });
});
