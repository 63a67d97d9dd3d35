/**
 * Credentials in URLs are never shown or stored, and sent only where they belong (as
 * `tests/attack/test_credentials.py`): every index mirror, archive URL and URL entry below
 * carries `user:s3cr3t@` and `?token=s3cr3t` while the loopback server fails in every way we
 * can make it (404, 500, a bad signature, a wrong hash, an unreachable port, a query string,
 * config and input errors). Every error message and hint, every warning, every origin shown
 * and every file name and byte written below the cache is collected; `s3cr3t` must appear in
 * none of them, and `***` must appear wherever a URL was shown. The redirect rows check what
 * is sent: user info only to the origin it was configured for, never across origins.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { readConfig } from "../src/client/config.js";
import { HttpFetcher } from "../src/client/fetch.js";
import { Loader } from "../src/client/loader.js";
import { parsePackageSpec } from "../src/client/requirements.js";
import { ConnectorError } from "../src/errors.js";
import { ConnectorRegistry } from "../src/registry.js";
import { jsPackage, sha256, TestPublisher } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { tempDirs } from "./support/scratch.js";

const SECRET = "s3cr3t";
const NAME = "demo-sink";
const ID = "demo.sink.v1";
const zipOf = (version: string): string => `archives/${NAME}/${NAME}-${version}.zip`;

const tempDir = tempDirs("mmc-cred-");

/** `http://user:s3cr3t@127.0.0.1:<port>/<path>` for a server's base URL. */
function withUser(base: string, path = ""): string {
  return base.replace("http://", `http://user:${SECRET}@`) + path;
}

/** A port nothing listens on (bound, read, closed). */
async function deadPort(): Promise<string> {
  const s = await TestServer.start(new Map());
  const url = s.url;
  await s.close();
  return url;
}

/** Every file name and byte below `dir`, as text. */
function everythingBelow(dir: string): string {
  let out = "";
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    out += `${name}\n`;
    if (statSync(path).isFile()) {
      out += `${readFileSync(path).toString("latin1")}\n`;
    }
  }
  return out;
}

class World {
  readonly pub = new TestPublisher();
  server!: TestServer;
  readonly warnings: string[] = [];
  /** Error messages (with their hints) that show a URL: each must hold `***`. */
  readonly shown: string[] = [];
  /**
   * Messages about index mirrors: the client drops a mirror's user info and query when it
   * normalizes the index URL, so these show no credential at all (nothing to mask).
   */
  readonly quiet: string[] = [];
  readonly cacheDirs: string[] = [];

  async start(): Promise<this> {
    this.pub.addRelease(NAME, "1.0.0", jsPackage(NAME, "1.0.0", ID), [{ id: ID, type: "observability" }]);
    this.pub.commit();
    this.server = await TestServer.start(this.pub.files);
    return this;
  }

  loader(index: string[]): Loader {
    const cacheDir = tempDir();
    this.cacheDirs.push(cacheDir);
    return new Loader({
      index,
      trustRoot: this.pub.anchor(),
      cacheDir,
      now: () => this.pub.now,
      fetch: { retries: 1, backoffMs: 1, connectTimeoutMs: 2_000 },
      warn: (m) => this.warnings.push(m),
    });
  }

  /** `fn` must fail with a ConnectorError whose message shows a redacted URL. */
  async refuses(fn: () => Promise<unknown> | unknown, pattern: RegExp, into = this.shown): Promise<void> {
    let caught: unknown = null;
    try {
      await fn();
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ConnectorError, `expected a ConnectorError, got ${String(caught)}`);
    assert.match(caught.message, pattern);
    into.push(`${caught.message}\n${caught.hint ?? ""}`);
  }

  /** The leak check over everything collected. */
  check(): void {
    const everything = [...this.shown, ...this.quiet, ...this.warnings, ...this.cacheDirs.map(everythingBelow)].join("\n");
    assert.ok(!everything.includes(SECRET), `a credential leaked:\n${everything.split("\n").filter((l) => l.includes(SECRET)).join("\n")}`);
    for (const message of this.shown) {
      assert.match(message, /\*\*\*/, `a URL shown without redaction: ${message}`);
    }
  }
}

