/**
 * The `connectors:` configuration, read with the same keys as the Python client
 * (`config.py`). Unknown keys are errors: a typo must never silently weaken a policy.
 * Keys the TypeScript client does not implement yet are refused by name, not ignored.
 */

import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

import { ConfigError, describe } from "../errors.js";
import type { FetchConfig } from "./fetch.js";
import { defaultCacheDir, type LoaderOptions } from "./loader.js";
import { redactText } from "./redact.js";

const KNOWN = new Set([
  "index",
  "trust_root",
  "cache_dir",
  "timeouts",
  "retries",
  "allow_http",
  "metadata_max_age",
  "prereleases",
  "packages",
  "locked",
  "lock_file",
  "allow_unpinned_directories",
  "offline",
  "max_expired_age",
  "require_signatures",
  "ca_bundle",
  "bundle",
]);
// Python client keys this client does not implement: refused by name, never ignored.
const NOT_YET = new Set(["auth", "netrc", "concurrency", "max_metadata_bytes"]);

/** A parsed configuration: loader options plus the packages to load. */
export interface ConnectorsConfig {
  readonly loader: LoaderOptions;
  readonly packages: readonly string[];
}

function invalid(message: string): ConfigError {
  // A last line: a YAML error may quote the line that holds an index URL with its user info.
  return new ConfigError("config", `connectors configuration: ${redactText(message)}`);
}

