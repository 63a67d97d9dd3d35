/** What one `packages` entry asks for: a local path, a URL, or a requirement (as `requirements.py`). */

import { explain as explainVersion, validRange } from "@renovatebot/pep440";

import { InvalidInput } from "../errors.js";
import { isNormalizedName } from "../package/manifest.js";
import { redactText, redactUrl } from "./redact.js";

const HEX64_RE = /^[0-9a-f]{64}$/;
const PEP508_NAME_RE = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(.*)$/s;
const CLAUSE_RE = /^\s*(===|~=|==|!=|<=|>=|<|>)\s*(\S+?)\s*$/;

/** A package directory or `.zip` on local disk. */
export interface LocalSpec {
  readonly kind: "local";
  readonly path: string;
}

/** An archive URL, optionally pinned with `#sha256=<hex>`. */
export interface UrlSpec {
  readonly kind: "url";
  readonly url: string;
  readonly sha256: string | null;
}

/** One clause of a specifier set (`>=1.1`). */
export interface SpecifierClause {
  readonly operator: string;
  readonly version: string;
}

/** A requirement resolved against the index: name + PEP 440 specifier set. */
export interface RequirementSpec {
  readonly kind: "requirement";
  readonly name: string;
  /** The specifier set as written (`>=1.1,<2`), "" for any version. */
  readonly specifier: string;
  readonly clauses: readonly SpecifierClause[];
  readonly text: string;
}

export type PackageSpec = LocalSpec | UrlSpec | RequirementSpec;

function invalid(message: string): InvalidInput {
  return new InvalidInput("input.package-spec", message);
}

/** PEP 503 normalization: lower case, runs of `-_.` become one `-`. */
export function canonicalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * The version a requirement pins exactly (`==1.2.0`), else null.
 */
export function exactVersion(req: RequirementSpec): string | null {
  const [only, ...rest] = req.clauses;
  if (only !== undefined && rest.length === 0 && (only.operator === "==" || only.operator === "===") && !only.version.includes("*")) {
    return only.version;
  }
  return null;
}

/** Whether the specifier names a pre-release (then pre-releases count, as in packaging). */
export function specifierAllowsPrereleases(req: RequirementSpec): boolean {
  return req.clauses.some(
    (c) => c.operator !== "!=" && explainVersion(c.version.replace(/\.\*$/, ""))?.is_prerelease === true,
  );
}

/**
 * Parse a requirement (`name`, `name==1.2.0`, `name>=1.1,<2`).
 *
 * @throws InvalidInput (`input.package-spec`) Not a valid requirement, or extras, markers or
 *   a direct URL (not supported).
 */
export function parseRequirement(text: string): RequirementSpec {
  const m = PEP508_NAME_RE.exec(text.trim());
  const bad = (why: string) =>
    new InvalidInput("input.package-spec", `${JSON.stringify(text)} is not a valid requirement: ${why}`);
  if (m === null) {
    throw bad("expected a package name first");
  }
  const [, rawName = "", rest = ""] = m;
  if (rest.startsWith("[") || rest.includes(";") || rest.startsWith("@")) {
    throw new InvalidInput(
      "input.package-spec",
      `${JSON.stringify(redactText(text))}: extras, markers and direct URLs are not supported`,
    );
  }
  const specifier = rest.trim();
  if (specifier !== "" && !validRange(specifier)) {
    throw bad(`'${specifier}' is not a PEP 440 specifier set`);
  }
  const clauses: SpecifierClause[] = [];
  if (specifier !== "") {
    for (const part of specifier.split(",")) {
      const c = CLAUSE_RE.exec(part);
      if (c === null) {
        throw bad(`'${part}' is not a PEP 440 specifier`);
      }
      clauses.push({ operator: c[1] as string, version: c[2] as string });
    }
  }
  const name = canonicalizeName(rawName);
  if (!isNormalizedName(name)) {
    throw new InvalidInput("input.package-spec", `${JSON.stringify(text)}: '${rawName}' is not a valid package name`);
  }
  return { kind: "requirement", name, specifier, clauses, text };
}

/**
 * Classify and validate one `packages` entry.
 *
 * @throws InvalidInput (`input.package-spec`).
 */
export function parsePackageSpec(value: unknown): PackageSpec {
  if (typeof value !== "string" || value.trim() === "") {
    throw invalid(`package entry must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  const text = value.trim();
  const lowered = text.toLowerCase();
  if (lowered.startsWith("https://") || lowered.startsWith("http://")) {
    const hash = text.indexOf("#");
    const url = hash < 0 ? text : text.slice(0, hash);
    const fragment = hash < 0 ? "" : text.slice(hash + 1);
    try {
      new URL(url);
    } catch {
      throw invalid(`${JSON.stringify(redactUrl(text).slice(0, 200))} is not a valid URL`);
    }
    let sha: string | null = null;
    if (fragment !== "") {
      const [key, digest = ""] = fragment.split("=", 2);
      if (key !== "sha256" || !HEX64_RE.test(digest)) {
        throw invalid(`${JSON.stringify(redactUrl(text))}: URL fragment must be '#sha256=<64 lowercase hex>', got '#${fragment}'`);
      }
      sha = digest;
    }
    return { kind: "url", url, sha256: sha };
  }
  if (text.includes("://")) {
    throw invalid(`${JSON.stringify(redactText(redactUrl(text)))}: only https:// (or http:// to loopback) URLs are supported`);
  }
  if (text.includes("/") || text.startsWith(".") || lowered.endsWith(".zip") || text.startsWith("~")) {
    return { kind: "local", path: text };
  }
  return parseRequirement(text);
}
