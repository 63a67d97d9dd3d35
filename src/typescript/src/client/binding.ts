/**
 * Which release an entry names: bind a verified release to the file name the entry used
 * (as `binding.py`, rule for rule).
 *
 * A detached `.sig` proves that trusted keys signed *some* release. It does not prove that it
 * is the release the configuration asked for: a server that may put any signed file at an
 * entry's URL could otherwise serve an older, vulnerable version (downgrade), a yanked one, or
 * another package entirely (substitution) under `…/acme-audit-log-2.0.0.zip`. A signed
 * release's `file` is always `archives/<name>/<name>-<version>.zip` (FORMAT.md §3), so
 * requiring its last segment to equal the file name the entry names binds name and version too.
 *
 * File names are compared after strict percent-decoding, and anything a server or proxy could
 * read in more than one way is refused rather than guessed: an encoded `/` or `\`, an encoded
 * `%` (double decoding), dot segments, control characters, invalid UTF-8, a query string, and
 * any character outside the archive name alphabet.
 *
 * The WHATWG `URL` parser is not used for the path on purpose: it resolves (encoded) dot
 * segments before anyone could see them; URLs are split as Python splits them (`url-split.ts`).
 *
 * Pure: strings in, a value or a typed error out; no I/O.
 */

import { TrustError } from "../errors.js";
import { normalizeVersion } from "../package/manifest.js";
import type { Release } from "../trust/metadata.js";
import { redactUrl } from "./redact.js";
import { type UrlParts, urlsplit } from "./url-split.js";

// Names are [a-z0-9-], versions [0-9A-Za-z.+!_-] (FORMAT.md §3): the archive name alphabet.
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/;
const ESCAPE_RE = /%(?![0-9A-Fa-f]{2})/; // a '%' not followed by two hex digits
const DEFAULT_PORTS: Readonly<Record<string, number>> = { https: 443, http: 80 };

/** Python's `repr()` of a short string, for messages that match the Python client's. */
function pyRepr(text: string): string {
  let out = "";
  for (const c of text) {
    const code = c.codePointAt(0) as number;
    if (c === "\\" || c === "'") {
      out += `\\${c}`;
    } else if (c === "\n") {
      out += "\\n";
    } else if (c === "\r") {
      out += "\\r";
    } else if (c === "\t") {
      out += "\\t";
    } else if (code < 0x20 || code === 0x7f) {
      out += `\\x${code.toString(16).padStart(2, "0")}`;
    } else {
      out += c;
    }
  }
  return `'${out}'`;
}

/**
 * Percent-decode `raw` as UTF-8 (Python's `unquote`): strict refuses invalid UTF-8 (null),
 * lenient replaces it; a `%` without two hex digits stays as it is.
 */
