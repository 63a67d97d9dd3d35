/**
 * The sans-I/O trust core, mirroring `trust.py`: decides whether index bytes can be trusted.
 *
 * Everything here takes bytes, the trusted state and the reference time as arguments and
 * returns a verified, typed object or throws a {@link TrustError}. Nothing here opens a file
 * or a socket or reads the clock, so every attack is a short unit test.
 *
 * Two layers: pure per-file checks (`verifyAnchorRoot`, `verifyNextRoot`,
 * `verifyHistoryLink`, …), and {@link TrustedState}, which adds update order, rollback and
 * fork protection (the timestamp history), the bounded root walk and expiry across files
 * (FORMAT.md §4).
 *
 * One module, over 600 lines, on purpose (as `trust.py`): the per-file checks and the state
 * that orders them read each other, and each mirrors a Python function it must agree with.
 */

import { ResolutionError, TrustError, UsageError } from "../errors.js";
import {
  type Envelope,
  INDEX_TYPE,
  parseEnvelope,
  RELEASE_TYPE,
  ROOT_TYPE,
  TIMESTAMP_TYPE,
  verifyThreshold,
} from "./envelope.js";
import { sha256Hex } from "./keys.js";
import {
  type BinNode,
  type BinRelease,
  formatTime,
  type GroupNode,
  historyPath,
  type IndexTop,
  MetadataError,
  type MetaRef,
  parseBin,
  parseGroup,
  parseIndexTop,
  parseRelease,
  parseRoot,
  parseTimestamp,
  publisherCovers,
  type Release,
  type Root,
  type Timestamp,
  type TimestampLink,
} from "./metadata.js";
import type { JsonValue } from "./strict-json.js";

/** New root versions accepted per update (FORMAT.md §3). */
export const DEFAULT_MAX_ROOT_ROTATIONS = 32;
/** History links followed per update (FORMAT.md §3 history). */
export const DEFAULT_MAX_HISTORY_WALK = 1024;

/**
 * Returns the bytes of `history/<version>-<sha256>.json` for a link (the caller's I/O; see
 * {@link historyPath}).
 */
export type HistoryReader = (link: TimestampLink) => Promise<Uint8Array> | Uint8Array;
const HEX_RE = /^[0-9a-f]*$/;

type EnvelopeInput = Uint8Array | JsonValue | Envelope;

function isEnvelope(value: EnvelopeInput): value is Envelope {
  return (
    typeof value === "object" &&
    value !== null &&
    !(value instanceof Uint8Array) &&
    !Array.isArray(value) &&
    (value as { payload?: unknown }).payload instanceof Uint8Array
  );
}

