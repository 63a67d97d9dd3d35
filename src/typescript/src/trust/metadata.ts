/**
 * Typed index metadata and its strict parsers (FORMAT.md §3), mirroring `metadata.py`.
 *
 * These parsers run only on bytes whose signature (or pinning hash) was already checked
 * (verify, then parse); they are strict anyway: exact key sets, checked types (a boolean is
 * not an integer), fixed-length lowercase hex, positive versions and `Z` timestamps.
 *
 * One module, over 600 lines, on purpose (as `metadata.py`): one strict parser per file kind
 * of FORMAT.md §3, read side by side with the Python reader it must agree with.
 */

import { InvalidInput, TrustError } from "../errors.js";
import { type Envelope, parseEnvelope, typeName } from "./envelope.js";
import { PublicKey, sha256Hex } from "./keys.js";
import { isObject, type JsonObject, type JsonValue, strictJson } from "./strict-json.js";

export const SPEC_VERSION = 1;
const ROLE_NAMES = ["root", "index", "timestamp"] as const;
/** (group_chars, bin_chars) pairs an index top may declare (FORMAT.md §3 fan-out). */
export const SHARDING_LEVELS: readonly (readonly [number, number])[] = [
  [0, 0],
  [0, 2],
  [2, 4],
];
const PREFIX_LENGTHS = new Set([0, 2, 4]); // hex characters

const HEX64_RE = /^[0-9a-f]{64}$/;
const HEX_RE = /^[0-9a-f]*$/;
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const NAME_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MAX_NAME_LEN = 200; // characters
const VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z.+!_-]*$/;
const MAX_VERSION_LEN = 64; // characters
const SEGMENT = "[a-z0-9]+(?:[-_][a-z0-9]+)*";
const NAMESPACE_RE = new RegExp(`^${SEGMENT}$`);
const CONNECTOR_ID_RE = new RegExp(`^${SEGMENT}(?:\\.${SEGMENT})+$`);
const MAX_CONNECTOR_ID_LEN = 200; // characters
const CONNECTOR_TYPE_RE = /^[a-z][a-z0-9_-]*$/;
const MAX_TEXT_LEN = 1000; // characters of a free-text field
const PUBLISHER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Python's str.isprintable(): no control, format, surrogate, private-use, unassigned or
// separator characters other than the ASCII space.
const UNPRINTABLE_RE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

/** Signed (or hash-pinned) metadata is malformed. Code `trust.metadata`. */
export class MetadataError extends TrustError {
  constructor(message: string) {
    super("trust.metadata", message);
  }
}

// -- names and paths ----------------------------------------------------------

/**
 * Hex SHA-256 of a normalized package name: the path to its bin.
 *
 * @throws InvalidInput (`input.package-name`) The name is not normalized.
 */
export function nameHash(name: string): string {
  if (name.length > MAX_NAME_LEN || !NAME_RE.test(name)) {
    throw new InvalidInput(
      "input.package-name",
      `package name: expected [a-z0-9]+(-[a-z0-9]+)* of at most ${MAX_NAME_LEN} characters, got ${JSON.stringify(name).slice(0, 80)}`,
    );
  }
  return sha256Hex(Buffer.from(name, "ascii"));
}

/** `archives/<name>/<name>-<version>.zip`. */
export function archivePath(name: string, version: string): string {
  return `archives/${name}/${name}-${version}.zip`;
}

/** The namespace (first dot-separated segment) of a connector ID. */
export function connectorNamespace(connectorId: string): string {
  return connectorId.split(".", 1)[0] ?? "";
}

/**
 * Parse an RFC 3339 UTC time with `Z` and whole seconds.
 *
 * @throws RangeError Any other spelling or an impossible date.
 */
