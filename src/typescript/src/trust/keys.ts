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

// Edwards25519 (RFC 8032 §5.1): -x^2 + y^2 = 1 + d x^2 y^2 over GF(p).
const P = 2n ** 255n - 19n;

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = ((base % P) + P) % P;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) {
      result = (result * b) % P;
    }
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

const inv = (v: bigint): bigint => modPow(v, P - 2n);
const D = (((-121665n * inv(121666n)) % P) + P) % P;
const SQRT_M1 = modPow(2n, (P - 1n) / 4n);

function decodePoint(raw: Uint8Array): [bigint, bigint] | null {
  const encoded = BigInt(`0x${Buffer.from(raw).reverse().toString("hex")}`);
  const y = (encoded & ((1n << 255n) - 1n)) % P;
  const sign = encoded >> 255n;
  const x2 = ((((y * y - 1n) % P) + P) % P) * inv(D * y * y + 1n) % P;
  let x = modPow(x2, (P + 3n) / 8n);
  if ((x * x - x2) % P !== 0n) {
    x = (x * SQRT_M1) % P;
  }
  if ((x * x - x2) % P !== 0n) {
    return null;
  }
  if ((x & 1n) !== sign) {
    x = (P - x) % P;
  }
  return [x, y];
}

function double([x, y]: [bigint, bigint]): [bigint, bigint] {
  const t = (D * x * x * y * y) % P;
  return [(2n * x * y * inv(1n + t)) % P, ((y * y + x * x) % P) * inv(1n - t + P) % P];
}

/**
 * Why a raw Ed25519 public key is unusable as a trusted key, or null (FORMAT.md §2): a point
 * of small order (8·P = O, in any encoding) or no point on the curve at all. The same check
 * as Python's `small_order_problem`.
 */
export function smallOrderProblem(raw: Uint8Array): string | null {
  let point = decodePoint(raw);
  if (point === null) {
    return "not a point on the curve";
  }
  for (let i = 0; i < 3; i++) {
    point = double(point);
  }
  return point[0] === 0n && point[1] === 1n ? "a point of small order (8·P is the identity)" : null;
}

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
   * @throws InvalidInput (`input.key`) Not 32 bytes or not a valid Ed25519 key.
   */
  constructor(raw: Uint8Array) {
    if (raw.length !== RAW_KEY_LEN) {
      throw new InvalidInput(
        "input.key",
        `Ed25519 public key: expected ${RAW_KEY_LEN} raw bytes, got ${raw.length}`,
      );
    }
    const problem = smallOrderProblem(raw);
    if (problem !== null) {
      throw new InvalidInput("input.key", `Ed25519 public key ${Buffer.from(raw).toString("hex")} is invalid: ${problem}`);
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
        "input.key",
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
   * @throws InvalidInput (`input.key`) Not 64 lowercase hex characters or not a key.
   */
  static fromHex(text: unknown): PublicKey {
    if (typeof text !== "string" || !HEX_KEY_RE.test(text)) {
      throw new InvalidInput(
        "input.key",
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
