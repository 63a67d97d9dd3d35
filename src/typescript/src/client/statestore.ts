/**
 * The local record of what was last trusted, one record per trust root (as Python's
 * `client/state.py`, whose on-disk layout this is: both clients default to the same cache
 * directory and read and update one record).
 *
 * Layout below the cache root:
 *
 * ```
 * metadata/trust-<id>/origin.txt           "trust-root:<identity>" (claims the directory)
 * metadata/trust-<id>/roots/<N>.json       the root chain walked beyond the anchor, exact bytes
 * metadata/trust-<id>/timestamp.json       last trusted timestamp, exact bytes
 * metadata/trust-<id>/index.json           last trusted index top, exact bytes
 * metadata/trust-<id>/nodes/<sha256>.json  group and bin nodes, content-addressed
 * metadata/trust-<id>/state.json           {"last_refresh": "<RFC 3339 UTC>"}
 * ```
 *
 * `<identity>` is `trustRootId` (trust/state.ts) of the shipped anchor (the SHA-256 of its signed
 * payload) and `<id>` its first 16 hex characters. The record is keyed by the trust root,
 * never by a URL: every mirror of one index, its `bundle:` and offline mode share one
 * rollback reference whatever the order or set of mirrors (keyed by the first mirror's URL,
 * a reordered mirror list started the client with no reference and a stale but validly
 * signed mirror rolled it back). Two different trust roots never share a record: a
 * directory whose `origin.txt` names another claim is a `cache` error.
 *
 * Earlier versions (of both clients) keyed the record by the first index URL
 * (`metadata/<origin-id>/`, the normalized URL in `origin.txt`, `<origin-id>` the first 16
 * hex characters of its sha256). Those directories are only read, to migrate their rollback
 * reference after it re-verifies from the anchor (see `IndexView`); they are never written.
 *
 * Signed files are kept as the exact bytes received, so the trust core re-verifies them on
 * every load rather than trusting this directory. Every write is a temp file
 * (`.<name>.<random>.tmp`, Python's naming, so either client removes the other's leftovers)
 * plus rename; `timestamp.json`, the rollback reference, is also fsynced with its directory.
 * Python additionally takes the record's `.lock` (flock) around writes; this client does not
 * (Node has no flock), so atomic renames alone keep each file whole.
 */

import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

import { CacheError, describe, UsageError } from "../errors.js";
import { sha256Hex } from "../trust/keys.js";
import { formatTime, parseTime } from "../trust/metadata.js";
import { isObject, strictJson } from "../trust/strict-json.js";

const HEX64_RE = /^[0-9a-f]{64}$/;
const ORIGIN_FILE = "origin.txt";
const TRUST_PREFIX = "trust-"; // metadata/trust-<id>: the record of one trust root
/** `origin.txt` of a trust-root record: `trust-root:<identity>`. */
export const TRUST_CLAIM = "trust-root:";

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

/** The legacy directory name of an index URL: 16 hex characters of sha256(normalized URL). */
export function originId(url: string): string {
  return sha256Hex(Buffer.from(normalizeIndexUrl(url), "utf8")).slice(0, 16);
}

/**
 * The directory name of a trust root's record: `trust-` and 16 hex characters of its identity.
 *
 * @throws UsageError `identity` is not 64 lowercase hex characters.
 */
export function trustRootDir(identity: string): string {
  if (!HEX64_RE.test(identity)) {
    throw new UsageError(`expected a trust root identity (64 lowercase hex), got ${JSON.stringify(identity).slice(0, 80)}`);
  }
  return TRUST_PREFIX + identity.slice(0, 16);
}

/**
 * Write `data` to `path` atomically: a temp file beside it, then rename. With `durable`, the
 * file and its directory are fsynced (the rollback reference must survive a crash).
 *
 * @throws CacheError The file cannot be written (no temp file is left).
 */
