/** End-to-end: real loopback HTTP servers, the committed index, and a test index with JS packages. */

import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Loader } from "../src/client/loader.js";
import { parseRequirement } from "../src/client/requirements.js";
import { ConnectorType } from "../src/package/connector-types.js";
import { ConnectorRegistry } from "../src/registry.js";
import { jsPackage, manifestYaml, sha256, TestPublisher } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { zipFiles } from "./support/zip-writer.js";
import { rejectsWith, tempDirs } from "./support/scratch.js";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url));
const NOW = new Date("2026-01-01T00:00:00Z");

const tempDir = tempDirs("mmc-ts-");

describe("the committed index over loopback", () => {
  let server: TestServer;
  let cache: string;
  const anchor = readFileSync(join(REPO, "keys/root.json"));

  before(async () => {
    server = await TestServer.start(join(REPO, "index"));
    cache = tempDir();
  });
  after(async () => {
    await server.close();
    rmSync(cache, { recursive: true, force: true });
  });

  const packages = [
    ["acme-audit-log", "1.1.0"],
    ["demo-weighted-rotation", "1.0.0"],
    ["modelmesh-echo-provider", "1.0.0"],
    ["demo-canary", "1.0.0"],
    ["demo-js-event-log", "1.0.0"],
    ["demo-js-canary", "1.0.0"],
  ] as const;

  for (const [name, version] of packages) {
    test(`verifies and resolves ${name} (metadata and archive hash)`, async () => {
      const loader = new Loader({ index: [server.url], trustRoot: anchor, cacheDir: cache, warn: () => undefined });
      const resolved = await loader.resolve(parseRequirement(name));
      assert.equal(resolved.name, name);
      assert.equal(resolved.version, version);
      const data = await loader.fetchArchive(resolved);
      assert.equal(sha256(data), resolved.sha256);
      assert.equal(data.length, resolved.length);
      assert.equal(sha256(readFileSync(join(REPO, "index", resolved.release?.file ?? ""))), resolved.sha256);
    });
  }

  test("loads the JavaScript demo package and runs its connector", async () => {
    const registry = new ConnectorRegistry({
      loader: { index: [server.url], trustRoot: anchor, cacheDir: tempDir(), warn: () => undefined },
    });
    assert.deepEqual(await registry.loadPackage("demo-js-event-log"), ["demo.js-event-log.v1"]);
    assert.deepEqual(registry.listConnectors("observability"), [
      {
        id: "demo.js-event-log.v1",
        connector_type: ConnectorType.OBSERVABILITY,
        version: "1.0.0",
        description: "Keeps routing events, request logs, statistics flushes and traces in memory, numbered",
      },
    ]);
    const EventLog = registry.getConnector("demo.js-event-log.v1") as new (config?: {
      limit?: number;
    }) => { emit(e: unknown): void; trace(e: unknown): void; records: { seq: number; kind: string }[] };
    const sink = new EventLog({ limit: 1 });
    sink.emit({ model: "m" });
    sink.trace({ span: "s" });
    assert.deepEqual(
      sink.records.map((r) => [r.seq, r.kind]),
      [[2, "trace"]],
    );
    assert.ok(registry.origin("demo.js-event-log.v1").signedBy.length > 0);
  });

  test("the JavaScript canary leaves its marker only when loaded", async () => {
    const marker = join(tempDir(), "marker");
    process.env["MODELMESH_CANARY_PATH"] = marker;
    try {
      const registry = new ConnectorRegistry({
        loader: { index: [server.url], trustRoot: anchor, cacheDir: tempDir(), warn: () => undefined },
      });
      assert.deepEqual(await registry.loadPackage("demo-js-canary"), ["demo.js-canary.v1"]);
      assert.equal(readFileSync(marker, "utf8"), "demo-js-canary/lib/marker.mjs\n");
    } finally {
      delete process.env["MODELMESH_CANARY_PATH"];
    }
  });

  test("refuses the Python-only packages with a clear error", async () => {
    const registry = new ConnectorRegistry({
      loader: { index: [server.url], trustRoot: anchor, cacheDir: cache, warn: () => undefined },
    });
    await rejectsWith(registry.loadPackage("acme-audit-log>=1.1,<2"), "package.no-entry-point", /no Node entry point/);
    assert.deepEqual(registry.listConnectors(), []);
  });

  test("an older pin resolves too, and a missing package is a resolution error", async () => {
    const loader = new Loader({ index: [server.url], trustRoot: anchor, cacheDir: tempDir(), warn: () => undefined });
    const old = await loader.resolve(parseRequirement("acme-audit-log==1.0.0"));
    assert.equal(old.version, "1.0.0");
    await rejectsWith(loader.resolve(parseRequirement("no-such-package")), "resolution");
    await rejectsWith(loader.resolve(parseRequirement("acme-audit-log>=9")), "resolution");
  });
});

