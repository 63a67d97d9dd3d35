/**
 * The one network seam: turn a URL into a bounded stream of bytes (as `download.py`).
 *
 * {@link HttpFetcher} applies the URL policy before any connection (HTTPS only; plain HTTP
 * only to a loopback host unless allowed) and on every redirect hop (no https → http
 * downgrade); streams the body into a {@link Sink} and aborts the moment more than
 * `maxLength` bytes arrive; enforces a connect timeout, a read (idle) timeout and a total
 * deadline; retries transient failures (connection errors, timeouts, truncated bodies, 5xx,
 * 429) a bounded number of times; and maps every foreign error to the project's tree.
 * Tests can swap in any object that satisfies {@link Fetcher}.
 */

import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";

import { DownloadError, describe, TrustError } from "../errors.js";
import { redactText, redactUrl } from "./redact.js";

/** How {@link HttpFetcher} talks to the network. */
export interface FetchConfig {
  /** Milliseconds to establish a TCP (and TLS) connection. */
  readonly connectTimeoutMs: number;
  /** Milliseconds of silence allowed between two received chunks. */
  readonly readTimeoutMs: number;
  /** Milliseconds one attempt may take in total, headers and body. */
  readonly totalTimeoutMs: number;
  /** Extra attempts after the first, for transient failures only. */
  readonly retries: number;
  /** Milliseconds before the first retry; doubles per retry. */
  readonly backoffMs: number;
  /** Allow plain http:// to non-loopback hosts (unsafe). */
  readonly allowHttp: boolean;
  /** Redirect hops followed per attempt. */
  readonly maxRedirects: number;
  /** User-Agent request header. */
  readonly userAgent: string;
  /**
   * Path of a PEM file of CA certificates that https servers are verified against instead of
   * Node's bundled store (`ca_bundle`, for a private CA); read on the first https request.
   */
  readonly caBundle?: string;
}

export const DEFAULT_FETCH_CONFIG: FetchConfig = {
  connectTimeoutMs: 10_000,
  readTimeoutMs: 30_000,
  totalTimeoutMs: 300_000,
  retries: 2,
  backoffMs: 250,
  allowHttp: false,
  maxRedirects: 5,
  userAgent: "modelmesh-connectors-ts/0.1",
};

/** Where a fetcher writes a body, chunk by chunk. */
export interface Sink {
  /** Accept the next chunk exactly as received; throw to abort. */
  write(chunk: Uint8Array): void;
  /** Forget what was written (a retry starts over). */
  reset(): void;
}

/** Anything that turns a URL into bounded bytes. */
export interface Fetcher {
  /**
   * @throws DownloadError `download.not-found` (404/410), `trust.length` (over the cap),
   *   `download.timeout`, `trust.policy` (scheme, host, redirect), `download` (anything else).
   */
  fetchBytes(url: string, maxLength: number): Promise<Uint8Array>;
  /** Stream the body into `sink`; returns the number of bytes written. Errors as above. */
  fetchTo(url: string, sink: Sink, maxLength: number): Promise<number>;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost") {
    return true;
  }
  if (isIP(h) === 4) {
    return h.startsWith("127.");
  }
  return isIP(h) === 6 && (h === "::1" || h === "0:0:0:0:0:0:0:1");
}

/**
 * Refuse URLs the fetcher must never connect to.
 *
 * @throws DownloadError (`trust.policy`) Scheme or host not allowed.
 */
export function checkUrlPolicy(url: string, allowHttp: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TrustError("trust.policy", `refusing to fetch ${JSON.stringify(redactUrl(url))}: not a valid URL`);
  }
  if (!parsed.hostname) {
    throw new TrustError("trust.policy", `refusing to fetch ${redactUrl(url)}: expected an absolute URL with a host`);
  }
  if (parsed.protocol === "https:") {
    return parsed;
  }
  if (parsed.protocol === "http:") {
    // Plain HTTP lets anyone on the path rewrite responses; signatures still protect
    // metadata, but not availability, so only loopback is allowed by default.
    if (isLoopback(parsed.hostname)) {
      return parsed;
    }
    if (allowHttp) {
      if (parsed.username || parsed.password) {
        // Anyone on the path would read the credential: refuse rather than leak it.
        throw new TrustError("trust.policy", `refusing to send credentials over plain http to ${redactUrl(url)}: expected https`, {
          hint: "use an https:// URL for an index or mirror that needs credentials",
        });
      }
      return parsed;
    }
    throw new TrustError(
      "trust.policy",
      `refusing plain http:// to non-loopback host '${parsed.hostname}' in ${redactUrl(url)}: expected https://`,
      { hint: "use an https:// index URL, or set allow_http" },
    );
  }
  throw new TrustError(
    "trust.policy",
    `refusing to fetch ${redactUrl(url)}: unsupported URL scheme '${parsed.protocol}', expected https (or http to a loopback host)`,
  );
}

/** A failure worth retrying; never escapes this module. */
class Transient extends Error {}

/** OpenSSL's verification failures as Node reports them: a wrong certificate never fixes itself. */
const CERT_ERRORS = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
]);

