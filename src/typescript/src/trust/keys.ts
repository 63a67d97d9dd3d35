/**
 * Ed25519 public keys (pure: no file I/O).
 *
 * A key ID is the lowercase hex SHA-256 of the raw 32-byte public key (FORMAT.md §2):
 * deriving the ID from the key stops one key being counted twice under two IDs.
 */

import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";

import { InvalidInput } from "../errors.js";

const RAW_KEY_LEN = 32; // bytes of a raw Ed25519 public key
const SIGNATURE_LEN = 64; // bytes of an Ed25519 signature
const HEX_KEY_RE = /^[0-9a-f]{64}$/;
// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows it.
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** Lowercase hex SHA-256 of bytes. */
export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** An Ed25519 public key. */
export class PublicKey {
  readonly raw: Uint8Array;
  readonly keyid: string;
  private readonly key: KeyObject;

  /**
   * @param raw The raw 32-byte public key.
   * @throws InvalidInput (`trust.metadata`) Not 32 bytes or not a valid Ed25519 key.
   */
  constructor(raw: Uint8Array) {
    if (raw.length !== RAW_KEY_LEN) {
      throw new InvalidInput(
        "trust.metadata",
        `Ed25519 public key: expected ${RAW_KEY_LEN} raw bytes, got ${raw.length}`,
      );
    }
    this.raw = Uint8Array.from(raw);
    this.keyid = sha256Hex(this.raw);
    try {
      this.key = createPublicKey({
        key: Buffer.concat([SPKI_PREFIX, this.raw]),
        format: "der",
        type: "spki",
      });
    } catch (err) {
      throw new InvalidInput(
        "trust.metadata",
        `Ed25519 public key ${Buffer.from(raw).toString("hex")} is invalid`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * Parse the 64-lowercase-hex form used in root.json (exactly one spelling per key).
   *
   * @throws InvalidInput (`trust.metadata`) Not 64 lowercase hex characters or not a key.
   */
  static fromHex(text: unknown): PublicKey {
    if (typeof text !== "string" || !HEX_KEY_RE.test(text)) {
      throw new InvalidInput(
        "trust.metadata",
        `Ed25519 public key: expected 64 lowercase hex characters, got ${JSON.stringify(text)?.slice(0, 80)}`,
      );
    }
    return new PublicKey(Buffer.from(text, "hex"));
  }

  /** The raw key as 64 lowercase hex characters. */
  get publicHex(): string {
    return Buffer.from(this.raw).toString("hex");
  }

  /**
   * Check an Ed25519 signature; never throws for a bad or malformed signature.
   *
   * @returns True if `signature` is valid for `data`.
   */
  verify(signature: Uint8Array, data: Uint8Array): boolean {
    if (signature.length !== SIGNATURE_LEN) {
      return false;
    }
    try {
      return verify(null, data, this.key, signature);
    } catch {
      return false;
    }
  }
}
