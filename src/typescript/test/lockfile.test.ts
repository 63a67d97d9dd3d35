/**
 * Lock files (FORMAT.md §5) as the Python client reads and enforces them: strict parsing,
 * locked loads over loopback against a signed test index, local zips and directories, and a
 * lock written by the Python CLI read by this client.
 */

import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { readConfig } from "../src/client/config.js";
import { LockFile } from "../src/client/lockfile.js";
import { ConnectorRegistry } from "../src/registry.js";
import { connectorSource, manifestYaml, sha256, TestPublisher } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { zipFiles } from "./support/zip-writer.js";
import { rejectsWith, tempDirs, throwsWith } from "./support/scratch.js";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url));
const FIXTURE = join(REPO, "src/typescript/test/fixtures/python-lock");

const tempDir = tempDirs("mmc-lock-");

/** Every import of this package's module appends `name@version` to $MMC_LOCK_MARKER. */
function markerPackage(name: string, version: string, id: string): Uint8Array {
  return zipFiles({
    "modelmesh-package.yaml": manifestYaml(name, version, [
      { id, type: "observability", node: { module: "index.mjs", export: "Sink" } },
    ]),
    "index.mjs": `import { appendFileSync } from "node:fs";\nappendFileSync(process.env.MMC_LOCK_MARKER, ${JSON.stringify(`${name}@${version}\n`)});\n${connectorSource(id, "observability", "Sink")}`,
  });
}

interface Pin {
  name: string;
  version: string;
  kind?: string;
  path?: string | null;
  sha256: string;
  length: number | null;
}

function lockText(pins: readonly Pin[], lockVersion = 2): string {
  const packages = pins.map((p) => ({
    name: p.name,
    version: p.version,
    kind: p.kind ?? "archive",
    path: p.path ?? null,
    sha256: p.sha256,
    length: p.length,
    spec: p.path ?? p.name,
    source: p.kind === undefined ? "test" : "local",
    signed_by: [],
  }));
  return `${JSON.stringify({ "lock-version": lockVersion, "generated-by": "test", packages }, null, 2)}\n`;
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("reading a lock file", () => {
  const pin: Pin = { name: "acme-sink", version: "1.0.0", sha256: "ab".repeat(32), length: 10 };

  test("a well-formed lock of format 2 and of format 1 (remote archives only) is read", () => {
    const lock = LockFile.parse(bytes(lockText([pin, { ...pin, name: "dev", kind: "local-zip", path: "d.zip" }])));
    assert.deepEqual(
      lock.entries.map((e) => [e.name, e.kind, e.path, e.sha256, e.length]),
      [
        ["acme-sink", "archive", null, "ab".repeat(32), 10],
        ["dev", "local-zip", "d.zip", "ab".repeat(32), 10],
      ],
    );
    assert.equal(lock.pinnedVersion("acme-sink"), "1.0.0");
    // Format 1 had no kind or path: every entry is an archive, whatever else it says.
    const v1 = LockFile.parse(bytes(lockText([{ ...pin, kind: "bogus", path: "x" }], 1)));
    assert.deepEqual([v1.entries[0]?.kind, v1.entries[0]?.path], ["archive", null]);
  });

  test("a duplicated key is an error naming the key, not last-wins", () => {
    const text = lockText([pin]);
    const doubled = text.replace(`"sha256": "${"ab".repeat(32)}",`, `"sha256": "${"ab".repeat(32)}",\n      "sha256": "${"cd".repeat(32)}",`);
    assert.notEqual(doubled, text);
    throwsWith(() => LockFile.parse(bytes(doubled), "x/connectors.lock"), "config", /connectors\.lock: lock file is not valid JSON: .*duplicate key "sha256"/);
  });

  for (const [what, text, pattern] of [
    ["another format", lockText([pin], 3), /not a lock file of format 1 or 2/],
    ["a boolean format", lockText([pin]).replace('"lock-version": 2', '"lock-version": true'), /not a lock file of format/],
    ["not an object", "[]", /not a lock file of format/],
    ["packages not a list", '{"lock-version": 2, "packages": {}}', /packages: expected a list/],
    ["an entry without sha256", lockText([pin]).replace(/"sha256": "[a-f0-9]+",/, ""), /packages\[0\] is malformed: missing 'sha256'/],
    ["an unknown kind", lockText([{ ...pin, kind: "wheel", path: "w" }]), /packages\[0\] is malformed: kind: expected one of/],
    ["a local kind without path", lockText([{ ...pin, kind: "local-zip" }]), /path: required for local kinds only, got null/],
    ["an archive with a path", lockText([{ ...pin, path: "p" }]), /path: required for local kinds only/],
    ["a fractional length", lockText([pin]).replace('"length": 10', '"length": "10"'), /length: expected an integer or null/],
  ] as const) {
    test(`${what} is a config error`, () => {
      throwsWith(() => LockFile.parse(bytes(text), "connectors.lock"), "config", pattern);
    });
  }

  test("a missing lock file is a config error with a hint", () => {
    throwsWith(() => LockFile.read(join(tempDir(), "connectors.lock")), "config", /cannot read the lock file/);
  });

  test("locked and lock_file are read like Python's: default next to the config, types checked", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "root.json"), "{}");
    const base = { trust_root: join(dir, "root.json") };
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      assert.equal(readConfig({ ...base, locked: true }).loader.lockFile, join(dir, "connectors.lock"));
      assert.equal(readConfig({ ...base, lock_file: "l/x.lock" }).loader.lockFile, join(dir, "l/x.lock"));
      assert.equal(readConfig(base).loader.locked, false);
    } finally {
      process.chdir(cwd);
    }
    throwsWith(() => readConfig({ ...base, locked: "yes" }), "config", /locked: expected true or false/);
    throwsWith(() => readConfig({ ...base, allow_unpinned_directories: 1 }), "config", /allow_unpinned_directories: expected true or false/);
    throwsWith(() => readConfig({ ...base, lock_file: 3 }), "config", /lock_file: expected a path string/);
  });
});