class BufferSink implements Sink {
  chunks: Uint8Array[] = [];
  write(chunk: Uint8Array): void {
    this.chunks.push(chunk);
  }
  reset(): void {
    this.chunks = [];
  }
}

type Outcome = { redirect: string } | { written: number };

/** The real fetcher over node:http / node:https. */
export class HttpFetcher implements Fetcher {
  readonly config: FetchConfig;
  private ca: Buffer | null = null;

  constructor(config: Partial<FetchConfig> = {}) {
    this.config = { ...DEFAULT_FETCH_CONFIG, ...config };
  }

  async fetchBytes(url: string, maxLength: number): Promise<Uint8Array> {
    const sink = new BufferSink();
    await this.fetchTo(url, sink, maxLength);
    return Buffer.concat(sink.chunks);
  }

  async fetchTo(url: string, sink: Sink, maxLength: number): Promise<number> {
    checkUrlPolicy(url, this.config.allowHttp);
    let last: Transient | null = null;
    for (let attempt = 0; attempt <= this.config.retries; attempt++) {
      if (attempt > 0) {
        sink.reset();
        await new Promise((r) => setTimeout(r, this.config.backoffMs * 2 ** (attempt - 1)));
      }
      try {
        return await this.attempt(url, sink, maxLength);
      } catch (err) {
        if (!(err instanceof Transient)) {
          throw err;
        }
        last = err;
      }
    }
    const timeout = /timed out|deadline/.test(last?.message ?? "");
    throw new DownloadError(
      timeout ? "download.timeout" : "download",
      `cannot fetch ${redactUrl(url)} after ${this.config.retries + 1} attempt(s): ${redactText(last?.message ?? "")}`,
      { cause: last },
    );
  }

  private async attempt(url: string, sink: Sink, maxLength: number): Promise<number> {
    let current = url;
    // User info is a credential for the origin it was configured for: it goes with every hop
    // back to that origin and with no other (a Location's own user info is dropped).
    const start = new URL(url);
    for (let hop = 0; hop <= this.config.maxRedirects; hop++) {
      const outcome = await this.request(current, sink, maxLength);
      if ("written" in outcome) {
        return outcome.written;
      }
      const target = new URL(outcome.redirect);
      target.username = "";
      target.password = "";
      if (target.origin === start.origin) {
        target.username = start.username;
        target.password = start.password;
      }
      checkUrlPolicy(target.href, this.config.allowHttp);
      if (new URL(current).protocol === "https:" && target.protocol !== "https:") {
        throw new TrustError(
          "trust.policy",
          `refusing redirect from ${redactUrl(current)} to ${redactUrl(target.href)}: expected https, got a downgrade to plain http`,
        );
      }
      current = target.href;
    }
    throw new DownloadError(
      "download",
      `too many redirects fetching ${redactUrl(url)}: expected at most ${this.config.maxRedirects}`,
    );
  }

  /**
   * The configured CA bundle's bytes, read once (only https needs them).
   *
   * @throws DownloadError The bundle cannot be read or holds no PEM certificate (Python's
   *   wording).
   */
  private caBundle(path: string): Buffer {
    if (this.ca === null) {
      let data: Buffer;
      try {
        data = readFileSync(path);
      } catch (err) {
        throw new DownloadError("download", `cannot load the CA bundle ${path}: ${describe(err)}`, {
          hint: "set ca_bundle to a readable PEM file of CA certificates",
          cause: err,
        });
      }
      if (!data.includes("-----BEGIN CERTIFICATE-----")) {
        throw new DownloadError("download", `cannot load the CA bundle ${path}: it holds no PEM certificate`, {
          hint: "set ca_bundle to a readable PEM file of CA certificates",
        });
      }
      this.ca = data;
    }
    return this.ca;
  }

