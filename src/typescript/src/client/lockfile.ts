/**
 * `connectors.lock` (FORMAT.md §5): exactly which archive every package entry resolves to, as
 * the Python client's `lockfile.py` reads and enforces it. Writing a lock stays with the
 * Python CLI (`modelmesh-connectors lock`); this module reads one and checks against it.
 *
 * With `locked: true` the loader installs only what the lock pins: another version, or the
 * same version with another hash from any source (even a trusted mirror), is an error.
 * Pinning is all-or-nothing: an entry missing from the lock fails the load. That includes
 * local entries: a local zip is pinned by its path, sha256 and length, and a local directory
 * (which has no fixed bytes) loads only when the lock names it *and* the configuration opts in
 * with `allow_unpinned_directories: true`. A lock entry no configured entry uses is not
 * reported (as in Python): the lock may pin more than one configuration loads.
 */

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

import { ConfigError, describe, ResolutionError, TrustError } from "../errors.js";
import type { Package } from "../package/package.js";
import { isObject, type JsonValue, strictJson } from "../trust/strict-json.js";
import { redactText, redactUrl } from "./redact.js";

/** The lock formats this client reads: format 1 had remote archives only. */
export const READABLE_LOCK_VERSIONS = [1, 2] as const;
export const LOCK_KINDS = ["archive", "local-zip", "directory"] as const;
export type LockKind = (typeof LOCK_KINDS)[number];

/** One pinned package (the fields of a `packages` entry). */
export interface LockEntry {
  /** Package name (for a pin-only URL: the URL's file name). */
  readonly name: string;
  /** Version (`?` for a pin-only URL). */
  readonly version: string;
  /** Archive sha256; a directory's tree digest (recorded, not enforced). */
  readonly sha256: string;
  /** Archive length in bytes, or null for a pin-only URL. */
  readonly length: number | null;
  /** The entry as configured (a local path: relative to the lock's directory). */
  readonly spec: string;
  /** Where it came from. */
  readonly source: string;
  /** Key IDs whose signatures met the threshold. */
  readonly signedBy: readonly string[];
  /** `archive` (index or URL), `local-zip` or `directory`. */
  readonly kind: LockKind;
  /** The local path the entry names (local kinds only), else null. */
  readonly path: string | null;
}

/** What a resolution chose, as far as the lock cares. */
export interface LockedChoice {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  /** Where the archive is offered (for the mismatch message). */
  readonly source: string;
}

const HINT_ADD = "run 'modelmesh-connectors lock --config FILE --upgrade' to add it";

function field(raw: { [key: string]: JsonValue }, key: string): JsonValue {
  const value = raw[key];
  if (value === undefined) {
    throw new Error(`missing '${key}'`);
  }
  return value;
}

