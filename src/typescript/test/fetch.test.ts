/** The network seam against a real loopback server: caps, timeouts, status mapping, policy. */

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { ArchiveCache } from "../src/client/cache.js";
import { checkUrlPolicy, HttpFetcher } from "../src/client/fetch.js";
import { ConnectorError } from "../src/errors.js";
import { sha256 } from "./support/publisher.js";
import { TestServer } from "./support/server.js";

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof ConnectorError) {
      return err.code;
    }
    throw err;
  }
}

describe("HttpFetcher", () => {
  const files = new Map<string, Uint8Array>([["a.bin", new Uint8Array(1000).fill(7)]]);
  let server: TestServer;
  const fetcher = new HttpFetcher({ retries: 1, backoffMs: 10, readTimeoutMs: 300, totalTimeoutMs: 2000 });

  before(async () => {
    server = await TestServer.start(files);
  });
  after(async () => {
    await server.close();
  });

  test("fetches within the cap", async () => {
    assert.equal((await fetcher.fetchBytes(`${server.url}a.bin`, 1000)).length, 1000);
  });
  test("an announced length over the cap is refused before reading", async () => {
    assert.equal(await codeOf(fetcher.fetchBytes(`${server.url}a.bin`, 999)), "trust.length");
  });
  test("an endless body stops at the cap", async () => {
    server.faults.set("endless", { kind: "endless" });
    assert.equal(await codeOf(fetcher.fetchBytes(`${server.url}endless`, 100_000)), "trust.length");
  });
  test("404 is not-found; 500 is retried then failed", async () => {
    assert.equal(await codeOf(fetcher.fetchBytes(`${server.url}missing`, 10)), "download.not-found");
    server.faults.set("boom", { kind: "status", status: 500 });
    const before = server.requests.filter((r) => r === "boom").length;
    assert.equal(await codeOf(fetcher.fetchBytes(`${server.url}boom`, 10)), "download");
    assert.equal(server.requests.filter((r) => r === "boom").length - before, 2);
  });
  test("a stalled server hits the read timeout", async () => {
    server.faults.set("stall", { kind: "stall" });
    assert.equal(await codeOf(fetcher.fetchBytes(`${server.url}stall`, 10)), "download.timeout");
  });
  test("compressed responses are refused (hashes are over exact bytes)", async () => {
    server.faults.set("a.bin", { kind: "gzip" });
    try {
      assert.equal(await codeOf(fetcher.fetchBytes(`${server.url}a.bin`, 1000)), "download");
    } finally {
      server.faults.delete("a.bin");
    }
  });
  test("URL policy: https anywhere, http only to loopback, nothing else", () => {
    assert.doesNotThrow(() => checkUrlPolicy("http://127.0.0.1:1/x", false));
    assert.doesNotThrow(() => checkUrlPolicy("http://localhost/x", false));
    assert.doesNotThrow(() => checkUrlPolicy("https://example.invalid/x", false));
    for (const bad of ["http://example.invalid/x", "file:///etc/passwd", "ftp://x/y", "not a url"]) {
      assert.throws(() => checkUrlPolicy(bad, false), (e: ConnectorError) => e.code === "trust.policy");
    }
  });
  test("the cache keeps only verified entries, made visible by rename", async () => {
    const root = mkdtempSync(join(tmpdir(), "mmc-cache-"));
    const cache = new ArchiveCache(root);
    const data = files.get("a.bin") as Uint8Array;
    const url = `${server.url}a.bin`;
    const got = await cache.fetch(sha256(data), 1000, "a", (sink) => fetcher.fetchTo(url, sink, 1000).then(() => undefined));
    assert.equal(sha256(got), sha256(data));
    assert.equal(cache.readVerified(sha256(data), 1000)?.length, 1000);
    const wrong = "0".repeat(64);
    assert.equal(
      await codeOf(cache.fetch(wrong, 1000, "a", (sink) => fetcher.fetchTo(url, sink, 1000).then(() => undefined))),
      "trust.hash",
    );
    assert.deepEqual(readdirSync(join(root, "archives")), [`${sha256(data)}.zip`]);
    rmSync(root, { recursive: true, force: true });
  });
});
