/**
 * One run's trusted view of a signed index: refresh once, then look packages up
 * (as `index_view.py`).
 *
 * The I/O shell around the sans-I/O {@link TrustedState}: it feeds the trust core bytes from
 * the local state store and from the mirrors in FORMAT.md §4 order, and persists only what
 * the core accepted. Mirrors are tried in order; one that fails or serves data that fails
 * verification is skipped (it can delay a load, never poison it), and all mirrors share one
 * rollback reference: the store is the trust root's record, whatever the mirror list.
 */

import { CacheError, DownloadError, ResolutionError, TrustError } from "../errors.js";
import { type BinRelease, type GroupNode, historyPath, MetaRef, nameHash, type Timestamp } from "../trust/metadata.js";
import { TrustedState } from "../trust/state.js";
import type { Fetcher } from "./fetch.js";
import { redactUrl } from "./redact.js";
import type { OriginState } from "./statestore.js";

export const MAX_ROOT_BYTES = 512 * 1024; // bytes; a root lists a few dozen keys
export const MAX_TIMESTAMP_BYTES = 16 * 1024; // bytes, timestamp.json and each history file; FORMAT.md §4
export const MAX_ROOT_WALK = 32; // root versions per update (bounded walk)

/** Options of an {@link IndexView}. */
export interface IndexViewOptions {
  /** The shipped trust root bytes (`keys/root.json`). */
  readonly anchor: Uint8Array;
  /** Local state for this index: the record of its trust root (shared by every mirror). */
  readonly store: OriginState;
  /**
   * The URL-keyed records of earlier versions, read when `store` holds no timestamp: the
   * newest one that re-verifies from the anchor is migrated into `store`.
   */
  readonly legacy?: () => readonly OriginState[];
  /** Base URLs ending in `/`, in order of preference. */
  readonly mirrors: readonly string[];
  readonly fetcher: Fetcher;
  /** Reference time for every expiry check. */
  readonly now: Date;
  /** Milliseconds a cached state is reused without asking a mirror (default 5 min). */
  readonly metadataMaxAgeMs?: number;
  /** Largest index node accepted, bytes (default 4 MiB). */
  readonly maxNodeBytes?: number;
  /** Called with each warning (skipped mirror, discarded local copy). */
  readonly warn?: (message: string) => void;
  /**
   * Never ask a network mirror: only local (`file://`, a `bundle:`) mirrors, else the stored
   * state (re-verified from the anchor) and cached nodes. With neither this is a `download`
   * error, never a request.
   */
  readonly offline?: boolean;
  /**
   * Milliseconds root, timestamp and index top may be past their expiry and still be
   * accepted, with a warning naming each (default 0). Offline only: ignored online, as in
   * Python, where a fresh copy can be asked for instead.
   */
  readonly maxExpiredAgeMs?: number;
}

interface Update {
  timestamp: Uint8Array;
  top: Uint8Array | null;
}

/** The trusted state of one index for one run. */
export class IndexView {
  private state: TrustedState | null = null;
  private servedBy: string | null = null;
  private readonly groups = new Map<string, Promise<GroupNode>>();
  private readonly releasesByName = new Map<string, readonly BinRelease[]>();
  private readonly maxAgeMs: number;
  private readonly maxNode: number;
  private readonly warn: (message: string) => void;
  private readonly offline: boolean;
  private readonly graceMs: number;
  /** The mirrors this view may ask: offline, only local ones. */
  private readonly mirrors: readonly string[];

  constructor(private readonly opts: IndexViewOptions) {
    this.maxAgeMs = opts.metadataMaxAgeMs ?? 300_000;
    this.maxNode = opts.maxNodeBytes ?? 4 * 1024 * 1024;
    this.warn = opts.warn ?? (() => undefined);
    this.offline = opts.offline ?? false;
    this.graceMs = this.offline ? (opts.maxExpiredAgeMs ?? 0) : 0;
    this.mirrors = this.offline ? opts.mirrors.filter((m) => m.startsWith("file:")) : opts.mirrors;
  }

  /**
   * The trusted state, refreshing it on first use.
   *
   * @throws TrustError Every mirror served data that failed verification (the first such
   *   error, with the others in its message).
   * @throws DownloadError No mirror could be reached.
   */
  async trusted(): Promise<TrustedState> {
    if (this.state === null) {
      this.state = await this.refresh();
    }
    return this.state;
  }

