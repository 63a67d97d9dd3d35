/**
 * A content-addressed cache of verified archives (as `cache.py`).
 *
 * `archives/<sha256>.zip` below the cache root. A download streams into a temp file beside
 * its entry while being hashed; the hash and length are compared before the rename makes the
 * file visible, so an entry is always complete and verified. Reads re-hash the bytes, and a
 * corrupt entry is removed. Concurrent writers of one entry each write their own temp file;
 * the rename is atomic and the content identical, so the cache stays correct without a lock.
 */

import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

import { CacheError, describe, TrustError } from "../errors.js";
import { sha256Hex } from "../trust/keys.js";
import type { Sink } from "./fetch.js";

const HEX64_RE = /^[0-9a-f]{64}$/;

/** A sink that writes to a temp file and hashes while streaming. */
class VerifyingSink implements Sink {
  private hash = createHash("sha256");
  private written = 0;
  chunks: Uint8Array[] = [];

  constructor(
    private fd: number,
    private readonly path: string,
    private readonly length: number,
  ) {}

  write(chunk: Uint8Array): void {
    if (this.written + chunk.length > this.length) {
      throw new TrustError(
        "trust.length",
        `length mismatch for ${this.path}: expected ${this.length} bytes, got more`,
      );
    }
    this.hash.update(chunk);
    writeSync(this.fd, chunk);
    this.chunks.push(chunk);
    this.written += chunk.length;
  }

  reset(): void {
    closeSync(this.fd);
    this.fd = openSync(this.path, "w", 0o644);
    this.hash = createHash("sha256");
    this.written = 0;
    this.chunks = [];
  }

  finish(sha256: string, what: string): void {
    closeSync(this.fd);
    if (this.written !== this.length) {
      throw new TrustError(
        "trust.length",
        `length mismatch for ${what}: expected ${this.length} bytes, got ${this.written}`,
      );
    }
    const got = this.hash.digest("hex");
    if (got !== sha256) {
      throw new TrustError("trust.hash", `sha256 mismatch for ${what}: expected ${sha256}, got ${got}`);
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed by finish()
    }
  }
}

/** The archive cache. */
export class ArchiveCache {
  constructor(readonly root: string) {}

  /** Where the entry for `sha256` lives. */
  pathFor(sha256: string): string {
    if (!HEX64_RE.test(sha256)) {
      throw new RangeError(`expected a sha256 of 64 lowercase hex characters, got '${sha256}'`);
    }
    return join(this.root, "archives", `${sha256}.zip`);
  }

  /**
   * The verified bytes of an entry, or null when absent. A corrupt entry is removed.
   *
   * @throws CacheError (`cache`) The entry exists but cannot be read.
   */
  readVerified(sha256: string, length: number): Uint8Array | null {
    const path = this.pathFor(sha256);
    let data: Uint8Array;
    try {
      data = readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        return null;
      }
      throw new CacheError("cache", `cannot read ${path}: ${describe(err)}`, { cause: err });
    }
    // One read, one hash: the bytes returned are the bytes checked.
    if (data.length !== length || sha256Hex(data) !== sha256) {
      rmSync(path, { force: true });
      return null;
    }
    return data;
  }

  /**
   * Stream an entry in through `writeInto`, verify it, then make it visible by rename.
   *
   * @returns Exactly the bytes that were hashed.
   * @throws TrustError `trust.length`/`trust.hash` (nothing is kept), whatever `writeInto`
   *   throws, or CacheError (`cache`).
   */
  async fetch(
    sha256: string,
    length: number,
    what: string,
    writeInto: (sink: Sink) => Promise<void>,
  ): Promise<Uint8Array> {
    const path = this.pathFor(sha256);
    const tmp = `${path}.${randomBytes(6).toString("hex")}.part`;
    let sink: VerifyingSink;
    try {
      mkdirSync(join(this.root, "archives"), { recursive: true, mode: 0o755 });
      sink = new VerifyingSink(openSync(tmp, "wx", 0o644), tmp, length);
    } catch (err) {
      throw new CacheError("cache", `cannot write to the cache ${this.root}: ${describe(err)}`, {
        cause: err,
      });
    }
    try {
      await writeInto(sink);
      sink.finish(sha256, what);
      renameSync(tmp, path);
      return Buffer.concat(sink.chunks);
    } catch (err) {
      sink.close();
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