function text(raw: { [key: string]: JsonValue }, key: string): string {
  const value = field(raw, key);
  if (typeof value !== "string") {
    throw new Error(`${key}: expected a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseEntry(raw: JsonValue, format: number): LockEntry {
  if (!isObject(raw)) {
    throw new Error(`expected an object, got ${JSON.stringify(raw)}`);
  }
  const kind = format >= 2 && raw["kind"] !== undefined ? raw["kind"] : "archive";
  const where = format >= 2 ? (raw["path"] ?? null) : null;
  if (typeof kind !== "string" || !(LOCK_KINDS as readonly string[]).includes(kind)) {
    throw new Error(`kind: expected one of ${JSON.stringify(LOCK_KINDS)}, got ${JSON.stringify(kind)}`);
  }
  if ((kind === "archive") !== (where === null) || (where !== null && typeof where !== "string")) {
    throw new Error(`path: required for local kinds only, got ${JSON.stringify(where)}`);
  }
  const length = field(raw, "length");
  if (length !== null && !(typeof length === "number" && Number.isSafeInteger(length) && length >= 0)) {
    throw new Error(`length: expected an integer or null, got ${JSON.stringify(length)}`);
  }
  const signedBy = field(raw, "signed_by");
  if (!Array.isArray(signedBy) || !signedBy.every((k) => typeof k === "string")) {
    throw new Error(`signed_by: expected a list of key IDs, got ${JSON.stringify(signedBy)}`);
  }
  return {
    name: text(raw, "name"),
    version: text(raw, "version"),
    sha256: text(raw, "sha256"),
    length,
    spec: text(raw, "spec"),
    source: text(raw, "source"),
    signedBy: signedBy as string[],
    kind: kind as LockKind,
    path: where as string | null,
  };
}

/** A parsed lock file; the checks the loader asks of it in locked mode. */
export class LockFile {
  private constructor(
    readonly entries: readonly LockEntry[],
    /** Where it was read from (relative local paths are resolved from its directory). */
    readonly path: string | null,
  ) {}

  /**
   * Read and validate a lock file.
   *
   * @throws ConfigError (`config`) Missing, not strict JSON (a duplicated key is named),
   *   not of a readable format, or an entry is malformed.
   */
  static read(path: string): LockFile {
    let data: Uint8Array;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new ConfigError("config", `${path}: cannot read the lock file: ${describe(err)}`, {
        hint: "run 'modelmesh-connectors lock --config FILE' first (writing a lock needs the Python CLI)",
        cause: err,
      });
    }
    return LockFile.parse(data, path);
  }

  /**
   * Parse lock file bytes.
   *
   * @param where The lock's path (messages; the base of relative local paths), or null.
   * @throws ConfigError (`config`) As {@link read}.
   */
  static parse(data: Uint8Array, where: string | null = null): LockFile {
    const label = where ?? "the lock file";
    let doc: JsonValue;
    try {
      // Strict: a duplicated key (two sha256 pins for one entry) is an error, not last-wins.
      doc = strictJson(data);
    } catch (err) {
      throw new ConfigError("config", `${label}: lock file is not valid JSON: ${redactText(describe(err))}`, { cause: err });
    }
    const format = isObject(doc) ? doc["lock-version"] : undefined;
    if (typeof format !== "number" || !(READABLE_LOCK_VERSIONS as readonly number[]).includes(format)) {
      throw new ConfigError("config", `${label}: not a lock file of format ${READABLE_LOCK_VERSIONS.join(" or ")}`);
    }
    const packages = (doc as { [key: string]: JsonValue })["packages"] ?? [];
    if (!Array.isArray(packages)) {
      throw new ConfigError("config", `${label}: packages: expected a list, got ${JSON.stringify(packages)}`);
    }
    const entries = packages.map((raw, i) => {
      try {
        return parseEntry(raw, format);
      } catch (err) {
        throw new ConfigError("config", `${label}: packages[${i}] is malformed: ${describe(err)}`, { cause: err });
      }
    });
    return new LockFile(entries, where === null ? null : resolve(where));
  }

  private entry(name: string): LockEntry {
    const found = this.entries.find((e) => e.kind === "archive" && e.name === name);
    if (found === undefined) {
      throw new ResolutionError(
        "resolution",
        `${name} is not pinned in ${this.path ?? "the lock file"} (locked mode pins all or nothing)`,
        { hint: HINT_ADD },
      );
    }
    return found;
  }

  /**
   * The version the lock pins for `name`.
   *
   * @throws ResolutionError (`resolution`) `name` is not pinned.
   */
  pinnedVersion(name: string): string {
    return this.entry(name).version;
  }

  /**
   * Refuse anything but exactly the pinned archive (called before it is downloaded).
   *
   * @throws ResolutionError (`resolution`) Not pinned, or another version.
   * @throws TrustError (`trust.hash`) The pinned version with another hash, from any source.
   */
  check(resolved: LockedChoice): void {
    const pin = this.entry(resolved.name);
    if (pin.version !== resolved.version) {
      throw new ResolutionError(
        "resolution",
        `${resolved.name}: the lock pins ${pin.version} but ${resolved.version} was resolved`,
        { hint: "run 'modelmesh-connectors lock --upgrade NAME' to move the pin" },
      );
    }
    if (pin.sha256 !== resolved.sha256) {
      throw new TrustError(
        "trust.hash",
        `${resolved.name} ${resolved.version}: the lock pins sha256 ${pin.sha256} but ${redactUrl(resolved.source)} offers ${resolved.sha256}`,
      );
    }
  }

  /**
   * Every resolved package must be pinned (each one is also checked by {@link check}).
   *
   * @throws ResolutionError (`resolution`) One is not pinned.
   */
  checkComplete(resolved: readonly LockedChoice[]): void {
    for (const item of resolved) {
      this.entry(item.name);
    }
  }

  /** The entry naming the same local path (relative paths: from the lock's directory). */
  localEntry(pin: LockEntry): LockEntry | undefined {
    const base = this.path === null ? process.cwd() : dirname(this.path);
    return this.entries.find(
      (e) => e.kind === pin.kind && e.path !== null && resolve(base, e.path) === pin.path,
    );
  }

  /**
   * Refuse a local package the lock does not pin exactly.
   *
   * A local zip must be pinned under its path with the same sha256 and length. A directory
   * must be named under its path (its content is not pinned: the loader allows it only with
   * `allow_unpinned_directories`); a changed tree is reported through `warn`.
   *
   * @param pin What the package is now ({@link pinLocal}: an absolute path).
   * @throws ResolutionError (`resolution`) The path is not in the lock (as this kind).
   * @throws TrustError (`trust.hash`) A local zip's bytes differ from the pinned ones.
   */
  checkLocal(pin: LockEntry, warn: (message: string) => void): void {
    const where = this.path ?? "the lock file";
    const entry = this.localEntry(pin);
    if (entry === undefined) {
      throw new ResolutionError(
        "resolution",
        `${pin.kind} ${pin.path} (${pin.name} ${pin.version}) is not pinned in ${where} (locked mode pins all or nothing, local entries included)`,
        { hint: HINT_ADD },
      );
    }
    if (pin.kind === "directory") {
      if (entry.sha256 !== pin.sha256) {
        warn(
          `${pin.path}: the unpinned directory changed since it was locked (tree sha256 ${pin.sha256}, locked ${entry.sha256})`,
        );
      }
      return;
    }
    if (entry.sha256 !== pin.sha256 || entry.length !== pin.length) {
      throw new TrustError(
        "trust.hash",
        `${pin.path}: the lock pins sha256 ${entry.sha256} (${entry.length} bytes) but the file has sha256 ${pin.sha256} (${pin.length} bytes)`,
        { hint: "run 'modelmesh-connectors lock --upgrade' if the change is intended" },
      );
    }
  }
}

/** The pin of a local package as it is now: its absolute path (symlinks kept), hash and kind. */
export function pinLocal(path: string, pkg: Package): LockEntry {
  const key = resolve(path);
  return {
    name: pkg.manifest.name,
    version: pkg.manifest.version,
    sha256: pkg.sha256,
    length: pkg.length,
    spec: key,
    source: "local",
    signedBy: [],
    kind: pkg.isArchive ? "local-zip" : "directory",
    path: key,
  };
}

/**
 * Refuse a directory in locked mode unless the configuration opts in: a directory has no
 * fixed bytes to pin, so `locked` would silently load whatever the tree holds today.
 *
 * @throws TrustError (`trust.policy`, Python's `PolicyError`).
 */
export function refuseUnpinnedDirectory(path: string): never {
  throw new TrustError(
    "trust.policy",
    `${path}: locked mode loads only pinned packages, and a directory is not pinned`,
    {
      hint: "pack it (modelmesh-connectors pack) and lock the zip, or opt in with 'allow_unpinned_directories: true' (the lock must still name the directory)",
    },
  );
}