describe("a signed test index with JS packages over loopback", () => {
  let pub: TestPublisher;
  let server: TestServer;

  before(async () => {
    pub = new TestPublisher({ now: NOW });
    pub.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    pub.addRelease("acme-sink", "1.1.0", jsPackage("acme-sink", "1.1.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    pub.addRelease("other-sink", "2.0.0", jsPackage("other-sink", "2.0.0", "other.sink.v1"), [
      { id: "other.sink.v1", type: "observability" },
    ]);
    pub.commit();
    server = await TestServer.start(pub.files);
  });
  after(async () => {
    await server.close();
  });

  function registry(cache = tempDir()): ConnectorRegistry {
    return new ConnectorRegistry({
      loader: { index: [server.url], trustRoot: pub.anchor(), cacheDir: cache, now: () => NOW, warn: () => undefined },
    });
  }

  test("loads a JS connector end to end and imports it from the verified bytes", async () => {
    const reg = registry();
    const ids = await reg.loadPackage("acme-sink>=1,<2");
    assert.deepEqual(ids, ["acme.sink.v1"]);
    const cls = reg.getConnector("acme.sink.v1") as { connectorId: string; prototype: { emit: unknown } };
    assert.equal(cls.connectorId, "acme.sink.v1");
    assert.equal(typeof cls.prototype.emit, "function");
    const info = reg.listConnectors("observability");
    assert.deepEqual(info, [
      { id: "acme.sink.v1", connector_type: ConnectorType.OBSERVABILITY, version: "1.1.0", description: "Test package" },
    ]);
    assert.equal(reg.origin("acme.sink.v1").kind, "package");
    assert.deepEqual(reg.origin("acme.sink.v1").signedBy, [pub.indexKey.keyid]);
    // Loading the identical package again is a no-op.
    assert.deepEqual(await reg.loadPackage("acme-sink==1.1.0"), ["acme.sink.v1"]);
  });

  test("two packages load side by side; a duplicate ID is refused all-or-nothing", async () => {
    const reg = registry();
    await reg.loadPackage("other-sink");
    await reg.loadPackage("acme-sink==1.0.0");
    assert.deepEqual(
      reg.listConnectors().map((c) => c.id),
      ["acme.sink.v1", "other.sink.v1"],
    );
    await rejectsWith(reg.loadPackage("acme-sink==1.1.0"), "registry.duplicate");
  });

  test("a warm run uses the cached archive and the fresh cached state: no request", async () => {
    const cache = tempDir();
    await registry(cache).loadPackage("acme-sink==1.0.0");
    const before = server.requests.length;
    await registry(cache).loadPackage("acme-sink==1.0.0");
    assert.equal(server.requests.length, before);
  });

  test("a tampered archive on the server is refused by hash", async () => {
    const good = pub.files.get("archives/other-sink/other-sink-2.0.0.zip") as Uint8Array;
    const bad = Uint8Array.from(good);
    bad[bad.length - 30] = (bad[bad.length - 30] as number) ^ 1;
    pub.files.set("archives/other-sink/other-sink-2.0.0.zip", bad);
    try {
      await rejectsWith(registry().loadPackage("other-sink"), "trust.hash");
    } finally {
      pub.files.set("archives/other-sink/other-sink-2.0.0.zip", good);
    }
  });

  test("an archive URL is verified by its .sig without the index", async () => {
    const reg = new ConnectorRegistry({
      loader: { trustRoot: pub.anchor(), cacheDir: tempDir(), now: () => NOW, warn: () => undefined },
    });
    const ids = await reg.loadPackage(`${server.url}archives/other-sink/other-sink-2.0.0.zip`);
    assert.deepEqual(ids, ["other.sink.v1"]);
  });

  test("a rolled-back timestamp is refused against the stored state", async () => {
    const cache = tempDir();
    const fresh = new TestPublisher({ now: NOW });
    fresh.addRelease("acme-sink", "1.0.0", jsPackage("acme-sink", "1.0.0", "acme.sink.v1"), [
      { id: "acme.sink.v1", type: "observability" },
    ]);
    fresh.commit();
    const old = fresh.snapshot();
    fresh.commit();
    const srv = await TestServer.start(fresh.files);
    try {
      const opts = { index: [srv.url], trustRoot: fresh.anchor(), cacheDir: cache, now: () => NOW, metadataMaxAgeMs: 0, warn: () => undefined };
      await new ConnectorRegistry({ loader: opts }).loadPackage("acme-sink");
      srv.files = old;
      const later = { ...opts, now: () => new Date(NOW.getTime() + 60_000) };
      await rejectsWith(new ConnectorRegistry({ loader: later }).loadPackage("acme-sink"), "trust.rollback");
    } finally {
      await srv.close();
    }
  });
});