export function parseTime(text: string): Date {
  const m = TIME_RE.exec(text);
  if (m === null) {
    throw new RangeError(`expected YYYY-MM-DDTHH:MM:SSZ, got ${JSON.stringify(text).slice(0, 80)}`);
  }
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  // Round-trip check: month 13, day 31 of a 30-day month, hour 24 or year 0 are refused.
  if (
    y < 1 ||
    date.getUTCFullYear() !== y ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== s
  ) {
    throw new RangeError(`expected a valid date and time, got ${JSON.stringify(text)}`);
  }
  return date;
}

/** Format as RFC 3339 UTC `Z` with whole seconds (truncating). */
export function formatTime(when: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${p(when.getUTCFullYear(), 4)}-${p(when.getUTCMonth() + 1)}-${p(when.getUTCDate())}T${p(when.getUTCHours())}:${p(when.getUTCMinutes())}:${p(when.getUTCSeconds())}Z`;
}

// -- strict field readers -------------------------------------------------------

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) {
    n++;
  }
  return n;
}

class Reader {
  constructor(readonly what: string) {}

  fail(field: string, problem: string): MetadataError {
    return new MetadataError(`${this.what}: ${field}: ${problem}`);
  }

  obj(
    value: JsonValue | undefined,
    field: string,
    required: readonly string[],
    optional: readonly string[] = [],
  ): JsonObject {
    if (!isObject(value)) {
      throw this.fail(field, `expected an object, got ${typeName(value)}`);
    }
    const keys = Object.keys(value);
    const missing = required.filter((k) => !Object.hasOwn(value, k)).sort();
    const extra = keys.filter((k) => !required.includes(k) && !optional.includes(k)).sort();
    if (missing.length > 0) {
      throw this.fail(field, `missing field(s) ${JSON.stringify(missing)}`);
    }
    if (extra.length > 0) {
      throw this.fail(field, `unknown field(s) ${JSON.stringify(extra)}`);
    }
    return value;
  }

  mapping(value: JsonValue | undefined, field: string): JsonObject {
    if (!isObject(value)) {
      throw this.fail(field, `expected an object, got ${typeName(value)}`);
    }
    return value;
  }

  array(value: JsonValue | undefined, field: string, nonempty = false): JsonValue[] {
    if (!Array.isArray(value)) {
      throw this.fail(field, `expected a list, got ${typeName(value)}`);
    }
    if (nonempty && value.length === 0) {
      throw this.fail(field, "expected a non-empty list, got []");
    }
    return value;
  }

  integer(value: JsonValue | undefined, field: string, minimum = 1): number {
    if (typeof value !== "number") {
      throw this.fail(field, `expected an integer, got ${typeName(value)}`);
    }
    if (value < minimum) {
      throw this.fail(field, `expected an integer >= ${minimum}, got ${value}`);
    }
    return value;
  }

  boolean(value: JsonValue | undefined, field: string): boolean {
    if (typeof value !== "boolean") {
      throw this.fail(field, `expected true or false, got ${typeName(value)}`);
    }
    return value;
  }

  text(
    value: JsonValue | undefined,
    field: string,
    pattern: RegExp | null = null,
    maxLen = MAX_TEXT_LEN,
    describe = "a string",
  ): string {
    if (typeof value !== "string") {
      throw this.fail(field, `expected ${describe}, got ${typeName(value)}`);
    }
    const shown = JSON.stringify(value).slice(0, 80);
    const n = codePoints(value);
    if (n === 0 || n > maxLen) {
      throw this.fail(field, `expected ${describe} of 1 to ${maxLen} characters, got ${shown}`);
    }
    if (pattern !== null && !pattern.test(value)) {
      throw this.fail(field, `expected ${describe}, got ${shown}`);
    }
    if (pattern === null && UNPRINTABLE_RE.test(value)) {
      throw this.fail(field, `expected printable text, got ${shown}`);
    }
    return value;
  }

  prefix(value: JsonValue | undefined, field: string, lengths: ReadonlySet<number>): string {
    if (typeof value !== "string" || !lengths.has(value.length) || !HEX_RE.test(value)) {
      const shown = [...lengths].sort().join(" or ");
      throw this.fail(
        field,
        `expected a prefix of ${shown} lowercase hex characters, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  }

  hex64(value: JsonValue | undefined, field: string): string {
    return this.text(value, field, HEX64_RE, 64, "64 lowercase hex characters");
  }

  time(value: JsonValue | undefined, field: string): Date {
    const text = this.text(
      value,
      field,
      TIME_RE,
      20,
      "an RFC 3339 UTC time like 2027-01-01T00:00:00Z",
    );
    try {
      return parseTime(text);
    } catch (err) {
      throw this.fail(field, (err as Error).message);
    }
  }

  spec(obj: JsonObject): void {
    const spec = this.integer(obj["spec"], "spec");
    if (spec !== SPEC_VERSION) {
      throw this.fail("spec", `expected spec version ${SPEC_VERSION}, got ${spec}`);
    }
  }

  metaRef(value: JsonValue | undefined, field: string): MetaRef {
    const obj = this.obj(value, field, ["sha256", "length"]);
    return new MetaRef(
      this.hex64(obj["sha256"], `${field}.sha256`),
      this.integer(obj["length"], `${field}.length`),
    );
  }
}