describe("locked loads over loopback", () => {
  let pub: TestPublisher;
  let server: TestServer;
  let root: string;
  const marker = join(tmpdir(), `mmc-lock-marker-${process.pid}`);
  const archives: Record<string, Uint8Array> = {};

  before(async () => {
    process.env["MMC_LOCK_MARKER"] = marker;
    pub = new TestPublisher({ now: new Date() }); // readConfig uses the real clock
    for (const [name, version, id] of [
      ["acme-sink", "1.0.0", "acme.sink.v1"],
      ["acme-sink", "1.1.0", "acme.sink.v1"],
      ["other-sink", "2.0.0", "other.sink.v1"],
    ] as const) {
      const zip = markerPackage(name, version, id);
      archives[`${name}-${version}`] = zip;
      pub.addRelease(name, version, zip, [{ id, type: "observability" }]);
    }
    pub.commit();
    server = await TestServer.start(pub.files);
    root = join(tempDir(), "root.json");
    writeFileSync(root, pub.anchor());
  });
  after(async () => {
    await server.close();
    rmSync(marker, { force: true });
  });

  function imported(): string[] {
    return existsSync(marker) ? readFileSync(marker, "utf8").split("\n").filter(Boolean) : [];
  }

  function pinOf(name: string, version: string): Pin {
    const zip = archives[`${name}-${version}`] as Uint8Array;
    return { name, version, sha256: sha256(zip), length: zip.length };
  }

  /** A locked configuration (fresh cache) pinning `pins`; returns it and the lock's path. */
  function config(packages: string[], pins: readonly Pin[], extra: Record<string, unknown> = {}) {
    const dir = tempDir();
    const lockFile = join(dir, "connectors.lock");
    writeFileSync(lockFile, lockText(pins));
    return {
      index: server.url,
      trust_root: root,
      cache_dir: join(dir, "cache"),
      locked: true,
      lock_file: lockFile,
      packages,
      ...extra,
    };
  }

  const archiveRequests = (from: number): string[] =>
    server.requests.slice(from).filter((p) => p.endsWith(".zip"));

  test("a lock that matches loads the pinned release, not the newest", async () => {
    const before = imported().length;
    const reg = await ConnectorRegistry.fromConfig(config(["acme-sink", "other-sink"], [pinOf("acme-sink", "1.0.0"), pinOf("other-sink", "2.0.0")]));
    assert.deepEqual(imported().slice(before), ["acme-sink@1.0.0", "other-sink@2.0.0"]); // the marker works
    assert.deepEqual(
      reg.listConnectors().map((c) => [c.id, c.version]),
      [
        ["acme.sink.v1", "1.0.0"],
        ["other.sink.v1", "2.0.0"],
      ],
    );
    // Unlocked, the same requirement resolves the newest: the lock made the difference.
    const open = await ConnectorRegistry.fromConfig({ ...config(["acme-sink"], []), locked: false });
    assert.equal(open.listConnectors()[0]?.version, "1.1.0");
  });

  test("another hash for the pinned version is refused before any archive is downloaded or imported", async () => {
    const start = server.requests.length;
    const before = imported().length;
    const bad = { ...pinOf("acme-sink", "1.0.0"), sha256: "0".repeat(64) };
    // other-sink comes first and is pinned correctly: it must not load either.
    const err = await rejectsWith(
      ConnectorRegistry.fromConfig(config(["other-sink", "acme-sink"], [pinOf("other-sink", "2.0.0"), bad])),
      "trust.hash",
      /acme-sink 1\.0\.0: the lock pins sha256 0{64} but .* offers /,
    );
    assert.equal(err.name, "TrustError");
    assert.deepEqual(archiveRequests(start), []);
    assert.deepEqual(imported().slice(before), []);
  });

  test("another version than pinned is refused: by requirement and by signed URL", async () => {
    const start = server.requests.length;
    // 0.9.0 is not in the index: every release is a candidate, and the chosen one differs.
    await rejectsWith(
      ConnectorRegistry.fromConfig(config(["acme-sink"], [{ ...pinOf("acme-sink", "1.0.0"), version: "0.9.0" }])),
      "resolution",
      /acme-sink: the lock pins 0\.9\.0 but 1\.1\.0 was resolved/,
    );
    const url = `${server.url}archives/acme-sink/acme-sink-1.1.0.zip`;
    await rejectsWith(
      ConnectorRegistry.fromConfig(config([url], [pinOf("acme-sink", "1.0.0")])),
      "resolution",
      /the lock pins 1\.0\.0 but 1\.1\.0 was resolved/,
    );
    // A requirement the pin cannot satisfy has only the pinned version to choose from.
    await rejectsWith(
      ConnectorRegistry.fromConfig(config(["acme-sink==1.1.0"], [pinOf("acme-sink", "1.0.0")])),
      "resolution",
      /no release of acme-sink satisfies 'acme-sink==1\.1\.0'; available: 1\.0\.0$/,
    );
    assert.deepEqual(archiveRequests(start), []);
  });

  test("a pin-only URL (no .sig) is pinned by its file name, version '?' and sha256", async () => {
    const zip = archives["other-sink-2.0.0"] as Uint8Array;
    server.files?.set("plain/other-sink-2.0.0.zip", zip);
    const url = `${server.url}plain/other-sink-2.0.0.zip#sha256=${sha256(zip)}`;
    const pin: Pin = { name: "other-sink-2.0.0.zip", version: "?", sha256: sha256(zip), length: null };
    const reg = await ConnectorRegistry.fromConfig(config([url], [pin]));
    assert.deepEqual(reg.listConnectors().map((c) => c.id), ["other.sink.v1"]);
    const start = server.requests.length;
    await rejectsWith(
      ConnectorRegistry.fromConfig(config([url], [{ ...pin, sha256: "1".repeat(64) }])),
      "trust.hash",
      /other-sink-2\.0\.0\.zip \?: the lock pins sha256 1{64} but .*plain\/other-sink-2\.0\.0\.zip offers /,
    );
    assert.deepEqual(archiveRequests(start), []);
  });

  test("an entry missing from the lock fails the whole configuration", async () => {
    const start = server.requests.length;
    const before = imported().length;
    await rejectsWith(
      ConnectorRegistry.fromConfig(config(["acme-sink", "other-sink"], [pinOf("acme-sink", "1.0.0")])),
      "resolution",
      /other-sink is not pinned in .*connectors\.lock \(locked mode pins all or nothing\)/,
    );
    assert.deepEqual(archiveRequests(start), []);
    assert.deepEqual(imported().slice(before), []);
  });

  test("loadPackage on a locked registry honours the lock too", async () => {
    const reg = await ConnectorRegistry.fromConfig(config([], [pinOf("acme-sink", "1.0.0")]));
    await rejectsWith(reg.loadPackage("other-sink"), "resolution", /other-sink is not pinned/);
    await rejectsWith(
      reg.loadPackage(`${server.url}archives/acme-sink/acme-sink-1.1.0.zip`),
      "resolution",
      /the lock pins 1\.0\.0 but 1\.1\.0/,
    );
    assert.deepEqual(await reg.loadPackage(`${server.url}archives/acme-sink/acme-sink-1.0.0.zip`), ["acme.sink.v1"]);
  });

  test("a locked configuration without a readable lock file fails", async () => {
    const cfg = config(["acme-sink"], []);
    rmSync(cfg.lock_file);
    await rejectsWith(ConnectorRegistry.fromConfig(cfg), "config", /cannot read the lock file/);
  });

  test("a local zip loads only as pinned: by path, sha256 and length", async () => {
    const dir = tempDir();
    const zip = join(dir, "dev-1.0.0.zip");
    const data = markerPackage("dev", "1.0.0", "dev.sink.v1");
    writeFileSync(zip, data);
    const pin: Pin = { name: "dev", version: "1.0.0", kind: "local-zip", path: zip, sha256: sha256(data), length: data.length };
    const other = join(dir, "other.zip");
    writeFileSync(other, data);
    await rejectsWith(
      ConnectorRegistry.fromConfig(config([other], [pin])),
      "resolution",
      /local-zip .*other\.zip \(dev 1\.0\.0\) is not pinned/,
    );
    const changed = markerPackage("dev", "1.0.0", "dev.sink.v2");
    writeFileSync(zip, changed);
    const before = imported().length;
    await rejectsWith(ConnectorRegistry.fromConfig(config([zip], [pin])), "trust.hash", /the lock pins sha256 [0-9a-f]{64} \(\d+ bytes\) but the file has sha256/);
    assert.deepEqual(imported().slice(before), []);
    writeFileSync(zip, data);
    const reg = await ConnectorRegistry.fromConfig(config([zip], [pin]));
    assert.deepEqual(reg.listConnectors().map((c) => c.id), ["dev.sink.v1"]);
  });

  test("a local directory needs allow_unpinned_directories and a lock entry naming it", async () => {
    const dir = join(tempDir(), "dev-dir");
    mkdirSync(dir);
    writeFileSync(join(dir, "modelmesh-package.yaml"), manifestYaml("devdir", "1.0.0", [{ id: "devdir.sink.v1", type: "observability", node: { module: "index.mjs", export: "Sink" } }]));
    writeFileSync(join(dir, "index.mjs"), connectorSource("devdir.sink.v1", "observability", "Sink"));
    const named: Pin = { name: "devdir", version: "1.0.0", kind: "directory", path: dir, sha256: "0".repeat(64), length: 0 };
    await rejectsWith(ConnectorRegistry.fromConfig(config([dir], [named])), "trust.policy", /a directory is not pinned/);
    await rejectsWith(
      ConnectorRegistry.fromConfig(config([dir], [], { allow_unpinned_directories: true })),
      "resolution",
      /directory .*dev-dir \(devdir 1\.0\.0\) is not pinned/,
    );
    const reg = await ConnectorRegistry.fromConfig(config([dir], [named], { allow_unpinned_directories: true }));
    assert.deepEqual(reg.listConnectors().map((c) => c.id), ["devdir.sink.v1"]);
  });
});

