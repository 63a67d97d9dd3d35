/**
 * The local record of what was last trusted, per index origin (as `statestore.py`).
 *
 * Layout below the state root:
 *
 * ```
 * metadata/<origin-id>/origin.txt           the normalized index URL
 * metadata/<origin-id>/roots/<N>.json       the root chain walked beyond the anchor
 * metadata/<origin-id>/timestamp.json       last trusted timestamp, exact bytes
 * metadata/<origin-id>/index.json           last trusted index top, exact bytes
 * metadata/<origin-id>/nodes/<sha256>.json  group and bin nodes, content-addressed
 * metadata/<origin-id>/state.json           {"last_refresh": "<RFC 3339 UTC>"}
 * ```
 *
 * Signed files are kept as the exact bytes received, so the trust core re-verifies them
 * on every load rather than trusting this directory. Every write is a temp file plus
 * rename (atomic on POSIX); a reader never sees a half-written file.
 */

import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { CacheError, describe } from "../errors.js";
import { sha256Hex } from "../trust/keys.js";
import { formatTime, parseTime } from "../trust/metadata.js";
import { isObject, strictJson } from "../trust/strict-json.js";

const HEX64_RE = /^[0-9a-f]{64}$/;

/** Normalize an index URL: lower-case scheme and host, no default port, trailing `/`. */
export function normalizeIndexUrl(url: string): string {
  const u = new URL(url);
  u.username = "";
  u.password = "";
  u.hash = "";
  u.search = "";
  if (!u.pathname.endsWith("/")) {
    u.pathname += "/";
  }
  return u.href;
}

/** First 16 hex characters of the sha256 of the normalized URL. */
export function originId(url: string): string {
  return sha256Hex(Buffer.from(normalizeIndexUrl(url), "utf8")).slice(0, 16);
}

/** Write `data` to `path` atomically: a temp file beside it, then rename. */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(tmp, data, { flag: "wx", mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CacheError("cache", `cannot write ${path}: ${describe(err)}`, { cause: err });
  }
}

function readOrNull(path: string): Uint8Array | null {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return null;
    }
    throw new CacheError("cache", `cannot read ${path}: ${describe(err)}`, { cause: err });
  }
}

/** The stored state of one index origin. */
export class OriginState {
  readonly directory: string;

  constructor(
    stateRoot: string,
    readonly url: string,
  ) {
    this.directory = join(stateRoot, "metadata", originId(url));
  }

  private ensure(sub = ""): string {
    const dir = join(this.directory, sub);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      writeFileSync(join(this.directory, "origin.txt"), normalizeIndexUrl(this.url), { flag: "w" });
    } catch (err) {
      throw new CacheError("cache", `cannot create ${dir}: ${describe(err)}`, { cause: err });
    }
    return dir;
  }

  /** Stored roots beyond the anchor, ascending: [version, bytes]. */
  loadRootVersions(): [number, Uint8Array][] {
    let names: string[];
    try {
      names = readdirSync(join(this.directory, "roots"));
    } catch {
      return [];
    }
    const out: [number, Uint8Array][] = [];
    for (const n of names) {
      const m = /^([1-9][0-9]{0,8})\.json$/.exec(n);
      const data = m ? readOrNull(join(this.directory, "roots", n)) : null;
      if (m && data) {
        out.push([Number(m[1]), data]);
      }
    }
    return out.sort((a, b) => a[0] - b[0]);
  }

  saveRootVersion(version: number, data: Uint8Array): void {
    writeAtomic(join(this.ensure("roots"), `${version}.json`), data);
  }

  loadTimestamp(): Uint8Array | null {
    return readOrNull(join(this.directory, "timestamp.json"));
  }

  saveTimestamp(data: Uint8Array): void {
    writeAtomic(join(this.ensure(), "timestamp.json"), data);
  }

  loadIndex(): Uint8Array | null {
    return readOrNull(join(this.directory, "index.json"));
  }

  saveIndex(data: Uint8Array): void {
    writeAtomic(join(this.ensure(), "index.json"), data);
  }

  /** A cached node, re-hashed on read; a corrupt copy is removed and reported as absent. */
  loadNode(sha256: string, length: number): Uint8Array | null {
    if (!HEX64_RE.test(sha256)) {
      return null;
    }
    const path = join(this.directory, "nodes", `${sha256}.json`);
    const data = readOrNull(path);
    if (data === null) {
      return null;
    }
    if (data.length !== length || sha256Hex(data) !== sha256) {
      rmSync(path, { force: true });
      return null;
    }
    return data;
  }

  saveNode(sha256: string, data: Uint8Array): void {
    writeAtomic(join(this.ensure("nodes"), `${sha256}.json`), data);
  }

  /** When the state was last refreshed online, or null. */
  lastRefresh(): Date | null {
    const data = readOrNull(join(this.directory, "state.json"));
    if (data === null) {
      return null;
    }
    try {
      const obj = strictJson(data);
      const when = isObject(obj) ? obj["last_refresh"] : undefined;
      return typeof when === "string" ? parseTime(when) : null;
    } catch {
      return null; // an unreadable record only costs one refresh
    }
  }

  recordRefresh(when: Date): void {
    writeAtomic(join(this.ensure(), "state.json"), JSON.stringify({ last_refresh: formatTime(when) }));
  }
}
