/**
 * A trust root never comes from the medium it is meant to check (as Python's
 * `tests/attack/test_trust_root_placement.py`).
 *
 * The attacker swaps the carried bundle for one they built: their own signed index with the
 * canary package (its code sets a global marker when imported) *and* their own
 * `keys/root.json`. A configuration whose `trust_root` lies inside the bundle (or the cache,
 * or a `file://` index mirror) would verify the attacker's index with the attacker's keys.
 * It is refused with a `config` error that says why and how to provision the root out of
 * band, before reading a byte: nothing imported, nothing cached. Symlinks, `..`, a symlinked
 * directory on either side and a hard link all count as inside.
 */

import assert from "node:assert/strict";
import { existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { after, beforeEach, describe, test } from "node:test";
import { pathToFileURL } from "node:url";

import { liesInside, readConfig } from "../src/client/config.js";
import { ConnectorError } from "../src/errors.js";
import { ConnectorRegistry } from "../src/registry.js";
import { connectorSource, manifestYaml, TestPublisher } from "./support/publisher.js";
import { zipFiles } from "./support/zip-writer.js";

// The configuration has no clock: the simulated index is signed for the real one.
const NOW = new Date();
const CANARY = "canary-placement";
const CANARY_ID = "canary.placement.v1";
const MARKER = "__mmcPlacementCanaryRan";

const made: string[] = [];
after(() => {
  for (const dir of made) {
    rmSync(dir, { recursive: true, force: true });
  }
});

function canaryRan(): boolean {
  return (globalThis as Record<string, unknown>)[MARKER] === true;
}

function publisherWithCanary(): TestPublisher {
  const pub = new TestPublisher({ now: NOW });
  const zip = zipFiles({
    "modelmesh-package.yaml": manifestYaml(CANARY, "1.0.0", [
      { id: CANARY_ID, type: "observability", node: { module: "index.mjs", export: "Sink" } },
    ]),
    "index.mjs": connectorSource(CANARY_ID, "observability", "Sink", `globalThis.${MARKER} = true;`),
  });
  pub.addRelease(CANARY, "1.0.0", zip, [{ id: CANARY_ID, type: "observability" }]);
  pub.commit();
  return pub;
}

function writeDir(dir: string, files: Map<string, Uint8Array>): string {
  for (const [path, data] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  }
  return dir;
}

interface Scene {
  tmp: string;
  genuine: TestPublisher;
  attacker: TestPublisher;
  /** The bundle directory on the isolated machine, now the attacker's. */
  carry: string;
  cache: string;
  config(trustRoot: string, extra?: Record<string, unknown>): Record<string, unknown>;
}

function makeScene(): Scene {
  const tmp = mkdtempSync(join(tmpdir(), "mmc-ts-placement-"));
  made.push(tmp);
  const genuine = publisherWithCanary();
  const attacker = publisherWithCanary(); // the same package name, the attacker's keys
  const carry = writeDir(join(tmp, "carry"), attacker.files);
  mkdirSync(join(carry, "keys"));
  writeFileSync(join(carry, "keys", "root.json"), attacker.anchor());
  const cache = join(tmp, "isolated-cache");
  return {
    tmp,
    genuine,
    attacker,
    carry,
    cache,
    config: (trustRoot, extra = {}) => ({
      packages: [CANARY],
      bundle: carry,
      trust_root: trustRoot,
      cache_dir: cache,
      offline: true,
      ...extra,
    }),
  };
}

function link(target: string, path: string, type: "file" | "dir" = "file"): string {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path, type);
  return path;
}

function hardLink(target: string, path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  linkSync(target, path);
  return path;
}

function inCache(s: Scene): string {
  const root = join(s.cache, "keys", "root.json");
  mkdirSync(dirname(root), { recursive: true });
  writeFileSync(root, s.attacker.anchor());
  return root;
}