  private request(url: string, sink: Sink, maxLength: number): Promise<Outcome> {
    const cfg = this.config;
    const parsed = new URL(url);
    const shown = redactUrl(url); // messages show the URL without its credentials
    const lib = parsed.protocol === "https:" ? https : http;
    const tls = parsed.protocol === "https:" && cfg.caBundle !== undefined ? { ca: this.caBundle(cfg.caBundle) } : {};
    return new Promise<Outcome>((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (err: Error | null, value?: Outcome): void => {
        if (settled) {
          return;
        }
        settled = true;
        for (const t of timers) {
          clearTimeout(t);
        }
        if (err) {
          req.destroy();
          reject(err);
        } else {
          resolve(value as Outcome);
        }
      };
      const req = lib.get(
        parsed,
        {
          agent: false,
          ...tls,
          headers: { "user-agent": cfg.userAgent, "accept-encoding": "identity" },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (REDIRECTS.has(status)) {
            res.resume();
            const location = res.headers.location;
            if (!location) {
              finish(new DownloadError("download", `${shown} answered HTTP ${status} without a Location header`));
              return;
            }
            let target: string;
            try {
              target = new URL(location, url).href;
            } catch {
              finish(new DownloadError("download", `${shown} answered HTTP ${status} with an invalid Location header`));
              return;
            }
            finish(null, { redirect: target });
            return;
          }
          if (status !== 200) {
            res.resume();
            const reason = `HTTP ${status} ${res.statusMessage ?? ""}`.trimEnd();
            if (status === 404 || status === 410) {
              finish(new DownloadError("download.not-found", `${shown} does not exist: expected HTTP 200, got ${reason}`));
            } else if (status === 429 || (status >= 500 && status <= 599)) {
              finish(new Transient(reason));
            } else {
              finish(new DownloadError("download", `cannot fetch ${shown}: expected HTTP 200, got ${reason}`));
            }
            return;
          }
          const encoding = (res.headers["content-encoding"] ?? "identity").trim().toLowerCase();
          if (encoding !== "" && encoding !== "identity") {
            finish(
              new DownloadError(
                "download",
                `${shown} was sent with Content-Encoding '${encoding}', expected identity (hashes are over the exact file bytes)`,
                { hint: "configure the server or CDN not to compress these files" },
              ),
            );
            return;
          }
          const declaredText = res.headers["content-length"];
          const declared = declaredText !== undefined && /^[0-9]+$/.test(declaredText) ? Number(declaredText) : null;
          if (declared !== null && declared > maxLength) {
            // Refuse before reading a byte.
            finish(new TrustError("trust.length", `${shown} announces ${declared} bytes, expected at most ${maxLength}`));
            return;
          }
          let written = 0;
          res.on("data", (chunk: Buffer) => {
            if (settled) {
              return;
            }
            if (written + chunk.length > maxLength) {
              // Stops endless-data and oversized responses at the cap.
              finish(new TrustError("trust.length", `${shown} sent more than the expected maximum of ${maxLength} bytes; aborted`));
              return;
            }
            try {
              sink.write(chunk);
            } catch (err) {
              finish(err as Error);
              return;
            }
            written += chunk.length;
          });
          res.on("end", () => {
            if (declared !== null && written !== declared) {
              finish(new Transient(`body ended after ${written} of ${declared} announced bytes`));
            } else {
              finish(null, { written });
            }
          });
          res.on("error", (err) => finish(new Transient(`reading the body failed: ${describe(err)}`)));
          res.on("aborted", () => finish(new Transient("the connection was closed mid-body")));
        },
      );
      req.on("socket", (socket) => {
        if (socket.connecting) {
          const t = setTimeout(() => finish(new Transient(`connecting to ${parsed.host} timed out after ${cfg.connectTimeoutMs} ms`)), cfg.connectTimeoutMs);
          timers.push(t);
          socket.once("connect", () => clearTimeout(t));
        }
      });
      req.setTimeout(cfg.readTimeoutMs, () => finish(new Transient(`no data from ${parsed.host} for ${cfg.readTimeoutMs} ms (read timed out)`)));
      timers.push(setTimeout(() => finish(new Transient(`${shown} passed the total deadline of ${cfg.totalTimeoutMs} ms`)), cfg.totalTimeoutMs));
      req.on("error", (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? "";
        if (CERT_ERRORS.has(code)) {
          // Not retried: retrying a possible man-in-the-middle only hides it.
          finish(
            new DownloadError(
              "download",
              `TLS certificate verification failed for ${shown}: ${redactText(describe(err))}; set ca_bundle in the download configuration if the server's certificate comes from a private CA`,
              {
                hint: "check that the URL's host name is the one in the server's certificate and that the system clock is right",
                cause: err,
              },
            ),
          );
          return;
        }
        finish(new Transient(redactText(describe(err))));
      });
    });
  }
}

/**
 * Reads `file://` URLs (a `bundle:` directory) with the same caps and errors as
 * {@link HttpFetcher}, so a bundle goes through exactly the same verification: a bundle is
 * untrusted bytes too (as Python's `DirectoryFetcher`).
 */
export class DirectoryFetcher implements Fetcher {
  async fetchBytes(url: string, maxLength: number): Promise<Uint8Array> {
    const sink = new BufferSink();
    await this.fetchTo(url, sink, maxLength);
    return Buffer.concat(sink.chunks);
  }

  async fetchTo(url: string, sink: Sink, maxLength: number): Promise<number> {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (err) {
      throw new DownloadError("download", `${redactUrl(url)}: only file:// URLs are read from local directories`, { cause: err });
    }
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      throw mapFileError(url, err);
    }
    try {
      const chunk = Buffer.allocUnsafe(256 * 1024);
      let written = 0;
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, chunk, 0, chunk.length, null);
        } catch (err) {
          throw mapFileError(url, err);
        }
        if (n === 0) {
          return written;
        }
        if (written + n > maxLength) {
          throw new TrustError("trust.length", `${redactUrl(url)} holds more than the expected maximum of ${maxLength} bytes`);
        }
        sink.write(Uint8Array.prototype.slice.call(chunk, 0, n));
        written += n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

function mapFileError(url: string, err: unknown): DownloadError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return new DownloadError("download.not-found", `${redactUrl(url)}: no such file`);
  }
  if (code === "EISDIR") {
    return new DownloadError("download.not-found", `${redactUrl(url)}: is a directory`);
  }
  return new DownloadError("download", `${redactUrl(url)}: cannot read: ${describe(err)}`, { cause: err });
}