  /** The anchor advanced through the stored root chain (each stored root re-verified). */
  private baseState(stored = this.opts.store.loadRootVersions()): TrustedState {
    const state = new TrustedState(this.opts.anchor, this.opts.now, {
      maxRootRotations: MAX_ROOT_WALK + stored.length,
      expiryGraceMs: this.graceMs,
    });
    for (const [version, data] of stored) {
      if (version <= state.root.version) {
        continue;
      }
      if (version !== state.root.version + 1) {
        this.warn(`stored root chain has a gap before version ${version}; ignoring the rest`);
        break;
      }
      try {
        state.updateRoot(data);
      } catch (err) {
        if (!(err instanceof TrustError)) {
          throw err;
        }
        this.warn(`ignoring the stored root chain, it does not verify: ${err.message}`);
        return new TrustedState(this.opts.anchor, this.opts.now, { expiryGraceMs: this.graceMs });
      }
    }
    return state;
  }

  /** Load the stored timestamp and top as the rollback reference; true if both load. */
  private withLocal(state: TrustedState): boolean {
    const ts = this.opts.store.loadTimestamp();
    if (ts === null) {
      return false;
    }
    try {
      state.loadTrustedTimestamp(ts);
    } catch (err) {
      if (!(err instanceof TrustError)) {
        throw err;
      }
      this.warn(`discarding the stored timestamp: ${err.message}`);
      return false;
    }
    const top = this.opts.store.loadIndex();
    if (top === null) {
      return false;
    }
    try {
      state.loadTrustedIndex(top);
    } catch (err) {
      if (!(err instanceof TrustError)) {
        throw err;
      }
      this.warn(`discarding the stored index top: ${err.message}`);
      return false;
    }
    return true;
  }

  private cachedIsFresh(state: TrustedState): boolean {
    const last = this.opts.store.lastRefresh();
    const now = this.opts.now.getTime();
    if (state.timestamp === null || state.index === null || last === null) {
      return false;
    }
    const age = now - last.getTime();
    if (age < 0 || age > this.maxAgeMs) {
      return false;
    }
    return state.timestamp.expires.getTime() > now && state.index.expires.getTime() > now;
  }

  /**
   * Adopt the rollback reference of a URL-keyed record of an earlier version (as Python's
   * `_migrate_legacy`). Called when the trust root's record holds no timestamp. Every legacy
   * record is re-verified from the shipped anchor exactly like stored state (root chain,
   * then timestamp and index top under the newest root); one that does not verify is
   * ignored with a warning (a planted or foreign record is never trusted blindly). The
   * highest verified timestamp wins, so migrating never lowers the reference. Legacy
   * records are only read.
   */
  private migrateLegacy(): void {
    const candidates = this.opts.legacy?.() ?? [];
    if (candidates.length === 0) {
      return;
    }
    const anchorVersion = new TrustedState(this.opts.anchor, this.opts.now).root.version;
    let best: { legacy: OriginState; ts: Timestamp; walked: Uint8Array[]; tsBytes: Uint8Array; top: Uint8Array | null } | null =
      null;
    for (const legacy of candidates) {
      let tsBytes: Uint8Array | null;
      let state: TrustedState;
      let ts: Timestamp;
      let chain: [number, Uint8Array][];
      try {
        tsBytes = legacy.loadTimestamp();
        if (tsBytes === null) {
          continue;
        }
        chain = legacy.loadRootVersions();
        state = this.baseState(chain);
        ts = state.loadTrustedTimestamp(tsBytes);
      } catch (err) {
        if (!(err instanceof TrustError || err instanceof CacheError)) {
          throw err;
        }
        this.warn(
          `not migrating the stored state of ${redactUrl(legacy.url)} (${legacy.directory}): it does not verify from the trust root: ${err.message}`,
        );
        continue;
      }
      let top = legacy.loadIndex();
      if (top !== null) {
        try {
          state.loadTrustedIndex(top);
        } catch (err) {
          if (!(err instanceof TrustError)) {
            throw err;
          }
          this.warn(`not migrating the stored index top of ${redactUrl(legacy.url)}: ${err.message}`);
          top = null;
        }
      }
      // baseState accepted exactly the consecutive versions after the anchor's.
      const walked = chain.filter(([v]) => anchorVersion < v && v <= state.root.version).map(([, d]) => d);
      if (
        best === null ||
        ts.version > best.ts.version ||
        (ts.version === best.ts.version && ts.indexVersion > best.ts.indexVersion)
      ) {
        best = { legacy, ts, walked, tsBytes, top };
      }
    }
    if (best === null) {
      return; // each candidate was warned about: the client starts with no reference
    }
    const store = this.opts.store;
    for (const [offset, data] of best.walked.entries()) {
      store.saveRootVersion(anchorVersion + 1 + offset, data);
    }
    store.saveTimestamp(best.tsBytes);
    if (best.top !== null) {
      store.saveIndex(best.top);
      best.legacy.copyNodesTo(store);
    }
    this.warn(
      `migrated the rollback reference (timestamp version ${best.ts.version}) kept for ${redactUrl(best.legacy.url)} in ${best.legacy.directory} to the trust root's record ${store.directory}`,
    );
  }