/** Milliseconds from seconds `10`, or `10s`, `5m`, `1h`, `7d`, `500ms`. */
export function parseDurationMs(value: unknown, field: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) {
    return value * 1000;
  }
  const m = typeof value === "string" ? /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim()) : null;
  if (m === null) {
    throw invalid(`${field}: expected a duration like 10s or 5m, got ${JSON.stringify(value)}`);
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") {
    throw invalid(`${field}: expected true or false, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `path` with symlinks and `..` resolved, or null when it cannot be resolved. */
function realpathOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** Device and inode of `path` (exact: bigint), or null when it cannot be stat'ed. */
function fileId(path: string): string | null {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/**
 * Whether `path` is `directory` or below it, however either is spelled (as Python's
 * `_lies_inside`). Both sides are resolved (symlinks, `..`) before their spellings are
 * compared (case-folded on Windows); then the file identity (device, inode) of every
 * ancestor of `path` is compared with the directory's, which catches other spellings of the
 * same directory (case on a case-insensitive file system, a bind mount); last, a hard-linked
 * `path` is compared with the root copies a mirror carries (`keys/root.json`,
 * `root/*.json`). A path that cannot be resolved counts as outside: it cannot be read
 * either, and reading it fails closed.
 */
export function liesInside(path: string, directory: string): boolean {
  const real = realpathOrNull(path);
  const realDir = realpathOrNull(directory);
  if (real === null || realDir === null) {
    return false;
  }
  const fold = (p: string): string => (process.platform === "win32" ? p.toLowerCase() : p);
  const spelled = fold(real);
  const within = fold(realDir);
  if (spelled === within || spelled.startsWith(within.endsWith(sep) ? within : within + sep)) {
    return true;
  }
  const dirId = fileId(realDir);
  if (dirId === null) {
    return false; // no such directory: nothing can lie inside it
  }
  for (let p = real; ; p = dirname(p)) {
    if (fileId(p) === dirId) {
      return true; // the same directory under another name
    }
    if (dirname(p) === p) {
      break;
    }
  }
  let links: bigint;
  try {
    links = statSync(real, { bigint: true }).nlink;
  } catch {
    return false;
  }
  if (links > 1n) {
    // A hard link to the copy a mirror carries.
    const own = fileId(real);
    let chain: string[] = [];
    try {
      chain = readdirSync(join(realDir, "root")).filter((n) => n.endsWith(".json"));
    } catch {
      // no root chain in this directory
    }
    const copies = [join(realDir, "keys", "root.json"), ...chain.map((n) => join(realDir, "root", n))];
    return copies.some((c) => fileId(c) === own);
  }
  return false;
}

/**
 * Refuse a trust root inside a medium it is meant to check (the bundle, the cache, a
 * `file://` index mirror): whoever can replace that medium could replace the trust with it.
 * Compared by resolved path and by file identity ({@link liesInside}).
 *
 * @throws ConfigError (`config`).
 */
function checkTrustRootPlacement(trustRoot: string, media: readonly (readonly [string, string])[]): void {
  for (const [what, medium] of media) {
    if (liesInside(trustRoot, medium)) {
      throw new ConfigError(
        "config",
        `connectors configuration: trust_root: ${trustRoot} lies inside ${what} ${medium}; a trust root must never come from the medium it is meant to check (whoever can replace that medium could replace the trust with it)`,
        {
          hint: "provision the trust root out of band: install keys/root.json with the deployment (configuration management, an OS package, a separate channel) at a path outside the bundle, the cache and every mirror",
        },
      );
    }
  }
}

/** The local path of a `file://` URL, or the URL itself when it has none (then it lies nowhere). */
function fileUrlPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}

/**
 * Read a configuration: a YAML file path, a whole ModelMesh config object holding a
 * `connectors` mapping, or the `connectors` mapping itself.
 *
 * @throws ConfigError (`config`).
 */
export function readConfig(config: string | Record<string, unknown>): ConnectorsConfig {
  let raw: unknown = config;
  let base = process.cwd();
  if (typeof config === "string") {
    try {
      raw = parseYaml(readFileSync(config, "utf8"), { version: "1.1", uniqueKeys: true, maxAliasCount: 0 });
    } catch (err) {
      throw invalid(`cannot read ${config}: ${describe(err)}`);
    }
    base = dirname(resolve(config));
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalid("expected a mapping");
  }
  let section = raw as Record<string, unknown>;
  if ("connectors" in section && typeof section["connectors"] === "object") {
    section = section["connectors"] as Record<string, unknown>;
  }
  for (const key of Object.keys(section)) {
    if (NOT_YET.has(key)) {
      throw invalid(`'${key}' is not supported by the TypeScript client yet`);
    }
    if (!KNOWN.has(key)) {
      throw invalid(`unknown key '${key}'; allowed: ${[...KNOWN].sort().join(", ")}`);
    }
  }
  const rawIndex = section["index"] ?? [];
  const index = typeof rawIndex === "string" ? [rawIndex] : rawIndex;
  if (!Array.isArray(index) || !index.every((u) => typeof u === "string")) {
    throw invalid("index: expected a URL or a list of URLs");
  }
  const rootPath = section["trust_root"];
  if (typeof rootPath !== "string") {
    throw invalid("trust_root: expected the path of the shipped root.json");
  }
  let trustRoot: Uint8Array;
  const rootFile = isAbsolute(rootPath) ? rootPath : resolve(base, rootPath);
  try {
    trustRoot = readFileSync(rootFile);
  } catch (err) {
    throw invalid(`trust_root: cannot read ${rootFile}: ${describe(err)}`);
  }
  const cacheRaw = section["cache_dir"];
  if (cacheRaw !== undefined && typeof cacheRaw !== "string") {
    throw invalid("cache_dir: expected a path");
  }
  const cacheDir = cacheRaw === undefined ? defaultCacheDir() : resolve(base, cacheRaw.replace(/^~(?=\/)/, process.env["HOME"] ?? "~"));
  const fetch: { -readonly [K in keyof FetchConfig]?: FetchConfig[K] } = {};
  const timeouts = section["timeouts"];
  if (timeouts !== undefined) {
    if (typeof timeouts !== "object" || timeouts === null) {
      throw invalid("timeouts: expected a mapping {connect, read, total}");
    }
    for (const [k, v] of Object.entries(timeouts)) {
      if (k === "connect") {
        fetch.connectTimeoutMs = parseDurationMs(v, "timeouts.connect");
      } else if (k === "read") {
        fetch.readTimeoutMs = parseDurationMs(v, "timeouts.read");
      } else if (k === "total") {
        fetch.totalTimeoutMs = parseDurationMs(v, "timeouts.total");
      } else {
        throw invalid(`timeouts: unknown key '${k}'`);
      }
    }
  }
  if (section["retries"] !== undefined) {
    const r = section["retries"];
    if (typeof r !== "number" || !Number.isInteger(r) || r < 0) {
      throw invalid("retries: expected an integer >= 0");
    }
    fetch.retries = r;
  }
  if (section["allow_http"] !== undefined) {
    fetch.allowHttp = bool(section["allow_http"], "allow_http");
  }
  const caBundle = section["ca_bundle"];
  if (caBundle !== undefined) {
    if (typeof caBundle !== "string") {
      throw invalid("ca_bundle: expected the path of a PEM file of CA certificates");
    }
    // Read on the first https request, as Python does: a run from the cache never needs it.
    fetch.caBundle = resolve(base, caBundle);
  }
  const bundleRaw = section["bundle"];
  if (bundleRaw !== undefined && typeof bundleRaw !== "string") {
    throw invalid("bundle: expected the path of a mirror directory");
  }
  const bundle = bundleRaw === undefined ? undefined : resolve(base, bundleRaw);
  checkTrustRootPlacement(rootFile, [
    ...(bundle === undefined ? [] : [["the bundle directory (connectors.bundle)", bundle] as const]),
    ["the cache directory", cacheDir] as const,
    ...index.flatMap((url: string, i: number) =>
      url.slice(0, 7).toLowerCase() === "file://"
        ? [[`the index mirror directory (connectors.index[${i}])`, fileUrlPath(url)] as const]
        : [],
    ),
  ]);
  const packages = section["packages"] ?? [];
  if (!Array.isArray(packages) || !packages.every((p) => typeof p === "string")) {
    throw invalid("packages: expected a list of strings");
  }
  const resolvedPackages = packages.map((p: string) =>
    (p.startsWith("./") || p.startsWith("../")) && !isAbsolute(p) ? resolve(base, p) : p,
  );
  return {
    loader: {
      index,
      trustRoot,
      cacheDir,
      fetch,
      prereleases: section["prereleases"] === undefined ? false : bool(section["prereleases"], "prereleases"),
      offline: section["offline"] === undefined ? false : bool(section["offline"], "offline"),
      // Python accepts it online too and applies it only offline (updater.py).
      maxExpiredAgeMs:
        section["max_expired_age"] === undefined ? 0 : parseDurationMs(section["max_expired_age"], "max_expired_age"),
      ...(bundle === undefined ? {} : { bundle }),
      requireSignatures:
        section["require_signatures"] === undefined ? false : bool(section["require_signatures"], "require_signatures"),
      ...(section["metadata_max_age"] === undefined
        ? {}
        : { metadataMaxAgeMs: parseDurationMs(section["metadata_max_age"], "metadata_max_age") }),
      ...lockOptions(section, base),
    },
    packages: resolvedPackages,
  };
}

/** `locked`, `lock_file` (default `connectors.lock` next to the config) and `allow_unpinned_directories`. */
function lockOptions(section: Record<string, unknown>, base: string): Partial<LoaderOptions> {
  const locked = section["locked"] === undefined ? false : bool(section["locked"], "locked");
  const allow = section["allow_unpinned_directories"];
  const raw = section["lock_file"];
  if (raw !== undefined && (typeof raw !== "string" || raw === "")) {
    throw invalid(`lock_file: expected a path string, got ${JSON.stringify(raw)}`);
  }
  const lockFile = raw === undefined ? (locked ? "connectors.lock" : undefined) : raw;
  return {
    locked,
    ...(lockFile === undefined ? {} : { lockFile: resolve(base, lockFile.replace(/^~(?=\/)/, process.env["HOME"] ?? "~")) }),
    allowUnpinnedDirectories: allow === undefined ? false : bool(allow, "allow_unpinned_directories"),
  };
}