async function assertRefused(s: Scene, cfg: Record<string, unknown>, medium: RegExp): Promise<void> {
  const cacheExisted = existsSync(s.cache);
  await assert.rejects(ConnectorRegistry.fromConfig(cfg), (err: unknown) => {
    assert.ok(err instanceof ConnectorError, `expected a ConnectorError, got ${String(err)}`);
    assert.equal(err.code, "config", err.message);
    assert.match(err.message, /trust_root: .* lies inside/);
    assert.match(err.message, medium);
    assert.match(err.hint ?? "", /out of band/);
    return true;
  });
  assert.equal(canaryRan(), false, "the attacker's package ran: the swapped bundle was trusted");
  assert.equal(existsSync(join(s.cache, "metadata")), false, "index state was cached");
  assert.equal(existsSync(s.cache), cacheExisted, "the cache directory was created");
}

const BUNDLE = /the bundle directory \(connectors\.bundle\)/;
const ROWS: [string, (s: Scene) => [string, Record<string, unknown>], RegExp][] = [
  ["inside the bundle", (s) => [join(s.carry, "keys", "root.json"), {}], BUNDLE],
  ["a root chain file of the bundle", (s) => [join(s.carry, "root", "1.json"), {}], BUNDLE],
  [
    "a .. spelling",
    (s) => {
      mkdirSync(join(s.tmp, "elsewhere"));
      return [`${join(s.tmp, "elsewhere")}/../carry/keys/root.json`, {}];
    },
    BUNDLE,
  ],
  [
    "a symlink from outside pointing inside",
    (s) => [link(join(s.carry, "keys", "root.json"), join(s.tmp, "etc", "root.json")), {}],
    BUNDLE,
  ],
  [
    "a symlinked directory pointing inside",
    (s) => [join(link(join(s.carry, "keys"), join(s.tmp, "etc", "keys"), "dir"), "root.json"), {}],
    BUNDLE,
  ],
  [
    "the bundle configured through a symlink",
    (s) => [join(s.carry, "keys", "root.json"), { bundle: link(s.carry, join(s.tmp, "media", "usb"), "dir") }],
    BUNDLE,
  ],
  [
    "a hard link to the carried copy",
    (s) => [hardLink(join(s.carry, "keys", "root.json"), join(s.tmp, "etc", "root.json")), {}],
    BUNDLE,
  ],
  [
    "a hard link to a root chain file the bundle carries",
    (s) => [hardLink(join(s.carry, "root", "1.json"), join(s.tmp, "etc", "root.json")), {}],
    BUNDLE,
  ],
  ["inside the cache directory", (s) => [inCache(s), {}], /the cache directory/],
  [
    "inside a file:// index mirror",
    (s) => [
      join(s.carry, "keys", "root.json"),
      { bundle: undefined, offline: false, index: [pathToFileURL(s.carry).href] },
    ],
    /the index mirror directory \(connectors\.index\[0\]\)/,
  ],
  [
    "a hard link into a file:// index mirror listed second",
    (s) => [
      hardLink(join(s.carry, "keys", "root.json"), join(s.tmp, "etc", "root.json")),
      { bundle: undefined, offline: false, index: ["https://index.example/", `${pathToFileURL(s.carry).href}/`] },
    ],
    /the index mirror directory \(connectors\.index\[1\]\)/,
  ],
];

