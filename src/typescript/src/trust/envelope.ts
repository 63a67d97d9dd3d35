/**
 * DSSE v1 signed envelopes (FORMAT.md §2), mirroring `envelope.py`.
 *
 * The signature covers `PAE(payloadType, payload)` over the exact payload bytes (no
 * canonicalisation), and the payload type is bound into the signature, so a validly signed
 * file of one kind is never accepted as another.
 */

import { TrustError } from "../errors.js";
import type { PublicKey } from "./keys.js";
import { isObject, type JsonObject, type JsonValue, strictJson } from "./strict-json.js";

export const ROOT_TYPE = "application/vnd.modelmesh.root+json";
export const TIMESTAMP_TYPE = "application/vnd.modelmesh.timestamp+json";
export const INDEX_TYPE = "application/vnd.modelmesh.index+json";
export const RELEASE_TYPE = "application/vnd.modelmesh.release+json";

export const MAX_ENVELOPE_BYTES = 1024 * 1024; // bytes; the largest envelope is ~40 KiB
export const MAX_SIGNATURES = 256; // entries; bounds the verification work
const MAX_PAYLOAD_TYPE_LEN = 128; // characters
const SIGNATURE_LEN = 64; // bytes of an Ed25519 signature
const KEYID_RE = /^[0-9a-f]{64}$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** One signature entry of an envelope. */
export interface Signature {
  readonly keyid: string;
  readonly sig: Uint8Array;
}

/** A parsed envelope. Its payload is not trusted until {@link verifyThreshold}. */
export interface Envelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly Signature[];
}

/** DSSE v1 Pre-Authentication Encoding: `DSSEv1 <len t> <t> <len b> <b>`. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const t = Buffer.from(payloadType, "utf8");
  // Lengths make the encoding injective: no (type, payload) pair re-splits into another.
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${t.length} `, "ascii"),
    t,
    Buffer.from(` ${payload.length} `, "ascii"),
    payload,
  ]);
}

function sigError(message: string): TrustError {
  return new TrustError("trust.signature", message);
}

/** Decode standard padded base64 in its one canonical spelling. */
export function b64decode(text: JsonValue | undefined, what: string): Uint8Array {
  if (typeof text !== "string") {
    throw sigError(`${what}: expected a base64 string, got ${typeName(text)}`);
  }
  if (!B64_RE.test(text)) {
    throw sigError(`${what}: expected standard padded base64, got invalid data`);
  }
  const raw = Buffer.from(text, "base64");
  // Non-zero padding bits would let one signature be spelled in several ways.
  if (raw.toString("base64") !== text) {
    throw sigError(`${what}: expected canonical base64, got a non-canonical encoding`);
  }
  return new Uint8Array(raw);
}

/** Name a JSON value's type for messages. */
export function typeName(value: JsonValue | undefined): string {
  if (value === undefined) {
    return "nothing";
  }
  if (value === null) {
    return "null";
  }
  if (Array.isArray(value)) {
    return "list";
  }
  if (typeof value === "boolean") {
    return `boolean ${value}`;
  }
  if (typeof value === "number") {
    return "int";
  }
  if (typeof value === "string") {
    return "str";
  }
  return "dict";
}

function sameKeys(obj: JsonObject, expected: readonly string[]): boolean {
  const keys = Object.keys(obj);
  return keys.length === expected.length && expected.every((k) => Object.hasOwn(obj, k));
}

/**
 * Parse an envelope strictly, without verifying any signature.
 *
 * @param data File bytes, or an already parsed object (an envelope embedded in a bin).
 * @throws TrustError (`trust.signature`) Too large, not strict JSON, other keys than
 *   exactly payloadType/payload/signatures, bad base64, a signature that is not 64 bytes,
 *   a key ID that is not 64 lowercase hex, or more than 256 signatures.
 */
