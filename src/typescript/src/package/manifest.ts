/**
 * `modelmesh-package.yaml`: the package's contract, parsed strictly (as `manifest.py`), plus
 * the Node entry point proposed in MANIFEST-NODE.md (`connectors[].node`).
 *
 * YAML is read with the YAML 1.1 schema (PyYAML's, so `yes` is a boolean and `1.0` a float
 * in both clients), aliases refused (no "billion laughs") and duplicate keys refused.
 */

import { explain as explainVersion, validRange } from "@renovatebot/pep440";
import { isAlias, parseDocument, visit } from "yaml";

import { PackageError } from "../errors.js";
import { type ConnectorType, parseConnectorType } from "./connector-types.js";
import { parseConnectorId } from "./ids.js";

export const MANIFEST_NAME = "modelmesh-package.yaml";
export const MAX_MANIFEST_BYTES = 64 * 1024; // bytes; a manifest is a few hundred bytes

const NAME_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const MODULE_RE = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const JS_EXPORT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const JS_MODULE_RE = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*\/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.m?js$/;
const TOP_KEYS = [
  "name",
  "version",
  "description",
  "requires-modelmesh",
  "dependencies",
  "connectors",
];
const REQUIRED_TOP = ["name", "version", "description", "connectors"];
const CONNECTOR_KEYS = ["id", "type", "entry", "description", "node"];
const NODE_KEYS = ["module", "export"];
const MAX_CONNECTORS = 256;

/** The Node entry point of a connector: an ES module in the package and an export name. */
export interface NodeEntry {
  /** Package-relative POSIX path of an ES module (`.mjs` or `.js`). */
  readonly module: string;
  /** The export holding the connector class (`default` for the default export). */
  readonly export: string;
}

/** One connector a package declares. */
export interface ManifestConnector {
  readonly id: string;
  readonly type: ConnectorType;
  /** The Python entry point `module:Class`, when the package has one. */
  readonly entry: string | null;
  /** The Node entry point, when the package has one. */
  readonly node: NodeEntry | null;
  readonly description: string;
}

/** A validated package manifest. */
export interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly requiresModelmesh: string | null;
  readonly dependencies: readonly string[];
  readonly connectors: readonly ManifestConnector[];
  /** The runtimes that can load the package, sorted (every connector has the same). */
  readonly runtimes: readonly string[];
}

/** `modelmesh-package.yaml` is missing or invalid. Code `package.manifest`. */
export class ManifestError extends PackageError {
  constructor(message: string) {
    super("package.manifest", message);
  }
}

function fail(source: string, field: string, problem: string): ManifestError {
  return new ManifestError(`${source}: field '${field}': ${problem}`);
}

function shortRepr(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 80 ? text : `${text.slice(0, 79)}…`;
}

function kindOf(value: unknown): string {
  if (value === null) {
    return "null";
  }
  if (Array.isArray(value)) {
    return "list";
  }
  if (value instanceof Date) {
    return "date";
  }
  return typeof value === "object" ? "mapping" : typeof value;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function str(source: string, field: string, value: unknown, allowEmpty = false): string {
  if (typeof value !== "string") {
    throw fail(source, field, `expected a string, got ${kindOf(value)} ${shortRepr(value)}`);
  }
  if (!allowEmpty && value.trim() === "") {
    throw fail(source, field, "must not be empty");
  }
  return value;
}

/** Tell whether `name` is a normalized distribution-style package name. */
export function isNormalizedName(name: string): boolean {
  return NAME_RE.test(name);
}

/**
 * The PEP 440 normal form of a version (Python's `str(Version(v))`), or null if invalid.
 */
export function normalizeVersion(text: string): string | null {
  const v = explainVersion(text);
  if (v === null || text !== text.trim()) {
    return null;
  }
  // The typings say arrays; at run time absent parts are null and post/dev are numbers.
  const pre = v.pre as (string | number)[] | null;
  const post = v.post as unknown as number | null;
  const dev = v.dev as unknown as number | null;
  let out = v.epoch ? `${v.epoch}!` : "";
  out += v.release.join(".");
  if (pre !== null && pre.length > 0) {
    out += `${pre[0]}${pre[1]}`;
  }
  if (post !== null) {
    out += `.post${post}`;
  }
  if (dev !== null) {
    out += `.dev${dev}`;
  }
  if (v.local) {
    const parts = v.local
      .toLowerCase()
      .split(/[-_.]/)
      .map((s) => (/^[0-9]+$/.test(s) ? String(Number(s)) : s));
    out += `+${parts.join(".")}`;
  }
  return out;
}

function loadYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { version: "1.1", uniqueKeys: true, prettyErrors: false });
  const problems = [...doc.errors];
  if (problems.length > 0) {
    throw new ManifestError(`${source}: manifest is not valid YAML: ${problems[0]?.message}`);
  }
  let alias = false;
  visit(doc, {
    Alias() {
      alias = true;
      return visit.BREAK;
    },
  });
  if (alias || isAlias(doc.contents)) {
    throw new ManifestError(`${source}: manifest is not valid YAML: YAML aliases are not allowed`);
  }
  try {
    return doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    throw new ManifestError(`${source}: manifest is not valid YAML: ${(err as Error).message}`);
  }
}