  private async refresh(): Promise<TrustedState> {
    if (this.opts.store.loadTimestamp() === null) {
      // Never silently lose the reference kept under an earlier layout.
      this.migrateLegacy();
    }
    {
      const state = this.baseState();
      // Offline with no local mirror, the stored state is used however old: its expiries are
      // still checked on every use (within the grace period). Offline with a bundle, its
      // possibly newer state is preferred, checked against the stored one (as in Python).
      if (this.withLocal(state) && (this.offline ? this.mirrors.length === 0 : this.cachedIsFresh(state))) {
        this.warnGrace(state);
        return state;
      }
    }
    if (this.offline && this.mirrors.length === 0) {
      throw new DownloadError("download", "offline, and no trusted index state is cached", {
        hint: "run once online, or configure 'bundle:' with a mirror directory",
      });
    }
    if (this.mirrors.length === 0) {
      throw new DownloadError("download", "no index mirror is configured and no fresh state is cached");
    }
    let firstTrust: TrustError | null = null;
    let lastDownload: DownloadError | null = null;
    const failures: string[] = [];
    for (const mirror of this.mirrors) {
      const candidate = this.baseState();
      let update: Update;
      try {
        update = await this.update(candidate, mirror);
      } catch (err) {
        if (!(err instanceof TrustError || err instanceof DownloadError)) {
          throw err;
        }
        this.warn(`mirror ${redactUrl(mirror)} failed: ${err.message}`);
        failures.push(`${redactUrl(mirror)}: ${err.message}`);
        if (err instanceof TrustError) {
          firstTrust ??= err;
        } else {
          lastDownload = err;
        }
        continue;
      }
      this.opts.store.saveTimestamp(update.timestamp);
      if (update.top !== null) {
        this.opts.store.saveIndex(update.top);
      }
      this.opts.store.recordRefresh(this.opts.now);
      this.servedBy = mirror;
      this.warnGrace(candidate);
      return candidate;
    }
    const all = `all ${this.mirrors.length} mirror(s) failed: ${failures.join("; ")}`;
    if (firstTrust !== null) {
      throw new TrustError(firstTrust.code, `${firstTrust.message} (${all})`, {
        hint: firstTrust.hint,
        cause: firstTrust,
      });
    }
    throw new DownloadError(lastDownload?.code ?? "download", `no index mirror could be read: ${all}`, {
      hint: "check the index URLs and the network",
      cause: lastDownload,
    });
  }

  /** Warn about every file accepted only thanks to the offline grace period. */
  private warnGrace(state: TrustedState): void {
    if (this.graceMs <= 0) {
      return;
    }
    const now = this.opts.now.getTime();
    const files: [string, Date][] = [[`root/${state.root.version}.json`, state.root.expires]];
    if (state.timestamp !== null) {
      files.push(["timestamp.json", state.timestamp.expires]);
    }
    if (state.index !== null) {
      files.push(["index top", state.index.expires]);
    }
    for (const [what, expires] of files) {
      if (expires.getTime() <= now) {
        this.warn(
          `${what} expired ${formatAge(now - expires.getTime())} ago (at ${expires.toISOString()}); accepted offline within max_expired_age`,
        );
      }
    }
  }

  /** Root walk, timestamp and top from one mirror (FORMAT.md §4 steps 1-3). */
  private async update(state: TrustedState, mirror: string): Promise<Update> {
    const f = this.opts.fetcher;
    const roots: Uint8Array[] = [];
    for (let i = 0; i < MAX_ROOT_WALK; i++) {
      let data: Uint8Array;
      try {
        data = await f.fetchBytes(`${mirror}root/${state.root.version + 1}.json`, MAX_ROOT_BYTES);
      } catch (err) {
        if (err instanceof DownloadError && err.code === "download.not-found") {
          break;
        }
        throw err;
      }
      state.updateRoot(data); // a bad step fails the walk: back to the stored chain
      roots.push(data);
    }
    if (roots.length === MAX_ROOT_WALK) {
      // The bound stops an endless walk (FORMAT.md §3); it is not a failure of the roots
      // walked: they stay trusted and the next update goes on from the newest.
      this.warn(`walked ${roots.length} new roots, the most one update takes; the next update continues from root ${state.root.version}`);
    }
    // Stored as soon as the walk succeeded, before the timestamp is read (FORMAT.md §3): each
    // is authenticated by the chain alone, so a later failure in this update neither discards
    // a learnt revocation nor keeps a client far behind from making progress.
    const first = state.root.version - roots.length + 1;
    for (const [i, data] of roots.entries()) {
      this.opts.store.saveRootVersion(first + i, data);
    }
    // The rollback reference is loaded after the walk, checked with the newest root; a copy
    // no longer signed by trusted keys after a rotation is dropped.
    this.withLocal(state);
    const tsBytes = await f.fetchBytes(`${mirror}timestamp.json`, MAX_TIMESTAMP_BYTES);
    const previous = state.timestamp !== null && state.index !== null ? state.timestamp.index : null;
    // A gap since the trusted timestamp is explained by the index's history files.
    const ts = await state.updateTimestampWithHistory(tsBytes, (link) =>
      f.fetchBytes(`${mirror}${historyPath(link)}`, MAX_TIMESTAMP_BYTES),
    );
    let top: Uint8Array | null = null;
    if (!ts.index.equals(previous)) {
      top = await f.fetchBytes(`${mirror}${ts.index.path}`, ts.index.length);
      state.updateIndex(top);
    }
    return { timestamp: tsBytes, top };
  }