describe("trust root placement", () => {
  let scene: Scene;
  beforeEach(() => {
    scene = makeScene();
  });

  for (const [name, place, medium] of ROWS) {
    test(`a trust root inside the medium is refused: ${name}`, async () => {
      const [root, extra] = place(scene);
      const cfg = Object.fromEntries(Object.entries(scene.config(root, extra)).filter(([, v]) => v !== undefined));
      await assertRefused(scene, cfg, medium);
    });
  }

  test("the cache directory from the environment counts", async () => {
    const root = inCache(scene);
    const saved = process.env["MODELMESH_CONNECTORS_CACHE"];
    process.env["MODELMESH_CONNECTORS_CACHE"] = scene.cache;
    try {
      const cfg = scene.config(root);
      delete cfg["cache_dir"];
      await assertRefused(scene, cfg, /the cache directory/);
    } finally {
      if (saved === undefined) {
        delete process.env["MODELMESH_CONNECTORS_CACHE"];
      } else {
        process.env["MODELMESH_CONNECTORS_CACHE"] = saved;
      }
    }
  });

  test("a case variant of the bundle counts (case-insensitive file systems only)", async (t) => {
    const upper = join(scene.tmp, "CARRY");
    if (!existsSync(upper)) {
      t.skip("case-sensitive file system: no other spelling of the bundle exists");
      return;
    }
    await assertRefused(scene, scene.config(join(upper, "keys", "root.json")), BUNDLE);
  });

  test("a bind mount of the bundle counts: the same directory by device and inode (Linux, where unshare works)", (t) => {
    // A bind mount is no symlink: realpath keeps the other spelling, only the file identity
    // of an ancestor shows it is the bundle. Run in a private mount namespace (unshare -rm).
    const alias = join(scene.tmp, "mnt", "usb");
    mkdirSync(alias, { recursive: true });
    const config = pathToFileURL(resolve(import.meta.dirname, "..", "src", "client", "config.js")).href;
    const script = `const { liesInside } = await import(${JSON.stringify(config)}); const [root, medium] = process.argv.slice(1); process.stdout.write(String(liesInside(root, medium)));`;
    const run = spawnSync(
      "unshare",
      ["-rm", "sh", "-c", 'mount --bind "$1" "$2" && exec "$3" --input-type=module -e "$4" "$5" "$1"', "sh", scene.carry, alias, process.execPath, script, join(alias, "keys", "root.json")],
      { encoding: "utf8", timeout: 20_000 },
    );
    if (run.status !== 0 && run.stdout === "") {
      t.skip(`no private mount namespace here: ${(run.stderr || String(run.error)).trim().slice(0, 120)}`);
      return;
    }
    assert.equal(run.stdout, "true", run.stderr);
  });

  test("a copy outside every medium (not a link) is accepted; a missing path lies nowhere", () => {
    const copy = join(scene.tmp, "etc", "root.json");
    mkdirSync(dirname(copy), { recursive: true });
    writeFileSync(copy, scene.attacker.anchor()); // same bytes, its own file
    assert.equal(readConfig(scene.config(copy)).loader.bundle, scene.carry);
    assert.equal(liesInside(join(scene.tmp, "missing.json"), scene.carry), false);
    assert.equal(liesInside(copy, join(scene.tmp, "no-such-dir")), false);
    assert.equal(liesInside(join(scene.carry, "keys", "root.json"), scene.carry), true);
    assert.equal(liesInside(join(scene.tmp, "carry-sibling"), scene.carry), false);
  });

  test("control: a root provisioned out of band catches the swap, and loads the genuine bundle", async () => {
    const provisioned = join(scene.tmp, "etc", "modelmesh", "root.json");
    mkdirSync(dirname(provisioned), { recursive: true });
    writeFileSync(provisioned, scene.genuine.anchor());
    await assert.rejects(ConnectorRegistry.fromConfig(scene.config(provisioned)), (err: unknown) => {
      assert.ok(err instanceof ConnectorError);
      assert.match(err.code, /^trust/);
      return true;
    });
    assert.equal(canaryRan(), false);
    rmSync(scene.carry, { recursive: true });
    writeDir(scene.carry, scene.genuine.files);
    const registry = await ConnectorRegistry.fromConfig(scene.config(provisioned));
    assert.ok(registry.listConnectors().some((c) => c.id === CANARY_ID));
    assert.equal(canaryRan(), true); // the genuine canary ran: the checks above can fail
  });
});
