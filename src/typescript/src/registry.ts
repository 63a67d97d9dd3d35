/**
 * `ConnectorRegistry`: connectors by ID, registered at run time or loaded from verified
 * packages (the TypeScript twin of `registry.py`).
 *
 * There is no ModelMesh host package on npm, so the registry starts empty (no built-ins).
 * A connector is a class with a static `connectorId`; its type is checked structurally
 * against the methods of the declared type's interface (connector-types.ts).
 *
 * Deviation from the Python API: `loadPackage` returns `Promise<string[]>`, because ES
 * modules can only be imported asynchronously (`import()`), whatever the package's origin.
 */

import { existsSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { satisfies } from "@renovatebot/pep440";

import { type ConnectorsConfig, readConfig } from "./client/config.js";
import { Loader, type LoaderOptions, type Origin } from "./client/loader.js";
import { parsePackageSpec } from "./client/requirements.js";
import { redactUrl } from "./client/redact.js";
import { PackageError, RegistryError } from "./errors.js";
import {
  type ConnectorInfo,
  type ConnectorType,
  checkImplements,
  classify,
  parseConnectorType,
} from "./package/connector-types.js";
import { formatConnectorId, parseConnectorId } from "./package/ids.js";
import { importPackage } from "./package/importer.js";
import { openLocalPackage, type Package } from "./package/package.js";

export type { Origin } from "./client/loader.js";

/** Options of a {@link ConnectorRegistry}. */
export interface RegistryOptions {
  /** Resolves URLs and index requirements in `loadPackage`; without one only local paths load. */
  readonly loader?: Loader | LoaderOptions;
  /**
   * The ModelMesh version the host speaks, checked against a package's
   * `requires-modelmesh`; unchecked when omitted (there is no host package to ask).
   */
  readonly modelmeshVersion?: string;
}

/** Options of {@link ConnectorRegistry.register}. */
export interface RegisterOptions {
  /** Explicit type; otherwise worked out from the implementation's methods. */
  readonly connectorType?: ConnectorType | string;
  /** Version for {@link ConnectorInfo} (default "0"). */
  readonly version?: string;
  /** Description (default: the class's static `description`, else ""). */
  readonly description?: string;
}

interface Entry {
  readonly info: ConnectorInfo;
  readonly origin: Origin;
  readonly implementation: unknown;
}

function staticString(implementation: unknown, name: string): string | undefined {
  if (typeof implementation !== "function" && (typeof implementation !== "object" || implementation === null)) {
    return undefined;
  }
  const holder = typeof implementation === "function" ? implementation : implementation.constructor;
  const value = (holder as unknown as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" ? value : undefined;
}

function similarity(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) {
    (d[0] as number[])[j] = j;
  }
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  }
  return 1 - ((d[a.length] as number[])[b.length] as number) / Math.max(a.length, b.length, 1);
}