function envelope(data: EnvelopeInput, what: string): Envelope {
  if (isEnvelope(data)) {
    return data;
  }
  try {
    return parseEnvelope(data);
  } catch (err) {
    throw new TrustError("trust.signature", `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Check bytes against the hash and length their signed parent pins (before parsing).
 *
 * @throws TrustError `trust.length` or `trust.hash`.
 */
export function checkPinned(data: Uint8Array, ref: MetaRef, what: string): void {
  if (data.length !== ref.length) {
    throw new TrustError(
      "trust.length",
      `length mismatch for ${what}: expected ${ref.length} bytes, got ${data.length}`,
    );
  }
  const digest = sha256Hex(data);
  if (digest !== ref.sha256) {
    throw new TrustError(
      "trust.hash",
      `sha256 mismatch for ${what}: expected ${ref.sha256}, got ${digest}`,
    );
  }
}

/**
 * Check that signed metadata has not expired at `now` (expired from its instant on).
 *
 * @param graceMs Tolerated lateness in milliseconds.
 * @returns True when expired but within the grace period; false when not expired.
 * @throws TrustError (`trust.expired`) Expired beyond the grace period.
 */
export function checkExpiry(what: string, expires: Date, now: Date, graceMs = 0): boolean {
  if (now.getTime() < expires.getTime()) {
    return false;
  }
  if (now.getTime() < expires.getTime() + graceMs) {
    return true;
  }
  throw new TrustError(
    "trust.expired",
    `${what}: expired at ${formatTime(expires)}, reference time is ${formatTime(now)}`,
    { hint: "the index may be stale or frozen; ask its operator to refresh it" },
  );
}

/**
 * Verify a root trusted out of band (the shipped anchor): it must carry a threshold of its
 * own root role. Its expiry is not checked here.
 *
 * @throws TrustError `trust.signature` or `trust.metadata`.
 */
export function verifyAnchorRoot(data: Uint8Array, what = "trusted root"): Root {
  const env = envelope(data, what);
  if (env.payloadType !== ROOT_TYPE) {
    throw new TrustError(
      "trust.signature",
      `${what}: expected payload type '${ROOT_TYPE}', got '${env.payloadType}'`,
    );
  }
  // The anchor names its own keys, so it is parsed before it can be verified; it is
  // trusted because it came out of band, the self-signature only proves it is whole.
  const root = parseRoot(env.payload, what);
  verifyThreshold(env, {
    expectedType: ROOT_TYPE,
    keys: root.keys,
    keyids: root.root.keyids,
    threshold: root.root.threshold,
    what: `${what} (own root role)`,
  });
  return root;
}

/**
 * The identity of a shipped trust root: what the client's stored state is keyed by (as
 * Python's `trust_root_id`). The SHA-256 of the anchor's signed payload, not of the
 * envelope: another signature over the same root keeps the identity, any change to what it
 * trusts makes a new one. Computed from the shipped anchor, never from a root reached by
 * rotation, so every mirror, the bundle and offline mode of one index share one rollback
 * reference for as long as the deployment ships the same anchor.
 *
 * @returns 64 lowercase hex characters.
 * @throws TrustError As {@link verifyAnchorRoot}.
 */
export function trustRootId(data: Uint8Array, what = "trusted root"): string {
  verifyAnchorRoot(data, what);
  return sha256Hex(envelope(data, what).payload);
}

/**
 * Verify root version N+1 against trusted root N.
 *
 * @throws TrustError `trust.signature`, `trust.metadata`, or `trust.root-rotation` when its
 *   version is not exactly N+1.
 */
export function verifyNextRoot(trusted: Root, data: Uint8Array, what?: string): Root {
  const name = what ?? `root/${trusted.version + 1}.json`;
  const env = envelope(data, name);
  // The old root's keys vouch for the new one before its payload is even parsed.
  verifyThreshold(env, {
    expectedType: ROOT_TYPE,
    keys: trusted.keys,
    keyids: trusted.root.keyids,
    threshold: trusted.root.threshold,
    what: `${name} (root role of trusted root version ${trusted.version})`,
  });
  const next = parseRoot(env.payload, name);
  // Its own keys must sign too, so a rotation cannot hand trust to keys nobody holds.
  verifyThreshold(env, {
    expectedType: ROOT_TYPE,
    keys: next.keys,
    keyids: next.root.keyids,
    threshold: next.root.threshold,
    what: `${name} (its own root role)`,
  });
  if (next.version !== trusted.version + 1) {
    const kind = next.version <= trusted.version ? "repeated or older" : "skipped";
    throw new TrustError(
      "trust.root-rotation",
      `${name}: expected root version ${trusted.version + 1}, got ${next.version} (${kind} version)`,
    );
  }
  return next;
}

function verifyTimestampBytes(
  root: Root,
  data: Uint8Array,
  what: string,
): [Timestamp, Uint8Array] {
  const env = envelope(data, what);
  verifyThreshold(env, {
    expectedType: TIMESTAMP_TYPE,
    keys: root.keys,
    keyids: root.timestamp.keyids,
    threshold: root.timestamp.threshold,
    what,
  });
  return [parseTimestamp(env.payload, what), env.payload];
}

/**
 * Check a history file against the link that names it, and parse it.
 *
 * No signature is checked: the link comes from a verified timestamp (or from a file checked
 * this way), so the hash chain authenticates every file back from it, even one signed by
 * keys rotated out since.
 *
 * @param link The `previous` link naming the file.
 * @param data The bytes of `history/<version>-<sha256>.json`.
 * @returns The timestamp it holds.
 * @throws TrustError `trust.signature` (not an envelope), `trust.hash` (its payload is not
 *   the one the link names), `trust.metadata` (not a timestamp of the linked version).
 */
export function verifyHistoryLink(link: TimestampLink, data: Uint8Array): Timestamp {
  const what = historyPath(link);
  const payload = envelope(data, what).payload;
  const digest = sha256Hex(payload);
  if (digest !== link.sha256) {
    throw new TrustError(
      "trust.hash",
      `sha256 mismatch for ${what}: expected payload ${link.sha256}, got ${digest}`,
    );
  }
  const ts = parseTimestamp(payload, what);
  if (ts.version !== link.version) {
    throw new MetadataError(`${what}: expected timestamp version ${link.version}, got ${ts.version}`);
  }
  return ts;
}

/**
 * Whether `next` extends the trusted timestamp `old` (FORMAT.md §3 history), as a walk that
 * yields each history link it needs and is resumed with that file's bytes: the one rule
 * for the synchronous check (no reader: it never yields) and the asynchronous one, with no
 * I/O of its own.
 *
 * `next` names `old` (version and payload hash) as `previous`, or across a gap the links
 * through the history files lead to it. Another predecessor at that version, a history that
 * starts above it, or a `previous` dropped after a trusted one had it is a fork. Past
 * `maxWalk` links, and without a reader, a gap is accepted unchecked.
 *
 * @throws TrustError `trust.rollback.fork`, or whatever {@link verifyHistoryLink} throws.
 */
function* extendsTrusted(
  old: Timestamp,
  oldPayload: Uint8Array,
  next: Timestamp,
  canRead: boolean,
  maxWalk: number,
): Generator<TimestampLink, void, Uint8Array> {
  if (next.previous === null) {
    if (old.previous !== null) {
      throw new TrustError(
        "trust.rollback.fork",
        `timestamp.json: version ${next.version} names no predecessor, but the trusted version ${old.version} is part of a history (history dropped: a fork?)`,
      );
    }
    return; // an index written before history existed
  }
  let link = next.previous;
  let walked = 0;
  for (; walked < maxWalk; walked++) {
    if (link.version <= old.version || !canRead) {
      break;
    }
    const ts = verifyHistoryLink(link, yield link);
    if (ts.previous === null) {
      throw new TrustError(
        "trust.rollback.fork",
        `timestamp.json: version ${next.version}'s history starts at version ${ts.version}, after the trusted version ${old.version}: not the history this client trusts`,
      );
    }
    link = ts.previous;
  }
  if (walked === maxWalk) {
    return; // a gap longer than the walk: accepted unchecked (FORMAT.md §3 limits)
  }
  if (link.version > old.version) {
    return; // no history reader: the gap is not checked
  }
  const trusted = sha256Hex(oldPayload);
  if (link.version !== old.version || link.sha256 !== trusted) {
    throw new TrustError(
      "trust.rollback.fork",
      `timestamp.json: version ${next.version} extends timestamp version ${link.version} (payload sha256 ${link.sha256}), but this client trusts version ${old.version} (payload sha256 ${trusted}): the index showed two different histories`,
      {
        hint: "a publisher wrote without a compare-and-swap, or the server is compromised; compare the index's history/ with the timestamps clients hold",
      },
    );
  }
}