function nodeEntry(source: string, where: string, raw: unknown): NodeEntry {
  if (!isMapping(raw)) {
    throw fail(source, where, `expected a mapping with 'module' and 'export', got ${kindOf(raw)}`);
  }
  const unknown = Object.keys(raw).filter((k) => !NODE_KEYS.includes(k));
  if (unknown.length > 0) {
    throw fail(source, where, `unknown key(s) ${JSON.stringify(unknown.sort())}`);
  }
  const module = str(source, `${where}.module`, raw["module"]);
  // A plain relative path: no './', '..', absolute paths or URLs; the archive reader has
  // already refused unsafe names, this only keeps the manifest's spelling unambiguous.
  if (!JS_MODULE_RE.test(module) || module.split("/").some((s) => s === "." || s === "..")) {
    throw fail(
      source,
      `${where}.module`,
      `expected a package-relative path of an ES module like 'acme_sink/index.mjs', got ${shortRepr(module)}`,
    );
  }
  const name = str(source, `${where}.export`, raw["export"]);
  if (!JS_EXPORT_RE.test(name)) {
    throw fail(source, `${where}.export`, `expected an export name, got ${shortRepr(name)}`);
  }
  return { module, export: name };
}

function connector(source: string, index: number, raw: unknown): ManifestConnector {
  const where = `connectors[${index}]`;
  if (!isMapping(raw)) {
    throw fail(source, where, `expected a mapping, got ${kindOf(raw)}`);
  }
  const unknown = Object.keys(raw).filter((k) => !CONNECTOR_KEYS.includes(k));
  if (unknown.length > 0) {
    throw fail(source, where, `unknown key(s) ${JSON.stringify(unknown.sort())}`);
  }
  const missing = ["id", "type"].filter((k) => !Object.hasOwn(raw, k));
  if (!Object.hasOwn(raw, "entry") && !Object.hasOwn(raw, "node")) {
    missing.push("entry");
  }
  if (missing.length > 0) {
    throw fail(source, where, `missing key(s) ${JSON.stringify(missing.sort())}`);
  }
  let id: string;
  let type: ConnectorType;
  try {
    const parsed = parseConnectorId(raw["id"]);
    id = `${parsed.namespace}.${parsed.name}.v${parsed.version}`;
  } catch (err) {
    throw fail(source, `${where}.id`, (err as Error).message);
  }
  try {
    type = parseConnectorType(raw["type"]);
  } catch (err) {
    throw fail(source, `${where}.type`, (err as Error).message);
  }
  let entry: string | null = null;
  if (Object.hasOwn(raw, "entry")) {
    entry = str(source, `${where}.entry`, raw["entry"]);
    const colon = entry.indexOf(":");
    const module = colon < 0 ? "" : entry.slice(0, colon);
    const attribute = colon < 0 ? "" : entry.slice(colon + 1);
    if (colon < 0 || !MODULE_RE.test(module) || !IDENTIFIER_RE.test(attribute)) {
      throw fail(
        source,
        `${where}.entry`,
        `expected 'package.module:ClassName', got ${shortRepr(entry)}`,
      );
    }
  }
  const node = Object.hasOwn(raw, "node") ? nodeEntry(source, `${where}.node`, raw["node"]) : null;
  const description = str(source, `${where}.description`, raw["description"] ?? "", true);
  return { id, type, entry, node, description: description.trim() };
}

