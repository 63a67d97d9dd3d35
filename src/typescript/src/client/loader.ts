/**
 * The orchestrator (as `loader.py`): resolve a package entry against the index or a signed
 * URL, download it into the cache with the signed length and hash, and return the checked
 * package. It never imports or registers anything: the registry does that.
 */

import { readFileSync, statSync } from "node:fs";
import { basename, join, resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";

import { ConfigError, DownloadError, describe, PackageError, ResolutionError, TrustError } from "../errors.js";
import { openLocalPackage, type Package, packageFromBytes } from "../package/package.js";
import { sha256Hex } from "../trust/keys.js";
import type { BinRelease, Release } from "../trust/metadata.js";
import { checkArchive, TrustedState, trustRootId } from "../trust/state.js";
import { bindRelease, urlFileName, urlIsUnder } from "./binding.js";
import { ArchiveCache } from "./cache.js";
import { DirectoryFetcher, type FetchConfig, type Fetcher, HttpFetcher, type Sink } from "./fetch.js";
import { IndexView } from "./index-view.js";
import { LockFile, pinLocal, refuseUnpinnedDirectory } from "./lockfile.js";
import { parsePackageSpec, type RequirementSpec, type UrlSpec } from "./requirements.js";
import { choose } from "./resolve.js";
import { redactText, redactUrl } from "./redact.js";
import { normalizeIndexUrl, StateStore } from "./statestore.js";

export const MAX_SIGNATURE_BYTES = 64 * 1024; // bytes of a detached .zip.sig
export const MAX_PINNED_ARCHIVE_BYTES = 256 * 1024 * 1024; // bytes of an unsigned, pinned archive

/** Options of a {@link Loader}: one per concern, units in the names. */
export interface LoaderOptions {
  /** Index base URLs (mirrors), tried in order. */
  readonly index?: readonly string[];
  /** The shipped trust root bytes (`keys/root.json`). */
  readonly trustRoot: Uint8Array;
  /** Cache root: `archives/` and `metadata/` below it. */
  readonly cacheDir: string;
  /** Network bounds. */
  readonly fetch?: Partial<FetchConfig>;
  /** Replace the network seam (tests). */
  readonly fetcher?: Fetcher;
  /** Choose pre-releases. */
  readonly prereleases?: boolean;
  /** Milliseconds a cached index state is reused without a request (default 5 min). */
  readonly metadataMaxAgeMs?: number;
  /** The clock (default: the system clock). */
  readonly now?: () => Date;
  /** Receives warnings (yanked release chosen, mirror skipped …). */
  readonly warn?: (message: string) => void;
  /** Install exactly what `lockFile` pins, refuse anything else (lockfile.ts). */
  readonly locked?: boolean;
  /** The lock file (`connectors.lock`, written by the Python CLI); required with `locked`. */
  readonly lockFile?: string;
  /** With `locked`, load a local directory the lock names (its content is not pinned). */
  readonly allowUnpinnedDirectories?: boolean;
  /**
   * Never touch the network: the index state, its nodes and the archives come from the
   * cache (each re-verified on use). An archive URL entry is refused (`trust.policy`).
   */
  readonly offline?: boolean;
  /** Milliseconds expired index metadata is still accepted, with a warning; offline only. */
  readonly maxExpiredAgeMs?: number;
  /** Local paths must verify too: a `.zip` with its `.zip.sig`; a directory is refused. */
  readonly requireSignatures?: boolean;
  /**
   * A mirror directory (made by `modelmesh-connectors mirror`) read as the last index mirror
   * through `file://`, verified exactly as a network mirror; offline, the only one.
   */
  readonly bundle?: string;
}

/** Where a registered connector came from. */
export interface Origin {
  /** `local` (a directory or zip on disk), `package` (verified) or `runtime` (register()). */
  readonly kind: "local" | "package" | "runtime";
  /** Human description (path, `name@version`, URL). */
  readonly detail: string;
  /** Key IDs that signed the package's release, when verified. */
  readonly signedBy: readonly string[];
}

/** Exactly which archive answers a package entry. */
export interface ResolvedArchive {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  /** Signed length, or null for an unsigned archive pinned by hash only. */
  readonly length: number | null;
  readonly urls: readonly string[];
  readonly release: Release | null;
  readonly signers: readonly string[];
}

/**
 * The signed release must describe the manifest inside the archive exactly: stops a key
 * scoped to one namespace from signing a release whose archive declares another's IDs.
 *
 * @throws TrustError (`trust.policy`).
 */
export function checkManifestMatches(release: Release, pkg: Package): void {
  const m = pkg.manifest;
  const signed = release.connectors.map((c) => `${c.id}:${c.type}`).sort();
  const declared = m.connectors.map((c) => `${c.id}:${c.type}`).sort();
  if (
    release.name !== m.name ||
    release.version !== m.version ||
    JSON.stringify(signed) !== JSON.stringify(declared) ||
    release.runtimes.join() !== m.runtimes.join()
  ) {
    throw new TrustError(
      "trust.policy",
      `${release.name} ${release.version}: the signed release declares ${JSON.stringify(signed)} but the archive's manifest is ${m.name} ${m.version} declaring ${JSON.stringify(declared)}`,
    );
  }
}

/**
 * A release whose connectors have no Node entry point cannot be loaded here: refused before
 * downloading (the Python client refuses a Node-only release the same way).
 *
 * @throws PackageError (`package.no-entry-point`).
 */
export function checkNodeRuntime(release: Release | null): void {
  if (release !== null && !release.runtimes.includes("node")) {
    throw new PackageError(
      "package.no-entry-point",
      `${release.name} ${release.version} has no Node entry point: the signed release is for ${release.runtimes.join(", ")} only`,
      { hint: "load it with the Python client, or pick a release with a 'node:' entry" },
    );
  }
}

/** The fetcher of offline mode: every request is refused, as Python's `_http_fetcher`. */
const OFFLINE_FETCHER: Fetcher = {
  fetchBytes: () => Promise.reject(offlineRefusal()),
  fetchTo: () => Promise.reject(offlineRefusal()),
};

function offlineRefusal(): TrustError {
  return new TrustError("trust.policy", "offline mode: no network request may be made", {
    hint: "offline, packages come from the cache or a bundle: load them by requirement; an archive URL entry needs the network",
  });
}

/** Resolves, downloads and verifies remote packages. */
export class Loader {
  readonly cache: ArchiveCache;
  private readonly fetcher: Fetcher;
  private readonly mirrors: string[];
  private readonly now: () => Date;
  private readonly warn: (message: string) => void;
  private viewCache: IndexView | null = null;
  private lock: LockFile | null = null;

  constructor(private readonly opts: LoaderOptions) {
    this.mirrors = (opts.index ?? []).map(normalizeIndexUrl);
    if (opts.bundle !== undefined) {
      this.mirrors.push(normalizeIndexUrl(pathToFileURL(resolvePath(opts.bundle)).href));
    }
    // Offline, the one network seam refuses every request: no code path can open a socket.
    // file:// URLs (the bundle) are read from disk, online and offline.
    const network = opts.offline ? OFFLINE_FETCHER : (opts.fetcher ?? new HttpFetcher(opts.fetch ?? {}));
    const files = new DirectoryFetcher();
    const pick = (url: string): Fetcher => (url.startsWith("file:") ? files : network);
    this.fetcher = {
      fetchBytes: (url, maxLength) => pick(url).fetchBytes(url, maxLength),
      fetchTo: (url, sink, maxLength) => pick(url).fetchTo(url, sink, maxLength),
    };
    this.cache = new ArchiveCache(opts.cacheDir);
    this.now = opts.now ?? (() => new Date());
    const warn = opts.warn ?? ((m: string) => process.emitWarning(m, "ModelMeshConnectors"));
    // A last line: no warning shows a URL's user info, whichever call site built it.
    this.warn = (m) => warn(redactText(m));
  }

  /** The trusted view of the configured index (refreshed once per loader). */
  view(): IndexView {
    if (this.mirrors.length === 0) {
      throw new ConfigError("config", "no index is configured", {
        hint: "set 'index' to the signed index URL, or 'bundle' to a mirror directory",
      });
    }
    if (this.viewCache === null) {
      // One record per trust root, whatever the mirror list: keyed by the first mirror's
      // URL, a reordered list started with no rollback reference (FORMAT.md §4).
      const store = new StateStore(this.opts.cacheDir);
      this.viewCache = new IndexView({
        anchor: this.opts.trustRoot,
        store: store.trustRoot(trustRootId(this.opts.trustRoot)),
        legacy: () => store.origins(),
        mirrors: this.mirrors,
        fetcher: this.fetcher,
        now: this.now(),
        warn: this.warn,
        offline: this.opts.offline ?? false,
        maxExpiredAgeMs: this.opts.maxExpiredAgeMs ?? 0,
        ...(this.opts.metadataMaxAgeMs === undefined ? {} : { metadataMaxAgeMs: this.opts.metadataMaxAgeMs }),
      });
    }
    return this.viewCache;
  }

  private async rootState(): Promise<TrustedState> {
    if (this.mirrors.length > 0) {
      return this.view().trusted();
    }
    return new TrustedState(this.opts.trustRoot, this.now());
  }

  /**
   * Decide exactly which archive answers an entry, verifying its signature.
   *
   * @throws ResolutionError, TrustError, DownloadError, ConfigError.
   */
  async resolve(spec: RequirementSpec | UrlSpec): Promise<ResolvedArchive> {
    const lock = this.configuredLock();
    const resolved =
      spec.kind === "requirement" ? await this.resolveRequirement(spec, lock) : await this.resolveUrl(spec);
    // Before any archive is downloaded: a pin mismatch costs no archive request.
    lock?.check({ ...resolved, source: resolved.urls[0] ?? "?" });
    return resolved;
  }

  private async resolveRequirement(spec: RequirementSpec, lock: LockFile | null): Promise<ResolvedArchive> {
    const view = this.view();
    const entries = await view.releases(spec.name);
    // Locked: only the pinned version is a candidate (when the index still lists it).
    const pinned = lock?.pinnedVersion(spec.name);
    const candidates = entries.filter((e) => e.version === pinned);
    const choice = choose(spec, candidates.length > 0 ? candidates : entries, this.opts.prereleases ?? false);
    if (choice.warning !== null) {
      this.warn(choice.warning);
    }
    const entry = entries.find((e) => e.version === choice.candidate.version);
    if (entry === undefined) {
      throw new Error("unreachable: the choice comes from the entries");
    }
    const { release, signers } = (await view.trusted()).verifyBinRelease(spec.name, entry);
    return {
      name: release.name,
      version: release.version,
      sha256: release.sha256,
      length: release.length,
      urls: view.archiveUrls(release.file),
      release,
      signers: [...signers].sort(),
    };
  }

  private async resolveUrl(spec: UrlSpec): Promise<ResolvedArchive> {
    // Refuse an ambiguous path before any request: the name must be unambiguous.
    const fileName = urlFileName(spec.url);
    let sig: Uint8Array;
    try {
      sig = await this.fetcher.fetchBytes(`${spec.url}.sig`, MAX_SIGNATURE_BYTES);
    } catch (err) {
      if (!(err instanceof DownloadError && err.code === "download.not-found")) {
        throw err;
      }
      if (spec.sha256 === null || this.opts.requireSignatures) {
        throw new TrustError("trust", `${redactUrl(spec.url)}: no detached signature at ${redactUrl(`${spec.url}.sig`)}`, {
          hint: "pin the URL with '#sha256=<hex>' or load the package through the signed index",
        });
      }
      this.warn(`${redactUrl(spec.url)} has no signature; trusting the configured sha256 pin`);
      return {
        name: fileName,
        version: "?",
        sha256: spec.sha256,
        length: null,
        urls: [spec.url],
        release: null,
        signers: [],
      };
    }
    const { release, signers } = (await this.rootState()).verifyRelease(sig);
    // Any release the keys ever signed verifies; only this binds it to the entry.
    bindRelease(release, fileName, redactUrl(spec.url));
    if (spec.sha256 !== null && spec.sha256 !== release.sha256) {
      throw new TrustError(
        "trust.hash",
        `${redactUrl(spec.url)}: the configured pin sha256=${spec.sha256} does not match the signed sha256 ${release.sha256}`,
      );
    }
    if (this.mirrors.length > 0) {
      await this.checkUrlAgainstIndex(spec, release);
    }
    return {
      name: release.name,
      version: release.version,
      sha256: release.sha256,
      length: release.length,
      urls: [spec.url],
      release,
      signers: [...signers].sort(),
    };
  }

  /**
   * With an index configured, a signed URL entry must be a release the index lists.
   *
   * The index is authoritative for every name it lists, wherever the URL points: the release
   * must be listed under that name and version with the same sha256 and length (a removed or
   * replaced release cannot come back through another host), and a yanked one loads only when
   * the entry pins its hash. A URL into a configured index must name a package the index lists
   * at all; a URL elsewhere may carry a package the index does not know (a publisher's own
   * host), bound by name, version and signature alone.
   *
   * @throws ResolutionError (`resolution`) Not listed, or yanked and not pinned by hash.
   * @throws TrustError `trust.hash` (listed with another sha256 or length); others as the
   *   index view reports them. DownloadError The index state or its nodes fail.
   */
  private async checkUrlAgainstIndex(spec: UrlSpec, release: Release): Promise<void> {
    const view = this.view();
    const intoIndex = this.mirrors.some((base) => urlIsUnder(spec.url, base));
    let entries: readonly BinRelease[];
    try {
      entries = await view.releases(release.name);
    } catch (err) {
      if (!(err instanceof ResolutionError)) {
        throw err;
      }
      if (intoIndex) {
        throw new ResolutionError(
          "resolution",
          `${redactUrl(spec.url)}: ${release.name} ${release.version} is signed, but the current index this URL points into does not list ${release.name} at all`,
        );
      }
      return; // not in the index: bound by name, version and signature only
    }
    const entry = entries.find((e) => e.version === release.version);
    if (entry === undefined) {
      const listed = entries.map((e) => e.version).join(", ") || "none";
      throw new ResolutionError(
        "resolution",
        `${redactUrl(spec.url)}: ${release.name} ${release.version} is signed, but the current index does not list that version (listed: ${listed}); a release removed from the index is not loaded from elsewhere`,
      );
    }
    const listed = (await view.trusted()).verifyBinRelease(release.name, entry).release;
    if (listed.sha256 !== release.sha256 || listed.length !== release.length) {
      throw new TrustError(
        "trust.hash",
        `${redactUrl(spec.url)}: ${release.name} ${release.version}: the index lists sha256 ${listed.sha256} (${listed.length} bytes), the URL's signature says ${release.sha256} (${release.length} bytes)`,
      );
    }
    if (entry.yanked) {
      const reason = entry.yankedReason ? `: ${entry.yankedReason}` : "";
      if (spec.sha256 === null) {
        throw new ResolutionError("resolution", `${redactUrl(spec.url)}: ${release.name} ${release.version} is yanked${reason}`, {
          hint: `pin it with '#sha256=${release.sha256}' to load it anyway`,
        });
      }
      this.warn(`${release.name} ${release.version} is yanked${reason} (used because pinned by hash)`);
    }
  }

  /**
   * The archive's verified bytes, from the cache or the first mirror that serves them.
   *
   * @throws TrustError `trust.hash`/`trust.length` (every mirror served wrong bytes),
   *   DownloadError, CacheError.
   */
  async fetchArchive(resolved: ResolvedArchive): Promise<Uint8Array> {
    const length = resolved.length;
    if (length === null) {
      return this.fetchPinned(resolved);
    }
    const cached = this.cache.readVerified(resolved.sha256, length);
    if (cached !== null) {
      return cached;
    }
    const label = `${resolved.name} ${resolved.version}`;
    if (resolved.urls.length === 0) {
      throw new DownloadError(
        "download",
        `${label} (sha256 ${resolved.sha256.slice(0, 12)}…) is not cached and offline mode allows no download`,
        { hint: "install it while online, or add a bundle that holds it" },
      );
    }
    const errors: string[] = [];
    let firstTrust: TrustError | null = null;
    for (const url of resolved.urls) {
      try {
        return await this.cache.fetch(resolved.sha256, length, label, async (sink: Sink) => {
          await this.fetcher.fetchTo(url, sink, length);
        });
      } catch (err) {
        if (!(err instanceof TrustError || err instanceof DownloadError)) {
          throw err;
        }
        this.warn(`archive ${redactUrl(url)} failed: ${err.message}`);
        errors.push(`${redactUrl(url)}: ${err.message}`);
        if (err instanceof TrustError) {
          firstTrust ??= err;
        }
      }
    }
    if (firstTrust !== null) {
      throw new TrustError(firstTrust.code, `${label}: ${firstTrust.message}`, { cause: firstTrust });
    }
    throw new DownloadError("download", `${label}: no mirror served it: ${errors.join("; ")}`);
  }

  private async fetchPinned(resolved: ResolvedArchive): Promise<Uint8Array> {
    const url = resolved.urls[0] as string;
    const data = await this.fetcher.fetchBytes(url, MAX_PINNED_ARCHIVE_BYTES);
    const got = sha256Hex(data);
    if (got !== resolved.sha256) {
      throw new TrustError("trust.hash", `${redactUrl(url)}: sha256 mismatch: the configured pin is ${resolved.sha256}, got ${got}`);
    }
    return this.cache.fetch(resolved.sha256, data.length, redactUrl(url), async (sink) => sink.write(data));
  }

  /** Whether local paths must verify too (`require_signatures`). */
  get requireSignatures(): boolean {
    return this.opts.requireSignatures ?? false;
  }

  /**
   * Read a local `.zip` under `require_signatures`: its `.zip.sig` must verify with the
   * trusted root and name this file, and the bytes must match the signed hash and length
   * before the zip is parsed (as Python's `_open_local`).
   *
   * @throws TrustError `trust.policy` (a directory, an unreadable or oversized signature, a
   *   signature for another file), `trust.signature`, `trust.hash`/`trust.length`;
   *   PackageError; DownloadError (refreshing the index state).
   */
  async openSignedLocal(path: string): Promise<{ pkg: Package; origin: Origin }> {
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      // A missing path is reported by the .sig read below.
    }
    if (isDir || !path.toLowerCase().endsWith(".zip")) {
      throw new TrustError("trust.policy", `${path}: require_signatures is on and a directory cannot be signed`, {
        hint: "pack it and publish it, or turn require_signatures off for development",
      });
    }
    const sigPath = `${path}.sig`;
    let sig: Uint8Array;
    try {
      sig = readFileSync(sigPath);
    } catch (err) {
      throw new TrustError("trust.policy", `${path}: require_signatures is on but ${sigPath} cannot be read: ${describe(err)}`, {
        cause: err,
      });
    }
    if (sig.length > MAX_SIGNATURE_BYTES) {
      throw new TrustError("trust.policy", `${sigPath}: over the ${MAX_SIGNATURE_BYTES}-byte signature cap`);
    }
    const { release, signers } = (await this.rootState()).verifyRelease(sig);
    // The same binding as for URLs: a signed zip renamed to another release's name (an
    // older one, another package) is refused.
    bindRelease(release, basename(path), path);
    checkNodeRuntime(release);
    let data: Uint8Array;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new PackageError("package", `cannot read ${path}: ${describe(err)}`, { cause: err });
    }
    // Verify, then parse: the zip reader only sees bytes that match the signature.
    checkArchive(release, sha256Hex(data), data.length);
    const pkg = await packageFromBytes(data, path);
    checkManifestMatches(release, pkg);
    return {
      pkg,
      origin: { kind: "package", detail: `${release.name}@${release.version} from ${path}`, signedBy: [...signers].sort() },
    };
  }

  /**
   * Resolve, download and verify one `loadPackage` argument that is not a local path.
   *
   * @throws Any ConnectorError; nothing is imported.
   */
  async fetchPackage(text: string): Promise<{ pkg: Package; origin: Origin }> {
    const spec = parsePackageSpec(text);
    if (spec.kind === "local") {
      throw new PackageError("package", `${text} is a local path, not a remote package`);
    }
    const resolved = await this.resolve(spec);
    checkNodeRuntime(resolved.release);
    const data = await this.fetchArchive(resolved);
    const pkg = await packageFromBytes(data, `${resolved.name}-${resolved.version}.zip`);
    if (resolved.release !== null) {
      checkManifestMatches(resolved.release, pkg);
      checkArchive(resolved.release, pkg.sha256, pkg.length);
    }
    const detail =
      resolved.release !== null
        ? `${resolved.release.name}@${resolved.release.version} from ${spec.kind === "url" ? redactUrl(spec.url) : redactUrl(this.mirrors[0] ?? "")}`
        : `${spec.kind === "url" ? redactUrl(spec.url) : text} (sha256 pin)`;
    return { pkg, origin: { kind: "package", detail, signedBy: resolved.signers } };
  }

  /**
   * With `locked`, the lock file, read once before the first entry resolves; else null.
   *
   * @throws ConfigError No lock file configured, or it cannot be read or parsed.
   */
  private configuredLock(): LockFile | null {
    if (this.opts.locked === true && this.lock === null) {
      if (this.opts.lockFile === undefined) {
        throw new ConfigError("config", "connectors.lock_file: required with locked: true");
      }
      this.lock = LockFile.read(this.opts.lockFile);
    }
    return this.lock;
  }

  /**
   * Open a local directory or zip; with `locked`, only as the lock pins it; with
   * `requireSignatures`, only a signed zip ({@link openSignedLocal}).
   *
   * @throws TrustError `trust.policy` (a directory without `allowUnpinnedDirectories`),
   *   `trust.hash` (a zip with other bytes than pinned); ResolutionError (not in the lock);
   *   ConfigError (the lock); PackageError.
   */
  async openLocal(path: string): Promise<{ pkg: Package; origin: Origin }> {
    const lock = this.configuredLock();
    if (lock !== null && this.opts.allowUnpinnedDirectories !== true && isDirectory(path)) {
      refuseUnpinnedDirectory(path);
    }
    if (this.requireSignatures) {
      const signed = await this.openSignedLocal(path); // refuses directories and unsigned zips
      lock?.checkLocal(pinLocal(path, signed.pkg), this.warn);
      return signed;
    }
    const pkg = await openLocalPackage(path);
    lock?.checkLocal(pinLocal(path, pkg), this.warn);
    return { pkg, origin: { kind: "local", detail: resolvePath(path), signedBy: [] } };
  }

  /**
   * With `locked`, check every entry against the lock before any archive is downloaded or
   * any package imported (the registry loads entries one by one; this makes a whole
   * configuration all-or-nothing). Resolves metadata and reads local entries only.
   *
   * @throws Any error {@link resolve} or {@link openLocal} reports.
   */
  async checkLocked(texts: readonly string[]): Promise<void> {
    const lock = this.configuredLock();
    if (lock === null) {
      return;
    }
    const resolved: ResolvedArchive[] = [];
    for (const text of texts) {
      const spec = parsePackageSpec(text);
      if (spec.kind === "local") {
        await this.openLocal(spec.path);
      } else {
        resolved.push(await this.resolve(spec));
      }
    }
    lock.checkComplete(resolved.map((r) => ({ ...r, source: r.urls[0] ?? "?" })));
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // the package reader reports a missing path
  }
}

/** The default cache root: `$MODELMESH_CONNECTORS_CACHE`, else `~/.cache/modelmesh-connectors`. */
export function defaultCacheDir(): string {
  const env = process.env["MODELMESH_CONNECTORS_CACHE"];
  if (env) {
    return env;
  }
  const base = process.env["XDG_CACHE_HOME"] ?? join(process.env["HOME"] ?? ".", ".cache");
  return join(base, "modelmesh-connectors");
}