function load(payload: Uint8Array, what: string, kind: string): JsonObject {
  let obj: JsonValue;
  try {
    obj = strictJson(payload);
  } catch (err) {
    throw new MetadataError(`${what}: ${(err as Error).message}`);
  }
  if (!isObject(obj)) {
    throw new MetadataError(`${what}: expected a JSON object, got ${typeName(obj)}`);
  }
  // The kind is checked first so a file of another kind gets a clear message.
  if (obj["type"] !== kind) {
    throw new MetadataError(
      `${what}: type: expected '${kind}', got ${JSON.stringify(obj["type"] ?? null).slice(0, 80)}`,
    );
  }
  return obj;
}

// -- root -------------------------------------------------------------------------

/** Who may sign one role's files. */
export interface RoleSpec {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

/** A third party allowed to sign releases of connectors in its namespaces. */
export interface Publisher extends RoleSpec {
  readonly name: string;
  readonly namespaces: readonly string[];
}

/** Tell whether a connector ID's namespace is one of the publisher's. */
export function publisherCovers(publisher: Publisher, connectorId: string): boolean {
  return publisher.namespaces.includes(connectorNamespace(connectorId));
}

/** The root of trust (`root/N.json`). */
export interface Root {
  readonly version: number;
  readonly expires: Date;
  readonly keys: ReadonlyMap<string, PublicKey>;
  readonly root: RoleSpec;
  readonly index: RoleSpec;
  readonly timestamp: RoleSpec;
  readonly publishers: readonly Publisher[];
}

function roleKeyids(
  r: Reader,
  value: JsonValue | undefined,
  field: string,
  keys: ReadonlyMap<string, PublicKey>,
): string[] {
  const out: string[] = [];
  r.array(value, field, true).forEach((raw, i) => {
    const kid = r.hex64(raw, `${field}[${i}]`);
    // A key listed twice would be counted twice by a naive threshold check.
    if (out.includes(kid)) {
      throw r.fail(field, `key ID ${kid} is listed twice`);
    }
    if (!keys.has(kid)) {
      throw r.fail(field, `key ID ${kid} is not in 'keys'`);
    }
    out.push(kid);
  });
  return out;
}

function threshold(r: Reader, value: JsonValue | undefined, field: string, count: number): number {
  const t = r.integer(value, field);
  if (t > count) {
    throw r.fail(
      field,
      `expected a threshold between 1 and ${count} (the number of keys), got ${t}`,
    );
  }
  return t;
}

/**
 * Parse a root payload.
 *
 * @throws MetadataError Any deviation from FORMAT.md §3 root, including a key ID that is
 *   not the SHA-256 of its key, duplicate or unknown role key IDs, or a bad threshold.
 */
export function parseRoot(payload: Uint8Array, what = "root"): Root {
  const r = new Reader(what);
  const obj = r.obj(
    load(payload, what, "root"),
    "root",
    ["type", "spec", "version", "expires", "keys", "roles"],
    ["publishers"],
  );
  r.spec(obj);
  const version = r.integer(obj["version"], "version");
  const expires = r.time(obj["expires"], "expires");
  const keys = new Map<string, PublicKey>();
  for (const [kid, entry] of Object.entries(r.mapping(obj["keys"], "keys"))) {
    const field = `keys.${kid.slice(0, 16)}`;
    r.hex64(kid, "keys");
    const e = r.obj(entry, field, ["keytype", "public"]);
    if (e["keytype"] !== "ed25519") {
      throw r.fail(
        `${field}.keytype`,
        `expected 'ed25519', got ${JSON.stringify(e["keytype"]).slice(0, 40)}`,
      );
    }
    let key: PublicKey;
    try {
      key = PublicKey.fromHex(e["public"]);
    } catch (err) {
      throw r.fail(`${field}.public`, (err as Error).message);
    }
    // An ID that is not the key's hash would let one key count twice under two IDs.
    if (key.keyid !== kid) {
      throw r.fail(field, `key ID ${kid} is not the SHA-256 of its key (${key.keyid})`);
    }
    keys.set(kid, key);
  }
  const rolesObj = r.obj(obj["roles"], "roles", ROLE_NAMES);
  const roles = new Map<string, RoleSpec>();
  for (const name of ROLE_NAMES) {
    const field = `roles.${name}`;
    const role = r.obj(rolesObj[name], field, ["keyids", "threshold"]);
    const keyids = roleKeyids(r, role["keyids"], `${field}.keyids`, keys);
    roles.set(name, {
      keyids,
      threshold: threshold(r, role["threshold"], `${field}.threshold`, keyids.length),
    });
  }
  const publishers: Publisher[] = [];
  r.array(obj["publishers"] ?? [], "publishers").forEach((entry, i) => {
    const field = `publishers[${i}]`;
    const p = r.obj(entry, field, ["name", "keyids", "threshold", "namespaces"]);
    const name = r.text(p["name"], `${field}.name`, PUBLISHER_NAME_RE, 100, "a publisher name");
    if (publishers.some((q) => q.name === name)) {
      throw r.fail(`${field}.name`, `publisher name '${name}' is used twice`);
    }
    const keyids = roleKeyids(r, p["keyids"], `${field}.keyids`, keys);
    const t = threshold(r, p["threshold"], `${field}.threshold`, keyids.length);
    const namespaces: string[] = [];
    r.array(p["namespaces"], `${field}.namespaces`, true).forEach((raw, j) => {
      const ns = r.text(
        raw,
        `${field}.namespaces[${j}]`,
        NAMESPACE_RE,
        100,
        "a connector namespace",
      );
      if (namespaces.includes(ns)) {
        throw r.fail(`${field}.namespaces`, `namespace '${ns}' is listed twice`);
      }
      namespaces.push(ns);
    });
    publishers.push({ name, keyids, threshold: t, namespaces });
  });
  return {
    version,
    expires,
    keys,
    root: roles.get("root") as RoleSpec,
    index: roles.get("index") as RoleSpec,
    timestamp: roles.get("timestamp") as RoleSpec,
    publishers,
  };
}

// -- timestamp and index top --------------------------------------------------------

/** A hash-and-length pin of one immutable file. */
export class MetaRef {
  constructor(
    readonly sha256: string,
    readonly length: number,
  ) {}

