/**
 * One redaction for every URL shown or stored: errors, warnings, state files, cache names
 * (as Python's `_internal/redact.py`, rule for rule).
 *
 * Stops credential leaks: URL user info (`https://user:token@host/…`) and query values
 * (`?token=…`, presigned signatures) never leave the process in a message or on disk.
 *
 * URLs are split as Python splits them (`url-split.ts`), so the shown URL is Python's.
 *
 * Pure: strings in, strings out; no I/O.
 */

import { type UrlParts, urlsplit, urlunsplit } from "./url-split.js";

export const REDACTION_MASK = "***";

// scheme://<userinfo>@ in free text; userinfo may not contain "/", "@" or whitespace.
const USERINFO_IN_TEXT_RE = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s'"<>]+@/gi;
/**
 * The URL as it may be shown or stored: user info and query values masked.
 *
 * `https://user:secret@h/p?token=abc&v=1#frag` becomes `https://***@h/p?token=***&v=***#frag`.
 * Idempotent; a string that does not split as a URL is scrubbed with {@link redactText}.
 */
export function redactUrl(url: string): string {
  let parts: UrlParts;
  try {
    parts = urlsplit(url);
  } catch {
    return redactText(url); // Python's redact_url does the same where urlsplit raises
  }
  let { netloc, query } = parts;
  const at = netloc.lastIndexOf("@");
  if (at >= 0) {
    netloc = `${REDACTION_MASK}@${netloc.slice(at + 1)}`;
  }
  if (query) {
    // Presigned URLs carry their secret in the query (X-Amz-Signature, token=…).
    query = query
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
  return urlunsplit({ ...parts, netloc, query });
}

/** Every `scheme://user:pass@` in free text (a message, a warning) with the user info masked. */
export function redactText(text: string): string {
  return text.replace(USERINFO_IN_TEXT_RE, (_m, scheme: string) => `${scheme}${REDACTION_MASK}@`);
}