/** Verify a timestamp's signatures and parse it (no expiry or rollback check). */
export function verifyTimestamp(root: Root, data: Uint8Array, what = "timestamp.json"): Timestamp {
  return verifyTimestampBytes(root, data, what)[0];
}

/**
 * Verify an index top against the timestamp's pin (no expiry or rollback check).
 *
 * @throws TrustError `trust.length`/`trust.hash` (before parsing), `trust.signature`,
 *   `trust.metadata` (version above the pin), `trust.rollback` (below the pin).
 */
export function verifyIndexTop(
  root: Root,
  timestamp: Timestamp,
  data: Uint8Array,
  what?: string,
): IndexTop {
  const name = what ?? `index top ${timestamp.index.path}`;
  checkPinned(data, timestamp.index, name);
  const env = envelope(data, name);
  verifyThreshold(env, {
    expectedType: INDEX_TYPE,
    keys: root.keys,
    keyids: root.index.keyids,
    threshold: root.index.threshold,
    what: name,
  });
  const top = parseIndexTop(env.payload, name);
  if (top.version < timestamp.indexVersion) {
    throw new TrustError(
      "trust.rollback",
      `${name}: version ${top.version} is lower than version ${timestamp.indexVersion} pinned by timestamp.json (rollback)`,
    );
  }
  if (top.version !== timestamp.indexVersion) {
    throw new MetadataError(
      `${name}: version ${top.version} is not version ${timestamp.indexVersion} pinned by timestamp.json (mix-and-match)`,
    );
  }
  return top;
}

