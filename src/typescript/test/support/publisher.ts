/**
 * A test-side publisher and repository simulator: builds and signs a FORMAT.md index in
 * memory with throwaway Ed25519 keys, and can corrupt, roll back, re-sign, rotate and expire
 * anything. Output is byte-compatible with the Python publisher's deterministic form.
 */

import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";

import { envelopeToJson, pae } from "../../src/trust/envelope.js";
import { formatTime } from "../../src/trust/metadata.js";
import { canonicalJson, type JsonObject, type JsonValue } from "../../src/trust/strict-json.js";
import { zipFiles } from "./zip-writer.js";

export const ROOT_TYPE = "application/vnd.modelmesh.root+json";
export const TIMESTAMP_TYPE = "application/vnd.modelmesh.timestamp+json";
export const INDEX_TYPE = "application/vnd.modelmesh.index+json";
export const RELEASE_TYPE = "application/vnd.modelmesh.release+json";

export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A throwaway Ed25519 signing key. */
export class TestKey {
  readonly privateKey: KeyObject;
  readonly publicHex: string;
  readonly keyid: string;

  constructor() {
    const pair = generateKeyPairSync("ed25519");
    this.privateKey = pair.privateKey;
    const der = pair.publicKey.export({ format: "der", type: "spki" });
    const raw = der.subarray(der.length - 32);
    this.publicHex = raw.toString("hex");
    this.keyid = sha256(raw);
  }

  sign(data: Uint8Array): Uint8Array {
    return sign(null, data, this.privateKey);
  }
}

/** Sign a payload; returns the envelope object (signatures sorted by key ID). */
export function signEnvelope(payloadType: string, payload: Uint8Array, keys: readonly TestKey[]): JsonObject {
  const unique = [...new Map(keys.map((k) => [k.keyid, k])).values()].sort((a, b) =>
    a.keyid < b.keyid ? -1 : 1,
  );
  return envelopeToJson({
    payloadType,
    payload,
    signatures: unique.map((k) => ({ keyid: k.keyid, sig: k.sign(pae(payloadType, payload)) })),
  });
}

export function envelopeBytes(payloadType: string, payload: JsonValue, keys: readonly TestKey[]): Uint8Array {
  return canonicalJson(signEnvelope(payloadType, canonicalJson(payload), keys));
}

export interface TestConnector {
  id: string;
  type: string;
  /** Node entry; omitted for a Python-only connector. */
  node?: { module: string; export: string };
  entry?: string;
}