function percentDecode(raw: string, strict: boolean): string | null {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < raw.length; ) {
    const hex = raw.slice(i + 1, i + 3);
    if (raw[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 3;
    } else {
      const c = String.fromCodePoint(raw.codePointAt(i) as number);
      bytes.push(...encoder.encode(c));
      i += c.length;
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: strict, ignoreBOM: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

function refuse(url: string, why: string): TrustError {
  return new TrustError("trust.policy", `${redactUrl(url).slice(0, 200)}: refusing an archive URL whose path is ambiguous: ${why}`, {
    hint: "write the URL's path plainly, e.g. https://host/dir/<name>-<version>.zip",
  });
}

/** The path's segments, each strictly percent-decoded and checked for ambiguity. */
function decodedSegments(url: string, path: string): string[] {
  const out: string[] = [];
  for (const raw of path.split("/").slice(1)) {
    if (ESCAPE_RE.test(raw)) {
      throw refuse(url, `malformed percent-escape in segment ${pyRepr(raw.slice(0, 80))}`);
    }
    const segment = percentDecode(raw, true);
    if (segment === null) {
      throw refuse(url, `segment ${pyRepr(raw.slice(0, 80))} is not valid UTF-8`);
    }
    if (segment === "." || segment === "..") {
      // Servers and proxies disagree on whether (encoded) dot segments are resolved.
      throw refuse(url, `dot segment ${pyRepr(raw)}`);
    }
    const bad = [...segment].find((c) => "/\\%".includes(c) || (c.codePointAt(0) as number) < 0x20 || c === "\x7f");
    if (bad !== undefined) {
      // An encoded '/' or '\' is a separator to some servers and not to others; an encoded
      // '%' decodes again somewhere (double decoding).
      throw refuse(url, `segment ${pyRepr(raw.slice(0, 80))} encodes ${pyRepr(bad)}`);
    }
    out.push(segment);
  }
  return out;
}

/**
 * The archive file name an `https://` entry names: its last path segment, decoded.
 *
 * @param url The entry's URL, without the `#sha256=` fragment.
 * @returns The decoded last path segment, e.g. `acme-audit-log-2.0.0.zip`.
 * @throws TrustError (`trust.policy`) The path can be read in more than one way (see the
 *   module comment), has a query string, ends with `/`, or the file name uses characters
 *   outside the archive name alphabet.
 */
export function urlFileName(url: string): string {
  // Python's urlsplit deletes tab, CR and LF, so a URL holding one reads two ways.
  const control = [...url].find((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (control !== undefined) {
    throw refuse(url, `it contains the control character ${pyRepr(control)}`);
  }
  let parts: UrlParts;
  try {
    parts = urlsplit(url);
  } catch (err) {
    throw refuse(url, (err as Error).message);
  }
  if (url.includes("?") || parts.query !== "") {
    // The detached signature lives at '<url>.sig'; with a query that is no file name.
    throw refuse(url, "it has a query string");
  }
  const segments = decodedSegments(url, parts.path);
  const name = segments.at(-1) ?? "";
  if (!FILE_NAME_RE.test(name)) {
    throw refuse(
      url,
      `its file name ${pyRepr(name.slice(0, 80))} is not a plain archive name ([A-Za-z0-9.+!_-], like <name>-<version>.zip)`,
    );
  }
  return name;
}

/**
 * The verified release must be the one `fileName` names.
 *
 * A file name states one name and version only because versions are normalized PEP 440 (no
 * `-`, as every manifest's must be): `a-b-1.0.zip` is `a-b` 1.0, never `a` `b-1.0`. So the
 * version is what follows the last `-`.
 *
 * @param release The release whose signature verified.
 * @param fileName The file name the entry used ({@link urlFileName}, or a local zip's name).
 * @param where The entry, for the message.
 * @throws TrustError (`trust.policy`) The signed file name differs, the release's version is
 *   not a normalized PEP 440 version, or the name and version the release states are not the
 *   ones the file name states.
 */
export function bindRelease(release: Release, fileName: string, where: string): void {
  const signed = release.file.split("/").at(-1) ?? "";
  const stem = fileName.endsWith(".zip") ? fileName.slice(0, -".zip".length) : "";
  const dash = stem.lastIndexOf("-");
  const statedName = dash < 0 ? "" : stem.slice(0, dash);
  const statedVersion = dash < 0 ? stem : stem.slice(dash + 1);
  if (normalizeVersion(release.version) !== release.version) {
    throw new TrustError(
      "trust.policy",
      `${where}: the signed release ${release.name} ${pyRepr(release.version)} has no normalized PEP 440 version, so no file name can state its name and version unambiguously`,
    );
  }
  if (fileName !== signed || statedName !== release.name || statedVersion !== release.version) {
    throw new TrustError(
      "trust.policy",
      `${where}: the entry names ${pyRepr(fileName)} (${statedName || "?"} ${statedVersion || "?"}) but the signature there is for ${release.name} ${release.version} (${pyRepr(signed)}); a signed release served under another release's name (downgrade or substitution) is refused`,
      { hint: "use the URL of the release you mean, or load it by requirement from the index" },
    );
  }
}

/** Scheme, lowercased host and port (default filled in) of a netloc, or null (a bad port). */
function origin(parts: UrlParts): [string, string, number | null] | null {
  const hostport = parts.netloc.slice(parts.netloc.lastIndexOf("@") + 1);
  let host = hostport;
  let port = "";
  if (hostport.startsWith("[")) {
    const close = hostport.indexOf("]");
    host = close < 0 ? hostport.slice(1) : hostport.slice(1, close);
    const after = close < 0 ? "" : hostport.slice(close + 1);
    port = after.startsWith(":") ? after.slice(1) : "";
  } else {
    const colon = hostport.lastIndexOf(":");
    if (colon >= 0) {
      host = hostport.slice(0, colon);
      port = hostport.slice(colon + 1);
    }
  }
  let number: number | null = null;
  if (port !== "") {
    if (!/^[0-9]+$/.test(port) || Number(port) > 65535) {
      return null; // Python's `.port` raises ValueError
    }
    number = Number(port);
  }
  return [parts.scheme, host.toLowerCase(), number || (DEFAULT_PORTS[parts.scheme] ?? null)];
}

/**
 * Whether `url` points into the directory `base` (an index mirror URL).
 *
 * Scheme and host compare case-insensitively, a default port equals its absence, and the
 * paths compare segment by segment after decoding (`url` must already have passed
 * {@link urlFileName}, so it holds no dot segment or encoded separator).
 *
 * @param url The entry's URL.
 * @param base The index base URL (ends with `/`).
 * @returns True when `url` lies at or below `base`.
 */
export function urlIsUnder(url: string, base: string): boolean {
  let u: UrlParts;
  let b: UrlParts;
  try {
    u = urlsplit(url);
    b = urlsplit(base);
  } catch {
    return false;
  }
  const uo = origin(u);
  const bo = origin(b);
  if (uo === null || bo === null || uo.join("\n") !== bo.join("\n")) {
    return false;
  }
  const baseSegments = b.path
    .split("/")
    .slice(1)
    .filter((s) => s !== "")
    .map((s) => percentDecode(s, false));
  const urlSegments = u.path
    .split("/")
    .slice(1)
    .map((s) => percentDecode(s, false));
  return baseSegments.every((s, i) => urlSegments[i] === s);
}