/**
 * Verify a group node against its pin in the index top.
 *
 * @throws TrustError `trust.length`/`trust.hash` (checked first) or `trust.metadata`.
 */
export function verifyGroupNode(
  ref: MetaRef,
  prefix: string,
  data: Uint8Array,
  groupChars: number,
  binChars: number,
  what?: string,
): GroupNode {
  const name = what ?? `group '${prefix}' (${ref.path})`;
  checkPinned(data, ref, name);
  const group = parseGroup(data, name);
  if (group.prefix.length !== groupChars) {
    throw new MetadataError(
      `${name}: prefix: expected ${groupChars} hex characters (the index top's group_chars), got '${group.prefix}'`,
    );
  }
  if (group.prefix !== prefix) {
    throw new MetadataError(`${name}: prefix: expected '${prefix}', got '${group.prefix}'`);
  }
  // The tree has one fan-out, chosen by the signed top.
  for (const bp of group.bins.keys()) {
    if (bp.length !== binChars) {
      throw new MetadataError(
        `${name}: bins: expected prefixes of ${binChars} hex characters (the index top's bin_chars), got '${bp}'`,
      );
    }
  }
  return group;
}

/**
 * Verify a bin node against its pin in the group node.
 *
 * @throws TrustError `trust.length`/`trust.hash` (checked first) or `trust.metadata`.
 */
export function verifyBinNode(
  ref: MetaRef,
  prefix: string,
  data: Uint8Array,
  what?: string,
): BinNode {
  const name = what ?? `bin '${prefix}' (${ref.path})`;
  checkPinned(data, ref, name);
  const node = parseBin(data, name);
  if (node.prefix !== prefix) {
    throw new MetadataError(`${name}: prefix: expected '${prefix}', got '${node.prefix}'`);
  }
  return node;
}

/** A verified release and the key IDs that met the threshold. */
export interface SignedRelease {
  readonly release: Release;
  readonly signers: ReadonlySet<string>;
}

/**
 * Verify a release attestation (`.zip.sig` bytes or an envelope embedded in a bin).
 *
 * Accepted when a threshold of the index role signed it, or a threshold of one publisher
 * whose namespaces cover the namespace of every connector it declares.
 *
 * @throws TrustError `trust.signature`, `trust.metadata`, or `trust.policy` (signed only by
 *   publishers whose namespaces do not cover every connector).
 */
export function verifyRelease(root: Root, input: EnvelopeInput, what = "release"): SignedRelease {
  const env = envelope(input, what);
  if (env.payloadType !== RELEASE_TYPE) {
    throw new TrustError(
      "trust.signature",
      `${what}: expected payload type '${RELEASE_TYPE}', got '${env.payloadType}'`,
    );
  }
  let indexError: Error;
  try {
    const signers = verifyThreshold(env, {
      expectedType: RELEASE_TYPE,
      keys: root.keys,
      keyids: root.index.keyids,
      threshold: root.index.threshold,
      what: `${what} (index role)`,
    });
    return { release: parseRelease(env.payload, what), signers };
  } catch (err) {
    if (!(err instanceof TrustError) || err.code !== "trust.signature") {
      throw err;
    }
    indexError = err;
  }
  const signed: [Root["publishers"][number], Set<string>][] = [];
  for (const p of root.publishers) {
    try {
      signed.push([
        p,
        verifyThreshold(env, {
          expectedType: RELEASE_TYPE,
          keys: root.keys,
          keyids: p.keyids,
          threshold: p.threshold,
          what: `${what} (publisher ${p.name})`,
        }),
      ]);
    } catch (err) {
      if (!(err instanceof TrustError)) {
        throw err;
      }
    }
  }
  if (signed.length === 0) {
    throw new TrustError(
      "trust.signature",
      `${what}: expected a threshold of signatures by the index role or by one publisher, got neither (${indexError.message})`,
    );
  }
  const release = parseRelease(env.payload, what);
  for (const [publisher, keys] of signed) {
    if (release.connectors.every((c) => publisherCovers(publisher, c.id))) {
      return { release, signers: keys };
    }
  }
  // A publisher may only vouch for its own namespaces: one connector outside them and the
  // whole release is refused.
  const [publisher, keys] = signed[0] as [Root["publishers"][number], Set<string>];
  const outside = release.connectors.find((c) => !publisherCovers(publisher, c.id));
  throw new TrustError(
    "trust.policy",
    `release ${release.name} ${release.version}: connector '${outside?.id}' is outside the namespaces ${JSON.stringify(publisher.namespaces)} of publisher '${publisher.name}' (key ${[...keys].sort().join(", ")})`,
  );
}

