/**
 * `ca_bundle`: https servers verified against a private CA. The CA and the server certificate
 * are made by the `openssl` command in a temporary directory for this run only (no key is
 * committed); without `openssl` these tests are skipped, saying why.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { readConfig } from "../src/client/config.js";
import { HttpFetcher } from "../src/client/fetch.js";
import { TestPublisher } from "./support/publisher.js";
import { rejectsWith } from "./support/scratch.js";

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const dir = mkdtempSync(join(tmpdir(), "mmc-ts-ca-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A CA, and a certificate for 127.0.0.1 it signed. */
function makeCertificates(): void {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=mmc test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
  run("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
  run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
}

describe("ca_bundle", { skip: hasOpenssl() ? false : "the openssl command is not installed" }, () => {
  let server: https.Server;
  let url = "";
  let connections = 0;
  const body = new TextEncoder().encode("over TLS from a private CA\n");

  before(async () => {
    makeCertificates();
    server = https.createServer(
      { key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) },
      (_req, res) => res.writeHead(200, { "content-length": body.length }).end(body),
    );
    server.on("connection", () => {
      connections++;
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/file.txt`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test("a server certified by the configured CA is trusted", async () => {
    const fetcher = new HttpFetcher({ caBundle: join(dir, "ca.pem") });
    assert.deepEqual(new Uint8Array(await fetcher.fetchBytes(url, 1024)), body);
  });

  test("without the bundle the certificate is refused at once, naming ca_bundle (not retried)", async () => {
    const before = connections;
    const fetcher = new HttpFetcher({ retries: 2, backoffMs: 1 });
    await rejectsWith(fetcher.fetchBytes(url, 1024), "download", /TLS certificate verification failed for .*set ca_bundle/);
    assert.equal(connections - before, 1);
  });

  test("a bundle of another CA is refused", async () => {
    const other = join(dir, "other.pem");
    // The server's own leaf is not a CA: it cannot certify itself.
    writeFileSync(other, readFileSync(join(dir, "server.pem")));
    const fetcher = new HttpFetcher({ caBundle: other, retries: 0 });
    await rejectsWith(fetcher.fetchBytes(url, 1024), "download", /TLS certificate verification failed/);
  });

  test("an unreadable or empty bundle is a clear error before any connection", async () => {
    const before = connections;
    await rejectsWith(
      new HttpFetcher({ caBundle: join(dir, "missing.pem") }).fetchBytes(url, 1024),
      "download",
      /cannot load the CA bundle .*missing\.pem/,
    );
    const empty = join(dir, "empty.pem");
    writeFileSync(empty, "no certificate here\n");
    await rejectsWith(new HttpFetcher({ caBundle: empty }).fetchBytes(url, 1024), "download", /holds no PEM certificate/);
    assert.equal(connections, before);
  });

  test("the configuration key is a path relative to the configuration file", () => {
    writeFileSync(join(dir, "root.json"), new TestPublisher().anchor());
    const config = join(dir, "modelmesh.yaml");
    writeFileSync(config, "connectors:\n  trust_root: root.json\n  ca_bundle: ca.pem\n");
    assert.equal(readConfig(config).loader.fetch?.caBundle, join(dir, "ca.pem"));
    assert.throws(() => readConfig({ trust_root: join(dir, "root.json"), ca_bundle: 3 }), /ca_bundle: expected the path/);
  });
});
