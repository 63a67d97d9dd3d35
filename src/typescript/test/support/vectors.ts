/**
 * The conformance-vector runner (format in VECTORS.md). Each vector file names a suite and
 * holds cases with inputs and the expected outcome: `{"ok": true, …}` or `{"error": code}`.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { urlFileName } from "../../src/client/binding.js";
import { redactText, redactUrl } from "../../src/client/redact.js";
import { IndexView } from "../../src/client/index-view.js";
import { HttpFetcher } from "../../src/client/fetch.js";
import { Loader } from "../../src/client/loader.js";
import { parseRequirement } from "../../src/client/requirements.js";
import { choose } from "../../src/client/resolve.js";
import { StateStore } from "../../src/client/statestore.js";
import { trustRootId } from "../../src/trust/state.js";
import { ConnectorError } from "../../src/errors.js";
import { readZip } from "../../src/package/archive.js";
import { formatConnectorId, parseConnectorId } from "../../src/package/ids.js";
import { parseManifest } from "../../src/package/manifest.js";
import { checkRawName } from "../../src/package/zip-names.js";
import { parseEnvelope, verifyThreshold } from "../../src/trust/envelope.js";
import { PublicKey } from "../../src/trust/keys.js";
import { parseTime } from "../../src/trust/metadata.js";
import { canonicalJson, type JsonValue, strictJson } from "../../src/trust/strict-json.js";
import { sha256 } from "./publisher.js";
import { type Fault, TestServer } from "./server.js";

export const VECTOR_FORMAT = "modelmesh-conformance/1";

/** Bytes in a vector: `{"b64": …}`, `{"hex": …}`, `{"utf8": …}` or a plain (UTF-8) string. */
export type VBytes = string | { b64: string } | { hex: string } | { utf8: string };

export function bytesOf(v: VBytes): Uint8Array {
  if (typeof v === "string") {
    return Buffer.from(v, "utf8");
  }
  if ("b64" in v) {
    return Buffer.from(v.b64, "base64");
  }
  if ("hex" in v) {
    return Buffer.from(v.hex, "hex");
  }
  return Buffer.from(v.utf8, "utf8");
}

export function b64(data: Uint8Array): { b64: string } {
  return { b64: Buffer.from(data).toString("base64") };
}

export type Expect = { ok: true; [k: string]: unknown } | { error: string };

export interface VectorCase {
  name: string;
  input?: unknown;
  trust_root?: VBytes;
  steps?: Step[];
  expect?: Expect;
}

/** How the server misbehaves for one path during one step. */
export type Misbehave =
  | { kind: "endless" }
  | { kind: "stall" }
  | { kind: "status"; status: number }
  | { kind: "redirect"; to?: string; url?: string };

export interface Step {
  /** Files to serve from now on (path → bytes; null removes the path). */
  serve: Record<string, VBytes | null>;
  /** Reference time (RFC 3339 UTC); grows from step to step. */
  now: string;
  /** What the client does. */
  action: { op: "refresh" } | { op: "resolve"; requirement: string; prereleases?: boolean };
  expect: Expect;
  /** Server faults for this step only (path → misbehaviour). */
  misbehave?: Record<string, Misbehave>;
  /** Replaces `expect` for one runtime ("node", "python"). */
  expect_by_runtime?: Record<string, Expect>;
}

/** This client's runtime, as named in `expect_by_runtime`. */
export const RUNTIME = "node";

export interface VectorFile {
  format: string;
  suite: string;
  description?: string;
  cases: VectorCase[];
}

type Outcome = { ok: true; [k: string]: unknown } | { error: string };

async function outcome(run: () => Promise<Record<string, unknown>> | Record<string, unknown>): Promise<Outcome> {
  try {
    return { ok: true, ...(await run()) };
  } catch (err) {
    if (err instanceof ConnectorError) {
      return { error: err.code };
    }
    throw err;
  }
}

/**
 * Compare an outcome with an expectation: the code, or every field the vector names. A code
 * matches itself and every code below it (`package.archive` matches `package.archive.name`).
 */
export function compare(got: Outcome, expect: Expect, where: string): void {
  if ("error" in expect) {
    const code = "error" in got && typeof got.error === "string" ? got.error : null;
    assert.ok(
      code !== null && (code === expect.error || code.startsWith(`${expect.error}.`)),
      `${where}: expected error ${expect.error}, got ${JSON.stringify(got)}`,
    );
    return;
  }
  assert.ok("ok" in got, `${where}: expected success, got ${JSON.stringify(got)}`);
  for (const [k, v] of Object.entries(expect)) {
    assert.deepEqual(got[k], v, `${where}: field ${k}`);
  }
}