/**
 * Check a downloaded archive's measured hash and length against its release.
 *
 * @throws TrustError `trust.length` or `trust.hash`.
 */
export function checkArchive(release: Release, sha256: string, length: number): void {
  if (length !== release.length) {
    throw new TrustError(
      "trust.length",
      `length mismatch for ${release.name} ${release.version}: expected ${release.length} bytes, got ${length}`,
    );
  }
  if (sha256.toLowerCase() !== release.sha256) {
    throw new TrustError(
      "trust.hash",
      `sha256 mismatch for ${release.name} ${release.version}: expected ${release.sha256}, got ${sha256}`,
    );
  }
}

// -- stateful update -----------------------------------------------------------------

/** Options of a {@link TrustedState}. */
export interface TrustedStateOptions {
  /** Tolerated lateness of expiries, milliseconds (default 0). */
  expiryGraceMs?: number;
  /** Most new root versions accepted in one update (default 32). */
  maxRootRotations?: number;
}

/**
 * The trusted metadata of one client update, fed bytes in FORMAT.md §4 order:
 * `updateRoot` per new root; optionally `loadTrustedTimestamp`/`loadTrustedIndex` with the
 * local copies (the rollback reference); `updateTimestamp`; `updateIndex` (or
 * `loadTrustedIndex` with the cached top when it is the pinned one); then `verifyGroup`,
 * `verifyBin` and `verifyRelease`. Every method commits its result or throws and leaves
 * the state unchanged.
 */
export class TrustedState {
  readonly now: Date;
  private readonly graceMs: number;
  private readonly maxRotations: number;
  private currentRoot: Root;
  private walkStart: Root;
  private rotations = 0;
  private rootFinal = false;
  private ts: Timestamp | null = null;
  private tsPayload: Uint8Array = new Uint8Array();
  private top: IndexTop | null = null;
  private topRef: MetaRef | null = null;
  private indexUpdated = false;
  private readonly groups = new Map<string, GroupNode>();
  private readonly inGrace = new Map<string, Date>();

  /**
   * @param rootBytes The trusted root (anchor or local copy), signed by its own root role.
   * @param now Reference time for every expiry check.
   * @throws TrustError The anchor is malformed or not signed by its own root role.
   */
  constructor(rootBytes: Uint8Array, now: Date, options: TrustedStateOptions = {}) {
    const grace = options.expiryGraceMs ?? 0;
    if (!(grace >= 0)) {
      throw new RangeError(`expiryGraceMs: expected >= 0, got ${grace}`);
    }
    this.now = now;
    this.graceMs = grace;
    this.maxRotations = options.maxRootRotations ?? DEFAULT_MAX_ROOT_ROTATIONS;
    this.currentRoot = verifyAnchorRoot(rootBytes);
    this.walkStart = this.currentRoot;
  }

  /** The trusted root. */
  get root(): Root {
    return this.currentRoot;
  }

  /** The trusted timestamp, if one was loaded. */
  get timestamp(): Timestamp | null {
    return this.ts;
  }

  /** The trusted index top, if one was loaded. */
  get index(): IndexTop | null {
    return this.top;
  }

