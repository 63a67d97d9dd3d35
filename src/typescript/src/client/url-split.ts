/**
 * Python's `urllib.parse.urlsplit` / `urlunsplit`, for the two modules that must read a URL
 * exactly as the Python client does: binding (which file an entry names) and redaction (what
 * may be shown).
 *
 * The WHATWG `URL` parser is not used on purpose: it normalizes (lower-cases hosts, resolves
 * dot segments such as `%2e%2e`, percent-encodes) before anything can be judged or shown.
 *
 * Pure: strings in, strings out; no I/O.
 */

import { isIP } from "node:net";

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;
const IPV_FUTURE_RE = /^v[a-fA-F0-9]+\.[a-zA-Z0-9._~!$&'()*+,;=:]+$/;
// Python's urlsplit strips leading C0 controls and spaces and deletes tab, CR and LF.
const LEADING_C0_OR_SPACE_RE = /^[\u0000-\u0020]+/;
const UNSAFE_RE = /[\t\r\n]/g;
// Schemes urlunsplit writes "//" for even with an empty host (Python's uses_netloc).
const USES_NETLOC = new Set([
  "",
  "ftp",
  "http",
  "gopher",
  "nntp",
  "telnet",
  "imap",
  "wais",
  "file",
  "mms",
  "https",
  "shttp",
  "snews",
  "prospero",
  "rtsp",
  "rtsps",
  "rtspu",
  "rsync",
  "svn",
  "svn+ssh",
  "sftp",
  "nfs",
  "git",
  "git+ssh",
  "ws",
  "wss",
  "itms-services",
]);

/** A URL's parts, as Python's `urlsplit` returns them. */
export interface UrlParts {
  readonly scheme: string;
  readonly netloc: string;
  readonly path: string;
  readonly query: string;
  readonly fragment: string;
}

/**
 * Python's `urlsplit`: leading C0 controls and spaces stripped, tab/CR/LF deleted, the
 * scheme lower-cased; nothing else normalized.
 *
 * @throws Error Where Python raises `ValueError`: a bad bracketed host.
 */
export function urlsplit(url: string): UrlParts {
  let rest = url.replace(LEADING_C0_OR_SPACE_RE, "").replace(UNSAFE_RE, "");
  let scheme = "";
  const colon = rest.indexOf(":");
  if (colon > 0 && SCHEME_RE.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase();
    rest = rest.slice(colon + 1);
  }
  let netloc = "";
  if (rest.startsWith("//")) {
    const end = rest.slice(2).search(/[/?#]/);
    netloc = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
    rest = end < 0 ? "" : rest.slice(2 + end);
    if (netloc.includes("[") !== netloc.includes("]")) {
      throw new Error("Invalid IPv6 URL");
    }
    if (netloc.includes("[")) {
      const bracketed = netloc.slice(netloc.indexOf("[") + 1).split("]")[0] as string;
      if (!(IPV_FUTURE_RE.test(bracketed) || isIP(bracketed) === 6)) {
        throw new Error(`${JSON.stringify(bracketed.slice(0, 80))} is not a valid bracketed IPv6 host`);
      }
    }
  }
  let fragment = "";
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  return { scheme, netloc, path: rest, query, fragment };
}

/** Python's `urlunsplit`. */
export function urlunsplit(p: UrlParts): string {
  let url = p.path;
  if (p.netloc) {
    if (url && !url.startsWith("/")) {
      url = `/${url}`;
    }
    url = `//${p.netloc}${url}`;
  } else if (url.startsWith("//")) {
    url = `//${url}`;
  } else if (p.scheme && USES_NETLOC.has(p.scheme) && (!url || url.startsWith("/"))) {
    url = `//${url}`;
  }
  if (p.scheme) {
    url = `${p.scheme}:${url}`;
  }
  if (p.query) {
    url = `${url}?${p.query}`;
  }
  if (p.fragment) {
    url = `${url}#${p.fragment}`;
  }
  return url;
}