const PURE: Record<string, (input: unknown) => Promise<Outcome>> = {
  "strict-json": (input) =>
    outcome(() => ({ value: JSON.parse(Buffer.from(canonicalJson(strictJson(bytesOf(input as VBytes)))).toString()) as JsonValue })),
  envelope: (input) =>
    outcome(() => {
      const i = input as { envelope: VBytes; expected_type: string; keys: Record<string, string>; keyids: string[]; threshold: number };
      const keys = new Map(Object.entries(i.keys).map(([kid, hex]) => [kid, PublicKey.fromHex(hex)]));
      const valid = verifyThreshold(parseEnvelope(bytesOf(i.envelope)), {
        expectedType: i.expected_type,
        keys,
        keyids: i.keyids,
        threshold: i.threshold,
        what: "vector",
      });
      return { valid_keyids: [...valid].sort() };
    }),
  pep440: (input) =>
    outcome(() => {
      const i = input as {
        requirement: string;
        prereleases?: boolean;
        candidates: { version: string; yanked?: boolean; yanked_reason?: string | null }[];
      };
      const choice = choose(
        parseRequirement(i.requirement),
        i.candidates.map((c) => ({ version: c.version, yanked: c.yanked ?? false, yankedReason: c.yanked_reason ?? null })),
        i.prereleases ?? false,
      );
      return { version: choice.candidate.version, warning: choice.warning !== null };
    }),
  "zip-name": (input) =>
    outcome(() => {
      const i = input as { name: VBytes; flags?: number; extra_ids?: number[] };
      const r = checkRawName({ bytes: bytesOf(i.name), flags: i.flags ?? 0x800, extraIds: i.extra_ids ?? [] }, "vector");
      return { name: r.name, is_dir: r.isDir };
    }),
  zip: (input) =>
    outcome(async () => {
      const files = await readZip(bytesOf(input as VBytes), "vector.zip");
      return { files: Object.fromEntries([...files].map(([k, v]) => [k, sha256(v)])) };
    }),
  manifest: (input) =>
    outcome(() => {
      const m = parseManifest(bytesOf(input as VBytes), "vector");
      return { name: m.name, version: m.version, connectors: m.connectors.map((c) => c.id), runtimes: [...m.runtimes] };
    }),
  "connector-id": (input) => outcome(() => ({ id: formatConnectorId(parseConnectorId(input)) })),
  "url-file-name": (input) => outcome(() => ({ name: urlFileName(input as string) })),
  "redact-url": (input) =>
    outcome(() => (typeof input === "string" ? { url: redactUrl(input) } : { text: redactText((input as { text: string }).text) })),
  "public-key": (input) => outcome(() => ({ keyid: PublicKey.fromHex(input).keyid })),
};

function toFault(server: TestServer, how: Misbehave): Fault {
  switch (how.kind) {
    case "endless":
    case "stall":
      return { kind: how.kind };
    case "status":
      return { kind: "status", status: how.status };
    case "redirect":
      return { kind: "redirect", location: how.url ?? `${server.url}${how.to ?? ""}` };
  }
}

async function runSequence(c: VectorCase, where: string): Promise<void> {
  if (c.trust_root === undefined || c.steps === undefined) {
    throw new Error(`${where}: an index-sequence case needs trust_root and steps`);
  }
  const anchor = bytesOf(c.trust_root);
  const served = new Map<string, Uint8Array>();
  const server = await TestServer.start(served);
  const cache = mkdtempSync(join(tmpdir(), "mmc-vectors-"));
  const fetcher = new HttpFetcher({ retries: 0, readTimeoutMs: 1000, totalTimeoutMs: 5000 });
  try {
    for (const [i, step] of c.steps.entries()) {
      for (const [path, data] of Object.entries(step.serve)) {
        if (data === null) {
          served.delete(path);
        } else {
          served.set(path, bytesOf(data));
        }
      }
      server.faults.clear();
      for (const [path, how] of Object.entries(step.misbehave ?? {})) {
        server.faults.set(path, toFault(server, how));
      }
      const now = parseTime(step.now);
      // Every step asks the server (max age -1): the stored state is the rollback reference.
      const action = step.action;
      const prereleases = action.op === "resolve" && action.prereleases === true;
      const loader = new Loader({ index: [server.url], trustRoot: anchor, cacheDir: cache, fetcher, now: () => now, metadataMaxAgeMs: -1, prereleases, warn: () => undefined });
      const got = await outcome(async () => {
        if (action.op === "refresh") {
          const view = new IndexView({ anchor, store: new StateStore(cache).trustRoot(trustRootId(anchor)), mirrors: [server.url], fetcher, now, metadataMaxAgeMs: -1 });
          const state = await view.trusted();
          return { root_version: state.root.version, timestamp_version: state.timestamp?.version, index_version: state.index?.version };
        }
        // What a load does before importing: resolve, runtime, download, read, match.
        const { pkg } = await loader.fetchPackage(action.requirement);
        return { name: pkg.manifest.name, version: pkg.manifest.version, sha256: pkg.sha256 };
      });
      compare(got, step.expect_by_runtime?.[RUNTIME] ?? step.expect, `${where} step ${i}`);
    }
  } finally {
    await server.close();
    rmSync(cache, { recursive: true, force: true });
  }
}

/** Read a vector file, refusing an unknown format or suite (a runner never skips silently). */
export function readVectorFile(path: string): VectorFile {
  const file = JSON.parse(readFileSync(path, "utf8")) as VectorFile;
  assert.equal(file.format, VECTOR_FORMAT, `${path}: unknown format`);
  if (file.suite !== "index-sequence" && PURE[file.suite] === undefined) {
    throw new Error(`${path}: unknown suite '${file.suite}'`);
  }
  return file;
}

/** Run one case of a vector file. */
export async function runCase(suite: string, c: VectorCase, where: string): Promise<void> {
  if (suite === "index-sequence") {
    await runSequence(c, where);
    return;
  }
  const run = PURE[suite] as (input: unknown) => Promise<Outcome>;
  if (c.expect === undefined) {
    throw new Error(`${where}: no expect`);
  }
  compare(await run(c.input), c.expect, where);
}

/** Run one vector file; returns how many cases ran. */
export async function runVectorFile(path: string): Promise<number> {
  const file = readVectorFile(path);
  for (const c of file.cases) {
    await runCase(file.suite, c, `${path} [${file.suite}] ${c.name}`);
  }
  return file.cases.length;
}