  /** Files accepted only thanks to the grace period: [name, expiry]. */
  get expiredInGrace(): [string, Date][] {
    return [...this.inGrace.entries()];
  }

  private expiry(what: string, expires: Date): void {
    if (checkExpiry(what, expires, this.now, this.graceMs)) {
      this.inGrace.set(what, expires);
    }
  }

  private rootName(): string {
    return `root/${this.currentRoot.version}.json`;
  }

  private requireTimestamp(): Timestamp {
    if (this.ts === null) {
      throw new UsageError("no timestamp loaded: call updateTimestamp first");
    }
    return this.ts;
  }

  private currentIndex(): IndexTop {
    const ts = this.requireTimestamp();
    if (this.top === null || !ts.index.equals(this.topRef)) {
      throw new UsageError("the index top pinned by the current timestamp is not loaded: call updateIndex",
      );
    }
    // Checked on every use, so a client running on local copies still notices a freeze.
    this.expiry(this.rootName(), this.currentRoot.expires);
    this.expiry("timestamp.json", ts.expires);
    this.expiry(`index top ${ts.index.path}`, this.top.expires);
    return this.top;
  }

  /**
   * Accept root version N+1. On any failure the whole walk fails: the trusted root goes
   * back to the one the walk started from.
   *
   * @throws TrustError `trust.root-rotation` past the step bound (the roots accepted so far
   *   stay trusted) or for a skipped/repeated version; `trust.signature`, `trust.metadata`.
   */
  updateRoot(data: Uint8Array): Root {
    if (this.rootFinal) {
      throw new UsageError("cannot update the root after the timestamp was loaded");
    }
    if (this.rotations >= this.maxRotations) {
      throw new TrustError(
        "trust.root-rotation",
        `root/${this.currentRoot.version + 1}.json: expected at most ${this.maxRotations} new root versions in one update, got more (bounded walk)`,
      );
    }
    let next: Root;
    try {
      next = verifyNextRoot(this.currentRoot, data);
    } catch (err) {
      this.currentRoot = this.walkStart;
      this.rotations = 0;
      throw err;
    }
    this.currentRoot = next;
    this.rotations++;
    return next;
  }

  /** Version the root walk started from (to know which new roots to persist). */
  get walkStartVersion(): number {
    return this.walkStart.version;
  }

  /**
   * Load the previously trusted local timestamp as the rollback reference (signatures
   * checked with the current root, expiry not). Ends the root walk.
   */
  loadTrustedTimestamp(data: Uint8Array): Timestamp {
    if (this.ts !== null) {
      throw new UsageError("a timestamp is already loaded");
    }
    this.rootFinal = true;
    const [ts, payload] = verifyTimestampBytes(this.currentRoot, data, "trusted timestamp.json");
    this.ts = ts;
    this.tsPayload = payload;
    return ts;
  }

  /**
   * Accept a newly fetched timestamp, checking only that it extends the trusted one without
   * reading history: the next version must name the trusted one as `previous`; a gap is
   * accepted unchecked (FORMAT.md §3 limits). A client that can fetch history files uses
   * {@link updateTimestampWithHistory}. Ends the root walk.
   *
   * @throws TrustError `trust.expired` (root or timestamp), `trust.signature`,
   *   `trust.metadata`, `trust.rollback` (lower version, same version with other payload
   *   bytes, lower pinned index version or the same with another hash),
   *   `trust.rollback.fork` (does not extend the trusted timestamp).
   */
  updateTimestamp(data: Uint8Array): Timestamp {
    const checked = this.checkTimestamp(data);
    if (checked.extends !== null && !checked.extends.next().done) {
      throw new UsageError("the history walk asked for a file without a history reader");
    }
    return this.commitTimestamp(checked.next, checked.payload);
  }