describe("a lock written by the Python client", () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start(join(REPO, "index"));
  });
  after(async () => {
    await server.close();
  });

  test("is read as Python wrote it", () => {
    const lock = LockFile.read(join(FIXTURE, "connectors.lock"));
    assert.deepEqual(
      lock.entries.map((e) => [e.name, e.version, e.kind, e.path]),
      [
        ["demo-js-canary", "1.0.0", "local-zip", "dist/demo-js-canary-1.0.0.zip"],
        ["demo-js-event-log", "1.0.0", "archive", null],
        ["demo-js-event-log", "1.0.0", "directory", "src/demo-js-event-log"],
      ],
    );
  });

  test("pins the committed index's release, a local zip and a named directory for this client", async () => {
    const dir = tempDir();
    cpSync(join(FIXTURE, "connectors.lock"), join(dir, "connectors.lock"));
    mkdirSync(join(dir, "dist"));
    cpSync(join(REPO, "index/archives/demo-js-canary/demo-js-canary-1.0.0.zip"), join(dir, "dist/demo-js-canary-1.0.0.zip"));
    cpSync(join(REPO, "index/sources/demo-js-event-log-1.0.0"), join(dir, "src/demo-js-event-log"), { recursive: true });
    const base = {
      index: server.url,
      trust_root: join(REPO, "keys/root.json"),
      cache_dir: join(dir, "cache"),
      locked: true,
      lock_file: join(dir, "connectors.lock"),
    };
    const reg = await ConnectorRegistry.fromConfig({ ...base, packages: ["demo-js-event-log", join(dir, "dist/demo-js-canary-1.0.0.zip")] });
    assert.deepEqual(
      reg.listConnectors().map((c) => c.id),
      ["demo.js-canary.v1", "demo.js-event-log.v1"],
    );
    // The directory: refused without the opt-in; with it, loaded with no "changed" warning
    // (this client's tree digest is the one Python recorded).
    const local = [join(dir, "src/demo-js-event-log")];
    await rejectsWith(ConnectorRegistry.fromConfig({ ...base, packages: local }), "trust.policy", /not pinned/);
    const warnings: string[] = [];
    const parsed = readConfig({ ...base, packages: local, allow_unpinned_directories: true });
    const opted = await ConnectorRegistry.fromConfig({ ...parsed, loader: { ...parsed.loader, warn: (m) => warnings.push(m) } });
    assert.deepEqual(opted.listConnectors().map((c) => c.id), ["demo.js-event-log.v1"]);
    assert.deepEqual(warnings, []);
  });
});