/** The manifest YAML of a test package. */
export function manifestYaml(name: string, version: string, connectors: readonly TestConnector[]): string {
  const lines = [`name: ${name}`, `version: "${version}"`, "description: Test package", "connectors:"];
  for (const c of connectors) {
    lines.push(`  - id: ${c.id}`, `    type: ${c.type}`);
    if (c.entry !== undefined) {
      lines.push(`    entry: ${c.entry}`);
    }
    if (c.node !== undefined) {
      lines.push("    node:", `      module: ${c.node.module}`, `      export: ${c.node.export}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Source of a JS connector class implementing `type` with a static connectorId. */
export function connectorSource(id: string, type: string, className: string, extra = ""): string {
  const methods: Record<string, string[]> = {
    observability: ["emit", "log", "flush", "trace"],
    secret_store: ["get"],
    storage: ["load", "save", "list", "delete", "stat", "exists"],
    rotation: ["select", "score"],
    discovery: ["sync", "get_sync_status", "probe", "get_health_report"],
    provider: [
      "complete",
      "stream",
      "get_capabilities",
      "supports",
      "list_models",
      "get_model_info",
      "check_quota",
      "get_rate_limits",
      "get_pricing",
      "report_usage",
      "classify_error",
    ],
  };
  const body = (methods[type] ?? []).map((m) => `  ${m}(...args) { return args; }`).join("\n");
  return `${extra}\nexport class ${className} {\n  static connectorId = ${JSON.stringify(id)};\n  static description = "A test connector";\n${body}\n}\n`;
}

/** A JS package zip: one observability connector split over two modules (relative import). */
export function jsPackage(name: string, version: string, id: string, type = "observability"): Uint8Array {
  const cls = "Sink";
  return zipFiles({
    "modelmesh-package.yaml": manifestYaml(name, version, [
      { id, type, node: { module: "lib/index.mjs", export: cls } },
    ]),
    "lib/index.mjs": `import { tag } from "./util/tag.mjs";\n${connectorSource(id, type, cls, "")}\nexport const TAG = tag;\n`,
    "lib/util/tag.mjs": `export const tag = ${JSON.stringify(`${name}@${version}`)};\n`,
  });
}

interface PublishedRelease {
  version: string;
  release: JsonObject;
  yanked: boolean;
  yanked_reason: string | null;
}

export interface PublisherOptions {
  /** Reference "now" of the simulated world. */
  now?: Date;
  /** Days until each role's files expire. */
  rootDays?: number;
  indexDays?: number;
  timestampDays?: number;
  /** Fan-out (G, B). */
  level?: [number, number];
  rootThreshold?: number;
  rootKeyCount?: number;
  publishers?: { name: string; keys: TestKey[]; namespaces: string[]; threshold?: number }[];
  /**
   * Chain timestamps with `previous` and keep each one under `history/` (FORMAT.md §3, the
   * default, as every publisher since history); false writes a pre-history index.
   */
  history?: boolean;
}

/** The repository simulator. */
export class TestPublisher {
  readonly files = new Map<string, Uint8Array>();
  rootKeys: TestKey[];
  rootThreshold: number;
  indexKey = new TestKey();
  timestampKey = new TestKey();
  publishers: NonNullable<PublisherOptions["publishers"]>;
  rootVersion = 0;
  indexVersion = 0;
  timestampVersion = 0;
  history: boolean;
  /** The last timestamp written (version, payload bytes) and the link it carried. */
  private lastTimestamp: { version: number; payload: Uint8Array; previous: JsonObject | null } | null = null;
  level: [number, number];
  now: Date;
  rootDays: number;
  indexDays: number;
  timestampDays: number;
  readonly packages = new Map<string, PublishedRelease[]>();

  constructor(opts: PublisherOptions = {}) {
    this.now = opts.now ?? new Date("2026-01-01T00:00:00Z");
    this.rootDays = opts.rootDays ?? 365;
    this.indexDays = opts.indexDays ?? 90;
    this.timestampDays = opts.timestampDays ?? 7;
    this.level = opts.level ?? [0, 0];
    this.rootKeys = Array.from({ length: opts.rootKeyCount ?? 2 }, () => new TestKey());
    this.rootThreshold = opts.rootThreshold ?? 1;
    this.publishers = opts.publishers ?? [];
    this.history = opts.history ?? true;
    this.writeRoot(this.rootKeys);
  }

  private expires(days: number): string {
    return formatTime(new Date(this.now.getTime() + days * 86_400_000));
  }

  rootPayload(version: number): JsonObject {
    const keys: JsonObject = {};
    const all = [...this.rootKeys, this.indexKey, this.timestampKey, ...this.publishers.flatMap((p) => p.keys)];
    for (const k of all) {
      keys[k.keyid] = { keytype: "ed25519", public: k.publicHex };
    }
    const payload: JsonObject = {
      type: "root",
      spec: 1,
      version,
      expires: this.expires(this.rootDays),
      keys,
      roles: {
        root: { keyids: this.rootKeys.map((k) => k.keyid), threshold: this.rootThreshold },
        index: { keyids: [this.indexKey.keyid], threshold: 1 },
        timestamp: { keyids: [this.timestampKey.keyid], threshold: 1 },
      },
    };
    if (this.publishers.length > 0) {
      payload["publishers"] = this.publishers.map((p) => ({
        name: p.name,
        keyids: p.keys.map((k) => k.keyid),
        threshold: p.threshold ?? 1,
        namespaces: p.namespaces,
      }));
    }
    return payload;
  }

  /** Write root/<N+1>.json signed by `signers` (default: old and new root keys). */
  writeRoot(signers: TestKey[]): Uint8Array {
    this.rootVersion++;
    const data = envelopeBytes(ROOT_TYPE, this.rootPayload(this.rootVersion), signers);
    this.files.set(`root/${this.rootVersion}.json`, data);
    return data;
  }

  /** Rotate: new root keys (and optionally new timestamp key); signed by old and new. */
  rotateRoot(opts: { newRootKeys?: TestKey[]; newTimestampKey?: boolean; signers?: TestKey[] } = {}): Uint8Array {
    const old = this.rootKeys;
    if (opts.newRootKeys) {
      this.rootKeys = opts.newRootKeys;
    }
    if (opts.newTimestampKey) {
      this.timestampKey = new TestKey();
    }
    return this.writeRoot(opts.signers ?? [...old, ...this.rootKeys]);
  }

  /** The shipped anchor (root/1.json). */
  anchor(): Uint8Array {
    return this.files.get("root/1.json") as Uint8Array;
  }

  /** Add a release of archive bytes; `signers` defaults to the index key, `runtimes` to `["node"]`. */
  addRelease(
    name: string,
    version: string,
    archive: Uint8Array,
    connectors: { id: string; type: string }[],
    opts: { signers?: TestKey[]; yanked?: string; releaseOverride?: Partial<JsonObject>; runtimes?: string[] } = {},
  ): void {
    const file = `archives/${name}/${name}-${version}.zip`;
    const payload: JsonObject = {
      type: "release",
      spec: 1,
      name,
      version,
      file,
      sha256: sha256(archive),
      length: archive.length,
      requires_modelmesh: null,
      connectors: connectors.map((c) => ({ id: c.id, type: c.type })),
      // Test packages are JS packages; a Python-only release omits the field (FORMAT.md §3).
      ...((opts.runtimes ?? ["node"]).join() === "python" ? {} : { runtimes: opts.runtimes ?? ["node"] }),
      ...(opts.releaseOverride as JsonObject | undefined),
    };
    const env = signEnvelope(RELEASE_TYPE, canonicalJson(payload), opts.signers ?? [this.indexKey]);
    this.files.set(file, archive);
    this.files.set(`${file}.sig`, canonicalJson(env));
    const list = this.packages.get(name) ?? [];
    list.push({
      version,
      release: env,
      yanked: opts.yanked !== undefined,
      yanked_reason: opts.yanked ?? null,
    });
    this.packages.set(name, list);
  }

  private putMeta(data: Uint8Array): JsonObject {
    const digest = sha256(data);
    this.files.set(`meta/${digest}.json`, data);
    return { sha256: digest, length: data.length };
  }

  /** Write bins, groups, a new top and a new timestamp (the timestamp last). */
  commit(opts: { indexVersion?: number; timestampVersion?: number } = {}): void {
    const [g, b] = this.level;
    const bins = new Map<string, JsonObject>();
    for (const name of [...this.packages.keys()].sort()) {
      const bp = sha256(name).slice(0, b);
      const bin = bins.get(bp) ?? {};
      bin[name] = (this.packages.get(name) ?? []).map((r) => ({ ...r }) as unknown as JsonValue);
      bins.set(bp, bin);
    }
    const groups = new Map<string, JsonObject>();
    for (const [bp, packages] of [...bins.entries()].sort()) {
      const ref = this.putMeta(canonicalJson({ type: "bin", prefix: bp, packages }));
      const gp = bp.slice(0, g);
      const group = groups.get(gp) ?? {};
      group[bp] = ref;
      groups.set(gp, group);
    }
    const groupRefs: JsonObject = {};
    for (const [gp, binsOf] of groups) {
      groupRefs[gp] = this.putMeta(canonicalJson({ type: "group", prefix: gp, bins: binsOf }));
    }
    this.indexVersion = opts.indexVersion ?? this.indexVersion + 1;
    const top = envelopeBytes(
      INDEX_TYPE,
      {
        type: "index",
        spec: 1,
        version: this.indexVersion,
        expires: this.expires(this.indexDays),
        group_chars: g,
        bin_chars: b,
        groups: groupRefs,
      },
      [this.indexKey],
    );
    const topRef = this.putMeta(top);
    this.writeTimestamp(topRef, opts.timestampVersion);
  }

  /**
   * Re-sign the timestamp over the current top (new version unless given). With history it
   * links to the last timestamp of a lower version and is kept as `history/<v>-<sha>.json`.
   */
  writeTimestamp(topRef?: JsonObject, version?: number): Uint8Array {
    const ref = topRef ?? this.currentTopRef();
    this.timestampVersion = version ?? this.timestampVersion + 1;
    const last = this.lastTimestamp;
    let previous: JsonObject | null = null;
    if (this.history && last !== null) {
      previous =
        last.version < this.timestampVersion ? { version: last.version, sha256: sha256(last.payload) } : last.previous;
    }
    const payload = canonicalJson({
      type: "timestamp",
      spec: 1,
      version: this.timestampVersion,
      expires: this.expires(this.timestampDays),
      index: { version: this.indexVersion, ...ref },
      ...(previous === null ? {} : { previous }),
    });
    const data = canonicalJson(signEnvelope(TIMESTAMP_TYPE, payload, [this.timestampKey]));
    this.lastTimestamp = { version: this.timestampVersion, payload, previous };
    if (this.history) {
      this.files.set(`history/${this.timestampVersion}-${sha256(payload)}.json`, data);
    }
    this.files.set("timestamp.json", data);
    return data;
  }

  private currentTopRef(): JsonObject {
    const ts = this.files.get("timestamp.json");
    if (ts === undefined) {
      throw new Error("no timestamp yet");
    }
    const env = JSON.parse(Buffer.from(ts).toString()) as { payload: string };
    const payload = JSON.parse(Buffer.from(env.payload, "base64").toString()) as {
      index: { sha256: string; length: number };
    };
    return { sha256: payload.index.sha256, length: payload.index.length };
  }

  /** A snapshot of every file (to serve an older state later). */
  snapshot(): Map<string, Uint8Array> {
    return new Map(this.files);
  }
}