  /**
   * Accept a newly fetched timestamp. Ends the root walk.
   *
   * A newer timestamp must extend the trusted one (FORMAT.md §3 history): the next version
   * names the trusted one's payload hash as `previous`; across a gap, the links are followed
   * through `history` back to the trusted version. Another predecessor at that version
   * means the server showed this client two different histories (`trust.rollback.fork`).
   * Past `maxHistoryWalk` links a gap is accepted unchecked. Nothing is committed until the
   * walk is over.
   *
   * @param history Reads one history file (see {@link historyPath}).
   * @param maxHistoryWalk Most history links followed (default 1024).
   * @throws TrustError As {@link updateTimestamp}; `trust.hash` when a history file is not
   *   the one its link names; whatever `history` throws (e.g. a download error).
   */
  async updateTimestampWithHistory(
    data: Uint8Array,
    history: HistoryReader,
    maxHistoryWalk = DEFAULT_MAX_HISTORY_WALK,
  ): Promise<Timestamp> {
    const checked = this.checkTimestamp(data, maxHistoryWalk);
    if (checked.extends !== null) {
      const walk = checked.extends;
      for (let step = walk.next(); !step.done; ) {
        step = walk.next(await history(step.value));
      }
    }
    // The state may not have moved while the reader ran (one update at a time).
    if (this.indexUpdated || this.ts !== checked.old) {
      throw new UsageError("the trusted state changed while the timestamp history was read");
    }
    return this.commitTimestamp(checked.next, checked.payload);
  }

  /** Every check of a new timestamp but the history walk, which it returns unstarted. */
  private checkTimestamp(
    data: Uint8Array,
    maxHistoryWalk?: number,
  ): {
    next: Timestamp;
    payload: Uint8Array;
    old: Timestamp | null;
    extends: Generator<TimestampLink, void, Uint8Array> | null;
  } {
    if (this.indexUpdated) {
      throw new UsageError("cannot update the timestamp after the index top was updated");
    }
    this.rootFinal = true;
    // After the walk the root must be fresh: an expired root may list stolen keys.
    this.expiry(this.rootName(), this.currentRoot.expires);
    const [next, payload] = verifyTimestampBytes(this.currentRoot, data, "timestamp.json");
    const old = this.ts;
    let walk: Generator<TimestampLink, void, Uint8Array> | null = null;
    if (old !== null) {
      if (next.version < old.version) {
        throw new TrustError(
          "trust.rollback",
          `timestamp.json: version ${next.version} is lower than trusted version ${old.version} (rollback)`,
        );
      }
      if (next.version === old.version && !Buffer.from(payload).equals(this.tsPayload)) {
        throw new TrustError(
          "trust.rollback",
          `timestamp.json: version ${next.version} equals the trusted version but its content differs (a signer reused a version number)`,
        );
      }
      if (next.indexVersion < old.indexVersion) {
        throw new TrustError(
          "trust.rollback",
          `timestamp.json: pins index version ${next.indexVersion}, lower than trusted index version ${old.indexVersion} (rollback)`,
        );
      }
      if (next.indexVersion === old.indexVersion && !next.index.equals(old.index)) {
        throw new TrustError(
          "trust.rollback",
          `timestamp.json: pins index version ${next.indexVersion} with sha256 ${next.index.sha256}, but the trusted index version ${old.indexVersion} has sha256 ${old.index.sha256}`,
        );
      }
      if (next.version > old.version) {
        const canRead = maxHistoryWalk !== undefined;
        walk = extendsTrusted(old, this.tsPayload, next, canRead, maxHistoryWalk ?? DEFAULT_MAX_HISTORY_WALK);
      }
    }
    return { next, payload, old, extends: walk };
  }

  private commitTimestamp(next: Timestamp, payload: Uint8Array): Timestamp {
    this.expiry("timestamp.json", next.expires);
    this.ts = next;
    this.tsPayload = payload;
    if (!next.index.equals(this.topRef)) {
      this.groups.clear();
    }
    return next;
  }

  /** Load the cached index top pinned by the current timestamp (no expiry check). */
  loadTrustedIndex(data: Uint8Array): IndexTop {
    const ts = this.requireTimestamp();
    if (this.top !== null) {
      throw new UsageError("an index top is already loaded");
    }
    const top = verifyIndexTop(this.currentRoot, ts, data, `trusted index top ${ts.index.path}`);
    this.top = top;
    this.topRef = ts.index;
    this.groups.clear();
    return top;
  }