export function writeAtomic(path: string, data: Uint8Array | string, durable = false): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, "wx", 0o644);
    try {
      const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      let off = 0;
      while (off < bytes.length) {
        off += writeSync(fd, bytes, off, bytes.length - off);
      }
      if (durable) {
        fsyncSync(fd);
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CacheError("cache", `cannot write ${path}: ${describe(err)}`, { cause: err });
  }
  if (durable && process.platform !== "win32") {
    try {
      const dfd = openSync(dirname(path), "r");
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    } catch (err) {
      throw new CacheError("cache", `cannot sync ${dirname(path)}: ${describe(err)}`, { cause: err });
    }
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

function readClaim(directory: string): string | null {
  const data = readOrNull(join(directory, ORIGIN_FILE));
  return data === null ? null : Buffer.from(data).toString("utf8").trim();
}

/** `last_refresh` as either client writes it: whole seconds (this one) or fractions (Python). */
function parseRefreshTime(text: string): Date {
  const m = /^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?(?:Z|\+00:00)$/.exec(text);
  if (m === null) {
    throw new RangeError(`unexpected time ${JSON.stringify(text).slice(0, 80)}`);
  }
  const whole = parseTime(`${m[1]}Z`);
  const ms = m[2] === undefined ? 0 : Math.floor(Number(`0.${m[2]}`) * 1000);
  return new Date(whole.getTime() + ms);
}

/**
 * The stored state of one trust root (or, read-only, of a legacy URL-keyed origin). Get it
 * from {@link StateStore.trustRoot} (or {@link StateStore.origins}).
 */
export class OriginState {
  /** Set once `origin.txt` was read and names this record (it is written once, never changed). */
  private claimSeen = false;

  constructor(
    /** `<cache>/metadata/trust-<id>` (or a legacy `<cache>/metadata/<origin-id>`). */
    readonly directory: string,
    /** What the directory is claimed for: `trust-root:<identity>`, or a legacy URL. */
    readonly claim: string,
  ) {}

  /** True for a URL-keyed directory of an earlier version (read only to migrate it). */
  get isLegacy(): boolean {
    return !this.claim.startsWith(TRUST_CLAIM);
  }

  /** The normalized index URL of a legacy record (else the claim). */
  get url(): string {
    return this.claim;
  }

  /**
   * @throws CacheError The directory is claimed by another trust root or URL.
   */
  private checkClaim(): void {
    if (this.claimSeen) {
      return;
    }
    const stored = readClaim(this.directory);
    if (stored === this.claim) {
      this.claimSeen = true;
    } else if (stored !== null) {
      // 64-bit directory names make this a corruption (or a copied record), not a collision.
      throw new CacheError(
        "cache",
        `metadata directory ${this.directory} belongs to ${JSON.stringify(stored)}, expected ${JSON.stringify(this.claim)}`,
        { hint: `remove ${this.directory} to reset the stored state of this index` },
      );
    }
  }

  /** Create `sub`, claiming the directory first (or checking the claim). */
  private ensure(sub = ""): string {
    if (this.isLegacy) {
      throw new UsageError(`${this.directory} is a legacy record: it is only read, to migrate it`);
    }
    const dir = join(this.directory, sub);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new CacheError("cache", `cannot create ${dir}: ${describe(err)}`, { cause: err });
    }
    if (!this.claimSeen) {
      if (readClaim(this.directory) === null) {
        writeAtomic(join(this.directory, ORIGIN_FILE), `${this.claim}\n`);
      }
      this.checkClaim();
    }
    return dir;
  }

  private read(path: string): Uint8Array | null {
    this.checkClaim();
    return readOrNull(path);
  }

  /** Stored roots beyond the anchor, ascending: [version, bytes] (unverified). */
  loadRootVersions(): [number, Uint8Array][] {
    this.checkClaim();
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
    writeAtomic(join(this.ensure("roots"), `${version}.json`), data, true);
  }

  loadTimestamp(): Uint8Array | null {
    return this.read(join(this.directory, "timestamp.json"));
  }

  /** Store the newly trusted timestamp durably; the very bytes stored are not rewritten. */
  saveTimestamp(data: Uint8Array): void {
    const path = join(this.ensure(), "timestamp.json");
    const stored = readOrNull(path);
    if (stored === null || !Buffer.from(stored).equals(data)) {
      writeAtomic(path, data, true);
    }
  }

  loadIndex(): Uint8Array | null {
    return this.read(join(this.directory, "index.json"));
  }

  saveIndex(data: Uint8Array): void {
    writeAtomic(join(this.ensure(), "index.json"), data, true);
  }

  /**
   * A cached node, re-hashed on read; a corrupt copy is reported as absent (and removed,
   * except from a legacy record, which is never written).
   */
  loadNode(sha256: string, length: number): Uint8Array | null {
    if (!HEX64_RE.test(sha256)) {
      return null;
    }
    const path = join(this.directory, "nodes", `${sha256}.json`);
    const data = this.read(path);
    if (data === null) {
      return null;
    }
    if (data.length !== length || sha256Hex(data) !== sha256) {
      if (!this.isLegacy) {
        rmSync(path, { force: true });
      }
      return null;
    }
    return data;
  }

  saveNode(sha256: string, data: Uint8Array): void {
    if (!HEX64_RE.test(sha256) || sha256Hex(data) !== sha256) {
      throw new UsageError(`metadata node bytes do not hash to ${sha256.slice(0, 80)} (not stored)`);
    }
    writeAtomic(join(this.ensure("nodes"), `${sha256}.json`), data);
  }

  /** The digests of the stored nodes (not re-verified), sorted. */
  nodes(): string[] {
    let names: string[];
    try {
      names = readdirSync(join(this.directory, "nodes"));
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith(".json"))
      .map((n) => n.slice(0, -5))
      .filter((n) => HEX64_RE.test(n))
      .sort();
  }

  /** Copy every stored node whose bytes hash to its name into `target` (migration). */
  copyNodesTo(target: OriginState): string[] {
    const copied: string[] = [];
    for (const digest of this.nodes()) {
      const data = this.read(join(this.directory, "nodes", `${digest}.json`));
      if (data !== null && sha256Hex(data) === digest) {
        target.saveNode(digest, data);
        copied.push(digest);
      }
    }
    return copied;
  }

  /** When the state was last refreshed online, or null. */
  lastRefresh(): Date | null {
    const data = this.read(join(this.directory, "state.json"));
    if (data === null) {
      return null;
    }
    try {
      const obj = strictJson(data);
      const when = isObject(obj) ? obj["last_refresh"] : undefined;
      return typeof when === "string" ? parseRefreshTime(when) : null;
    } catch {
      return null; // an unreadable record only costs one refresh
    }
  }

  recordRefresh(when: Date): void {
    // Python's spelling (indent 1, a final newline): one file both clients write.
    const text = `${JSON.stringify({ last_refresh: formatTime(when) }, null, 1)}\n`;
    writeAtomic(join(this.ensure(), "state.json"), text);
  }
}

/** The stored records below `<cache>/metadata`. */
export class StateStore {
  private readonly base: string;

  constructor(readonly root: string) {
    this.base = join(root, "metadata");
  }

  /**
   * The record of one trust root. Every mirror, bundle and offline run of the index this
   * root anchors shares it: it holds the one rollback reference of that trust root.
   *
   * @param identity `trustRootId` of the shipped anchor.
   * @throws UsageError `identity` is not 64 lowercase hex characters.
   */
  trustRoot(identity: string): OriginState {
    return new OriginState(join(this.base, trustRootDir(identity)), TRUST_CLAIM + identity);
  }

  /** Every trust root with a stored record (its claim matching its name), sorted by claim. */
  trustRoots(): OriginState[] {
    const found: OriginState[] = [];
    for (const name of this.directories()) {
      const claim = readClaimQuietly(join(this.base, name)) ?? "";
      const identity = claim.slice(TRUST_CLAIM.length);
      if (claim.startsWith(TRUST_CLAIM) && HEX64_RE.test(identity) && trustRootDir(identity) === name) {
        found.push(this.trustRoot(identity));
      }
    }
    return found.sort((a, b) => (a.claim < b.claim ? -1 : 1));
  }

  /** The legacy URL-keyed record of an index URL (read only, to migrate it). */
  origin(url: string): OriginState {
    const normalized = normalizeIndexUrl(url);
    return new OriginState(join(this.base, originId(normalized)), normalized);
  }

  /**
   * Every legacy URL-keyed record (its name the hash of the URL it claims), sorted by URL:
   * the migration input. Either client wrote the claim already normalized, so it is hashed
   * as stored.
   */
  origins(): OriginState[] {
    const found: OriginState[] = [];
    for (const name of this.directories()) {
      if (name.startsWith(TRUST_PREFIX)) {
        continue;
      }
      const url = readClaimQuietly(join(this.base, name));
      if (url !== null && url !== "" && sha256Hex(Buffer.from(url, "utf8")).slice(0, 16) === name) {
        found.push(new OriginState(join(this.base, name), url));
      }
    }
    return found.sort((a, b) => (a.url < b.url ? -1 : 1));
  }

  private directories(): string[] {
    try {
      return readdirSync(this.base, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        return [];
      }
      throw new CacheError("cache", `cannot list ${this.base}: ${describe(err)}`, { cause: err });
    }
  }
}

function readClaimQuietly(directory: string): string | null {
  try {
    return readClaim(directory);
  } catch {
    return null;
  }
}