export function parseEnvelope(data: Uint8Array | JsonValue): Envelope {
  let obj: JsonValue;
  if (data instanceof Uint8Array) {
    if (data.length > MAX_ENVELOPE_BYTES) {
      throw sigError(`envelope: expected at most ${MAX_ENVELOPE_BYTES} bytes, got ${data.length}`);
    }
    try {
      obj = strictJson(data);
    } catch (err) {
      throw new TrustError("trust.signature", `envelope: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } else {
    obj = data;
  }
  if (!isObject(obj)) {
    throw sigError(`envelope: expected a JSON object, got ${typeName(obj)}`);
  }
  if (!sameKeys(obj, ["payloadType", "payload", "signatures"])) {
    throw sigError(
      `envelope: expected exactly the keys ['payload', 'payloadType', 'signatures'], got ${JSON.stringify(Object.keys(obj).sort())}`,
    );
  }
  const payloadType = obj["payloadType"];
  if (
    typeof payloadType !== "string" ||
    payloadType.length === 0 ||
    payloadType.length > MAX_PAYLOAD_TYPE_LEN
  ) {
    throw sigError(
      `envelope: expected payloadType to be a non-empty string of at most ${MAX_PAYLOAD_TYPE_LEN} characters`,
    );
  }
  const payload = b64decode(obj["payload"], "envelope payload");
  const rawSigs = obj["signatures"];
  if (!Array.isArray(rawSigs)) {
    throw sigError(`envelope: expected signatures to be a list, got ${typeName(rawSigs)}`);
  }
  if (rawSigs.length > MAX_SIGNATURES) {
    throw sigError(
      `envelope: expected at most ${MAX_SIGNATURES} signatures, got ${rawSigs.length}`,
    );
  }
  const signatures: Signature[] = rawSigs.map((entry, i) => {
    if (!isObject(entry) || !sameKeys(entry, ["keyid", "sig"])) {
      throw sigError(`envelope signature ${i}: expected an object with keys ['keyid', 'sig']`);
    }
    const keyid = entry["keyid"];
    if (typeof keyid !== "string" || !KEYID_RE.test(keyid)) {
      throw sigError(`envelope signature ${i}: expected keyid of 64 lowercase hex`);
    }
    const sig = b64decode(entry["sig"], `envelope signature ${i}`);
    if (sig.length !== SIGNATURE_LEN) {
      throw sigError(
        `envelope signature ${i}: expected a ${SIGNATURE_LEN}-byte Ed25519 signature, got ${sig.length} bytes`,
      );
    }
    return { keyid, sig };
  });
  return { payloadType, payload, signatures };
}

/** The envelope as a JSON object (as embedded in bin nodes). */
export function envelopeToJson(env: Envelope): JsonObject {
  return {
    payloadType: env.payloadType,
    payload: Buffer.from(env.payload).toString("base64"),
    signatures: env.signatures.map((s) => ({
      keyid: s.keyid,
      sig: Buffer.from(s.sig).toString("base64"),
    })),
  };
}

/** What {@link verifyThreshold} checks an envelope against. */
export interface ThresholdCheck {
  /** The only acceptable payloadType. */
  expectedType: string;
  /** Public keys by key ID. */
  keys: ReadonlyMap<string, PublicKey>;
  /** Key IDs whose signatures count. */
  keyids: readonly string[];
  /** Distinct valid signatures needed (at least 1). */
  threshold: number;
  /** Names the file in messages. */
  what: string;
}

/**
 * Check that a threshold of distinct trusted keys signed the envelope.
 *
 * The payload type is checked first. Duplicate signatures by one key count once;
 * signatures by keys outside `keyids` and invalid signatures are ignored.
 *
 * @returns The key IDs with a valid signature (at least `threshold`).
 * @throws TrustError (`trust.signature`) Wrong payload type or threshold not met.
 * @throws RangeError `threshold` below 1 (a zero threshold would accept anything).
 */
export function verifyThreshold(env: Envelope, check: ThresholdCheck): Set<string> {
  if (!(check.threshold >= 1)) {
    throw new RangeError(`${check.what}: threshold must be at least 1, got ${check.threshold}`);
  }
  if (env.payloadType !== check.expectedType) {
    throw sigError(
      `${check.what}: expected payload type '${check.expectedType}', got '${env.payloadType}'`,
    );
  }
  const trusted = new Set(check.keyids);
  const signed = pae(env.payloadType, env.payload);
  const valid = new Set<string>();
  for (const entry of env.signatures) {
    if (valid.has(entry.keyid) || !trusted.has(entry.keyid)) {
      continue;
    }
    const key = check.keys.get(entry.keyid);
    // The ID must be the key's own hash, so a key stored under two IDs counts once.
    if (key === undefined || key.keyid !== entry.keyid) {
      continue;
    }
    if (key.verify(entry.sig, signed)) {
      valid.add(entry.keyid);
    }
  }
  if (valid.size < check.threshold) {
    throw sigError(
      `${check.what}: expected signatures by at least ${check.threshold} distinct trusted key(s), got ${valid.size} valid`,
    );
  }
  return valid;
}