  /**
   * Accept a newly fetched index top pinned by the current timestamp.
   *
   * @throws TrustError `trust.expired`, `trust.length`, `trust.hash`, `trust.signature`,
   *   `trust.metadata`, `trust.rollback`.
   */
  updateIndex(data: Uint8Array): IndexTop {
    const ts = this.requireTimestamp();
    this.expiry("timestamp.json", ts.expires);
    const what = `index top ${ts.index.path}`;
    const top = verifyIndexTop(this.currentRoot, ts, data, what);
    const old = this.top;
    if (old !== null) {
      if (top.version < old.version) {
        throw new TrustError(
          "trust.rollback",
          `${what}: version ${top.version} is lower than trusted version ${old.version} (rollback)`,
        );
      }
      if (top.version === old.version && !ts.index.equals(this.topRef)) {
        throw new TrustError(
          "trust.rollback",
          `${what}: version ${top.version} equals the trusted version but its bytes differ (a signer reused a version number)`,
        );
      }
    }
    this.expiry(what, top.expires);
    this.top = top;
    this.topRef = ts.index;
    this.indexUpdated = true;
    this.groups.clear();
    return top;
  }

  /**
   * Verify the group node the current index top pins under `prefix`.
   *
   * @throws ResolutionError (`resolution`) No such group.
   * @throws TrustError `trust.expired`, `trust.length`, `trust.hash`, `trust.metadata`.
   */
  verifyGroup(prefix: string, data: Uint8Array): GroupNode {
    const top = this.currentIndex();
    if (prefix.length !== top.groupChars || !HEX_RE.test(prefix)) {
      throw new RangeError(
        `group prefix: expected ${top.groupChars} lowercase hex characters, got '${prefix}'`,
      );
    }
    const ref = top.groups.get(prefix);
    if (ref === undefined) {
      throw new ResolutionError(
        "resolution",
        `index top version ${top.version} has no group '${prefix}'`,
      );
    }
    const group = verifyGroupNode(ref, prefix, data, top.groupChars, top.binChars);
    this.groups.set(prefix, group);
    return group;
  }

  /**
   * Verify the bin node `group` pins under `prefix`.
   *
   * @throws UsageError `group` was not verified against the current index top.
   * @throws ResolutionError (`resolution`) No such bin.
   * @throws TrustError `trust.expired`, `trust.length`, `trust.hash`, `trust.metadata`.
   */
  verifyBin(group: GroupNode, prefix: string, data: Uint8Array): BinNode {
    const top = this.currentIndex();
    if (prefix.length !== top.binChars || !HEX_RE.test(prefix)) {
      throw new RangeError(
        `bin prefix: expected ${top.binChars} lowercase hex characters, got '${prefix}'`,
      );
    }
    // Only a group verified against the current top may lead to a bin (mix-and-match).
    if (this.groups.get(group.prefix) !== group) {
      throw new UsageError("group was not verified against the current index top");
    }
    const ref = group.bins.get(prefix);
    if (ref === undefined) {
      throw new ResolutionError(
        "resolution",
        `group '${group.prefix}' has no bin '${prefix}'`,
      );
    }
    return verifyBinNode(ref, prefix, data);
  }

  /**
   * Verify a release attestation with the trusted root. Ends the root walk; the root must
   * not be expired.
   */
  verifyRelease(input: EnvelopeInput): SignedRelease {
    this.rootFinal = true;
    this.expiry(this.rootName(), this.currentRoot.expires);
    return verifyRelease(this.currentRoot, input);
  }

  /**
   * Verify a bin entry's release and that it is the release the bin says it is.
   *
   * @throws TrustError As {@link verifyRelease}, or `trust.policy` when the signed name or
   *   version is not the one the bin lists.
   */
  verifyBinRelease(name: string, entry: BinRelease): SignedRelease {
    const signed = this.verifyRelease(entry.release);
    if (signed.release.name !== name || signed.release.version !== entry.version) {
      throw new TrustError(
        "trust.policy",
        `bin entry ${name} ${entry.version}: expected a release of ${name} ${entry.version}, got a release of ${signed.release.name} ${signed.release.version}`,
      );
    }
    return signed;
  }
}
