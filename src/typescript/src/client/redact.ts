/**
 * One redaction for every URL shown or stored: errors, warnings, state files, cache names
 * (as Python's `_internal/redact.py`, rule for rule).
 *
 * Stops credential leaks: URL user info (`https://user:token@host/…`) and query values
 * (`?token=…`, presigned signatures) never leave the process in a message or on disk.
 *
 * The WHATWG `URL` parser is not used on purpose: it normalizes (lower-cases hosts, resolves
 * dot segments, percent-encodes), so the shown URL would differ from Python's. The split below
 * is Python's `urlsplit` / `urlunsplit`.
 *
 * Pure: strings in, strings out; no I/O.
 */

import { isIP } from "node:net";

export const REDACTION_MASK = "***";

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;
const IPV_FUTURE_RE = /^v[a-fA-F0-9]+\.[a-zA-Z0-9._~!$&'()*+,;=:]+$/;
// scheme://<userinfo>@ in free text; userinfo may not contain "/", "@" or whitespace.
const USERINFO_IN_TEXT_RE = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s'"<>]+@/gi;
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

interface Parts {
  scheme: string;
  netloc: string;
  path: string;
  query: string;
  fragment: string;
}

/** Python's `urlsplit`; null where it raises `ValueError` (a bad bracketed host). */
function split(url: string): Parts | null {
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
      return null;
    }
    if (netloc.includes("[")) {
      const bracketed = netloc.slice(netloc.indexOf("[") + 1).split("]")[0] as string;
      if (!(IPV_FUTURE_RE.test(bracketed) || isIP(bracketed) === 6)) {
        return null;
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
function unsplit(p: Parts): string {
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

/**
 * The URL as it may be shown or stored: user info and query values masked.
 *
 * `https://user:secret@h/p?token=abc&v=1#frag` becomes `https://***@h/p?token=***&v=***#frag`.
 * Idempotent; a string that does not split as a URL is scrubbed with {@link redactText}.
 */
export function redactUrl(url: string): string {
  const parts = split(url);
  if (parts === null) {
    return redactText(url);
  }
  const at = parts.netloc.lastIndexOf("@");
  if (at >= 0) {
    parts.netloc = `${REDACTION_MASK}@${parts.netloc.slice(at + 1)}`;
  }
  if (parts.query) {
    // Presigned URLs carry their secret in the query (X-Amz-Signature, token=…).
    parts.query = parts.query
      .split("&")
      .map((item) => {
        if (!item) {
          return item;
        }
        const eq = item.indexOf("=");
        return `${eq < 0 ? item : item.slice(0, eq)}=${REDACTION_MASK}`;
      })
      .join("&");
  }
  return unsplit(parts);
}

/** Every `scheme://user:pass@` in free text (a message, a warning) with the user info masked. */
export function redactText(text: string): string {
  return text.replace(USERINFO_IN_TEXT_RE, (_m, scheme: string) => `${scheme}${REDACTION_MASK}@`);
}