/**
 * Parse and validate manifest bytes.
 *
 * @param source Where the bytes came from, for messages (`pkg.zip!/modelmesh-package.yaml`).
 * @throws ManifestError (`package.manifest`) Naming the file, the field and the problem.
 */
export function parseManifest(data: Uint8Array, source: string): Manifest {
  if (data.length > MAX_MANIFEST_BYTES) {
    throw new ManifestError(`${source}: manifest is ${data.length} bytes, over the 64 KiB cap`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch (err) {
    throw new ManifestError(`${source}: manifest is not UTF-8: ${(err as Error).message}`);
  }
  const raw = loadYaml(text, source);
  if (!isMapping(raw)) {
    throw new ManifestError(`${source}: manifest must be a mapping, got ${kindOf(raw)}`);
  }
  const unknown = Object.keys(raw).filter((k) => !TOP_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new ManifestError(
      `${source}: unknown key(s) ${JSON.stringify(unknown.sort())}; allowed: ${JSON.stringify([...TOP_KEYS].sort())}`,
    );
  }
  const missing = REQUIRED_TOP.filter((k) => !Object.hasOwn(raw, k));
  if (missing.length > 0) {
    throw new ManifestError(`${source}: missing required key(s) ${JSON.stringify(missing.sort())}`);
  }
  const name = str(source, "name", raw["name"]);
  if (!isNormalizedName(name)) {
    throw fail(source, "name", `'${name}' is not normalized (lowercase [a-z0-9] runs joined by '-')`);
  }
  const versionRaw = raw["version"];
  if (typeof versionRaw !== "string") {
    const hint = typeof versionRaw === "number" ? "write the version as a quoted string, got" : "expected a PEP 440 string, got";
    throw fail(source, "version", `${hint} ${shortRepr(versionRaw)}`);
  }
  const version = normalizeVersion(versionRaw);
  if (version === null) {
    throw fail(source, "version", `${shortRepr(versionRaw)} is not a PEP 440 version`);
  }
  if (version !== versionRaw) {
    throw fail(source, "version", `${shortRepr(versionRaw)} is not normalized; write '${version}'`);
  }
  const description = str(source, "description", raw["description"]).trim();
  let requires: string | null = null;
  if (raw["requires-modelmesh"] !== null && raw["requires-modelmesh"] !== undefined) {
    requires = str(source, "requires-modelmesh", raw["requires-modelmesh"]);
    if (!validRange(requires)) {
      throw fail(source, "requires-modelmesh", `'${requires}' is not a PEP 440 specifier`);
    }
  }
  const depsRaw = raw["dependencies"] ?? [];
  if (!Array.isArray(depsRaw)) {
    throw fail(source, "dependencies", `expected a list, got ${kindOf(depsRaw)}`);
  }
  // Python (PEP 508) dependencies: syntax-checked by the Python client, meaningless to Node.
  const dependencies = depsRaw.map((dep, i) => str(source, `dependencies[${i}]`, dep));
  const connectorsRaw = raw["connectors"];
  if (!Array.isArray(connectorsRaw) || connectorsRaw.length === 0) {
    throw fail(source, "connectors", "expected a non-empty list");
  }
  if (connectorsRaw.length > MAX_CONNECTORS) {
    throw fail(source, "connectors", `${connectorsRaw.length} entries, cap ${MAX_CONNECTORS}`);
  }
  const connectors = connectorsRaw.map((c, i) => connector(source, i, c));
  const seen = new Set<string>();
  connectors.forEach((c, i) => {
    if (seen.has(c.id)) {
      throw fail(source, `connectors[${i}].id`, `duplicate connector ID '${c.id}'`);
    }
    seen.add(c.id);
  });
  // Loading is all or nothing: a runtime that cannot load every connector loads none.
  const runtimesOf = (c: ManifestConnector): string[] => [
    ...(c.node !== null ? ["node"] : []),
    ...(c.entry !== null ? ["python"] : []),
  ];
  const runtimes = runtimesOf(connectors[0] as ManifestConnector);
  connectors.forEach((c, i) => {
    if (runtimesOf(c).join() !== runtimes.join()) {
      throw fail(
        source,
        `connectors[${i}]`,
        `has entry points for ${JSON.stringify(runtimesOf(c))} but connectors[0] for ${JSON.stringify(runtimes)}; every connector of a package needs the same`,
      );
    }
  });
  return { name, version, description, requiresModelmesh: requires, dependencies, connectors, runtimes };
}