  /** The content-addressed path `meta/<sha256>.json`. */
  get path(): string {
    return `meta/${this.sha256}.json`;
  }

  equals(other: MetaRef | null | undefined): boolean {
    return other != null && other.sha256 === this.sha256 && other.length === this.length;
  }

  /** Pin `data`. */
  static of(data: Uint8Array): MetaRef {
    return new MetaRef(sha256Hex(data), data.length);
  }
}

/** The timestamp a newer one replaces: its version and the SHA-256 of its payload (FORMAT.md §3 history). */
export interface TimestampLink {
  readonly version: number;
  readonly sha256: string;
}

/** `history/<version>-<sha256>.json`: where the timestamp a link names is kept for good. */
export function historyPath(link: TimestampLink): string {
  return `history/${link.version}-${link.sha256}.json`;
}

/** The freshness file (`timestamp.json`). */
export interface Timestamp {
  readonly version: number;
  readonly expires: Date;
  readonly indexVersion: number;
  readonly index: MetaRef;
  /** The timestamp this one replaced; null in version 1 and in timestamps written before history. */
  readonly previous: TimestampLink | null;
}

/**
 * Parse a timestamp payload.
 *
 * @throws MetadataError Any deviation from FORMAT.md §3 timestamp.
 */
export function parseTimestamp(payload: Uint8Array, what = "timestamp.json"): Timestamp {
  const r = new Reader(what);
  const obj = r.obj(
    load(payload, what, "timestamp"),
    "timestamp",
    ["type", "spec", "version", "expires", "index"],
    ["previous"],
  );
  r.spec(obj);
  const index = r.obj(obj["index"], "index", ["version", "sha256", "length"]);
  const version = r.integer(obj["version"], "version");
  let previous: TimestampLink | null = null;
  if (Object.hasOwn(obj, "previous")) {
    const link = r.obj(obj["previous"], "previous", ["version", "sha256"]);
    previous = {
      version: r.integer(link["version"], "previous.version"),
      sha256: r.hex64(link["sha256"], "previous.sha256"),
    };
    if (previous.version >= version) {
      throw r.fail("previous.version", `expected a version below ${version}, got ${previous.version}`);
    }
  }
  return {
    version,
    expires: r.time(obj["expires"], "expires"),
    indexVersion: r.integer(index["version"], "index.version"),
    index: new MetaRef(
      r.hex64(index["sha256"], "index.sha256"),
      r.integer(index["length"], "index.length"),
    ),
    previous,
  };
}

/** The index top: group prefix → group node pin, and the fan-out of the tree. */
export interface IndexTop {
  readonly version: number;
  readonly expires: Date;
  readonly groups: ReadonlyMap<string, MetaRef>;
  readonly groupChars: number;
  readonly binChars: number;
  /** Package names in the tree (publishers since history write it); null when absent. */
  readonly packages: number | null;
}

/**
 * Parse an index top payload.
 *
 * @throws MetadataError Any deviation from FORMAT.md §3 index top.
 */
export function parseIndexTop(payload: Uint8Array, what = "index top"): IndexTop {
  const r = new Reader(what);
  const obj = r.obj(
    load(payload, what, "index"),
    "index",
    ["type", "spec", "version", "expires", "group_chars", "bin_chars", "groups"],
    ["packages"],
  );
  r.spec(obj);
  const groupChars = r.integer(obj["group_chars"], "group_chars", 0);
  const binChars = r.integer(obj["bin_chars"], "bin_chars", 0);
  if (!SHARDING_LEVELS.some(([g, b]) => g === groupChars && b === binChars)) {
    throw r.fail(
      "group_chars, bin_chars",
      `expected one of (0, 0), (0, 2), (2, 4), got (${groupChars}, ${binChars})`,
    );
  }
  const groups = new Map<string, MetaRef>();
  for (const [prefix, ref] of Object.entries(r.mapping(obj["groups"], "groups"))) {
    r.prefix(prefix, "groups", new Set([groupChars]));
    groups.set(prefix, r.metaRef(ref, `groups.${prefix}`));
  }
  return {
    version: r.integer(obj["version"], "version"),
    expires: r.time(obj["expires"], "expires"),
    groups,
    groupChars,
    binChars,
    packages: Object.hasOwn(obj, "packages") ? r.integer(obj["packages"], "packages", 0) : null,
  };
}

// -- group and bin nodes ----------------------------------------------------------

/** A group node: bin prefix → bin node pin. */
export interface GroupNode {
  readonly prefix: string;
  readonly bins: ReadonlyMap<string, MetaRef>;
}

/**
 * Parse a group node.
 *
 * @throws MetadataError Any deviation from FORMAT.md §3 (prefix lengths against the top
 *   are checked by the trust core).
 */
export function parseGroup(data: Uint8Array, what = "group node"): GroupNode {
  const r = new Reader(what);
  const obj = r.obj(load(data, what, "group"), "group", ["type", "prefix", "bins"]);
  const prefix = r.prefix(obj["prefix"], "prefix", PREFIX_LENGTHS);
  const bins = new Map<string, MetaRef>();
  for (const [bp, ref] of Object.entries(r.mapping(obj["bins"], "bins"))) {
    r.prefix(bp, "bins", PREFIX_LENGTHS);
    if (!bp.startsWith(prefix)) {
      throw r.fail("bins", `bin prefix ${bp} does not start with group prefix ${prefix}`);
    }
    bins.set(bp, r.metaRef(ref, `bins.${bp}`));
  }
  return { prefix, bins };
}

/** One release entry of a package in a bin. */
export interface BinRelease {
  readonly version: string;
  readonly release: Envelope;
  readonly yanked: boolean;
  readonly yankedReason: string | null;
}

/** A bin node: every package whose name hash starts with `prefix`. */
export interface BinNode {
  readonly prefix: string;
  readonly packages: ReadonlyMap<string, readonly BinRelease[]>;
}

/**
 * Parse a bin node (embedded release envelopes parsed, not verified).
 *
 * @throws MetadataError Any deviation from FORMAT.md §3.
 */
export function parseBin(data: Uint8Array, what = "bin node"): BinNode {
  const r = new Reader(what);
  const obj = r.obj(load(data, what, "bin"), "bin", ["type", "prefix", "packages"]);
  const prefix = r.prefix(obj["prefix"], "prefix", PREFIX_LENGTHS);
  const packages = new Map<string, BinRelease[]>();
  for (const [name, entries] of Object.entries(r.mapping(obj["packages"], "packages"))) {
    let h: string;
    try {
      h = nameHash(name);
    } catch (err) {
      throw r.fail("packages", (err as Error).message);
    }
    // A package filed under the wrong bin could shadow a lookup path.
    if (!h.startsWith(prefix)) {
      throw r.fail(
        `packages.${name}`,
        `name hash ${h.slice(0, Math.max(prefix.length, 4))}… does not start with bin prefix '${prefix}'`,
      );
    }
    const releases: BinRelease[] = [];
    r.array(entries, `packages.${name}`, true).forEach((entry, i) => {
      const field = `packages.${name}[${i}]`;
      const item = r.obj(entry, field, ["version", "release", "yanked", "yanked_reason"]);
      const version = r.text(
        item["version"],
        `${field}.version`,
        VERSION_RE,
        MAX_VERSION_LEN,
        "a version",
      );
      if (releases.some((x) => x.version === version)) {
        throw r.fail(`packages.${name}`, `version ${version} is listed twice`);
      }
      let release: Envelope;
      try {
        release = parseEnvelope(r.mapping(item["release"], `${field}.release`));
      } catch (err) {
        if (err instanceof MetadataError) {
          throw err;
        }
        throw r.fail(`${field}.release`, (err as Error).message);
      }
      const yanked = r.boolean(item["yanked"], `${field}.yanked`);
      let reason: string | null = null;
      if (item["yanked_reason"] !== null) {
        reason = r.text(item["yanked_reason"], `${field}.yanked_reason`);
        if (!yanked) {
          throw r.fail(`${field}.yanked_reason`, "expected null for a release that is not yanked");
        }
      }
      releases.push({ version, release, yanked, yankedReason: reason });
    });
    packages.set(name, releases);
  }
  return { prefix, packages };
}

// -- release ------------------------------------------------------------------------

/** One connector a release declares. */
export interface ReleaseConnector {
  readonly id: string;
  readonly type: string;
}

/** A release attestation binding name, version, file, hash and length. */
export interface Release {
  readonly name: string;
  readonly version: string;
  readonly file: string;
  readonly sha256: string;
  readonly length: number;
  readonly requiresModelmesh: string | null;
  readonly connectors: readonly ReleaseConnector[];
  /** The runtimes every connector has an entry point for, sorted; `["python"]` when omitted. */
  readonly runtimes: readonly string[];
}

/** The runtimes a release may declare, sorted (FORMAT.md §3). */
export const RUNTIMES = ["node", "python"] as const;
/** A release without `runtimes` (every spec 1 release before the field). */
export const DEFAULT_RUNTIMES: readonly string[] = ["python"];
const RUNTIME_RE = /^[a-z][a-z0-9]*$/;

/**
 * Parse a release payload.
 *
 * @throws MetadataError Any deviation from FORMAT.md §3 release, including a `file` other
 *   than `archives/<name>/<name>-<version>.zip` or a connector ID listed twice.
 */
export function parseRelease(payload: Uint8Array, what = "release"): Release {
  const r = new Reader(what);
  const obj = r.obj(load(payload, what, "release"), "release", [
    "type",
    "spec",
    "name",
    "version",
    "file",
    "sha256",
    "length",
    "requires_modelmesh",
    "connectors",
  ], ["runtimes"]);
  r.spec(obj);
  const name = r.text(obj["name"], "name", NAME_RE, MAX_NAME_LEN, "a normalized package name");
  const version = r.text(obj["version"], "version", VERSION_RE, MAX_VERSION_LEN, "a version");
  const file = r.text(obj["file"], "file", null, 1000, "an archive path");
  // The path is fully determined by name and version: a signed release can never point
  // a client at another file (or outside the index with '..').
  if (file !== archivePath(name, version)) {
    throw r.fail(
      "file",
      `expected '${archivePath(name, version)}', got ${JSON.stringify(file).slice(0, 120)}`,
    );
  }
  let requires: string | null = null;
  if (obj["requires_modelmesh"] !== null) {
    requires = r.text(obj["requires_modelmesh"], "requires_modelmesh", null, 200, "a specifier");
  }
  const connectors: ReleaseConnector[] = [];
  r.array(obj["connectors"], "connectors", true).forEach((entry, i) => {
    const field = `connectors[${i}]`;
    const c = r.obj(entry, field, ["id", "type"]);
    const id = r.text(
      c["id"],
      `${field}.id`,
      CONNECTOR_ID_RE,
      MAX_CONNECTOR_ID_LEN,
      "a connector ID like vendor.name.v1",
    );
    if (connectors.some((x) => x.id === id)) {
      throw r.fail("connectors", `connector ID ${id} is listed twice`);
    }
    const type = r.text(c["type"], `${field}.type`, CONNECTOR_TYPE_RE, 64, "a connector type");
    connectors.push({ id, type });
  });
  let runtimes = DEFAULT_RUNTIMES;
  if (Object.hasOwn(obj, "runtimes")) {
    runtimes = r
      .array(obj["runtimes"], "runtimes", true)
      .map((x, i) => r.text(x, `runtimes[${i}]`, RUNTIME_RE, 16, "a runtime name"));
    // One spelling per set (sorted, distinct, known): two readers agree on what it says.
    const canonical = [...new Set(runtimes)].sort();
    if (runtimes.join() !== canonical.join() || !runtimes.every((x) => (RUNTIMES as readonly string[]).includes(x))) {
      throw r.fail("runtimes", `expected distinct names from ${JSON.stringify(RUNTIMES)} in sorted order, got ${JSON.stringify(runtimes).slice(0, 120)}`);
    }
    if (runtimes.join() === DEFAULT_RUNTIMES.join()) {
      throw r.fail("runtimes", '["python"] is the default and is written by omission');
    }
  }
  return {
    name,
    version,
    file,
    sha256: r.hex64(obj["sha256"], "sha256"),
    length: r.integer(obj["length"], "length"),
    requiresModelmesh: requires,
    connectors,
    runtimes,
  };
}