describe("credentials in URLs are never shown or stored", () => {
  test("index mirrors with credentials fail (500, unreachable, 404), the good one loads", async () => {
    const w = await new World().start();
    const broken = await TestServer.start(w.pub.files);
    const dead = await deadPort();
    try {
      broken.faults.set("timestamp.json", { kind: "status", status: 500 });
      const missing = await TestServer.start(new Map());
      try {
        const loader = w.loader([
          withUser(broken.url, `?token=${SECRET}`),
          withUser(dead, `?token=${SECRET}`),
          withUser(missing.url, `?token=${SECRET}`),
          withUser(w.server.url, `?token=${SECRET}`),
        ]);
        const { pkg, origin } = await loader.fetchPackage(NAME);
        assert.equal(pkg.manifest.name, NAME);
        assert.ok(!origin.detail.includes(SECRET), origin.detail);
        assert.equal(w.warnings.filter((m) => m.startsWith("mirror ")).length, 3, w.warnings.join("\n"));
        // Every mirror failing: the error lists each one.
        const none = w.loader([withUser(broken.url, `?token=${SECRET}`), withUser(dead, `?token=${SECRET}`)]);
        await w.refuses(() => none.fetchPackage(NAME), /all 2 mirror\(s\) failed/, w.quiet);
      } finally {
        await missing.close();
      }
    } finally {
      await broken.close();
      await w.server.close();
    }
    w.check();
  });

  test("archive URL entries with credentials: every failure shows the URL redacted", async () => {
    const w = await new World().start();
    const dead = await deadPort();
    const goodZip = w.pub.files.get(zipOf("1.0.0")) as Uint8Array;
    const pin = sha256(goodZip);
    try {
      const url = (path: string, base = w.server.url): string => withUser(base, path);
      // Served as `plain/…` so the entry points outside the index mirror.
      w.pub.files.set(`plain/${NAME}-1.0.0.zip`, goodZip);
      w.pub.files.set(`plain/${NAME}-1.0.0.zip.sig`, w.pub.files.get(`${zipOf("1.0.0")}.sig`) as Uint8Array);
      w.pub.files.set(`bad/${NAME}-1.0.0.zip`, goodZip);
      w.pub.files.set(`bad/${NAME}-1.0.0.zip.sig`, new TextEncoder().encode('{"not": "an envelope"}'));
      w.pub.files.set(`down/${NAME}-1.0.0.zip.sig`, w.pub.files.get(`${zipOf("1.0.0")}.sig`) as Uint8Array);
      w.server.faults.set(`down/${NAME}-1.0.0.zip`, { kind: "status", status: 500 });
      const withIndex = w.loader([w.server.url]);
      const noIndex = w.loader([]);
      // 404: no .sig and no pin.
      await w.refuses(() => noIndex.fetchPackage(url(`gone/${NAME}-1.0.0.zip`)), /no detached signature/);
      // A bad signature (the message names the envelope, not the URL).
      await w.refuses(() => noIndex.fetchPackage(url(`bad/${NAME}-1.0.0.zip`)), /envelope/, w.quiet);
      // 500 on the archive, after the retries.
      await w.refuses(() => noIndex.fetchPackage(url(`down/${NAME}-1.0.0.zip`)), /HTTP 500/);
      // The wrong hash pinned.
      await w.refuses(() => noIndex.fetchPackage(`${url(`plain/${NAME}-1.0.0.zip`)}#sha256=${"0".repeat(64)}`), /does not match/);
      await w.refuses(() => noIndex.fetchPackage(`${url(`gone/${NAME}-1.0.0.zip`)}#sha256=${"0".repeat(64)}`), /does not exist/);
      // An unreachable port.
      await w.refuses(() => noIndex.fetchPackage(url(`plain/${NAME}-1.0.0.zip`, dead)), /cannot fetch/);
      // A query string (ambiguous path): refused before any request.
      await w.refuses(() => noIndex.fetchPackage(url(`plain/${NAME}-1.0.0.zip?token=${SECRET}`)), /query string/);
      // An ambiguous path.
      await w.refuses(() => noIndex.fetchPackage(url(`plain/a%2F${NAME}-1.0.0.zip`)), /encodes/);
      // Not listed by the index at that version.
      w.pub.files.set(`plain/${NAME}-9.0.0.zip`, goodZip);
      w.pub.files.set(`plain/${NAME}-9.0.0.zip.sig`, w.pub.files.get(`${zipOf("1.0.0")}.sig`) as Uint8Array);
      await w.refuses(() => withIndex.fetchPackage(url(`plain/${NAME}-9.0.0.zip`)), /downgrade or substitution/);
      // Pin only, no signature: a warning that names the URL.
      w.pub.files.set(`unsigned/${NAME}-1.0.0.zip`, goodZip);
      const { origin } = await noIndex.fetchPackage(`${url(`unsigned/${NAME}-1.0.0.zip`)}#sha256=${pin}`);
      assert.match(origin.detail, /\*\*\*@/);
      assert.ok(w.warnings.some((m) => /\*\*\*@.*has no signature/.test(m)), w.warnings.join("\n"));
      // Signed and loaded: the origin shown is redacted.
      const loaded = await noIndex.fetchPackage(url(`plain/${NAME}-1.0.0.zip`));
      assert.match(loaded.origin.detail, /\*\*\*@/);
    } finally {
      await w.server.close();
    }
    w.check();
  });

  test("input and configuration errors quote URLs redacted", async () => {
    const w = await new World().start();
    try {
      await w.refuses(() => parsePackageSpec(`https://user:${SECRET}@cdn.example/a.zip#sha256=zz`), /URL fragment/);
      await w.refuses(() => parsePackageSpec(`ftp://user:${SECRET}@cdn.example/a.zip`), /only https/);
      await w.refuses(() => parsePackageSpec(`${NAME} @ https://user:${SECRET}@cdn.example/a.zip`), /only https/);
      await w.refuses(() => new HttpFetcher().fetchBytes(`https://user:${SECRET}@cdn.example:99999/x?token=${SECRET}`, 10), /not a valid URL/);
      await w.refuses(
        () => new HttpFetcher().fetchBytes(`http://user:${SECRET}@cdn.example/x?token=${SECRET}`, 10),
        /refusing plain http/,
      );
      // With allow_http, still never a credential over plain http off loopback (no request).
      await w.refuses(
        () => new HttpFetcher({ allowHttp: true }).fetchBytes(`http://user:${SECRET}@cdn.example/x`, 10),
        /refusing to send credentials over plain http/,
      );
      const registry = new ConnectorRegistry();
      await w.refuses(() => registry.loadPackage(`https://user:${SECRET}@cdn.example/${NAME}-1.0.0.zip`), /no index is configured/);
      // A YAML error quoting the line with the index URL.
      const dir = tempDir();
      const config = join(dir, "modelmesh.yaml");
      writeFileSync(config, `connectors:\n  index: [https://user:${SECRET}@cdn.example/index/\n  trust_root: x\n`);
      await w.refuses(() => readConfig(config), /connectors configuration/);
    } finally {
      await w.server.close();
    }
    w.check();
  });
});

describe("credentials are sent only to their origin", () => {
  test("a redirect to another origin drops the user info; one back to the same origin keeps it", async () => {
    const w = await new World().start();
    const other = await TestServer.start(w.pub.files);
    try {
      const zip = zipOf("1.0.0");
      w.server.faults.set("away", { kind: "redirect", location: `${other.url}${zip}` });
      w.server.faults.set("away-with-user", { kind: "redirect", location: `${withUser(other.url)}${zip}` });
      w.server.faults.set("here", { kind: "redirect", location: `/${zip}` });
      const fetcher = new HttpFetcher({ retries: 0 });
      for (const path of ["away", "away-with-user"]) {
        await fetcher.fetchBytes(withUser(w.server.url, path), 1 << 20);
      }
      await fetcher.fetchBytes(withUser(w.server.url, "here"), 1 << 20);
      const basic = `Basic ${Buffer.from(`user:${SECRET}`).toString("base64")}`;
      assert.deepEqual(w.server.authorizations, [basic, basic, basic, basic], "the configured origin gets its credential");
      assert.deepEqual(other.requests, [zip, zip]);
      assert.deepEqual(other.authorizations, [undefined, undefined], "another origin never gets it");
    } finally {
      await other.close();
      await w.server.close();
    }
  });
});