describe("local packages", () => {
  test("a JS package zip loads from disk; a Python-only one is refused", async () => {
    const dir = tempDir();
    const zip = join(dir, "local-1.0.0.zip");
    (await import("node:fs")).writeFileSync(zip, jsPackage("local", "1.0.0", "local.sink.v1"));
    const reg = new ConnectorRegistry();
    assert.deepEqual(await reg.loadPackage(zip), ["local.sink.v1"]);
    await rejectsWith(reg.loadPackage(join(REPO, "index/sources/acme-audit-log-1.1.0")), "package.no-entry-point");
  });

  test("package code cannot import another package's modules or the host's files", async () => {
    const dir = tempDir();
    const fs = await import("node:fs");
    const victim = jsPackage("victim", "1.0.0", "victim.sink.v1");
    const reg = new ConnectorRegistry();
    fs.writeFileSync(join(dir, "victim.zip"), victim);
    await reg.loadPackage(join(dir, "victim.zip"));
    const victimUrl = `mmc-pkg://${sha256(victim)}/lib/util/tag.mjs`;
    for (const [i, spec] of [victimUrl, "../../../../etc/passwd.mjs", "yaml", "file:///etc/hosts"].entries()) {
      const name = `thief${i}`;
      const zip = zipFiles({
        "modelmesh-package.yaml": manifestYaml(name, "1.0.0", [
          { id: `${name}.sink.v1`, type: "observability", node: { module: "index.mjs", export: "Sink" } },
        ]),
        "index.mjs": `import * as stolen from ${JSON.stringify(spec)};\nexport class Sink { static connectorId = "${name}.sink.v1"; emit(){} log(){} flush(){} trace(){} }\nexport { stolen };\n`,
      });
      fs.writeFileSync(join(dir, `${name}.zip`), zip);
      await rejectsWith(reg.loadPackage(join(dir, `${name}.zip`)), "package.import");
      assert.throws(() => reg.getConnector(`${name}.sink.v1`), /no connector registered/);
    }
  });
});