/** Connectors by ID, plus those of loaded packages. */
export class ConnectorRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly packages = new Map<string, { sha256: string; ids: string[]; origin: string }>();
  private readonly loader: Loader | null;
  private readonly modelmeshVersion: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: RegistryOptions = {}) {
    const loader = options.loader;
    this.loader = loader === undefined ? null : loader instanceof Loader ? loader : new Loader(loader);
    this.modelmeshVersion = options.modelmeshVersion;
  }

  /**
   * Build a registry with every package a configuration lists (all packages or none).
   *
   * @param config A YAML file path, a whole ModelMesh config object, its `connectors`
   *   mapping, or an already read {@link ConnectorsConfig}.
   * @throws ConfigError, or any error of {@link loadPackage}.
   */
  static async fromConfig(
    config: string | Record<string, unknown> | ConnectorsConfig,
  ): Promise<ConnectorRegistry> {
    const parsed = typeof config === "object" && "loader" in config && "packages" in config
      ? (config as ConnectorsConfig)
      : readConfig(config as string | Record<string, unknown>);
    const registry = new ConnectorRegistry({ loader: parsed.loader });
    // Locked: every entry is checked against the lock before any is downloaded or imported.
    await registry.loader?.checkLocked(parsed.packages);
    for (const spec of parsed.packages) {
      await registry.loadPackage(spec);
    }
    return registry;
  }

  /**
   * Register one connector implementation.
   *
   * @param connectorId `<namespace>.<name>.v<N>`.
   * @param implementation The connector class (or an instance).
   * @throws InvalidInput (`input.connector-id`) Malformed ID.
   * @throws RegistryError `registry.duplicate` (the ID is taken; names both origins) or
   *   `registry.type` (type cannot be worked out, does not fit, or the class's static
   *   `connectorId` names another ID).
   */
  register(connectorId: string, implementation: unknown, options: RegisterOptions = {}): void {
    const cid = formatConnectorId(parseConnectorId(connectorId));
    const declared = staticString(implementation, "connectorId");
    if (declared !== undefined && declared !== cid) {
      throw new RegistryError(
        "registry.type",
        `cannot register ${cid}: the implementation's static connectorId is '${declared}'`,
      );
    }
    let kind: ConnectorType;
    if (options.connectorType === undefined) {
      kind = classify(implementation);
    } else {
      kind = parseConnectorType(options.connectorType);
      checkImplements(implementation, kind, `connector ${cid}`);
    }
    const name = typeof implementation === "function" ? implementation.name : staticString(implementation, "name");
    const origin: Origin = { kind: "runtime", detail: name ?? "?", signedBy: [] };
    this.checkFree(cid, origin);
    this.entries.set(cid, {
      info: {
        id: cid,
        connector_type: kind,
        version: options.version ?? "0",
        description: options.description ?? staticString(implementation, "description") ?? "",
      },
      origin,
      implementation,
    });
  }

  /**
   * The implementation registered under `connectorId`.
   *
   * @throws RegistryError (`registry.unknown`) With close matches suggested.
   */
  getConnector(connectorId: string): unknown {
    const entry = this.entries.get(connectorId);
    if (entry === undefined) {
      const close = [...this.entries.keys()]
        .map((k) => [k, similarity(String(connectorId), k)] as const)
        .filter(([, s]) => s >= 0.6)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([k]) => k);
      const hint = close.length > 0 ? `; did you mean ${close.join(", ")}?` : "";
      throw new RegistryError("registry.unknown", `no connector registered as '${connectorId}'${hint}`);
    }
    return entry.implementation;
  }

  /**
   * List connectors sorted by ID, optionally of one type.
   *
   * @throws InvalidInput (`input.connector-type`) Unknown type string; lists valid ones.
   */
  listConnectors(connectorType?: string | ConnectorType): ConnectorInfo[] {
    const kind = connectorType === undefined ? undefined : parseConnectorType(connectorType);
    return [...this.entries.values()]
      .filter((e) => kind === undefined || e.info.connector_type === kind)
      .map((e) => ({ ...e.info }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Where a connector came from. @throws RegistryError (`registry.unknown`). */
  origin(connectorId: string): Origin {
    this.getConnector(connectorId);
    return (this.entries.get(connectorId) as Entry).origin;
  }

  /**
   * Load a connector package and register everything its manifest declares.
   *
   * @param path A package directory, a `.zip` file, an `https://` archive URL (optionally
   *   `#sha256=<hex>`), or a requirement resolved against the configured index.
   * @returns The registered IDs, in manifest order. Loading the identical package again
   *   is a no-op returning the same IDs.
   * @throws ConnectorError All or nothing: on any error no connector of the package is
   *   registered.
   */
  loadPackage(path: string): Promise<string[]> {
    // One load at a time: the free-ID checks and the commit must not interleave.
    const run = this.queue.then(() => this.loadOne(path));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async loadOne(path: string): Promise<string[]> {
    if (this.isLocal(path) && this.loader !== null) {
      // The loader applies the configured policy: a lock, require_signatures.
      const { pkg, origin } = await this.loader.openLocal(path);
      return this.commit(pkg, origin);
    }
    if (this.isLocal(path)) {
      const pkg = await openLocalPackage(path);
      return this.commit(pkg, { kind: "local", detail: resolvePath(path), signedBy: [] });
    }
    if (this.loader === null) {
      throw new PackageError(
        "package",
        `'${redactUrl(path)}' is not a local directory or .zip, and no index is configured`,
        { hint: "use ConnectorRegistry.fromConfig (or pass a loader) to load remote packages" },
      );
    }
    const { pkg, origin } = await this.loader.fetchPackage(path);
    return this.commit(pkg, origin);
  }

  /**
   * Import a checked package and register all its connectors, or none.
   *
   * @throws See {@link loadPackage}.
   */
  addPackage(pkg: Package, origin: Origin): Promise<string[]> {
    const run = this.queue.then(() => this.commit(pkg, origin));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async commit(pkg: Package, origin: Origin): Promise<string[]> {
    const m = pkg.manifest;
    const ids = m.connectors.map((c) => c.id);
    const key = `${m.name}\u0000${m.version}`;
    const known = this.packages.get(key);
    if (known !== undefined) {
      if (known.sha256 === pkg.sha256) {
        return [...known.ids];
      }
      throw new PackageError(
        "package",
        `${m.name} ${m.version} is already loaded from ${known.origin} with different content (sha256 ${known.sha256.slice(0, 12)}…, now ${pkg.sha256.slice(0, 12)}…)`,
      );
    }
    for (const cid of ids) {
      this.checkFree(cid, origin);
    }
    if (this.modelmeshVersion !== undefined && m.requiresModelmesh !== null) {
      if (!satisfies(this.modelmeshVersion, m.requiresModelmesh, { prereleases: true })) {
        throw new PackageError(
          "package.manifest",
          `${m.name} ${m.version} requires modelmesh ${m.requiresModelmesh}, but the host speaks ${this.modelmeshVersion}`,
        );
      }
    }
    const classes = await importPackage(m, pkg.files, pkg.sha256);
    for (const c of m.connectors) {
      const impl = classes.get(c.id);
      const what = `${m.name} ${m.version}: connector ${c.id}`;
      if (typeof impl !== "function") {
        throw new RegistryError("registry.type", `${what}: expected a class, got ${typeof impl}`);
      }
      const declared = staticString(impl, "connectorId");
      if (declared !== c.id) {
        throw new RegistryError(
          "registry.type",
          `${what}: the class's static connectorId is ${declared === undefined ? "missing" : `'${declared}'`}, expected '${c.id}'`,
        );
      }
      checkImplements(impl, c.type, what);
    }
    for (const cid of ids) {
      this.checkFree(cid, origin); // re-check: the package's import ran arbitrary code
    }
    for (const c of m.connectors) {
      this.entries.set(c.id, {
        info: { id: c.id, connector_type: c.type, version: m.version, description: c.description || m.description },
        origin,
        implementation: classes.get(c.id),
      });
    }
    this.packages.set(key, { sha256: pkg.sha256, ids, origin: `${origin.kind} ${origin.detail}` });
    return [...ids];
  }

  private isLocal(path: string): boolean {
    let spec: ReturnType<typeof parsePackageSpec>;
    try {
      spec = parsePackageSpec(path);
    } catch {
      return true; // let the local reader report what is wrong with the path
    }
    if (spec.kind === "local") {
      return true;
    }
    // A bare existing name is local only without an index.
    return spec.kind === "requirement" && this.loader === null && existsSync(path);
  }

  private checkFree(cid: string, origin: Origin): void {
    const existing = this.entries.get(cid);
    if (existing !== undefined) {
      throw new RegistryError(
        "registry.duplicate",
        `connector ID '${cid}' is already registered by ${existing.origin.kind} ${existing.origin.detail}; cannot register it again from ${origin.kind} ${origin.detail}`,
      );
    }
  }
}