  /**
   * Every release the index lists for `name` (verified bin entries, envelopes not yet).
   *
   * @throws ResolutionError (`resolution`) The index has no package `name`.
   * @throws TrustError, DownloadError As {@link trusted}, or a node fails verification.
   */
  async releases(name: string): Promise<readonly BinRelease[]> {
    const known = this.releasesByName.get(name);
    if (known !== undefined) {
      return known;
    }
    const state = await this.trusted();
    const top = state.index;
    if (top === null) {
      throw new TrustError("trust.metadata", "no index top is trusted");
    }
    // The fan-out comes from the verified top: it changes as the index grows.
    const h = nameHash(name);
    const gp = h.slice(0, top.groupChars);
    const bp = h.slice(0, top.binChars);
    const missing = () => new ResolutionError("resolution", `the index has no package named '${name}'`);
    const gref = top.groups.get(gp);
    if (gref === undefined) {
      throw missing();
    }
    let groupPromise = this.groups.get(gp);
    if (groupPromise === undefined) {
      groupPromise = this.node(gref).then((data) => state.verifyGroup(gp, data));
      this.groups.set(gp, groupPromise);
      groupPromise.catch(() => this.groups.delete(gp));
    }
    const group = await groupPromise;
    const bref = group.bins.get(bp);
    if (bref === undefined) {
      throw missing();
    }
    const bin = state.verifyBin(group, bp, await this.node(bref));
    const found = bin.packages.get(name);
    if (found === undefined) {
      throw missing();
    }
    this.releasesByName.set(name, found);
    return found;
  }

  /** A node's bytes: from the store (re-hashed), else from the first mirror that has it. */
  private async node(ref: MetaRef): Promise<Uint8Array> {
    const cached = this.opts.store.loadNode(ref.sha256, ref.length);
    if (cached !== null) {
      return cached;
    }
    if (ref.length > this.maxNode) {
      throw new TrustError(
        "trust.length",
        `${ref.path}: signed length ${ref.length} is over the metadata cap ${this.maxNode} bytes`,
      );
    }
    if (this.mirrors.length === 0) {
      throw new DownloadError("download", `${ref.path} is not cached and no mirror may be used (offline)`, {
        hint: "refresh online first, or load from a bundle made by 'mirror'",
      });
    }
    const errors: string[] = [];
    let firstTrust: TrustError | null = null;
    for (const mirror of this.orderedMirrors()) {
      try {
        const data = await this.opts.fetcher.fetchBytes(`${mirror}${ref.path}`, ref.length);
        // Check before persisting: a mirror's wrong bytes must never enter the store.
        const got = MetaRef.of(data);
        if (!got.equals(ref)) {
          throw new TrustError(
            "trust.hash",
            `${redactUrl(`${mirror}${ref.path}`)}: expected sha256 ${ref.sha256} and ${ref.length} bytes, got ${got.sha256} and ${got.length} bytes`,
          );
        }
        this.opts.store.saveNode(ref.sha256, data);
        return data;
      } catch (err) {
        if (!(err instanceof TrustError || err instanceof DownloadError)) {
          throw err;
        }
        errors.push(err.message);
        if (err instanceof TrustError) {
          firstTrust ??= err;
        }
      }
    }
    if (firstTrust !== null) {
      throw new TrustError(firstTrust.code, `${ref.path}: every mirror failed: ${errors.join("; ")}`);
    }
    throw new DownloadError("download", `${ref.path}: no mirror served it: ${errors.join("; ")}`);
  }

  private orderedMirrors(): string[] {
    const all = [...this.mirrors];
    if (this.servedBy === null) {
      return all;
    }
    return [this.servedBy, ...all.filter((m) => m !== this.servedBy)];
  }

  /** URLs of an archive on every mirror, the one that served the state first. */
  archiveUrls(file: string): string[] {
    return this.orderedMirrors().map((m) => `${m}${file}`);
  }
}

/** `3d 4h 5m 6s`, largest units first, for expiry warnings. */
function formatAge(ms: number): string {
  let rest = Math.floor(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) {
    parts.push(`${rest}s`);
  }
  return parts.join(" ");
}
